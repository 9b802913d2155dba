"""Reports of bulk checks: CSV or JSON for programs and spreadsheets, and an HTML summary for people.

A report holds one record per member photo, in the shape of a single check's answer without the
other faces' boxes: ``{"id", "faces_detected", "face", "results", "error"}``; a result of a dataset
that allows evidence also holds ``evidence``, the matched entries' source references.

Reports are rewritten atomically (a temporary file beside them, then one rename) after every batch,
so a run that is killed leaves the last complete report, which the next run reads to skip the
photos already done. The CSV has one row per member and dataset (one row for a member whose photo
could not be checked); ``evidence`` is a JSON list in its column. The HTML summary is one
self-contained file: inline CSS and SVG, no script, nothing fetched from anywhere.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from .atomic import write_atomic
from .errors import PhotocheckError

FORMAT = "photocheck-bulk-report"
VERSION = 1
SUFFIXES = (".csv", ".json")
CSV_COLUMNS = (
    "id",
    "dataset",
    "title",
    "verdict",
    "confidence",
    "evidence",
    "faces_detected",
    "face_number",
    "face_box",
    "face_quality",
    "error_code",
    "error_message",
)
#: Text columns whose values come from outside (member ids, titles, messages): a leading character a
#: spreadsheet would run as a formula is escaped with a quote, reversibly.
CSV_TEXT = ("id", "dataset", "title", "error_code", "error_message")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
VERDICTS = ("match", "possible", "no_match")


class ReportError(PhotocheckError):
    code = "bad_report"


def member_record(photo_id: str, answer: dict[str, Any]) -> dict[str, Any]:
    """What a report keeps of one answer (the boxes of the photo's other faces are left out)."""
    return {
        "id": photo_id,
        "faces_detected": int(answer.get("faces_detected") or 0),
        "face": answer.get("face"),
        "results": list(answer.get("results") or []),
        "error": answer.get("error"),
    }


def error_record(photo_id: str, code: str, message: str) -> dict[str, Any]:
    return member_record(photo_id, {"error": {"code": code, "message": message}})


def report_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ReportError(f"The report {path} must end in .csv or .json.")
    return suffix[1:]


def html_path(path: Path) -> Path:
    return path.with_suffix(".html")


# -- reading -------------------------------------------------------------------------------------


def load_report(path: Path) -> dict[str, dict[str, Any]]:
    """The records of an existing report, by id, in file order; empty when there is no report yet.

    A file that is not a photocheck report is refused rather than overwritten.
    """
    kind = report_format(path)
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"The report {path} cannot be read ({exc}); give another -o or move it away.") from exc
    if not text.strip():
        return {}
    return _load_json(path, text) if kind == "json" else _load_csv(path, text)


def _load_json(path: Path, text: str) -> dict[str, dict[str, Any]]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ReportError(f"{path} is not valid JSON ({exc}); give another -o or move it away.") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ReportError(f"{path} is not a photocheck bulk report; give another -o, or move it away.")
    records = {}
    for member in document.get("members", []):
        records[str(member["id"])] = member_record(str(member["id"]), member)
    return records


def _unescape(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:2] in _FORMULA_START else value


