"""dlib's HOG detector: time and recall against the size the image is detected at, and upsampling.

What it measures, for each setting (``detect_size``: the longest side the image is downscaled to
before detection, 0 for the full image; ``upsample``: how often dlib doubles it before its pyramid,
``auto`` once when the downscaled image's longest side is at most half of ``detect_size``, else
never), with the dlib embedder's own ``detect`` (downscale, HOG, boxes back to original pixels,
5-point shape):

1. The photos of ../shared/faces (selfies, group photos, edge cases): every face found, matched to
   the faces the reference setting finds (the detection before ``auto``: 1024 and upsampled once) by box overlap
   (intersection over union >= 0.5, in original pixels). A setting *loses* a face when it misses
   one the reference finds; *new* faces are ones the reference does not find. Each photo is timed
   ``--repeat`` times and the median kept.
2. A sample of LFW (every ``--lfw-stride``-th photo of ../shared/lfw/images, 250x250, the face in
   the middle at about 110 px): the share of photos with a face found near the centre (the face
   ``photocheck eval`` embeds), against the reference.

Timing on a shared, busy machine: every setting is timed on each photo in turn, one after another
(the order rotating from photo to photo), so that the machine's load falls on all of them alike;
the figures that carry over to another machine are the ratios to the reference setting, printed
beside the milliseconds, and the load average is printed with them.

3. With ``--accuracy``: LFW's development pairs (``photocheck eval``'s verification protocol,
   ../shared/lfw/pairs-dev.txt) for the runtime and detection settings given, e.g.
   ``--accuracy dlib:1024:1,onnx:1024:1,onnx:640:1`` (runtime:detect_size:upsample): the 10-fold
   accuracy, the best single threshold's accuracy, the ROC AUC and how many photos had no face found.

Run (from the project root):

    .venv/bin/python bench/detection.py                       # the curve (a few minutes)
    .venv/bin/python bench/detection.py --sizes 1024,640 --lfw-stride 40   # a quick look
    .venv/bin/python bench/detection.py --skip-curve --accuracy dlib:1024:1,onnx:1024:1,onnx:640:1 --workers 2
    .venv/bin/python bench/detection.py --json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import FACES, LFW, emit, machine_facts, print_facts, say, table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REFERENCE = (1024, 1)
PAIRS = LFW.parent / "pairs-dev.txt"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    return inter / (aw * ah + bw * bh - inter)


def matched(reference: list, found: list) -> tuple[int, int]:
    """(reference faces found again, faces not in the reference), matching boxes by IoU >= 0.5."""
    taken = set()
    again = 0
    for face in reference:
        best = max(
            ((iou(face.box, other.box), i) for i, other in enumerate(found) if i not in taken), default=(0.0, -1)
        )
        if best[0] >= 0.5:
            taken.add(best[1])
            again += 1
    return again, len(found) - len(taken)


def centre_face(faces: list, pixels_shape: tuple[int, ...], min_size: float) -> bool:
    """Whether a face big enough to judge is found near the middle (within a fifth of the side)."""
    height, width = pixels_shape[:2]
    for face in faces:
        x, y, w, h = face.box
        near = abs(x + w / 2 - width / 2) <= width / 5 and abs(y + h / 2 - height / 2) <= height / 5
        if near and face.size >= min_size:
            return True
    return False


def load(paths: list[Path]) -> list[tuple[Path, np.ndarray]]:
    from indexer.images import load_image

    return [(p, load_image(p.read_bytes())) for p in paths]


def time_settings(photos, embedders: dict, repeat: int) -> dict[tuple[int, int], list[tuple[float, list]]]:
    """Per setting, per photo: (median seconds, faces). Settings take turns on each photo."""
    settings = list(embedders)
    out: dict[tuple[int, int], list[tuple[float, list]]] = {s: [] for s in settings}
    for number, (_path, pixels) in enumerate(photos):
        order = settings[number % len(settings) :] + settings[: number % len(settings)]
        seconds: dict[tuple[int, int], list[float]] = {s: [] for s in settings}
        faces: dict[tuple[int, int], list] = {}
        for _ in range(repeat):
            for setting in order:
                started = time.perf_counter()
                faces[setting] = embedders[setting].detect(pixels)
                seconds[setting].append(time.perf_counter() - started)
        for setting in settings:
            out[setting].append((statistics.median(seconds[setting]), faces[setting]))
    return out


def curve(args: argparse.Namespace) -> dict[str, Any]:
    from indexer.embedders import create_embedder

    settings = [(size, up) for size in args.sizes for up in args.upsample]
    if REFERENCE not in settings:
        settings.insert(0, REFERENCE)
    embedders = {s: create_embedder("dlib", detect_size=s[0], upsample=s[1], runtime="dlib") for s in settings}
    for embedder in embedders.values():
        embedder.load()
    min_size = embedders[REFERENCE].min_face_size

    shared_paths = sorted(p for p in FACES.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
    shared = load(shared_paths)
    say(f"timing {len(settings)} settings on {len(shared)} photos of {FACES} x {args.repeat}...", quiet=args.json)
    timed = time_settings(shared, embedders, args.repeat)
    reference = timed[REFERENCE]
    smallest = min((f.size for _, faces in reference for f in faces), default=0.0)
    rows = []
    for setting in settings:
        again = new = lost_photos = 0
        lost = []
        for (path, _), (_, ref_faces), (_, faces) in zip(shared, reference, timed[setting], strict=True):
            found_again, extra = matched(ref_faces, faces)
            again += found_again
            new += extra
            if found_again < len(ref_faces):
                lost_photos += 1
                lost.append(f"{path.relative_to(FACES)}: {len(ref_faces) - found_again}")
        seconds = [s for s, _ in timed[setting]]
        selfies = [s for (path, _), (s, _) in zip(shared, timed[setting], strict=True) if path.parts[-3] == "people"]
        rows.append(
            {
                "detect_size": setting[0],
                "upsample": setting[1],
                "faces": sum(len(f) for _, f in timed[setting]),
                "reference_faces_found": again,
                "faces_lost": sum(len(f) for _, f in reference) - again,
                "lost_in": lost,
                "new_faces": new,
                "total_ms": 1000 * sum(seconds),
                "selfie_p50_ms": 1000 * float(np.median(selfies)),
                "selfie_p95_ms": 1000 * float(np.percentile(selfies, 95)),
            }
        )
    base = next(r for r in rows if (r["detect_size"], r["upsample"]) == REFERENCE)
    for row in rows:
        row["time_vs_reference"] = row["total_ms"] / base["total_ms"]
        row["selfie_p50_vs_reference"] = row["selfie_p50_ms"] / base["selfie_p50_ms"]

    lfw_paths = sorted(LFW.glob("*/*.jpg"))[:: args.lfw_stride]
    say(f"timing {len(settings)} settings on {len(lfw_paths)} LFW photos...", quiet=args.json)
    lfw_timed = time_settings(load(lfw_paths), embedders, 1)
    lfw_ref = [centre_face(f, (250, 250), min_size) for _, f in lfw_timed[REFERENCE]]
    lfw_rows = []
    for setting in settings:
        centre = [centre_face(f, (250, 250), min_size) for _, f in lfw_timed[setting]]
        lfw_rows.append(
            {
                "detect_size": setting[0],
                "upsample": setting[1],
                "photos": len(centre),
                "centre_face_found": sum(centre),
                "recall_vs_reference": sum(c and r for c, r in zip(centre, lfw_ref, strict=True))
                / max(sum(lfw_ref), 1),
                "found_only_here": sum(c and not r for c, r in zip(centre, lfw_ref, strict=True)),
                "total_ms": 1000 * sum(s for s, _ in lfw_timed[setting]),
            }
        )
    lfw_base = next(r for r in lfw_rows if (r["detect_size"], r["upsample"]) == REFERENCE)
    for row in lfw_rows:
        row["time_vs_reference"] = row["total_ms"] / lfw_base["total_ms"]
    return {
        "shared_photos": len(shared),
        "smallest_reference_face": smallest,
        "shared": rows,
        "lfw": lfw_rows,
    }


def best_threshold_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    order = np.sort(scores)
    candidates = np.concatenate([[order[0] - 1], (order[1:] + order[:-1]) / 2, [order[-1] + 1]])
    return float(max(((scores > t) == labels).mean() for t in candidates))


def accuracy(settings: list[tuple[str, int, int]], workers: int, quiet: bool) -> list[dict[str, Any]]:
    from indexer import confidence, evaluation
    from indexer.embedders import create_embedder

    pairs = evaluation.read_pairs(PAIRS)
    rows = []
    for runtime, size, up in settings:
        say(f"LFW development pairs with runtime {runtime}, detect_size {size}, upsample {up}...", quiet=quiet)
        embedder = create_embedder(
            "dlib", runtime=runtime, detect_size=size, upsample=up, threads=0 if workers == 1 else 1
        )
        embedder.load()
        config = confidence.default_config(embedder.describe())
        started = time.perf_counter()
        report = evaluation.evaluate_pairs(pairs, LFW, embedder, config, workers=workers, progress=False)
        rows.append(
            {
                "runtime": runtime,
                "detect_size": size,
                "upsample": up,
                "pairs": report.pairs,
                "photos": report.photos,
                "no_face_found": report.faces_not_detected,
                "ten_fold_accuracy": report.accuracy,
                "best_threshold_accuracy": best_threshold_accuracy(report.scores, report.labels),
                "auc": report.auc,
                "seconds": time.perf_counter() - started,
                "scores": report.scores,
            }
        )
    first = rows[0]["scores"]
    for row in rows:
        row["largest_score_change_vs_first"] = float(np.abs(row.pop("scores") - first).max())
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0,1024,800,640,512,400,320", help="detect sizes (0: the full image)")
    parser.add_argument("--upsample", default="0,1,auto", help="upsample counts to try (default 0,1,auto)")
    parser.add_argument("--repeat", type=int, default=3, help="timings per shared photo and setting (default 3)")
    parser.add_argument("--lfw-stride", type=int, default=8, help="every Nth LFW photo (default 8: 914 photos)")
    parser.add_argument("--skip-curve", action="store_true", help="only --accuracy")
    parser.add_argument("--accuracy", default="", help="runtime:detect_size:upsample,... for the development pairs")
    parser.add_argument("--workers", type=int, default=2, help="processes for --accuracy (default 2)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.upsample = [u.strip() if u.strip() == "auto" else int(u) for u in args.upsample.split(",") if u.strip()]
    args.accuracy = [
        (r, int(s), u if u == "auto" else int(u))
        for r, s, u in (item.split(":") for item in args.accuracy.split(",") if item.strip())
    ]
    return args


def report(result: dict[str, Any]) -> None:
    print_facts(result["machine"])
    if "curve" in result:
        curve_ = result["curve"]
        print(
            f"\n../shared/faces, {curve_['shared_photos']} photos; reference: detect_size {REFERENCE[0]}, "
            f"upsample {REFERENCE[1]} (smallest face it finds: {curve_['smallest_reference_face']:.0f} px):"
        )
        print(
            table(
                ["size", "up", "faces", "lost", "new", "total ms", "x ref", "selfie p50 ms", "x ref", "p95 ms"],
                [
                    [
                        r["detect_size"] or "full",
                        r["upsample"],
                        r["faces"],
                        r["faces_lost"],
                        r["new_faces"],
                        r["total_ms"],
                        r["time_vs_reference"],
                        r["selfie_p50_ms"],
                        r["selfie_p50_vs_reference"],
                        r["selfie_p95_ms"],
                    ]
                    for r in curve_["shared"]
                ],
                digits=[0, 0, 0, 0, 0, 0, 2, 1, 2, 1],
            )
        )
        for r in curve_["shared"]:
            if r["lost_in"]:
                print(f"  {r['detect_size'] or 'full'}/{r['upsample']} loses: {', '.join(r['lost_in'])}")
        print(f"\nLFW, {curve_['lfw'][0]['photos']} photos (250x250): a face found near the centre:")
        print(
            table(
                ["size", "up", "found", "recall vs ref", "found only here", "total ms", "x ref"],
                [
                    [
                        r["detect_size"] or "full",
                        r["upsample"],
                        r["centre_face_found"],
                        r["recall_vs_reference"],
                        r["found_only_here"],
                        r["total_ms"],
                        r["time_vs_reference"],
                    ]
                    for r in curve_["lfw"]
                ],
                digits=[0, 0, 0, 4, 0, 0, 2],
            )
        )
    if result.get("accuracy"):
        print("\nLFW development pairs (photocheck eval's verification protocol):")
        print(
            table(
                ["runtime", "size", "up", "no face", "10-fold %", "best threshold %", "AUC", "max score change"],
                [
                    [
                        r["runtime"],
                        r["detect_size"],
                        r["upsample"],
                        r["no_face_found"],
                        100 * r["ten_fold_accuracy"],
                        100 * r["best_threshold_accuracy"],
                        r["auc"],
                        r["largest_score_change_vs_first"],
                    ]
                    for r in result["accuracy"]
                ],
                digits=[0, 0, 0, 0, 2, 2, 5, 6],
            )
        )
    print(f"\nload average at the end: {result['load_average_end']}")


def main(argv: list[str] | None = None) -> int:
    import os

    args = parse_args(argv)
    result: dict[str, Any] = {"machine": machine_facts()}
    if not args.skip_curve:
        result["curve"] = curve(args)
    if args.accuracy:
        result["accuracy"] = accuracy(args.accuracy, args.workers, args.json)
    result["load_average_end"] = round(os.getloadavg()[0], 2)
    emit(result, args.json, report)
    return 0


# Evaluation workers are spawned and import this file again: only the parent runs the benchmark.
if __name__ == "__main__":
    sys.exit(main())
