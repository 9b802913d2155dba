"""Fit the shipped dlib score model (indexer/data/calibration/dlib_resnet_v1.json) from the LFW cache.

The fitting people are LFW's people A-D; people E-J are held out for the figures in
docs/confidence.md (``bench/confidence_heldout.py``). LFW's two mislabelled photos are left out
(``indexer.evaluation.MISLABELLED``). Fitted: one photo and templates of 2 to 5 photos (impostor
tail, gamma, genuine density, the query level, the recalibration on simulated open-set searches),
and the blurred-query shifts with their own recalibration, from a cache of blurred photos.

    python bench/lfw_embeddings.py --workers 2 --output /work/cache/lfw-dlib.npz
    python bench/lfw_embeddings.py --workers 2 --blur 2.5 --output /work/cache/lfw-dlib-blur2.5.npz
    python bench/fit_score_model.py --cache /work/cache/lfw-dlib.npz --blurred /work/cache/lfw-dlib-blur2.5.npz \\
        --output indexer/data/calibration/dlib_resnet_v1.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.calibration import fit_low_quality, fit_score_model  # noqa: E402
from indexer.evaluation import MISLABELLED  # noqa: E402

FIT_LETTERS = "ABCD"


def load_cache(cache, letters: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of the cache (the loaded .npz) whose person's name starts with one of ``letters``,
    mislabelled photos left out: (row numbers, vectors, people)."""
    paths, people = cache["paths"], cache["people"]
    rows = np.flatnonzero(
        np.array([p[0] in letters for p in people])
        & np.array([p not in MISLABELLED for p in paths])
        & cache["readable"]
    )
    return rows, cache["vectors"][rows], people[rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, required=True, help="bench/lfw_embeddings*.py's .npz")
    parser.add_argument("--blurred", type=Path, required=True, help="the same photos blurred (--blur 2.5)")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--letters", default=FIT_LETTERS, help="Fit on the people whose names start so.")
    args = parser.parse_args()

    started = time.monotonic()
    cache = np.load(args.cache)
    rows, vectors, people = load_cache(cache, args.letters)
    blurred_cache = np.load(args.blurred)
    if not np.array_equal(blurred_cache["paths"], cache["paths"]):
        sys.exit("the blurred cache holds other photos than the cache")
    blurred = blurred_cache["vectors"][rows]
    sigma = float(blurred_cache["blur"])
    letters = f"{args.letters[0]}-{args.letters[-1]}"
    described = (
        f"LFW deep-funneled, people {letters} ({len(set(people)):,} people, {len(vectors):,} photos; "
        f"the mislabelled {' and '.join(sorted(Path(p).stem for p in MISLABELLED))} left out); dlib HOG "
        "(upsample 1), the face nearest the centre, mean of the face and its mirror"
    )
    document = fit_score_model(vectors, people, model=str(cache["model"]), fitted_on=described)
    print(f"score model fitted in {time.monotonic() - started:.0f}s", file=sys.stderr)
    document["low_quality"] = fit_low_quality(
        document, vectors, blurred, people, blur=f"Gaussian, {sigma:g} px", seed=1
    )
    args.output.write_text(json.dumps(document, indent=1) + "\n")
    sections = {"1": document, **document.get("query_photos", {})}
    for photos, section in sections.items():
        print(
            f"K={photos}: gamma {section['gamma']}, tail from {section['impostor']['tail_start']} "
            f"(shape {section['impostor']['tail_shape']:.3f}, scale {section['impostor']['tail_scale']:.4f}), "
            f"level correlation {section['query_level']['correlation']}, recalibration "
            f"{section['recalibration']['slope']} / {section['recalibration']['offset']}"
        )
    low = document["low_quality"]
    print(
        f"blurred: genuine {low['genuine_shift']:+.4f}, impostor {low['impostor_shift']:+.4f}, recalibration "
        f"{low['recalibration']['slope']} / {low['recalibration']['offset']}"
    )
    print(f"-> {args.output} ({args.output.stat().st_size / 1024:.0f} KB) in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
