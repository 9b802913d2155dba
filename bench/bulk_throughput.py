"""Throughput of ``photocheck bulk`` against a real server: photos per second at 1, 2 and 4 requests in flight.

What it measures: an index is built from LFW people A-D (the first photo of every other person with
two or more photos), ``photocheck serve --workers W`` runs on a free localhost port, a key with a
rate limit too high to matter is created, and ``run_bulk`` (the code behind ``photocheck bulk``)
checks the same 200 member photos (those people's other photos, linked into a temporary folder)
once per concurrency C and batch size B, each time into a fresh report. Photos/s is the photos
checked over the run's wall time, report writing included. ``--local`` adds a run with no server
(``photocheck bulk --index``: one process, one check at a time).

Machine facts that matter: each gunicorn worker checks one photo at a time on one core, so a run
cannot go faster than W cores allow; with C < W some workers sit idle, and with C > W requests wait
in the listen queue (which costs nothing: a batch's photos are checked back to back either way).
Batching saves the per-request cost (HTTP, multipart, the key lookup), small next to a check. Run it
on an otherwise idle machine; the load average printed with the figures says how idle it was.

Run (from the project root):

    .venv/bin/python bench/bulk_throughput.py                       # W=2, C=1,2,4, B=10, 200 photos
    .venv/bin/python bench/bulk_throughput.py --batches 1,10 --local
    .venv/bin/python bench/bulk_throughput.py --photos 40 --json    # a quicker run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import LFW, emit, machine_facts, print_facts, say, table
from service_latency import Server


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--concurrency", default="1,2,4", help="requests in flight, comma-separated")
    parser.add_argument("--batches", default="10", help="photos per request, comma-separated")
    parser.add_argument("--photos", type=int, default=200, help="member photos per run (default 200)")
    parser.add_argument("--local", action="store_true", help="also run with no server (--index)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    return parser.parse_args(argv)


def prepare(base: Path, photos: int, embedder) -> tuple[Path, Path]:
    """An index of every other person's first photo, and ``photos`` members: those people's other photos."""
    from indexer.pipeline import build_dataset

    indexed, members = base / "indexed", base / "members"
    count = 0
    people = [d for d in sorted(LFW.iterdir()) if d.name[0] in "ABCD" and len(list(d.iterdir())) >= 2]
    for number, person in enumerate(people):
        if count >= photos:
            break
        mine = sorted(person.iterdir())
        if number % 2 == 0:
            (indexed / person.name).mkdir(parents=True)
            (indexed / person.name / mine[0].name).symlink_to(mine[0])
        for photo in mine[1:4][: photos - count]:
            (members / person.name).mkdir(parents=True, exist_ok=True)
            (members / person.name / photo.name).symlink_to(photo)
            count += 1
    build_dataset(base / "index", indexed, dataset="lfw-bench", embedder=embedder, progress=False)
    return base / "index", members


def run(args: argparse.Namespace, base: Path) -> dict[str, Any]:
    from indexer.bulk import LocalChecker, ServerChecker, run_bulk
    from indexer.embedders import create_embedder
    from indexer.keys import KeyStore

    embedder = create_embedder("dlib")
    embedder.load()
    say("building the index...")
    index, members = prepare(base, args.photos, embedder)
    with KeyStore(index / "keys.sqlite") as store:
        _, key = store.create("bench", "1000000/minute")
    runs = []
    server = Server(index, args.workers, base / "server.log")
    try:
        server.wait_ready(120)
        checker = ServerChecker(server.url, key)
        warm = base / "warm"
        warm.mkdir()
        for photo in sorted(members.rglob("*.jpg"))[: 2 * args.workers]:
            (warm / photo.name).symlink_to(photo)
        run_bulk(warm, base / "warm.csv", checker, batch_size=1, concurrency=args.workers, progress=False)
        for batch in [int(b) for b in args.batches.split(",")]:
            for concurrency in [int(c) for c in args.concurrency.split(",")]:
                say(f"server, {concurrency} in flight, {batch} per request...")
                summary = run_bulk(
                    members,
                    base / f"report-{concurrency}-{batch}.csv",
                    ServerChecker(server.url, key),
                    batch_size=batch,
                    concurrency=concurrency,
                    progress=False,
                    html=False,
                )
                runs.append(
                    {
                        "mode": "server",
                        "concurrency": concurrency,
                        "batch": batch,
                        "photos": summary.checked,
                        "requests": summary.requests,
                        "seconds": summary.seconds,
                        "photos_per_second": summary.photos_per_second,
                    }
                )
    finally:
        server.stop()
    if args.local:
        say("local, no server...")
        started = time.perf_counter()
        local = LocalChecker(index)
        summary = run_bulk(members, base / "report-local.csv", local, concurrency=1, progress=False, html=False)
        runs.append(
            {
                "mode": "local",
                "concurrency": 1,
                "batch": 10,
                "photos": summary.checked,
                "requests": 0,
                "seconds": summary.seconds,
                "photos_per_second": summary.photos_per_second,
                "seconds_with_loading": time.perf_counter() - started,
            }
        )
    return {"facts": machine_facts(workers=args.workers), "runs": runs}


def report(result: dict[str, Any]) -> None:
    print_facts(result["facts"])
    base = next((r["photos_per_second"] for r in result["runs"] if r["mode"] == "server"), None)
    rows = [
        [
            r["mode"],
            r["concurrency"],
            r["batch"],
            r["photos"],
            r["requests"],
            r["seconds"],
            r["photos_per_second"],
            r["photos_per_second"] / base if base else None,
        ]
        for r in result["runs"]
    ]
    print()
    print(
        table(
            ["mode", "in flight", "batch", "photos", "requests", "s", "photos/s", "vs 1"],
            rows,
            [0, 0, 0, 0, 0, 1, 2, 2],
        )
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="photocheck-bench-") as tmp:
        result = run(args, Path(tmp))
    emit(result, args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
