"""Which gunicorn worker model keeps answering while clients upload slowly: measured, side by side.

What it measures, for each worker model in turn (same index, same photos, 2 workers each):

1. ``quiet``: the latency of ordinary checks one after another, nobody else connected;
2. ``with slow``: 16 slow uploads open (headers sent, then one byte of body every 5 s, as in the
   issue), then ordinary checks one after another, each given 30 s (the first that gets no answer
   ends the series: the rest would wait the same);
3. what became of the slow uploads: how many the server answered and closed within 75 s, with
   which status, after how long;
4. ``4 clients``: throughput and p50 with 4 concurrent ordinary clients and no slow ones (does the
   model cost anything when nobody is slow?);
5. the workers' RSS after all that.

Models: ``sync`` (what `photocheck serve` ran before), ``gthread`` (gunicorn's own threaded worker,
32 threads), ``gevent`` (gunicorn's asynchronous worker, when gevent is installed: it is not a
photocheck dependency, ``pip install gevent`` to include it) and ``photocheck`` (the shipped
configuration: service/worker.py, gthread with a deadline for receiving each request). All run the
same application, which runs one check at a time per process.

The index is built from ../shared/faces/people (dlib), as bench/service_latency.py does, unless
--index names one. Run (from the project root; several minutes):

    .venv/bin/python bench/slow_clients.py
    .venv/bin/python bench/slow_clients.py --models sync,photocheck --slow 16 --json
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path

import requests
from _common import FACES, machine_facts, print_facts, print_json, say, table
from _serving import Server, SlowUploads, rss_mb
from service_latency import build_index, load_photos, run_clients

MODELS = {
    "sync": ["--worker-class", "sync", "--threads", "1"],  # with threads > 1 gunicorn would run gthread
    "gthread": ["--worker-class", "gthread", "--threads", "32"],
    "gevent": ["--worker-class", "gevent", "--worker-connections", "1000"],
    "photocheck": [],  # service/gunicorn_conf.py as shipped
}
ORDINARY_TIMEOUT = 30.0


def ordinary_checks(url: str, photo: tuple[str, bytes], count: int) -> list[float | None]:
    """Latencies of ``count`` checks one after another; None for one that got no 200 in time."""
    seconds: list[float | None] = []
    with requests.Session() as session:
        for _ in range(count):
            began = time.monotonic()
            try:
                ok = session.post(f"{url}/api/v1/check", files={"image": photo}, timeout=ORDINARY_TIMEOUT).ok
            except requests.RequestException:
                ok = False
            seconds.append(time.monotonic() - began if ok else None)
            if not ok:
                break
    return seconds


def measure(model: str, index: Path, photos: list[tuple[str, bytes]], args: argparse.Namespace, work: Path):
    photo = photos[0]
    with Server(index, work / f"{model}.log", workers=2, gunicorn_args=MODELS[model]) as server:
        server.wait_ready()
        for _ in range(4):  # warm both workers
            ordinary_checks(server.url, photo, 1)
        quiet = ordinary_checks(server.url, photo, args.checks)
        say(f"{model}: quiet p50 {statistics.median([s for s in quiet if s]):.2f}s; opening {args.slow} slow uploads")
        slow = SlowUploads(server.port, args.slow, interval=5.0, limit=args.slow_limit)
        time.sleep(2)
        loaded = ordinary_checks(server.url, photo, args.checks)
        slow.wait_closed(max(0.0, args.slow_limit - (time.monotonic() - slow.uploads[0].opened)))
        closed = [u.closed_after for u in slow.uploads if u.closed_after is not None]
        statuses = sorted(set(slow.statuses()) - {""})
        slow.close()
        say(f"{model}: with slow {loaded}; {len(closed)} slow uploads closed; {statuses}")
        busy = run_clients(server.url, photos, 4, args.requests)
        rss = [rss_mb(pid) for pid in server.worker_pids()]
        restarts = server.output().count("Booting worker") - 2
    answered = [s for s in loaded if s is not None]
    return {
        "model": model,
        "quiet_p50_s": statistics.median([s for s in quiet if s is not None]),
        "with_slow_answered": f"{len(answered)}/{len(loaded)}",
        "with_slow_max_s": max(answered) if answered else None,
        "slow_closed": len(closed),
        "slow_closed_median_s": statistics.median(closed) if closed else None,
        "slow_statuses": statuses,
        "busy_requests_per_s": busy["requests_per_s"],
        "busy_p50_s": busy["p50_ms"] / 1000,
        "busy_errors": busy["errors"],
        "worker_rss_mb": [round(r, 1) for r in rss if r is not None],
        "worker_restarts": restarts,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="serve this index (default: build one from ../shared/faces)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated, from " + ", ".join(MODELS))
    parser.add_argument("--slow", type=int, default=16, help="slow uploads to open (default 16)")
    parser.add_argument("--slow-limit", type=float, default=75.0, help="seconds to watch the slow uploads")
    parser.add_argument("--checks", type=int, default=5, help="ordinary checks per series (default 5)")
    parser.add_argument("--requests", type=int, default=8, help="requests per busy client (default 8)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = set(args.models) - set(MODELS)
    if unknown:
        parser.error(f"unknown models: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if "gevent" in args.models and importlib.util.find_spec("gevent") is None:
        say("gevent is not installed: leaving the gevent worker out (pip install gevent to include it)")
        args.models.remove("gevent")
    facts = machine_facts()
    photos = load_photos(FACES / "people")
    with tempfile.TemporaryDirectory(prefix="photocheck-slow-") as tmp:
        work = Path(tmp)
        index = args.index
        if index is None:
            say("building an index of ../shared/faces/people...")
            index = work / "index"
            build_index(index, FACES / "people", "dlib")
        rows = [measure(model, index, photos, args, work) for model in args.models]
    facts["load_average_1m_after"] = machine_facts()["load_average_1m"]
    if args.json:
        print_json({"machine": facts, "slow_uploads": args.slow, "results": rows})
        return
    print_facts(facts)
    print(f"\n{args.slow} slow uploads (headers, then 1 byte every 5 s); ordinary checks get {ORDINARY_TIMEOUT:.0f}s")
    headers = ["model", "quiet p50 s", "answered w/ slow", "max s w/ slow", "slow closed", "closed after s"]
    headers += ["slow answers", "4 clients req/s", "p50 s", "errors", "worker RSS MB", "restarts"]
    print(
        table(
            headers,
            [
                [
                    r["model"],
                    r["quiet_p50_s"],
                    r["with_slow_answered"],
                    r["with_slow_max_s"],
                    r["slow_closed"],
                    r["slow_closed_median_s"],
                    ", ".join(r["slow_statuses"]) or "-",
                    r["busy_requests_per_s"],
                    r["busy_p50_s"],
                    r["busy_errors"],
                    " ".join(f"{v:.0f}" for v in r["worker_rss_mb"]),
                    r["worker_restarts"],
                ]
                for r in rows
            ],
            digits=[0, 2, 0, 2, 0, 1, 0, 2, 2, 0, 0, 0],
        )
    )


if __name__ == "__main__":
    main()
