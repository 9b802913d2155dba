"""Sustained load: 4 clients for 10 minutes against `photocheck serve --workers 2`, minute by minute.

What it measures: the shipped server (gunicorn with service/gunicorn_conf.py, as `photocheck serve`
runs it, metrics on) over an index built from ../shared/faces/people. Four client threads each send
checks of the real photos in ../shared/faces (people, groups, edge cases, one after another, in a
loop, each with its own session) for ``--minutes`` minutes; every 2 s a sampler reads the RSS of the
master and of each worker from /proc. Per minute it prints the throughput, p50/p95/p99 latency,
errors (anything but the expected answer: 200, or 422 for the edge photos with no usable face) and
each process's RSS (the median of that minute's samples). Then the verdicts the issue asks for: 0 errors, RSS
flat (each process's last-minute RSS within 5% of its second-minute RSS; the first minute is
warm-up), p95 stable (the last minute's within 25% of the median minute's).

Run (from the project root; ``--minutes`` minutes plus the start):

    .venv/bin/python bench/sustained_load.py
    .venv/bin/python bench/sustained_load.py --minutes 2 --json
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests
from _common import FACES, machine_facts, print_facts, print_json, say, table
from _serving import Server, rss_mb
from service_latency import build_index

CLIENTS = 4
SAMPLE_EVERY = 2.0


def photos() -> list[tuple[str, bytes]]:
    found = sorted(p for p in FACES.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [(p.name, p.read_bytes()) for p in found]


def run(args: argparse.Namespace, work: Path) -> dict:
    index = args.index
    if index is None:
        say("building an index of ../shared/faces/people...")
        index = work / "index"
        build_index(index, FACES / "people", "dlib")
    sent = photos()
    records: list[tuple[float, float, int]] = []  # (start offset, seconds, status)
    samples: list[tuple[float, dict[int, float]]] = []
    lock = threading.Lock()
    with Server(index, work / "server.log", workers=2, env={"PHOTOCHECK_METRICS": "1"}) as server:
        server.wait_ready()
        say(f"serving; {CLIENTS} clients for {args.minutes} minutes")
        begin = time.monotonic()
        end = begin + args.minutes * 60
        stop = threading.Event()

        def client(number: int) -> None:
            session = requests.Session()
            position = number * len(sent) // CLIENTS
            while time.monotonic() < end:
                name, data = sent[position % len(sent)]
                position += 1
                started = time.monotonic()
                try:
                    response = session.post(f"{server.url}/api/v1/check", files={"image": (name, data)}, timeout=120)
                    status = response.status_code
                except requests.RequestException:
                    status = 0
                with lock:
                    records.append((started - begin, time.monotonic() - started, status))

        def sampler() -> None:
            while not stop.is_set():
                pids = [server.process.pid, *server.worker_pids()]
                samples.append((time.monotonic() - begin, {pid: rss_mb(pid) or 0.0 for pid in pids}))
                stop.wait(SAMPLE_EVERY)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        watcher = threading.Thread(target=sampler, daemon=True)
        watcher.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stop.set()
        watcher.join()
        restarts = server.output().count("Booting worker") - 2
        master = server.process.pid
    minutes = []
    for minute in range(args.minutes):
        done = [(s, st) for t, s, st in records if minute * 60 <= t < (minute + 1) * 60]
        latencies = np.array([s for s, _ in done]) * 1000 if done else np.array([np.nan])
        errors = sum(1 for _, st in done if st not in (200, 422))
        in_minute = [rss for t, rss in samples if minute * 60 <= t < (minute + 1) * 60]
        pids_seen = sorted({pid for rss in in_minute for pid in rss})
        # The median of the minute's samples: one sample catches whichever photo is being decoded.
        median_rss = {pid: statistics.median(r[pid] for r in in_minute if pid in r) for pid in pids_seen}
        minutes.append(
            {
                "minute": minute + 1,
                "requests": len(done),
                "per_s": len(done) / 60,
                "p50_ms": float(np.percentile(latencies, 50)),
                "p95_ms": float(np.percentile(latencies, 95)),
                "p99_ms": float(np.percentile(latencies, 99)),
                "errors": errors,
                "rss_mb": median_rss,
            }
        )
    pids = sorted({pid for m in minutes for pid in m["rss_mb"]}, key=lambda p: (p != master, p))
    second, last = minutes[min(1, len(minutes) - 1)]["rss_mb"], minutes[-1]["rss_mb"]
    growth = {pid: (last.get(pid, 0) - second.get(pid, 0)) / second[pid] for pid in pids if second.get(pid)}
    p95s = [m["p95_ms"] for m in minutes[1:]] or [minutes[0]["p95_ms"]]
    return {
        "machine": machine_facts(),
        "minutes": minutes,
        "processes": [{"pid": pid, "role": "master" if pid == master else "worker"} for pid in pids],
        "errors": sum(m["errors"] for m in minutes),
        "worker_restarts": restarts,
        "rss_growth_last_vs_second": growth,
        "rss_flat": all(abs(g) <= 0.05 for g in growth.values()),
        "p95_last_vs_median": minutes[-1]["p95_ms"] / statistics.median(p95s),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="serve this index (default: build one from ../shared/faces)")
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="photocheck-load-") as tmp:
        result = run(args, Path(tmp))
    result["machine"]["load_average_1m_after"] = machine_facts()["load_average_1m"]
    if args.json:
        print_json(result)
        return
    print_facts(result["machine"])
    pids = [p["pid"] for p in result["processes"]]
    roles = [f"RSS MB {p['role']} {p['pid']}" for p in result["processes"]]
    rows = [
        [m["minute"], m["requests"], m["per_s"], m["p50_ms"], m["p95_ms"], m["p99_ms"], m["errors"]]
        + [m["rss_mb"].get(pid) for pid in pids]
        for m in result["minutes"]
    ]
    print(f"\n{CLIENTS} clients, `photocheck serve --workers 2`")
    headers = ["minute", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", *roles]
    print(table(headers, rows, digits=[0, 0, 2, 0, 0, 0, 0, *([1] * len(pids))]))
    growth = ", ".join(f"{pid}: {g:+.1%}" for pid, g in result["rss_growth_last_vs_second"].items())
    print(f"\nerrors: {result['errors']}; worker restarts: {result['worker_restarts']}")
    print(f"RSS last minute vs second: {growth} ({'flat' if result['rss_flat'] else 'NOT flat'}, bound 5%)")
    print(f"p95 last minute / median minute: {result['p95_last_vs_median']:.2f}")


if __name__ == "__main__":
    main()
