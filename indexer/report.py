"""Reports of bulk checks: CSV or JSON for programs and spreadsheets, and an HTML summary for people.

A report holds one record per member, in the shape of a single check's answer without the other
faces' boxes: ``{"id", "faces_detected", "face", "results", "error"}``; a result of a dataset that
allows evidence also holds ``evidence``, the matched entries' source references. A member checked
with several photos (``photocheck bulk --several-photos``) also has ``photos``: each photo's id, the
face used, and the error of a photo that was not used (in the CSV, a JSON list in its column).

Reports are rewritten atomically (a temporary file beside them, then one rename) after every batch,
so a run that is killed leaves the last complete report, which the next run reads to skip the
photos already done. The CSV has one row per member and dataset (one row for a member whose photo
could not be checked); ``evidence`` is a JSON list in its column. The HTML summary is one
self-contained file rendered from Jinja2 templates (``indexer/templates/report.html``, autoescaped):
inline CSS and SVG, no script, nothing fetched from anywhere.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined

from .atomic import write_atomic
from .errors import PhotocheckError
from .template import is_blurred

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
    "photos",
)
#: The columns of reports written before members could have several photos: still read, to resume them.
CSV_COLUMNS_V1 = CSV_COLUMNS[:-1]
#: Text columns whose values come from outside (member ids, titles, messages): a leading character a
#: spreadsheet would run as a formula is escaped with a quote, reversibly.
CSV_TEXT = ("id", "dataset", "title", "error_code", "error_message")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
VERDICTS = ("match", "possible", "no_match")
#: A bulk report holds members' results: readable by its owner only, whatever the umask.
REPORT_MODE = 0o600


class ReportError(PhotocheckError):
    code = "bad_report"


def member_record(member_id: str, answer: dict[str, Any]) -> dict[str, Any]:
    """What a report keeps of one answer (the boxes of the photos' other faces are left out)."""
    record = {
        "id": member_id,
        "faces_detected": int(answer.get("faces_detected") or 0),
        "face": answer.get("face"),
        "results": list(answer.get("results") or []),
        "error": answer.get("error"),
    }
    if answer.get("photos") and all("id" in photo for photo in answer["photos"]):
        record["photos"] = [{"id": photo["id"], **photo_record(photo)} for photo in answer["photos"]]
    return record


def photo_record(photo: dict[str, Any]) -> dict[str, Any]:
    """What a report keeps of one of a member's several photos: the face used, or why it was not used."""
    record = {
        "faces_detected": int(photo.get("faces_detected") or 0),
        "face": photo.get("face"),
        "error": photo.get("error"),
    }
    if photo.get("differs_from"):
        record["differs_from"] = list(photo["differs_from"])
    return record


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
    if tuple(reader.fieldnames or ()) not in (CSV_COLUMNS, CSV_COLUMNS_V1):
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
                photos = json.loads(row["photos"]) if row.get("photos") else None
                record = member_record(
                    row["id"],
                    {"faces_detected": int(row["faces_detected"] or 0), "face": face, "error": error, "photos": photos},
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
            "photos": json.dumps(record["photos"], ensure_ascii=False) if record.get("photos") else "",
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
    write_atomic(path, text.encode("utf-8"), mode=REPORT_MODE)


def write_html(path: Path, records: list[dict[str, Any]], about: dict[str, Any]) -> Path:
    target = html_path(path)
    write_atomic(target, render_html(records, about).encode("utf-8"), mode=REPORT_MODE)
    return target


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the HTML summary ----------------------------------------------------------------------------

COLOURS = {"match": "#b3261e", "possible": "#c77700", "no_match": "#2e7d32", "errors": "#757575"}
LABELS = {"match": "Match", "possible": "Possible match", "no_match": "No match", "errors": "Not checked"}

# No script runs and nothing loads from anywhere, even if a value were to slip through unescaped.
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@lru_cache(maxsize=1)
def _templates() -> Environment:
    """The report's templates (indexer/templates), autoescaped: member ids and metadata are never markup."""
    return Environment(
        loader=PackageLoader("indexer", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def _http_url(url: Any) -> str | None:
    """The URL if it is http(s), else None: anything else (javascript:, data:...) is shown as text."""
    if not isinstance(url, str):
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


def _chart(counts: dict[str, dict[str, int]], titles: dict[str, str]) -> dict[str, Any]:
    """The geometry of a horizontal stacked bar per dataset: members who matched, possibly, not, or not checked."""
    label_width, bar_width, row, top = 230, 600, 34, 8
    rows = []
    for number, (name, values) in enumerate(counts.items()):
        y = top + number * row
        total = sum(values.values()) or 1
        title = titles.get(name) or name
        bars, x = [], float(label_width)
        for kind in ("match", "possible", "no_match", "errors"):
            if not values[kind]:
                continue
            width = bar_width * values[kind] / total
            bars.append({"kind": kind, "count": values[kind], "x": x, "width": width})
            x += width
        rows.append(
            {
                "y": y,
                "text_y": y + 17,
                "label_x": label_width - 8,
                "title": title,
                "shown": title if len(title) <= 32 else title[:31] + "…",
                "bars": bars,
            }
        )
    return {"width": label_width + bar_width + 20, "height": top + row * max(len(counts), 1) + 8, "rows": rows}


def _member_rank(member: dict[str, Any]) -> int:
    if member.get("error"):
        return 2
    verdicts = {r["verdict"] for r in member.get("results") or []}
    return 0 if "match" in verdicts else 1 if "possible" in verdicts else 3


def _evidence_items(result: dict[str, Any]) -> list[dict[str, Any]]:
    items = []
    for entry in result.get("evidence") or []:
        named = entry.get("photo_id") and entry.get("key") != entry.get("photo_id")
        details = [f"entry {entry.get('key')}"] if named else []
        if entry.get("license"):
            details.append(f"licence {entry['license']}")
        if entry.get("confidence") is not None:
            details.append(f"confidence {float(entry['confidence']):.2f}")
        items.append(
            {
                "label": entry.get("photo_id") or entry.get("key") or "entry",
                "url": _http_url(entry.get("source_url")),
                "details": details,
            }
        )
    return items


def _member_view(member: dict[str, Any], names: list[str]) -> dict[str, Any]:
    view: dict[str, Any] = {"id": member["id"], "error": member.get("error"), "cells": [], "notes": []}
    face = member.get("face") or {}
    faces = int(member.get("faces_detected") or 0)
    if faces > 1 and not member.get("error"):
        number = face.get("number") or 0
        view["notes"].append(
            f"{faces} faces in this photo: the largest was checked"
            if number == 0
            else f"{faces} faces in this photo: face {number} (from 0, largest first) was checked"
        )
    photos = member.get("photos") or []
    used = [photo for photo in photos if not photo.get("error")]
    if len(photos) > 1 and not member.get("error"):
        view["notes"].append(
            f"{len(used)} of {len(photos)} photos checked together"
            if len(used) < len(photos)
            else f"{len(photos)} photos checked together"
        )
    for photo in photos:
        if photo.get("error") and not member.get("error"):
            view["notes"].append(f"{photo['id']} not used: {photo['error']['message']}")
    if len(photos) > 1:
        if (
            used
            and not member.get("error")
            and is_blurred([(p.get("face") or {}).get("quality") == "low" for p in used])
        ):
            view["notes"].append("the faces are small or blurred: a no match is less certain")
    elif face.get("quality") == "low":
        view["notes"].append("the face is small or blurred: a no match is less certain")
    by_name = {r["dataset"]: r for r in member.get("results") or []}
    for name in names:
        result = by_name.get(name)
        if result is None:
            view["cells"].append(None)
            continue
        verdict = result["verdict"] if result["verdict"] in VERDICTS else "error"
        view["cells"].append(
            {
                "verdict": verdict,
                "label": LABELS.get(verdict, verdict),
                "confidence": f"{float(result['confidence']):.2f}",
                "evidence": _evidence_items(result),
            }
        )
    return view


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
        "removal_url": _http_url(removal.get("url") or dataset.get("removal_url")),
        # The dataset travels in the fragment, which browsers never send to the server.
        "next_steps_url": f"{base}/next-steps#{quote(str(dataset.get('name') or ''), safe='')}" if base else None,
    }


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
    rows = []
    for name in names:
        dataset = info.get(name) or {}
        links = [
            (_http_url(dataset.get(k)), label)
            for k, label in (("disclosure_url", "disclosure"), ("removal_url", "ask for removal"))
            if dataset.get(k)
        ]
        rows.append({"name": name, "title": titles[name], "counts": counts[name], "links": links})
    template = _templates().get_template("report.html")
    return template.render(
        policy=POLICY,
        colours=COLOURS,
        labels=LABELS,
        legend=list(LABELS.items()),
        generated_at=_now(),
        source=server or checked_with.get("index") or "",
        members_total=len(records),
        found=sum(1 for m in records if _member_rank(m) == 0),
        possible=sum(1 for m in records if _member_rank(m) == 1),
        errors=sum(1 for m in records if m.get("error")),
        datasets=rows,
        chart=_chart(counts, titles),
        members=[_member_view(m, names) for m in sorted(records, key=_member_rank)],
        guidance=[
            dataset_guidance(info.get(name) or {"name": name, "title": titles[name]}, server)
            for name in names
            if counts[name]["match"] or counts[name]["possible"]
        ],
    )
