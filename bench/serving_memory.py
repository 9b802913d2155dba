"""How much memory `photocheck serve` takes for a large index, with one worker and with two.

The index files are memory-mapped read-only (``indexer.store.read_faiss_index``, ``vectors.py``):
the workers of one service should share one copy of their pages, so that two workers take little
more than one. For each worker count this starts the service (the command the Dockerfile runs:
gunicorn with the shipped configuration), waits until every worker has loaded the index and its
embedder, sends the same queries to ``POST /api/v1/check-embedding`` (embeddings near faces of the
index, and others, so that searches read the index as checks of photos would, without spending a
second per photo on dlib), and reads every process's memory from /proc/<pid>/smaps_rollup:

* RSS: the pages a process has resident, shared ones counted in full in every process;
* PSS: shared pages divided among the processes mapping them; PSS adds up across processes, so
  the sum over master and workers is the service's memory;
* anonymous: a process's own memory (Python, the dlib model, FAISS's coarse quantiser copy...);
  the rest is file-backed: the index files, the libraries.

Make a large index with ``bench/index_types.py --faces 10000000 --keep`` (it prints its path), then:

    .venv/bin/python bench/serving_memory.py --index /tmp/photocheck-index-types-XXXX/index
    .venv/bin/python bench/serving_memory.py --index DIR --workers 1,2,4 --queries 2000 --json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import requests
from _common import emit, machine_facts, memory_of, print_facts, say, table
from _serving import Server


def make_queries(index: Path, count: int, seed: int) -> np.ndarray:
    """Half near stored faces (a face plus noise: someone in the set), half near no face in
    particular (a mix of two faces: someone else); L2-normalised, as the browser sends them."""
    from indexer.store import IndexStore

    store = IndexStore(index, readonly=True)
    try:
        info = max(store.datasets(), key=lambda d: d.faces)
        _, vectors = store.vectors(info.id)
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(vectors), size=2 * count, replace=False))
        faces = np.asarray(vectors[rows], dtype=np.float32)
    finally:
        store.close()
    faces = faces[rng.permutation(len(faces))]
    near = faces[:count] + 0.05 * rng.standard_normal((count, faces.shape[1])).astype(np.float32)
    mixed = faces[:count] + faces[count:]
    queries = np.vstack([near[: count - count // 2], mixed[: count // 2]])
    return queries / np.linalg.norm(queries, axis=1, keepdims=True)


def ask(url: str, session: requests.Session, vector: np.ndarray) -> float:
    body = {"embedding": [float(x) for x in vector], "face": {"size": 200, "sharpness": 800}}
    began = time.perf_counter()
    response = session.post(f"{url}/api/v1/check-embedding", json=body, timeout=120)
    response.raise_for_status()
    return time.perf_counter() - began


def measure(index: Path, workers: int, queries: np.ndarray, clients: int, log_dir: Path) -> dict[str, Any]:
    began = time.perf_counter()
    with Server(index, log_dir / f"serve-{workers}.log", workers=workers) as server:
        server.wait_ready(timeout=600)
        ready_s = time.perf_counter() - began
        pids = server.worker_pids()
        at_start = {pid: memory_of(pid) for pid in pids}
        sessions = [requests.Session() for _ in range(clients)]
        began = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            seconds = list(
                pool.map(lambda item: ask(server.url, sessions[item[0] % clients], item[1]), enumerate(queries))
            )
        answered_s = time.perf_counter() - began
        master = memory_of(server.process.pid)
        after = {pid: memory_of(pid) for pid in server.worker_pids()}
        if sorted(after) != sorted(pids):
            raise RuntimeError("a worker restarted during the run")
        log = server.output()
    total = {key: master[key] + sum(m[key] for m in after.values()) for key in master}
    return {
        "workers": workers,
        "ready_s": ready_s,
        "queries": len(queries),
        "requests_per_s": len(queries) / answered_s,
        "p50_ms": float(np.percentile(seconds, 50) * 1000),
        "master": master,
        "workers_at_start": list(at_start.values()),
        "workers_after": list(after.values()),
        "total": total,
        "serving_line": next((line for line in log.splitlines() if "] serving " in line), None),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="an index directory (e.g. index_types.py --keep)")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, e.g. 1,2")
    parser.add_argument("--queries", type=int, default=1000, help="check-embedding requests per run")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    queries = make_queries(args.index, args.queries, args.seed)
    runs = []
    with tempfile.TemporaryDirectory(prefix="photocheck-serving-memory-") as logs:
        for workers in counts:
            say(f"serving {args.index} with {workers} worker(s)...", quiet=args.json)
            runs.append(measure(args.index.resolve(), workers, queries, args.clients, Path(logs)))
    result = {
        "machine": machine_facts(),
        "index": str(args.index),
        "settings": {"queries": args.queries, "clients": args.clients},
        "runs": runs,
    }
    emit(result, args.json, report)
    return 0


def report(result: dict) -> None:
    runs, settings = result["runs"], result["settings"]
    print_facts(result["machine"])
    print(f"\n{runs[0]['serving_line']}")
    print(f"{settings['queries']} check-embedding requests from {settings['clients']} clients per run; memory in MiB\n")
    fields = ("rss_mb", "pss_mb", "anonymous_mb", "pss_file_mb")  # memory_of also gives pss_anon_mb

    def cells(memory: dict) -> list:
        return [memory[f] for f in fields]

    rows = []
    for run in runs:
        rows.append([run["workers"], "master", *cells(run["master"])])
        for number, memory in enumerate(run["workers_at_start"], 1):
            rows.append([run["workers"], f"worker {number}, started", *cells(memory)])
        for number, memory in enumerate(run["workers_after"], 1):
            rows.append([run["workers"], f"worker {number}, after", *cells(memory)])
        rows.append([run["workers"], "total", *cells(run["total"])])
    print(table(["workers", "process", "RSS", "PSS", "anonymous", "PSS file-backed"], rows, digits=[0, 0, 0, 0, 0, 0]))
    print()
    print(
        table(
            ["workers", "ready s", "req/s", "p50 ms", "total PSS", "x one worker", "total RSS"],
            [
                [
                    r["workers"],
                    r["ready_s"],
                    r["requests_per_s"],
                    r["p50_ms"],
                    r["total"]["pss_mb"],
                    r["total"]["pss_mb"] / runs[0]["total"]["pss_mb"],
                    r["total"]["rss_mb"],
                ]
                for r in runs
            ],
            digits=[0, 1, 1, 1, 0, 2, 0],
        )
    )
    print(
        "\nready s: from starting gunicorn until every worker has loaded the index and the embedder and "
        "answers /readyz; 'started': then, 'after': after the requests.\nPSS adds up across processes "
        "(shared pages divided among them); RSS counts shared pages in every process."
    )


if __name__ == "__main__":
    sys.exit(main())
