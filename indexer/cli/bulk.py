"""photocheck bulk: many members' photos into a report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .common import (
    device_option,
    dlib_runtime_option,
    echo_json,
    embedder_options,
    json_option,
    model_root_option,
    path_column_option,
    quiet,
    source_format_option,
)


@click.command()
@click.option("--server", help="URL of a photocheck service, e.g. https://photo.example.org.")
@click.option("--key", envvar="PHOTOCHECK_KEY", help="API key for --server (or $PHOTOCHECK_KEY, kept out of ps).")
@click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Check locally against this index instead of a server.",
)
@click.option(
    "-o",
    "--output",
    "report",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The report: .csv or .json. A run that finds it resumes; REPORT.html is written beside it.",
)
@click.option(
    "--concurrency", type=click.IntRange(1, 64), default=4, show_default=True, help="Requests in flight at once."
)
@click.option(
    "--batch",
    "batch_size",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="Photos per request (lowered to the server's maximum if it says so).",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 100),
    default=6,
    show_default=True,
    help="Tries after a 5xx or a dropped connection, with exponential backoff (429s wait as told).",
)
@click.option(
    "--timeout", type=click.FloatRange(1), default=300, show_default=True, help="Seconds to wait for one request."
)
@source_format_option
@path_column_option
@device_option
@dlib_runtime_option
@model_root_option
@click.option(
    "--several-photos",
    is_flag=True,
    help="Members have up to 5 photos each, checked together as one person: a subfolder of SOURCE per member, "
    "or manifest rows with the same 'member' (or 'member_id').",
)
@click.option("--no-html", is_flag=True, help="Do not write the HTML summary.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@json_option
@click.argument("source", type=click.Path(exists=True, path_type=Path))
def bulk(
    server: str | None,
    key: str | None,
    index_dir: Path | None,
    report: Path,
    concurrency: int,
    batch_size: int,
    retries: int,
    timeout: float,
    source_format: str,
    path_column: str | None,
    device: str,
    dlib_runtime: str,
    model_root: str | None,
    several_photos: bool,
    no_html: bool,
    no_progress: bool,
    as_json: bool,
    source: Path,
) -> None:
    """Check many member photos against every dataset, into a CSV or JSON report and an HTML summary.

    SOURCE is a folder of photos or a CSV/JSONL manifest, read as `index add` reads them; a photo's
    id is its relative path or manifest key. The report is rewritten after every batch: killed and
    run again, the same command skips the photos already in it. Datasets added with --evidence
    also list the matched entries' sources, for removal requests. A photo that cannot be checked
    (no face, not an image) gets its error in the report; the exit status is 1 only when the run
    stopped before every photo had an answer (refused key, unreachable server): run it again.

    With --several-photos, a member may have up to 5 photos, checked together for one surer answer:
    each subfolder of SOURCE is a member (its name the id), or in a manifest the rows with the same
    'member' (or 'member_id') are. The report lists each member's photos; photos that do not look
    like one person are refused (not_same_person) rather than mixed.

    \b
    Examples:
      PHOTOCHECK_KEY=pck_... photocheck bulk --server https://photo.example.org ./members -o report.csv
      photocheck bulk --server http://127.0.0.1:8000 --key pck_... members.csv -o report.json --concurrency 2
      photocheck bulk --index ./index ./members -o report.csv
      photocheck bulk --index ./index --several-photos ./members-by-folder -o report.csv
    """
    from ..bulk import LocalChecker, ServerChecker, run_bulk
    from ..report import report_format

    report_format(report)
    if (server is None) == (index_dir is None):
        raise click.UsageError("Give either --server URL (with --key) or --index DIR.")
    if server is not None:
        if not key:
            raise click.UsageError("--server needs an API key: --key KEY or $PHOTOCHECK_KEY.")
        checker = ServerChecker(server, key, retries=retries, timeout=timeout)
    else:
        checker = LocalChecker(index_dir, embedder_options=embedder_options(device, model_root, runtime=dlib_runtime))
        concurrency = 1  # one embedder in this process: checks run one after another
    summary = run_bulk(
        source,
        report,
        checker,
        source_format=source_format,
        path_column=path_column,
        batch_size=batch_size,
        concurrency=concurrency,
        progress=not no_progress and not as_json and not quiet(),
        html=not no_html,
        several_photos=several_photos,
    )
    if as_json:
        echo_json(summary.as_dict())
    else:
        click.echo(_format_bulk(summary, "members" if several_photos else "photos"))


def _format_bulk(summary: Any, noun: str = "photos") -> str:
    lines = [
        f"{summary.checked} {noun} checked in {summary.seconds:.1f}s ({summary.photos_per_second:.2f} {noun}/s)"
        + (f", {summary.skipped} done before" if summary.skipped else "")
        + (f"; {summary.errors} could not be checked" if summary.errors else "")
        + (f"; {summary.rate_limited} rate-limited waits" if summary.rate_limited else "")
        + (f"; {summary.retries} retries" if summary.retries else ""),
    ]
    if summary.counts:
        width = max(len(name) for name in summary.counts)
        lines.append(f"  {'dataset':<{width}}  {'match':>6}  {'possible':>8}  {'no match':>8}  {'not checked':>11}")
        for name, c in summary.counts.items():
            lines.append(
                f"  {name:<{width}}  {c['match']:>6}  {c['possible']:>8}  {c['no_match']:>8}  {c['errors']:>11}"
            )
    lines.append(
        f"report: {summary.report} ({summary.members} members)" + (f"; summary: {summary.html}" if summary.html else "")
    )
    return "\n".join(lines)
