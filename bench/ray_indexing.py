"""Indexing throughput on Ray against the local pipeline, on the same machine, in one run.

What it measures: ``indexer.pipeline.build_dataset`` over the same N LFW photos (the first N, people
sorted by name, read through a folder of symlinks), each build into a fresh index:

- locally, with 1 and 2 worker processes (the baseline);
- through Ray (``ray_address``), with 1 and 2 Ray Data actors, on a cluster of this machine started
  once by the script before the builds (``ray.init(address="local")``), or on the cluster you name
  with --ray-address.

Images/s is over the whole build as a user sees it: for Ray that includes starting the actors
(each loads its own embedder) and streaming the records back to this process, which writes the
index; it leaves out starting the cluster, which a cluster's users pay once (printed separately).
The ratio column compares each row with the local 1-worker build of the same run, since the
machine's load changes the absolute figures.

Run (from the project root):

    .venv/bin/python bench/ray_indexing.py                     # 200 photos
    .venv/bin/python bench/ray_indexing.py --photos 1000 --workers 1,2,4
    .venv/bin/python bench/ray_indexing.py --ray-address 10.0.0.5:6379 --workers 8,16
    .venv/bin/python bench/ray_indexing.py --json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import LFW, machine_facts, print_facts, print_json, say, table


def link_source(count: int, into: Path) -> Path:
    photos = sorted(LFW.glob("*/*.jpg"))[:count]
    if len(photos) < count:
        raise SystemExit(f"only {len(photos)} LFW photos in {LFW}")
    for photo in photos:
        target = into / photo.parent.name / photo.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(photo.resolve())
    for photo in photos:
        photo.read_bytes()  # a warm page cache for every build, the first included
    return into


def build(source: Path, index: Path, *, workers: int, ray_address: str | None) -> dict[str, Any]:
    from indexer.pipeline import build_dataset

    started = time.perf_counter()
    summary = build_dataset(
        index,
        source,
        dataset="lfw-bench",
        embedder_name="dlib",
        # As `photocheck index add` does: one thread per process when several share the machine.
        embedder_options={"threads": 0 if workers == 1 and ray_address is None else 1},
        workers=workers,
        ray_address=ray_address,
        progress=False,
    )
    wall = time.perf_counter() - started
    return {
        "pipeline": "ray" if ray_address else "local",
        "workers": workers,
        "images": summary.images,
        "faces": summary.faces,
        "seconds": wall,
        "images_per_s": summary.images / wall,
        "faces_per_s": summary.faces / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=200, help="LFW photos per build (default 200)")
    parser.add_argument("--workers", default="1,2", help="worker / actor counts, comma-separated (default 1,2)")
    parser.add_argument("--ray-address", help="an existing cluster (host:6379); default: one of this machine")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args()
    workers_list = [int(w) for w in args.workers.split(",")]

    import ray

    from indexer.distributed import connect

    with tempfile.TemporaryDirectory(prefix="ray-bench-") as tmp:
        work = Path(tmp)
        source = link_source(args.photos, work / "source")
        rows = []
        for workers in workers_list:
            say(f"local build, {workers} worker(s)...", quiet=args.json)
            rows.append(build(source, work / f"local-{workers}", workers=workers, ray_address=None))
        say("starting Ray...", quiet=args.json)
        started = time.perf_counter()
        if args.ray_address:
            connect(ray, args.ray_address)
        else:
            ray.init(address="local", include_dashboard=False, logging_level="WARNING")
        ray_start_s = time.perf_counter() - started
        cluster_cpus = ray.cluster_resources().get("CPU")
        try:
            for workers in workers_list:
                say(f"Ray build, {workers} actor(s)...", quiet=args.json)
                # build_dataset finds Ray connected and uses (and keeps) this connection.
                rows.append(build(source, work / f"ray-{workers}", workers=workers, ray_address="auto"))
        finally:
            ray.shutdown()
    baseline = rows[0]["images_per_s"]
    for row in rows:
        row["ratio"] = row["images_per_s"] / baseline
    facts = machine_facts(
        ray=ray.__version__,
        ray_cluster=args.ray_address or "local, started by this script",
        ray_cluster_cpus=cluster_cpus,
        ray_start_s=round(ray_start_s, 1),
    )
    if args.json:
        print_json({"machine": facts, "photos": args.photos, "builds": rows})
        return
    print_facts(facts)
    print(f"\nindexing {args.photos} LFW photos (dlib), each build into a fresh index:")
    keys = ["pipeline", "workers", "images", "faces", "seconds", "images_per_s", "faces_per_s", "ratio"]
    print(
        table(
            ["pipeline", "workers", "images", "faces", "seconds", "images/s", "faces/s", "vs local 1"],
            [[row[key] for key in keys] for row in rows],
            digits=[0, 0, 0, 0, 1, 1, 1, 2],
        )
    )


if __name__ == "__main__":
    sys.exit(main())
