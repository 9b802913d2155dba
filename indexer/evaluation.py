"""Measuring an embedder and its confidence on labelled faces: verification on LFW-format pairs,
open-set identification on a folder per person, and the plots that show both.

LFW's photos are centred on the person: where a photo holds several faces, the one nearest the
centre counts; where none is found, the centre region is used, and the report counts how often.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .embedders import FaceEmbedder
from .errors import ImageError, PhotocheckError
from .images import load_image
from .workers import map_ordered

#: The share of an LFW-style photo that the centre region covers when no face is detected.
CENTRE_REGION = 0.44


@dataclass
class EmbeddedPhotos:
    paths: list[Path]
    vectors: np.ndarray  # one row per photo (zeros where the photo could not be read)
    detected: np.ndarray  # True where a face was detected, False where the centre region was used
    unreadable: list[Path]


def embed_centre_face(embedder: FaceEmbedder, path: Path) -> tuple[np.ndarray | None, bool]:
    """The embedding of the face nearest the photo's centre (or of the centre region)."""
    try:
        pixels = load_image(Path(path).read_bytes())
    except (ImageError, OSError):
        return None, False
    height, width = pixels.shape[:2]
    faces = [f for f in embedder.detect(pixels) if not embedder.is_too_small(f)]
    if faces:
        face = min(
            faces,
            key=lambda f: (f.box[0] + f.box[2] / 2 - width / 2) ** 2 + (f.box[1] + f.box[3] / 2 - height / 2) ** 2,
        )
        return embedder.embed(pixels, [face])[0], True
    side = CENTRE_REGION * min(width, height)
    face = embedder.face_in_region(pixels, ((width - side) / 2, (height - side) / 2, side, side))
    return embedder.embed(pixels, [face])[0], False


def embed_photos(
    paths: list[Path], embedder: FaceEmbedder, *, workers: int = 1, progress: bool = True
) -> EmbeddedPhotos:
    from tqdm import tqdm

    embedder.load()
    vectors = np.zeros((len(paths), embedder.dimension), dtype=np.float32)
    detected = np.zeros(len(paths), dtype=bool)
    unreadable = []
    results = map_ordered(embed_centre_face, paths, embedder, workers)
    for row, (vector, found) in enumerate(
        tqdm(results, total=len(paths), unit="photo", desc="embedding", disable=not progress)
    ):
        if vector is None:
            unreadable.append(paths[row])
        else:
            vectors[row], detected[row] = vector, found
    if len(unreadable) == len(paths):
        raise PhotocheckError("None of the photos could be read.", code="no_photos")
    return EmbeddedPhotos(list(paths), vectors, detected, unreadable)
