"""Indexing throughput and `check` latency with the dlib embedder, on real LFW photos.

What it measures:

1. Indexing: ``indexer.pipeline.build_dataset`` over N LFW photos (the first N, people sorted by
   name), once per worker count, each into a fresh index. Reports images/s and faces/s over the
   whole build as a user sees it (embedder and worker start-up, SQLite commits and the FAISS build
   included), and how many cores the build kept busy (CPU seconds / wall seconds).
2. Check latency: ``Checker.check(bytes)`` on M photos that are not in the index (the five people
   of ../shared/faces/people, whose photos are phone-sized, and LFW people left out of the build,
   250x250), one at a time as the service does them. Reports mean/p50/p95/max ms per photo, and the
   share of each stage (decode, detect, embed, search) from ``indexer.check.Timer``.

The photos are never copied: the build reads a temporary folder of symlinks.

Machine facts that matter: the core count (``os.cpu_count()``) and the embedder. dlib's HOG
detector is single-threaded, and each build worker is a separate process with its own embedder,
so indexing scales with --workers up to the number of idle cores and not beyond. One check runs on
one core whatever the machine has. Run it on an otherwise idle machine; the load average printed
with the figures says how idle it was.

Run (from the project root):

    .venv/bin/python bench/indexing.py                 # 400 photos, workers 1 and 2, 50 checks
    .venv/bin/python bench/indexing.py --workers 1,2,4 --photos 2000
    .venv/bin/python bench/indexing.py --quick         # a smoke run: 32 photos, 10 checks
    .venv/bin/python bench/indexing.py --json          # the figures as JSON on stdout
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    FACES,
    LFW,
    cpu_seconds,
    emit,
    latency_summary,
    machine_facts,
    print_facts,
    say,
    table,
)

STAGES = ("decode", "detect", "embed", "search")


def lfw_people(root: Path) -> list[tuple[str, list[Path]]]:
    people = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(folder.glob("*.jpg"))
        if photos:
            people.append((folder.name, photos))
    return people


def choose_photos(
    lfw: Path, faces: Path, count: int, held_out: int
) -> tuple[list[Path], list[tuple[str, Path]], dict[str, Any]]:
    """The photos to index, and the held-out (group, photo) pairs to check.

    Held-out LFW photos come from the end of the sorted list of people and the indexed ones from
    its start, so that no held-out person is in the index: a check then costs what a check of a
    stranger costs, the common case.
    """
    people = lfw_people(lfw)
    selfies = sorted(p for p in (faces / "people").glob("*/*") if p.is_file())
    n_selfies = min(len(selfies), math.ceil(held_out / 2))
    checks: list[tuple[str, Path]] = [("selfies", p) for p in selfies[:n_selfies]]
    reserved = 0
    while len(checks) < held_out and people:
        _, photos = people.pop()
        reserved += 1
        for photo in photos:
            if len(checks) < held_out:
                checks.append(("lfw", photo))
    indexed = [photo for _, photos in people for photo in photos][:count]
    if len(indexed) < count:
        raise SystemExit(f"only {len(indexed)} LFW photos are left for the index after holding {held_out} out")
    names = sorted({p.parent.name for p in indexed})
    described = {"indexed_people": len(names), "first": names[0], "last": names[-1], "held_out_lfw_people": reserved}
    return indexed, checks, described


def link_source(photos: list[Path], into: Path) -> Path:
    for photo in photos:
        target = into / photo.parent.name / photo.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(photo.resolve())
    return into


def embedder_options(name: str, workers: int) -> dict[str, Any]:
    # As `photocheck index add` does: with several worker processes each onnxruntime session (insightface's,
    # or dlib's ResNet) gets one thread, so the workers do not fight over cores.
    return {"threads": 0 if workers == 1 else 1}


def bench_builds(source: Path, work: Path, workers_list: list[int], embedder: str, quiet: bool) -> list[dict]:
    from indexer.pipeline import build_dataset

    # Read every photo once, so that the first build does not pay for a cold page cache.
    for path in source.rglob("*.jpg"):
        path.read_bytes()
    rows = []
    for workers in workers_list:
        say(f"building with {workers} worker{'s' if workers > 1 else ''}...", quiet=quiet)
        cpu_before, started = cpu_seconds(), time.perf_counter()
        summary = build_dataset(
            work / f"index-w{workers}",
            source,
            dataset="lfw-bench",
            embedder_name=embedder,
            embedder_options=embedder_options(embedder, workers),
            workers=workers,
            progress=False,
        )
        wall = time.perf_counter() - started
        # The pool's workers have been joined when build_dataset returns, so their CPU time is in
        # RUSAGE_CHILDREN by now.
        cpu = cpu_seconds() - cpu_before
        rows.append(
            {
                "workers": workers,
                "images": summary.images,
                "faces": summary.faces,
                "no_face": summary.no_face,
                "too_small": summary.too_small,
                "bad": len(summary.bad),
                "seconds": wall,
                "images_per_s": summary.images / wall,
                "faces_per_s": summary.faces / wall,
                "cores_busy": cpu / wall,
                "index_type": summary.dataset.index_type,
                "embedder": summary.embedder,
            }
        )
    for row in rows:
        row["speedup"] = row["images_per_s"] / rows[0]["images_per_s"]
    return rows


def bench_checks(index_dir: Path, checks: list[tuple[str, Path]], repeat: int, quiet: bool) -> dict[str, Any]:
    from PIL import Image

    from indexer.check import Checker, LoadedIndex, Timer, embedder_for_index

    loaded = LoadedIndex(index_dir)
    embedder = embedder_for_index(loaded)
    checker = Checker(loaded, embedder)
    checker.warm_up()
    # Bytes in memory first: the service receives the upload in memory, so disk reads are no part of a check.
    photos = [(group, path, path.read_bytes()) for group, path in checks]
    say(f"checking {len(photos)} held-out photos x {repeat}...", quiet=quiet)
    timer = Timer()
    latencies: dict[str, list[float]] = {"selfies": [], "lfw": []}
    errors: dict[str, int] = {"selfies": 0, "lfw": 0}
    for _ in range(repeat):
        for group, _path, data in photos:
            started = time.perf_counter()
            answer = checker.check(data, timer=timer)
            latencies[group].append(time.perf_counter() - started)
            # A photo without a usable face stops after detection: count it, it lowers the mean.
            errors[group] += answer["error"] is not None
    sizes: dict[str, list[tuple[int, int]]] = {"selfies": [], "lfw": []}
    for group, path, _ in photos:
        with Image.open(path) as image:
            sizes[group].append(image.size)
    groups = []
    for group, label in (("selfies", "selfies (faces/people)"), ("lfw", "LFW held out, 250x250"), ("all", "all")):
        seconds = latencies["selfies"] + latencies["lfw"] if group == "all" else latencies[group]
        if not seconds:
            continue
        pixels = [w * h for w, h in (sizes["selfies"] + sizes["lfw"] if group == "all" else sizes[group])]
        groups.append(
            {
                "photos": label,
                "checks": len(seconds),
                "median_megapixels": float(np.median(pixels)) / 1e6,
                "errors": errors["selfies"] + errors["lfw"] if group == "all" else errors[group],
                **latency_summary(seconds),
            }
        )
    total = sum(latencies["selfies"] + latencies["lfw"])
    count = len(latencies["selfies"]) + len(latencies["lfw"])
    stages = []
    for name in (*STAGES, "other"):
        seconds = timer.seconds.get(name, 0.0) if name != "other" else total - sum(timer.seconds.values())
        stages.append({"stage": name, "seconds": seconds, "mean_ms": 1000 * seconds / count, "share": seconds / total})
    return {"index": loaded.describe(), "groups": groups, "stages": stages}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=400, help="LFW photos to index (default 400)")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, comma-separated (default 1,2)")
    parser.add_argument("--checks", type=int, default=50, help="held-out photos to check (default 50)")
    parser.add_argument("--repeat", type=int, default=1, help="check each held-out photo this many times (default 1)")
    parser.add_argument("--embedder", choices=["dlib", "insightface"], default="dlib", help="default dlib")
    parser.add_argument("--lfw", type=Path, default=LFW, help=f"LFW images folder (default {LFW})")
    parser.add_argument("--faces", type=Path, default=FACES, help=f"the shared face photos (default {FACES})")
    parser.add_argument("--keep", type=Path, help="build the indexes here and keep them (default: a temp dir)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 32 photos, 10 checks")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args(argv)
    if args.quick:
        args.photos, args.checks, args.repeat = 32, 10, 1
    try:
        args.workers = [int(w) for w in args.workers.split(",") if w.strip()]
    except ValueError:
        parser.error("--workers takes integers separated by commas, e.g. 1,2,4")
    if not args.workers or min(args.workers) < 1 or args.photos < 1 or args.checks < 1 or args.repeat < 1:
        parser.error("--workers, --photos, --checks and --repeat must be at least 1")
    return args


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    quiet = args.json
    indexed, checks, people = choose_photos(args.lfw, args.faces, args.photos, args.checks)
    source = link_source(indexed, work / "source")
    builds = bench_builds(source, work, args.workers, args.embedder, quiet)
    check = bench_checks(work / f"index-w{args.workers[0]}", checks, args.repeat, quiet)
    return {
        "machine": machine_facts(embedder=builds[0]["embedder"]),
        "settings": {
            "photos": args.photos,
            "workers": args.workers,
            "checks": args.checks,
            "repeat": args.repeat,
            "quick": args.quick,
            **people,
        },
        "indexing": builds,
        "check": check,
    }


def report(result: dict[str, Any]) -> None:
    print_facts(result["machine"])
    settings = result["settings"]
    print(
        f"\nindexing {settings['photos']} LFW photos of {settings['indexed_people']} people "
        f"({settings['first']} .. {settings['last']}), one fresh index per worker count:"
    )
    print(
        table(
            ["workers", "images", "faces", "no face", "seconds", "images/s", "faces/s", "speed-up", "cores busy"],
            [
                [
                    r["workers"],
                    r["images"],
                    r["faces"],
                    r["no_face"] + r["too_small"] + r["bad"],
                    r["seconds"],
                    r["images_per_s"],
                    r["faces_per_s"],
                    r["speedup"],
                    r["cores_busy"],
                ]
                for r in result["indexing"]
            ],
            digits=[0, 0, 0, 0, 1, 2, 2, 2, 2],
        )
    )
    check = result["check"]
    index_type = result["indexing"][0]["index_type"]
    print(
        f"\ncheck latency, one photo at a time, against {check['index']['faces']} faces ({index_type}); "
        "none of the people is in the index:"
    )
    print(
        table(
            ["photos", "checks", "median MP", "errors", "mean ms", "p50 ms", "p95 ms", "max ms"],
            [
                [
                    g["photos"],
                    g["checks"],
                    g["median_megapixels"],
                    g["errors"],
                    g["mean_ms"],
                    g["p50_ms"],
                    g["p95_ms"],
                    g["max_ms"],
                ]
                for g in check["groups"]
            ],
            digits=[0, 0, 2, 0, 1, 1, 1, 1],
        )
    )
    print("\nwhere a check's time goes (all photos):")
    print(
        table(
            ["stage", "seconds", "mean ms", "share %"],
            [[s["stage"], s["seconds"], s["mean_ms"], 100 * s["share"]] for s in check["stages"]],
            digits=[0, 3, 2, 1],
        )
    )
    print(
        "\nnotes: seconds are whole builds (start-up of the embedder and of each worker process included);"
        "\n'cores busy' is CPU seconds / wall seconds. dlib's HOG detector runs on one core, and each build"
        "\nworker is its own process, so a build scales with --workers up to the idle cores. 'errors' are"
        "\nphotos answered with an error (no usable face), which skip embed and search. 'other' is the"
        "\nconfidence and the answer."
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        if any(args.keep.iterdir()):
            raise SystemExit(f"--keep {args.keep}: the folder must be empty")
        result = run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="photocheck-bench-") as tmp:
            result = run(args, Path(tmp))
    emit(result, args.json, report)
    return 0


# Build workers are spawned and import this file again: only the parent runs the benchmark.
if __name__ == "__main__":
    sys.exit(main())
