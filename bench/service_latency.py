"""Latency of ``POST /api/v1/check`` through a real gunicorn, with 1, 2 and 4 concurrent clients.

What it measures: ``photocheck serve --index DIR --workers W`` runs on a free localhost port; after
a warm-up, each of C client threads (one ``requests.Session`` each) sends R multipart uploads of
the real photos in ../shared/faces/people, one after another, and every request's wall time is
recorded. Per concurrency C it reports the requests, their throughput (req/s over the whole run)
and the p50, p95 and max latency. Then, with the server stopped, it checks the same photos
in-process with ``Checker.check(..., timer=Timer())`` to show where a check's time goes (decode,
detect, embed, search): the service itself logs no timings, and the difference between the
in-process time and the HTTP p50 at one client is what HTTP, multipart parsing and gunicorn add.

The index it serves is built first from ../shared/faces/people with the dlib embedder (13 faces of
5 people), unless --index names one; the photos sent are the indexed ones, so every answer is a
match. With such a small index, search is a negligible share: see bench/index_types.py for search
at a million faces.

Machine facts that matter: the core count (``os.cpu_count()``) and the embedder. Each gunicorn
worker is a process that answers one request at a time, and a check runs on one core; so with W
workers on at least W idle cores, throughput grows up to W clients and latency grows beyond
that (requests wait in the listen queue). The clients themselves use a little CPU too. Run it on an
otherwise idle machine; the load average printed with the figures says how idle it was.

Run (from the project root):

    .venv/bin/python bench/service_latency.py                  # W=2, clients 1,2,4, 30 requests each
    .venv/bin/python bench/service_latency.py --workers 4 --clients 1,2,4,8
    .venv/bin/python bench/service_latency.py --index ./index  # serve an existing index
    .venv/bin/python bench/service_latency.py --quick          # a smoke run: 3 requests per client
    .venv/bin/python bench/service_latency.py --json
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
from _common import FACES, emit, latency_summary, machine_facts, print_facts, say, table

STAGES = ("decode", "detect", "embed", "search")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`photocheck serve` in a subprocess, its output in a log file."""

    def __init__(self, index: Path, workers: int, log: Path, env: dict[str, str] | None = None) -> None:
        self.index = index
        self.workers = workers
        self.log = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            # Every benchmark client comes from 127.0.0.1: the per-address limit (60/minute by default)
            # would answer most requests with 429.
            "PHOTOCHECK_RATE_LIMIT": "1000000/minute",
            **(env or {}),
        }
        command = [sys.executable, "-m", "indexer.cli", "serve", "--index", str(index.resolve())]
        command += ["--port", str(self.port), "--workers", str(workers)]
        with open(log, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd="/")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.output()[-3000:]}")
            try:
                if requests.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the server at {self.url} was not ready in {timeout:.0f}s:\n{self.output()[-3000:]}")
        # /readyz answers as soon as one worker is up; a worker still loading would make the first
        # runs look like fewer workers. Each worker logs "serving <index>: ..." when it has loaded.
        marker = f"serving {self.index.resolve()}: "
        while time.monotonic() < deadline:
            if self.output().count(marker) >= self.workers:
                return
            time.sleep(0.2)
        say(f"warning: could not see all {self.workers} workers report ready in the server log; going on")

    def stop(self) -> int:
        """SIGTERM, as an operator would: gunicorn lets the workers finish their requests."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                say("warning: the server did not stop in 30s after SIGTERM; killing it")
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def load_photos(folder: Path) -> list[tuple[str, bytes]]:
    photos = sorted(p for p in folder.glob("*/*") if p.is_file())
    if not photos:
        raise SystemExit(f"no photos in {folder}/<person>/")
    # In memory before timing: reading files is no part of a request's latency.
    return [(p.name, p.read_bytes()) for p in photos]


def run_clients(
    url: str, photos: list[tuple[str, bytes]], clients: int, per_client: int, *, keep_latencies: bool = False
) -> dict[str, Any]:
    """``clients`` threads, each sending ``per_client`` uploads back to back; all start together."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures: list[list[str]] = [[] for _ in range(clients)]
    start = threading.Barrier(clients + 1)

    def client(number: int) -> None:
        with requests.Session() as session:
            # Spread the clients over the photos, so that they do not all send the big ones at once.
            offset = number * len(photos) // clients
            start.wait()
            for i in range(per_client):
                name, data = photos[(offset + i) % len(photos)]
                began = time.perf_counter()
                try:
                    response = session.post(f"{url}/api/v1/check", files={"image": (name, data)}, timeout=300)
                    status = response.status_code
                    body = response.text if status != 200 else ""
                except requests.RequestException as exc:
                    status, body = 0, f"{type(exc).__name__}: {exc}"
                latencies[number].append(time.perf_counter() - began)
                if status != 200:
                    failures[number].append(f"{name}: HTTP {status} {body[:200]}")

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    every = [s for per in latencies for s in per]
    errors = [f for per in failures for f in per]
    return {
        "clients": clients,
        "requests": len(every),
        "errors": len(errors),
        "first_errors": errors[:3],
        "seconds": wall,
        "requests_per_s": len(every) / wall,
        **latency_summary(every),
        **({"latencies": every} if keep_latencies else {}),
    }


