"""The dlib embedder before and after issue 9, side by side in one run: checks and indexing.

Setups (each a set of dlib embedder options):

- ``before``: dlib's own runtime for the ResNet and the detection of before (the image downscaled to
  1024 px, HOG upsampled once): what photocheck did until the ResNet moved to onnxruntime;
- ``onnx``: the ResNet on onnxruntime, the detection of before (what the runtime alone changes);
- ``after``: the defaults now (onnxruntime, and the detection settings chosen with bench/detection.py).

And a baseline that is not photocheck: the ``plain`` dlib pipeline, in this process (decode, dlib's HOG
upsampled once on the full image, the 5-point shape of the largest face, one descriptor with dlib's
``compute_face_descriptor``: no mirror image, no search).

What it measures:

1. Checks in process: ``Checker.check`` on the selfies of ../shared/faces/people (phone photos, about
   1 MP) and on 250x250 LFW photos of people outside the indexing sample, ``--rounds`` times; every
   setup (and the plain pipeline) checks each photo in turn, the order rotating, so that the
   machine's load falls on all alike. p50 and p95 of the whole check and of each stage.
   The largest difference between the descriptors of dlib's runtime and of onnxruntime, on the same
   faces of these photos, is printed with them.
2. Checks over HTTP: one ``photocheck serve --workers 2`` per setup (before and after), all started
   together; for 1, 2 and 4 concurrent clients and each group of photos, the servers take turns
   (``--rounds`` rounds each, every client sending every photo once per round), and the plain
   pipeline checks the same photos in this process between the rounds: p50 and p95 per setup.
3. Indexing: ``build_dataset`` over ``--photos`` LFW photos for each setup with 1 and 2 workers,
   ``--builds`` times each, each into a fresh index, the setups taking turns: the median build's
   images/s and faces/s, the ratio to ``before``, and CPU milliseconds per image (what a build costs
   whatever the load: on a busy machine a second worker may get no second core).

Every figure that carries over to another machine is a ratio between setups measured in the same
run; the load average is printed at the start and at the end of each part. Run it on an idle
machine for absolute figures.

Run (from the project root):

    .venv/bin/python bench/dlib_speed.py                     # everything (10-20 minutes on 2 cores)
    .venv/bin/python bench/dlib_speed.py --parts checks,http --rounds 2
    .venv/bin/python bench/dlib_speed.py --quick             # a smoke run
    .venv/bin/python bench/dlib_speed.py --json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import FACES, LFW, cpu_seconds, emit, latency_summary, machine_facts, print_facts, say, table
from service_latency import Server, load_photos, run_clients

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETUPS: dict[str, dict[str, Any]] = {
    "before": {"runtime": "dlib", "detect_size": 1024, "upsample": 1},
    "onnx": {"runtime": "onnx", "detect_size": 1024, "upsample": 1},
    "after": {},
}
HTTP_SETUPS = ("before", "after")
STAGES = ("decode", "detect", "embed", "search", "other")
PLAIN_STAGES = ("decode", "detect", "shape", "descriptor")


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def rotated(items: list, by: int) -> list:
    by %= len(items)
    return items[by:] + items[:by]


def percentiles(seconds: list[float]) -> dict[str, float]:
    return {**latency_summary(seconds), "n": len(seconds)}


# -- the photos ----------------------------------------------------------------------------------


def lfw_photos() -> list[Path]:
    return sorted(LFW.glob("*/*.jpg"))


def megapixels(photos: list[tuple[str, bytes]]) -> float:
    import io

    from PIL import Image

    return float(np.median([np.prod(Image.open(io.BytesIO(data)).size) / 1e6 for _, data in photos]))


# -- the plain dlib pipeline ---------------------------------------------------------------------


class PlainPipeline:
    """dlib as its examples use it: HOG upsampled once on the full image, 5-point shape, one descriptor."""

    def __init__(self) -> None:
        import dlib
        import face_recognition_models as weights

        self.dlib = dlib
        self.hog = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(weights.pose_predictor_five_point_model_location())
        self.resnet = dlib.face_recognition_model_v1(weights.face_recognition_model_location())

    def __call__(self, data: bytes) -> dict[str, float]:
        from indexer.images import load_image

        seconds = {}
        started = time.perf_counter()
        pixels = load_image(data)
        seconds["decode"] = time.perf_counter() - started
        started = time.perf_counter()
        rects = self.hog(pixels, 1)
        seconds["detect"] = time.perf_counter() - started
        if len(rects):
            started = time.perf_counter()
            largest = max(rects, key=lambda r: r.area())
            shape = self.shape(pixels, largest)
            seconds["shape"] = time.perf_counter() - started
            started = time.perf_counter()
            self.resnet.compute_face_descriptor(pixels, shape)
            seconds["descriptor"] = time.perf_counter() - started
        return seconds


# -- 1. checks in process ------------------------------------------------------------------------


def checks_in_process(index: Path, groups: dict[str, list[tuple[str, bytes]]], rounds: int, quiet: bool) -> dict:
    from indexer.check import Checker, LoadedIndex, Timer
    from indexer.embedders import create_embedder
    from indexer.images import load_image

    loaded = LoadedIndex(index)
    checkers = {name: Checker(loaded, create_embedder("dlib", **options)) for name, options in SETUPS.items()}
    for checker in checkers.values():
        checker.warm_up()
    plain = PlainPipeline()
    plain(groups["selfies"][0][1])
    load_start = load_average()
    names = [*checkers, "plain"]
    # Per group, per setup: every check's seconds per stage and in all.
    timed: dict[str, dict[str, list[dict[str, float]]]] = {g: {n: [] for n in names} for g in groups}
    for round_number in range(rounds):
        say(f"in process, round {round_number + 1} of {rounds}...", quiet=quiet)
        for group, photos in groups.items():
            for number, (_name, data) in enumerate(photos):
                for setup in rotated(names, number + round_number):
                    started = time.perf_counter()
                    if setup == "plain":
                        stages = plain(data)
                    else:
                        timer = Timer()
                        checkers[setup].check(data, timer=timer)
                        stages = dict(timer.seconds)
                    total = time.perf_counter() - started
                    if setup != "plain":
                        stages["other"] = total - sum(stages.values())
                    timed[group][setup].append({**stages, "total": total})
    result: dict[str, Any] = {"load_average": [load_start, load_average()], "groups": {}}
    for group, by_setup in timed.items():
        rows = {}
        for setup, checks in by_setup.items():
            stages = PLAIN_STAGES if setup == "plain" else STAGES
            rows[setup] = {
                "total": percentiles([c["total"] for c in checks]),
                "stages": {s: percentiles([c.get(s, 0.0) for c in checks]) for s in stages},
            }
        result["groups"][group] = rows
    # The same faces through both runtimes (detection as before, so both find the same faces).
    own, onnx = checkers["before"].embedder, checkers["onnx"].embedder
    largest, faces = 0.0, 0
    for photos in groups.values():
        for _name, data in photos:
            pixels = load_image(data)
            found = own.detect(pixels)
            if found:
                largest = max(largest, float(np.abs(own.embed(pixels, found) - onnx.embed(pixels, found)).max()))
                faces += len(found)
    result["descriptors"] = {"faces": faces, "largest_difference": largest}
    return result


# -- 2. checks over HTTP -------------------------------------------------------------------------


def checks_over_http(
    index: Path, groups: dict[str, list[tuple[str, bytes]]], clients_list: list[int], rounds: int, work: Path, quiet
) -> dict:
    servers: dict[str, Server] = {}
    plain = PlainPipeline()
    try:
        for name in HTTP_SETUPS:
            options = SETUPS[name]
            env = {f"PHOTOCHECK_DLIB_{key.upper()}": str(value) for key, value in options.items()}
            servers[name] = Server(index, 2, work / f"server-{name}.log", env=env)
        for server in servers.values():
            server.wait_ready(300)
        for server in servers.values():  # every worker answers a few requests before timing
            failed = run_clients(server.url, groups["selfies"][:4], 2, per_client=4)["errors"]
            if failed:
                raise RuntimeError(f"warm-up requests failed; see {server.log}")
        load_start = load_average()
        runs = []
        for clients in clients_list:
            for group, photos in groups.items():
                say(f"HTTP, {clients} client{'s' if clients > 1 else ''}, {group}...", quiet=quiet)
                seconds: dict[str, list[float]] = {name: [] for name in [*servers, "plain"]}
                errors = dict.fromkeys(servers, 0)
                for round_number in range(rounds):
                    for name in rotated([*servers, "plain"] if clients == 1 else list(servers), round_number):
                        if name == "plain":
                            for _, data in photos:
                                started = time.perf_counter()
                                plain(data)
                                seconds["plain"].append(time.perf_counter() - started)
                            continue
                        url = servers[name].url
                        sent = run_clients(url, photos, clients, per_client=len(photos), keep_latencies=True)
                        seconds[name] += sent["latencies"]
                        errors[name] += sent["errors"]
                runs.append(
                    {
                        "clients": clients,
                        "group": group,
                        "setups": {name: percentiles(s) for name, s in seconds.items() if s},
                        "errors": errors,
                    }
                )
    finally:
        for server in servers.values():
            server.stop()
    return {"load_average": [load_start, load_average()], "runs": runs}


# -- 3. indexing ---------------------------------------------------------------------------------


def indexing(photos: list[Path], workers_list: list[int], repeats: int, work: Path, quiet: bool) -> dict:
    """Every setup builds the photos ``repeats`` times per worker count, the setups taking turns; the
    median build of each is reported."""
    from indexer.pipeline import build_dataset

    source = work / "source"
    for photo in photos:
        target = source / photo.parent.name / photo.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(photo.resolve())
        photo.read_bytes()  # into the page cache, so that the first build does not pay for a cold read
    load_start = load_average()
    builds: dict[tuple[str, int], list[dict[str, Any]]] = {}
    number = 0
    for repeat in range(repeats):
        for workers in workers_list:
            for name in rotated(list(SETUPS), workers + repeat):
                say(f"indexing {len(photos)} LFW photos: {name}, {workers} worker(s), build {repeat + 1}", quiet=quiet)
                options = {**SETUPS[name], "threads": 0 if workers == 1 else 1}
                number += 1
                cpu_before, started = cpu_seconds(), time.perf_counter()
                summary = build_dataset(
                    work / f"index-{number}",
                    source,
                    dataset="lfw",
                    embedder_name="dlib",
                    embedder_options=options,
                    workers=workers,
                    progress=False,
                )
                wall = time.perf_counter() - started
                cpu = cpu_seconds() - cpu_before
                builds.setdefault((name, workers), []).append(
                    {"images": summary.images, "faces": summary.faces, "seconds": wall, "cpu_seconds": cpu}
                )
    rows = []
    for (name, workers), done in builds.items():
        median = sorted(done, key=lambda b: b["seconds"])[len(done) // 2]
        rows.append(
            {
                "setup": name,
                "workers": workers,
                "builds": len(done),
                "images": median["images"],
                "faces": median["faces"],
                "seconds": median["seconds"],
                "all_seconds": [b["seconds"] for b in done],
                "images_per_s": median["images"] / median["seconds"],
                "faces_per_s": median["faces"] / median["seconds"],
                "cores_busy": median["cpu_seconds"] / median["seconds"],
                "cpu_ms_per_image": 1000 * float(np.median([b["cpu_seconds"] / b["images"] for b in done])),
            }
        )
    rows.sort(key=lambda r: (r["workers"], list(SETUPS).index(r["setup"])))
    for row in rows:
        base = next(r for r in rows if r["setup"] == "before" and r["workers"] == row["workers"])
        row["vs_before"] = row["images_per_s"] / base["images_per_s"]
        row["cpu_vs_before"] = base["cpu_ms_per_image"] / row["cpu_ms_per_image"]
    return {"load_average": [load_start, load_average()], "rows": rows}


# -- the run -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="checks,http,indexing", help="which parts (default: all three)")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the photos per setup (default 3)")
    parser.add_argument("--lfw-checks", type=int, default=20, help="250 px LFW photos to check (default 20)")
    parser.add_argument("--clients", default="1,2,4", help="concurrent HTTP clients (default 1,2,4)")
    parser.add_argument("--photos", type=int, default=400, help="LFW photos to index (default 400)")
    parser.add_argument("--workers", default="1,2", help="indexing workers (default 1,2)")
    parser.add_argument("--builds", type=int, default=2, help="builds per setup and worker count (default 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 4 LFW checks, 32 photos indexed")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.lfw_checks, args.photos, args.builds = 1, 4, 32, 1
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    args.workers = [int(w) for w in args.workers.split(",") if w.strip()]
    return args


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from indexer.embedders import create_embedder
    from indexer.pipeline import build_dataset

    quiet = args.json
    everyone = lfw_photos()
    # Checked LFW photos come from the end of the list, indexed ones from its start: no one is in both.
    groups = {
        "selfies": load_photos(FACES / "people"),
        "lfw": [(p.name, p.read_bytes()) for p in everyone[-args.lfw_checks :]],
    }
    after = create_embedder("dlib")
    result: dict[str, Any] = {
        "machine": machine_facts(after=after.options(), after_resnet_runs_on=after.runtime_description()),
        "setups": SETUPS,
        "photos": {g: {"count": len(p), "median_megapixels": megapixels(p)} for g, p in groups.items()},
    }
    index = work / "index"
    if "checks" in args.parts or "http" in args.parts:
        say("building the index the checks search (../shared/faces/people)...", quiet=quiet)
        build_dataset(index, FACES / "people", dataset="faces", embedder_name="dlib", progress=False)
    parts: dict[str, Callable[[], dict]] = {
        "checks": lambda: checks_in_process(index, groups, args.rounds, quiet),
        "http": lambda: checks_over_http(index, groups, args.clients, args.rounds, work, quiet),
        "indexing": lambda: indexing(everyone[: args.photos], args.workers, args.builds, work, quiet),
    }
    for part in args.parts:
        result[part] = parts[part]()
    return result


def report(result: dict[str, Any]) -> None:
    print_facts(result["machine"])
    print("\nsetups:")
    for name, options in result["setups"].items():
        print(f"  {name}: {options or 'the defaults'}")
    print("  plain: dlib's HOG upsampled once on the full image, 5-point shape, one descriptor (in process)")
    for group, facts in result["photos"].items():
        print(f"photos, {group}: {facts['count']}, median {facts['median_megapixels']:.2f} MP")
    if "checks" in result:
        checks = result["checks"]
        print(f"\n1. checks in process (load average {checks['load_average'][0]} -> {checks['load_average'][1]}):")
        for group, rows in checks["groups"].items():
            plain = rows["plain"]["total"]["p50_ms"]
            print(f"\n{group}:")
            stage_names = sorted({s for row in rows.values() for s in row["stages"]}, key=_stage_order)
            print(
                table(
                    ["setup", "checks", "p50 ms", "p95 ms", "p50 / plain", *[f"{s} p50/p95" for s in stage_names]],
                    [
                        [
                            setup,
                            row["total"]["n"],
                            row["total"]["p50_ms"],
                            row["total"]["p95_ms"],
                            row["total"]["p50_ms"] / plain,
                            *[
                                (
                                    f"{row['stages'][s]['p50_ms']:.1f}/{row['stages'][s]['p95_ms']:.1f}"
                                    if s in row["stages"]
                                    else "-"
                                )
                                for s in stage_names
                            ],
                        ]
                        for setup, row in rows.items()
                    ],
                    digits=[0, 0, 1, 1, 2, *[0] * len(stage_names)],
                )
            )
        d = checks["descriptors"]
        print(
            f"\nlargest descriptor difference, dlib's runtime vs onnxruntime: {d['largest_difference']:.2e} "
            f"({d['faces']} faces)"
        )
    if "http" in result:
        http = result["http"]
        print(
            f"\n2. POST /api/v1/check through photocheck serve --workers 2 "
            f"(load average {http['load_average'][0]} -> {http['load_average'][1]}):"
        )
        rows = []
        for run_ in http["runs"]:
            setups = run_["setups"]
            plain = setups.get("plain")
            for name, figures in setups.items():
                rows.append(
                    [
                        run_["clients"],
                        run_["group"],
                        name,
                        figures["n"],
                        run_["errors"].get(name, 0),
                        figures["p50_ms"],
                        figures["p95_ms"],
                        figures["p50_ms"] / setups["before"]["p50_ms"],
                        figures["p50_ms"] / plain["p50_ms"] if plain else None,
                    ]
                )
        print(
            table(
                ["clients", "photos", "setup", "requests", "errors", "p50 ms", "p95 ms", "p50 / before", "p50 / plain"],
                rows,
                digits=[0, 0, 0, 0, 0, 1, 1, 2, 2],
            )
        )
    if "indexing" in result:
        indexing_ = result["indexing"]
        print(
            f"\n3. indexing LFW photos, the median of {indexing_['rows'][0]['builds']} builds each "
            f"(load average {indexing_['load_average'][0]} -> {indexing_['load_average'][1]}):"
        )
        print(
            table(
                [
                    "workers",
                    "setup",
                    "images",
                    "faces",
                    "seconds (median)",
                    "images/s",
                    "faces/s",
                    "x before",
                    "cores busy",
                    "CPU ms/image",
                    "x before",
                ],
                [
                    [
                        r["workers"],
                        r["setup"],
                        r["images"],
                        r["faces"],
                        r["seconds"],
                        r["images_per_s"],
                        r["faces_per_s"],
                        r["vs_before"],
                        r["cores_busy"],
                        r["cpu_ms_per_image"],
                        r["cpu_vs_before"],
                    ]
                    for r in indexing_["rows"]
                ],
                digits=[0, 0, 0, 0, 1, 2, 2, 2, 2, 1, 2],
            )
        )


def _stage_order(stage: str) -> int:
    order = ("decode", "detect", "shape", "descriptor", "embed", "search", "other")
    return order.index(stage) if stage in order else len(order)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="photocheck-bench-") as tmp:
        result = run(args, Path(tmp))
    emit(result, args.json, report)
    return 0


# Build workers are spawned and import this file again: only the parent runs the benchmark.
if __name__ == "__main__":
    sys.exit(main())
