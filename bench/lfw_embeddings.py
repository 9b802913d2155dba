"""Embed every photo of ../shared/lfw once, as photocheck does, into a cache other scripts reuse.

For each photo: the embedding of the face nearest the centre (or of the centre region when none
is detected, as ``photocheck eval`` does), whether a face was detected, and how many faces the
detector found. Fitting the confidence, the open-set protocols and the benchmarks' synthetic faces
read this file instead of embedding 7,311 photos again.

    python bench/lfw_embeddings.py --workers 2 --output /work/cache/lfw-dlib.npz
    python bench/lfw_embeddings.py --workers 2 --blur 2.5 --output /work/cache/lfw-dlib-blur2.5.npz

``--blur SIGMA`` blurs every photo first (a Gaussian of SIGMA pixels) and then finds and embeds the
face in it, as a blurred query would be: the low-quality part of the score model is fitted on these.
With the dlib embedder's default runtime (its ResNet on onnxruntime) all 7,311 photos take minutes.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.embedders import FaceEmbedder, create_embedder  # noqa: E402
from indexer.errors import ImageError  # noqa: E402
from indexer.evaluation import CENTRE_REGION, IMAGE_SUFFIXES  # noqa: E402
from indexer.images import load_image  # noqa: E402
from indexer.workers import map_ordered  # noqa: E402

DEFAULT_IMAGES = ROOT.parent / "shared" / "lfw" / "images"


def embed_one(embedder: FaceEmbedder, path: Path, blur: float = 0.0) -> tuple[np.ndarray | None, bool, int]:
    """(embedding of the centre face, detected, faces found) for one photo, blurred first with a Gaussian
    of ``blur`` pixels when that is not 0."""
    try:
        pixels = load_image(Path(path).read_bytes())
    except (ImageError, OSError):
        return None, False, 0
    if blur:
        pixels = np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(blur)))
    height, width = pixels.shape[:2]
    found = embedder.detect(pixels)
    usable = [f for f in found if not embedder.is_too_small(f)]
    if usable:
        face = min(
            usable,
            key=lambda f: (f.box[0] + f.box[2] / 2 - width / 2) ** 2 + (f.box[1] + f.box[3] / 2 - height / 2) ** 2,
        )
        return embedder.embed(pixels, [face])[0], True, len(found)
    side = CENTRE_REGION * min(width, height)
    face = embedder.face_in_region(pixels, ((width - side) / 2, (height - side) / 2, side, side))
    return embedder.embed(pixels, [face])[0], False, len(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="A folder per person.")
    parser.add_argument("--output", type=Path, required=True, help="The .npz file to write.")
    parser.add_argument("--embedder", default="dlib")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--limit", type=int, help="Only the first N photos (for a quick try).")
    parser.add_argument("--blur", type=float, default=0.0, help="Blur each photo with a Gaussian of this many pixels.")
    args = parser.parse_args()

    photos = sorted(
        p
        for person in sorted(args.images.iterdir())
        if person.is_dir()
        for p in sorted(person.iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES
    )[: args.limit]
    embedder = create_embedder(args.embedder, threads=1)
    embedder.load()
    started = time.monotonic()
    vectors = np.zeros((len(photos), embedder.dimension), dtype=np.float32)
    detected = np.zeros(len(photos), dtype=bool)
    faces = np.zeros(len(photos), dtype=np.int16)
    readable = np.ones(len(photos), dtype=bool)
    embed = functools.partial(embed_one, blur=args.blur)
    for row, (vector, found, count) in enumerate(map_ordered(embed, photos, embedder, args.workers)):
        if vector is None:
            readable[row] = False
        else:
            vectors[row] = vector
        detected[row], faces[row] = found, count
        if row % 500 == 0:
            print(f"{row}/{len(photos)} photos, {time.monotonic() - started:.0f}s", file=sys.stderr)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.output,
        paths=np.asarray([str(p.relative_to(args.images)) for p in photos]),
        people=np.asarray([p.parent.name for p in photos]),
        vectors=vectors,
        detected=detected,
        faces=faces,
        readable=readable,
        model=np.asarray(embedder.model_id),
        blur=np.asarray(args.blur),
    )
    print(
        f"{len(photos)} photos embedded in {time.monotonic() - started:.0f}s: {detected.sum()} with a detected face, "
        f"{(faces > 1).sum()} with several, {(~readable).sum()} unreadable -> {args.output}"
    )


if __name__ == "__main__":
    main()
