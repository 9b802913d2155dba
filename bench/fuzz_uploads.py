"""Fuzzed uploads for longer than the suite: thousands of mutated real photos through real gunicorn.

What it does: serves an index of ../shared/faces/people with the shipped configuration (2 workers),
sends the hostile files of tests/upload_mutations.py (EXIF bomb, a GIF of 3000 frames, decompression
bombs just under and just over the pixel limit, 208 faces in one photo), then ``--inputs`` uploads
that hypothesis draws from the same strategies as tests/test_fuzz.py (truncations, bit flips,
insertions, overwrites, spliced headers, huge declared sizes of real JPEG, PNG, WebP, GIF, TIFF and
HEIC files), two at a time. It reports the inputs tried, the answers by status and error code, the
slowest inputs, any answer that was not a 2xx or a 4xx with a code, the workers that died, and the
workers' RSS at the end (and the highest seen, sampled every second).

Run (from the project root; several minutes):

    .venv/bin/python bench/fuzz_uploads.py                 # 2000 inputs, seed 0
    .venv/bin/python bench/fuzz_uploads.py --inputs 5000 --seed 7 --json
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from _common import FACES, ROOT, machine_facts, print_facts, print_json, say, table
from _serving import Server, rss_mb
from service_latency import build_index

sys.path.insert(0, str(ROOT / "tests"))  # the suite's own strategies, so that both fuzz the same way
from upload_mutations import FuzzUpload, hostile_uploads, mutated_uploads

BATCH = 16


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=2000, help="mutated uploads to send (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis import strategies as st

    results: list[tuple[str, int, str, float]] = []  # description, status, code, seconds
    peak: dict[int, float] = {}
    local = threading.local()
    with tempfile.TemporaryDirectory(prefix="photocheck-fuzz-") as tmp:
        work = Path(tmp)
        say("building an index of ../shared/faces/people...")
        build_index(work / "index", FACES / "people", "dlib")
        with Server(work / "index", work / "server.log", workers=2) as server:
            server.wait_ready()
            pids = server.worker_pids()
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    for pid in server.worker_pids():
                        peak[pid] = max(peak.get(pid, 0.0), rss_mb(pid) or 0.0)
                    stop.wait(1.0)

            threading.Thread(target=sample, daemon=True).start()

            def send(upload: FuzzUpload) -> None:
                session = getattr(local, "session", None) or requests.Session()
                local.session = session
                began = time.monotonic()
                try:
                    response = session.post(
                        f"{server.url}/api/v1/check",
                        files={"image": ("upload", upload.body, upload.content_type)},
                        timeout=300,
                    )
                    status = response.status_code
                    try:
                        body = response.json()
                        code = (body.get("error") or {}).get("code") or ""
                    except ValueError:
                        code = "(no JSON)"
                except requests.RequestException as exc:
                    status, code = 0, type(exc).__name__
                results.append((upload.description, status, code, time.monotonic() - began))

            say("hostile files...")
            for upload in hostile_uploads(50_000_000):
                send(upload)
            say(f"{args.inputs} mutated uploads, {BATCH} per hypothesis example, two at a time...")
            pool = ThreadPoolExecutor(2)

            @seed(args.seed)
            @settings(
                max_examples=max(1, args.inputs // BATCH),
                deadline=None,
                database=None,
                phases=(Phase.generate,),
                suppress_health_check=list(HealthCheck),
            )
            @given(st.lists(mutated_uploads(), min_size=BATCH, max_size=BATCH))
            def fuzz(uploads: list[FuzzUpload]) -> None:
                list(pool.map(send, uploads))

            started = time.monotonic()
            fuzz()
            seconds = time.monotonic() - started
            pool.shutdown()
            stop.set()
            died = sorted(set(pids) - set(server.worker_pids()))
            end_rss = {pid: rss_mb(pid) for pid in server.worker_pids()}
            restarts = server.output().count("Booting worker") - 2
    statuses = collections.Counter((status, code) for _, status, code, _ in results)
    bad = [r for r in results if not (200 <= r[1] < 300 or (400 <= r[1] < 500 and r[2] and r[2] != "(no JSON)"))]
    slowest = sorted(results, key=lambda r: -r[3])[:5]
    summary = {
        "machine": machine_facts(),
        "inputs": len(results),
        "seconds": seconds,
        "answers": [{"status": s, "code": c, "count": n} for (s, c), n in sorted(statuses.items())],
        "not_2xx_or_coded_4xx": [{"input": d, "status": s, "code": c} for d, s, c, _ in bad],
        "slowest": [{"input": d, "status": s, "code": c, "seconds": t} for d, s, c, t in slowest],
        "workers_died": died,
        "worker_restarts": restarts,
        "worker_rss_end_mb": end_rss,
        "worker_rss_peak_mb": peak,
    }
    if args.json:
        print_json(summary)
        return
    print_facts(summary["machine"])
    print(f"\n{summary['inputs']} inputs (5 hostile files, then mutations) in {seconds:.0f}s, seed {args.seed}")
    answers = [[a["status"], a["code"] or "-", a["count"]] for a in summary["answers"]]
    print(table(["status", "code", "answers"], answers))
    print("\nslowest:")
    print(table(["seconds", "status", "code", "input"], [[t, s, c or "-", d] for d, s, c, t in slowest], digits=2))
    print(f"\nanswers that were not a 2xx or a 4xx with a code: {len(bad)}")
    for d, s, c, _ in bad[:10]:
        print(f"  {s} {c}: {d}")
    print(f"workers died: {died or 'none'}; restarts: {restarts}")
    print("worker RSS at the end (MB): " + ", ".join(f"{pid}: {v:.0f}" for pid, v in end_rss.items() if v))
    print("worker RSS peak (MB): " + ", ".join(f"{pid}: {v:.0f}" for pid, v in peak.items()))


if __name__ == "__main__":
    main()