def stage_shares(index: Path, photos: list[tuple[str, bytes]], rounds: int) -> dict[str, Any]:
    """Where a check's time goes, measured in this process with the service's own Checker."""
    from indexer.check import Checker, LoadedIndex, Timer, embedder_for_index

    loaded = LoadedIndex(index)
    checker = Checker(loaded, embedder_for_index(loaded))
    checker.warm_up()
    timer = Timer()
    seconds = []
    errors = 0
    for _ in range(rounds):
        for _name, data in photos:
            began = time.perf_counter()
            errors += checker.check(data, timer=timer)["error"] is not None
            seconds.append(time.perf_counter() - began)
    total = sum(seconds)
    stages = []
    for name in (*STAGES, "other"):
        spent = timer.seconds.get(name, 0.0) if name != "other" else total - sum(timer.seconds.values())
        stages.append({"stage": name, "seconds": spent, "mean_ms": 1000 * spent / len(seconds), "share": spent / total})
    return {
        "index": loaded.describe(),
        "checks": len(seconds),
        "errors": errors,
        **latency_summary(seconds),
        "stages": stages,
    }


def build_index(into: Path, photos: Path, embedder: str) -> dict[str, Any]:
    from indexer.pipeline import build_dataset

    summary = build_dataset(into, photos, dataset="faces-bench", embedder_name=embedder, progress=False)
    return {"images": summary.images, "faces": summary.faces, "seconds": summary.seconds}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="serve this index (default: build one from --photos)")
    parser.add_argument("--photos", type=Path, default=FACES / "people", help="<person>/<photo> folder to send")
    parser.add_argument("--embedder", choices=["dlib", "insightface"], default="dlib", help="for the built index")
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn workers (default 2, as `photocheck serve`; try the cores)"
    )
    parser.add_argument("--clients", default="1,2,4", help="concurrent clients to try, comma-separated (default 1,2,4)")
    parser.add_argument("--requests", type=int, default=30, help="requests per client per run (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="requests per worker before timing (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="in-process passes over the photos (default 3)")
    parser.add_argument("--ready-timeout", type=float, default=180, help="seconds to wait for the server")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 requests per client, 1 warm-up, 1 round")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.warmup, args.rounds = 3, 1, 1
    try:
        args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    except ValueError:
        parser.error("--clients takes integers separated by commas, e.g. 1,2,4")
    if not args.clients or min(args.clients) < 1 or args.workers < 1 or args.requests < 1 or args.rounds < 1:
        parser.error("--clients, --workers, --requests and --rounds must be at least 1")
    return args


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    quiet = args.json
    photos = load_photos(args.photos)
    built = None
    index = args.index
    if index is None:
        say(f"building an index of {args.photos}...", quiet=quiet)
        index = work / "index"
        built = build_index(index, args.photos, args.embedder)
    say(f"starting photocheck serve with {args.workers} workers...", quiet=quiet)
    server = Server(index, args.workers, work / "server.log")
    runs = []
    try:
        server.wait_ready(args.ready_timeout)
        # As many clients as workers, so that every worker has answered a few real requests before timing.
        warm = run_clients(server.url, photos, max(args.workers, 1), args.warmup)
        if warm["errors"]:
            raise RuntimeError(f"warm-up requests failed: {warm['first_errors']}")
        for clients in args.clients:
            say(f"{clients} client{'s' if clients > 1 else ''} x {args.requests} requests...", quiet=quiet)
            runs.append(run_clients(server.url, photos, clients, args.requests))
    finally:
        code = server.stop()
    say("timing the stages in-process...", quiet=quiet)
    # With the server stopped, so that it does not compete for the cores.
    shares = stage_shares(index, photos, args.rounds)
    return {
        "machine": machine_facts(embedder=shares["index"]["embedder"], model=shares["index"]["model"]),
        "settings": {
            "workers": args.workers,
            "clients": args.clients,
            "requests_per_client": args.requests,
            "warmup_per_worker": args.warmup,
            "photos": len(photos),
            "photo_folder": str(args.photos),
            "index": str(args.index) if args.index else "built from the photos",
            "built": built,
            "quick": args.quick,
        },
        "http": runs,
        "in_process": shares,
        "server_exit_code": code,
    }


def report(result: dict[str, Any]) -> None:
    print_facts(result["machine"])
    settings = result["settings"]
    index = result["in_process"]["index"]
    print(
        f"\nPOST /api/v1/check through gunicorn with {settings['workers']} workers, "
        f"index of {index['faces']} faces; {settings['photos']} photos sent in turn, "
        f"{settings['requests_per_client']} requests per client:"
    )
    print(
        table(
            ["clients", "requests", "errors", "seconds", "req/s", "p50 ms", "p95 ms", "max ms", "mean ms"],
            [
                [
                    r["clients"],
                    r["requests"],
                    r["errors"],
                    r["seconds"],
                    r["requests_per_s"],
                    r["p50_ms"],
                    r["p95_ms"],
                    r["max_ms"],
                    r["mean_ms"],
                ]
                for r in result["http"]
            ],
            digits=[0, 0, 0, 1, 2, 1, 1, 1, 1],
        )
    )
    for r in result["http"]:
        for error in r["first_errors"]:
            print(f"  {r['clients']} clients: {error}")
    shares = result["in_process"]
    print(
        f"\nthe same photos checked in-process, one at a time ({shares['checks']} checks): "
        f"p50 {shares['p50_ms']:.1f} ms, p95 {shares['p95_ms']:.1f} ms, mean {shares['mean_ms']:.1f} ms"
    )
    print(
        table(
            ["stage", "mean ms", "share %"],
            [[s["stage"], s["mean_ms"], 100 * s["share"]] for s in shares["stages"]],
            digits=[0, 1, 1],
        )
    )
    single = next((r for r in result["http"] if r["clients"] == 1), None)
    if single:
        print(
            f"\nHTTP, multipart and gunicorn add about {single['p50_ms'] - shares['p50_ms']:.1f} ms "
            "at one client (HTTP p50 - in-process p50)."
        )
    print(f"server stopped with SIGTERM, exit code {result['server_exit_code']}")
    print(
        "\nnotes: each worker answers one request at a time on one core (dlib); beyond W clients requests"
        "\nqueue, so latency grows while throughput stays near W / (time per check). 'other' is the"
        "\nconfidence and the answer."
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="photocheck-bench-") as tmp:
        result = run(args, Path(tmp))
    emit(result, args.json, report)
    failed = sum(r["errors"] for r in result["http"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