def _load_csv(path: Path, text: str) -> dict[str, dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
        raise ReportError(
            f"{path} is not a photocheck bulk report (its columns are not {', '.join(CSV_COLUMNS)}); "
            "give another -o, or move it away."
        )
    records: dict[str, dict[str, Any]] = {}
    try:
        for row in reader:
            row = {k: (_unescape(v) if k in CSV_TEXT else v) for k, v in row.items()}
            record = records.get(row["id"])
            if record is None:
                face = None
                if row["face_number"] != "":
                    box = [int(v) for v in row["face_box"].split()] if row["face_box"] else None
                    face = {"number": int(row["face_number"]), "box": box, "quality": row["face_quality"] or None}
                error = {"code": row["error_code"], "message": row["error_message"]} if row["error_code"] else None
                record = member_record(
                    row["id"], {"faces_detected": int(row["faces_detected"] or 0), "face": face, "error": error}
                )
                records[row["id"]] = record
            if row["dataset"]:
                result: dict[str, Any] = {
                    "dataset": row["dataset"],
                    "title": row["title"],
                    "verdict": row["verdict"],
                    "confidence": float(row["confidence"]),
                }
                if row["evidence"]:
                    result["evidence"] = json.loads(row["evidence"])
                record["results"].append(result)
    except (ValueError, KeyError, TypeError) as exc:
        raise ReportError(f"{path} has a row that cannot be read ({exc}); give another -o or move it away.") from exc
    return records


# -- writing -------------------------------------------------------------------------------------


def _escape(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def render_csv(records: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        face = record.get("face") or {}
        error = record.get("error") or {}
        common = {
            "id": record["id"],
            "faces_detected": record.get("faces_detected", 0),
            "face_number": "" if face.get("number") is None else face["number"],
            "face_box": " ".join(str(v) for v in face["box"]) if face.get("box") else "",
            "face_quality": face.get("quality") or "",
            "error_code": error.get("code", ""),
            "error_message": error.get("message", ""),
        }
        rows = [
            {
                **common,
                "dataset": r["dataset"],
                "title": r.get("title") or r["dataset"],
                "verdict": r["verdict"],
                "confidence": f"{float(r['confidence']):.2f}",
                "evidence": json.dumps(r["evidence"], ensure_ascii=False) if "evidence" in r else "",
            }
            for r in record.get("results") or []
        ] or [{**common, "dataset": "", "title": "", "verdict": "", "confidence": "", "evidence": ""}]
        for row in rows:
            writer.writerow({k: (_escape(str(v)) if k in CSV_TEXT else v) for k, v in row.items()})
    return buffer.getvalue()


def dataset_counts(records: Iterable[dict[str, Any]], datasets: Iterable[str]) -> dict[str, dict[str, int]]:
    """Per dataset: how many members matched, possibly matched, did not, or could not be checked."""
    records = list(records)
    names = list(dict.fromkeys([*datasets, *(r["dataset"] for m in records for r in m.get("results") or [])]))
    counts = {name: {"match": 0, "possible": 0, "no_match": 0, "errors": 0} for name in names}
    for member in records:
        if member.get("error"):
            for name in names:
                counts[name]["errors"] += 1
            continue
        for result in member.get("results") or []:
            if result["verdict"] in VERDICTS:
                counts[result["dataset"]][result["verdict"]] += 1
    return counts


def render_json(records: list[dict[str, Any]], about: dict[str, Any]) -> str:
    datasets = about.get("datasets") or []
    document = {
        "format": FORMAT,
        "version": VERSION,
        "generated_at": _now(),
        "checked_with": about.get("checked_with"),
        "index": about.get("index"),
        "datasets": datasets,
        "summary": {
            "members": len(records),
            "errors": sum(1 for r in records if r.get("error")),
            "datasets": dataset_counts(records, [d["name"] for d in datasets]),
        },
        "members": records,
    }
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def write_report(path: Path, records: list[dict[str, Any]], about: dict[str, Any]) -> None:
    """Replace the report at ``path`` in one rename: a reader sees the old report or the new one."""
    text = render_json(records, about) if report_format(path) == "json" else render_csv(records)
    write_atomic(path, text.encode("utf-8"))


def write_html(path: Path, records: list[dict[str, Any]], about: dict[str, Any]) -> Path:
    target = html_path(path)
    write_atomic(target, render_html(records, about).encode("utf-8"))
    return target


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the HTML summary ----------------------------------------------------------------------------

COLOURS = {"match": "#b3261e", "possible": "#c77700", "no_match": "#2e7d32", "errors": "#757575"}
LABELS = {"match": "Match", "possible": "Possible match", "no_match": "No match", "errors": "Not checked"}

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
       margin: 0 auto; max-width: 1100px; padding: 24px; background: #fff; }
h1 { font-size: 1.6em; margin: 0 0 4px; } h2 { font-size: 1.25em; margin: 32px 0 8px; }
.meta { color: #555; margin: 0 0 16px; }
.totals { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; padding: 0; list-style: none; }
.totals li { border: 1px solid #ddd; border-radius: 8px; padding: 8px 14px; min-width: 110px; }
.totals strong { display: block; font-size: 1.5em; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #e5e5e5; vertical-align: top; }
th { background: #f6f6f6; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { display: inline-block; border-radius: 4px; padding: 0 6px; color: #fff; font-size: .9em; }
.verdict.match { background: #b3261e; } .verdict.possible { background: #c77700; }
.verdict.no_match { background: #2e7d32; } .verdict.error { background: #757575; }
.conf { color: #555; font-size: .9em; }
.evidence { margin: 4px 0 0; padding-left: 18px; font-size: .9em; }
.id { font-family: ui-monospace, Menlo, Consolas, monospace; word-break: break-all; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }
.note { color: #555; font-size: .9em; }
.guidance { padding-left: 18px; } .guidance li { margin: 0 0 10px; } .guidance ol { margin: 4px 0; }
@media print { body { max-width: none; } }
"""

# No script runs and nothing loads from anywhere, even if a value were to slip through unescaped.
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _link(url: Any, text: Any) -> str:
    """A link only for http(s) URLs; anything else (javascript:, data:...) is shown as text."""
    if isinstance(url, str):
        try:
            scheme = urlsplit(url.strip()).scheme.lower()
        except ValueError:
            scheme = ""
        if scheme in ("http", "https"):
            return f'<a href="{_e(url.strip())}" rel="noreferrer noopener">{_e(text)}</a>'
    return _e(text)


def _chart(counts: dict[str, dict[str, int]], titles: dict[str, str]) -> str:
    """A horizontal stacked bar per dataset, in SVG: members who matched, possibly, not, or not checked."""
    label_width, bar_width, row, top = 230, 600, 34, 8
    height = top + row * max(len(counts), 1) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{label_width + bar_width + 20}" '
        f'height="{height}" viewBox="0 0 {label_width + bar_width + 20} {height}" '
        'aria-label="Members per dataset and verdict">'
    ]
    for number, (name, values) in enumerate(counts.items()):
        y = top + number * row
        total = sum(values.values()) or 1
        title = titles.get(name) or name
        shown = title if len(title) <= 32 else title[:31] + "…"
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 17}" text-anchor="end" font-size="13" fill="#1d1d1f">'
            f"{_e(shown)}</text>"
        )
        x = float(label_width)
        for kind in ("match", "possible", "no_match", "errors"):
            if not values[kind]:
                continue
            width = bar_width * values[kind] / total
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="24" fill="{COLOURS[kind]}">'
                f"<title>{_e(title)}: {values[kind]} {_e(LABELS[kind].lower())}</title></rect>"
            )
            if width >= 28:
                parts.append(
                    f'<text x="{x + width / 2:.1f}" y="{y + 17}" text-anchor="middle" font-size="12" '
                    f'fill="#fff">{values[kind]}</text>'
                )
            x += width
    parts.append("</svg>")
    return "".join(parts)


def _member_rank(member: dict[str, Any]) -> int:
    if member.get("error"):
        return 2
    verdicts = {r["verdict"] for r in member.get("results") or []}
    return 0 if "match" in verdicts else 1 if "possible" in verdicts else 3


def _evidence_items(result: dict[str, Any]) -> str:
    items = []
    for entry in result.get("evidence") or []:
        label = entry.get("photo_id") or entry.get("key") or "entry"
        named = entry.get("photo_id") and entry.get("key") != entry.get("photo_id")
        details = [f"entry {_e(entry.get('key'))}"] if named else []
        if entry.get("license"):
            details.append(f"licence {_e(entry['license'])}")
        if entry.get("confidence") is not None:
            details.append(f"confidence {float(entry['confidence']):.2f}")
        suffix = f' <span class="conf">({", ".join(details)})</span>' if details else ""
        items.append(f"<li>{_link(entry.get('source_url'), label)}{suffix}</li>")
    return f'<ul class="evidence">{"".join(items)}</ul>' if items else ""


# -- what members can do next, per dataset (the page's "What you can do next", in short) -------------

#: The catalog's statuses in plain words (static/next-steps.js says the same).
STATUS_WORDS = {
    "distributed": "Still distributed",
    "restricted": "Handed out only on request or under an agreement",
    "withdrawn": "Withdrawn: no longer distributed",
    "withdrawn_circulating": "Withdrawn, but copies still circulate",
}


def dataset_guidance(dataset: dict[str, Any], server: str | None = None) -> dict[str, Any]:
    """What a member matched in ``dataset`` can do: who holds it, its status, its removal route, and the
    address of the service's next-steps page for it (when the report knows the server).

    ``dataset`` is an entry of the report's ``about["datasets"]``: its ``catalog`` is the catalog entry
    (a server's /api/v1/datasets) or its name (a local index); a dataset added without one has only
    its own removal link."""
    from .catalog import find_entry

    catalog = dataset.get("catalog")
    entry = catalog if isinstance(catalog, dict) else find_entry(catalog if isinstance(catalog, str) else None)
    removal = (entry or {}).get("removal") or {}
    base = server.rstrip("/") if isinstance(server, str) and server.startswith(("http://", "https://")) else None
    return {
        "name": dataset.get("name"),
        "title": (entry or {}).get("title") or dataset.get("title") or dataset.get("name"),
        "holder": (entry or {}).get("maintainer"),
        "contact": (entry or {}).get("contact"),
        "status": STATUS_WORDS.get((entry or {}).get("status") or ""),
        "status_note": (entry or {}).get("status_note"),
        "removal_summary": removal.get("summary"),
        "removal_steps": list(removal.get("steps") or []),
        "removal_url": removal.get("url") or dataset.get("removal_url"),
        # The dataset travels in the fragment, which browsers never send to the server.
        "next_steps_url": f"{base}/next-steps#{quote(str(dataset.get('name') or ''), safe='')}" if base else None,
    }


def _guidance_html(guidance: list[dict[str, Any]]) -> str:
    if not guidance:
        return ""
    out = [
        "<h2>What members can do</h2>",
        '<p class="note">For each dataset that holds, or may hold, a member: who holds it and how to ask for '
        "removal. The service's next-steps page adds the rights that may apply where the member lives and "
        "drafts a request letter in the member's browser. This is general information, not legal advice.</p>",
        '<ul class="guidance">',
    ]
    for item in guidance:
        facts = [f"<strong>{_e(item['title'])}</strong>"]
        if item["holder"]:
            facts.append(f"Held by {_e(item['holder'])}" + (f" ({_e(item['contact'])})" if item["contact"] else ""))
        if item["status"]:
            facts.append(_e(item["status"]) + (f": {_e(item['status_note'])}" if item["status_note"] else ""))
        removal = _e(item["removal_summary"] or "No removal route is known.")
        steps = "".join(f"<li>{_e(step)}</li>" for step in item["removal_steps"])
        links = [
            _link(item["removal_url"], "where to ask for removal") if item["removal_url"] else "",
            _link(item["next_steps_url"], "what a member can do next") if item["next_steps_url"] else "",
        ]
        out.append(
            f"<li>{'. '.join(facts)}.<br>{removal}"
            + (f"<ol>{steps}</ol>" if steps else "")
            + (f"<br>{' · '.join(link for link in links if link)}" if any(links) else "")
            + "</li>"
        )
    out.append("</ul>")
    return "\n".join(out)


def render_html(records: list[dict[str, Any]], about: dict[str, Any]) -> str:
    datasets = about.get("datasets") or []
    info = {d["name"]: d for d in datasets}
    counts = dataset_counts(records, [d["name"] for d in datasets])
    titles = {name: (info.get(name) or {}).get("title") or name for name in counts}
    for member in records:
        for result in member.get("results") or []:
            titles.setdefault(result["dataset"], result.get("title") or result["dataset"])
    names = list(counts)
    checked_with = about.get("checked_with") or {}
    server = checked_with.get("server")
    source = server or checked_with.get("index") or ""
    members_total = len(records)
    found = sum(1 for m in records if _member_rank(m) == 0)
    possible = sum(1 for m in records if _member_rank(m) == 1)
    errors = sum(1 for m in records if m.get("error"))

    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>photocheck bulk report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Bulk check report</h1>",
        f'<p class="meta">{members_total} member photos checked against {len(names)} disclosed '
        f"dataset{'s' if len(names) != 1 else ''}" + (f" with {_e(source)}" if source else "") + f", {_e(_now())}.</p>",
        '<ul class="totals">',
        f"<li><strong>{members_total}</strong>members</li>",
        f"<li><strong>{found}</strong>in a dataset (match)</li>",
        f"<li><strong>{possible}</strong>possibly in a dataset</li>",
        f"<li><strong>{errors}</strong>photos not checked</li>",
        "</ul>",
        "<h2>Datasets</h2>",
        '<p class="legend">'
        + "".join(f'<span><i style="background:{COLOURS[k]}"></i>{LABELS[k]}</span>' for k in COLOURS)
        + "</p>",
        _chart(counts, titles),
        '<table><thead><tr><th>Dataset</th><th class="n">Match</th><th class="n">Possible</th>'
        '<th class="n">No match</th><th class="n">Not checked</th><th>Links</th></tr></thead><tbody>',
    ]
    for name in names:
        values = counts[name]
        dataset = info.get(name) or {}
        links = [
            _link(dataset.get(k), label)
            for k, label in (("disclosure_url", "disclosure"), ("removal_url", "ask for removal"))
            if dataset.get(k)
        ]
        out.append(
            f'<tr><td>{_e(titles[name])}<br><span class="conf">{_e(name)}</span></td>'
            f'<td class="n">{values["match"]}</td><td class="n">{values["possible"]}</td>'
            f'<td class="n">{values["no_match"]}</td><td class="n">{values["errors"]}</td>'
            f"<td>{' · '.join(links)}</td></tr>"
        )
    out.append("</tbody></table>")
    out.append(
        '<p class="note">A match means the dataset very likely holds a photo of the member; a possible match '
        "is worth a look. Evidence links lead to the dataset's own source of a matched photo, for a removal "
        "request; they are listed only for datasets that publish them.</p>"
    )
    found_in = [name for name in names if counts[name]["match"] or counts[name]["possible"]]
    guidance = [dataset_guidance(info.get(name) or {"name": name, "title": titles[name]}, server) for name in found_in]
    out.append(_guidance_html(guidance))
    out.append("<h2>Members</h2>")
    out.append("<table><thead><tr><th>Member photo</th>")
    out.extend(f"<th>{_e(titles[name])}</th>" for name in names)
    out.append("</tr></thead><tbody>")
    for member in sorted(records, key=_member_rank):
        out.append(f'<tr><td class="id">{_e(member["id"])}</td>')
        if member.get("error"):
            error = member["error"]
            out.append(
                f'<td colspan="{max(len(names), 1)}"><span class="verdict error">not checked</span> '
                f'<span class="conf">{_e(error.get("message"))} [{_e(error.get("code"))}]</span></td></tr>'
            )
            continue
        by_name = {r["dataset"]: r for r in member.get("results") or []}
        for name in names:
            result = by_name.get(name)
            if result is None:
                out.append("<td></td>")
                continue
            verdict = result["verdict"] if result["verdict"] in VERDICTS else "error"
            out.append(
                f'<td><span class="verdict {verdict}">{_e(LABELS.get(verdict, verdict))}</span> '
                f'<span class="conf">{float(result["confidence"]):.2f}</span>{_evidence_items(result)}</td>'
            )
        out.append("</tr>")
    out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
