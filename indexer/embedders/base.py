"""The one interface every face embedder implements."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

log = logging.getLogger("photocheck")

#: Faces narrower than this (in pixels of the original image) are too small to judge.
DEFAULT_MIN_FACE_SIZE = 40


@dataclass(frozen=True)
class Face:
    """One detected face, in the coordinates of the original image."""

    box: tuple[float, float, float, float]  # x, y, width, height
    landmarks: tuple[tuple[float, float], ...]  # five points; their meaning is the detector's
    score: float

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]

    @property
    def size(self) -> float:
        """The shorter side of the box: what decides whether a face is big enough to judge."""
        return min(self.box[2], self.box[3])

    def box_list(self) -> list[int]:
        return [round(v) for v in self.box]


def order_faces(faces: Sequence[Face]) -> list[Face]:
    """Faces are numbered from 0 by decreasing area."""
    return sorted(faces, key=lambda f: (-f.area, f.box[0], f.box[1]))


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.size == 0:
        return vectors.reshape(0, vectors.shape[-1] if vectors.ndim == 2 else 0)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


@dataclass(frozen=True)
class EmbedderSpec:
    """A picklable recipe for an embedder, so worker processes can build their own."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def create(self) -> FaceEmbedder:
        from . import create_embedder

        return create_embedder(self.name, **self.options)


class FaceEmbedder(ABC):
    """Finds faces in an RGB image and turns them into L2-normalised float32 embeddings.

    Models load lazily on the first call (or explicitly with ``load()``), so constructing an
    embedder is cheap and safe at import time.
    """

    name: ClassVar[str]

    def __init__(self, *, min_face_size: int = DEFAULT_MIN_FACE_SIZE) -> None:
        self.min_face_size = min_face_size
        self._loaded = False

    # -- identity ---------------------------------------------------------------------------
    @property
    @abstractmethod
    def model_id(self) -> str:
        """Names the recognition model: two indexes can share vectors only if this matches."""

    @property
    @abstractmethod
    def dimension(self) -> int:
        """Length of one embedding."""

    def describe(self) -> dict[str, Any]:
        """What an index records about the embedder that built it."""
        return {"name": self.name, "model": self.model_id, "dimension": self.dimension}

    @classmethod
    def accepted_options(cls) -> set[str]:
        import inspect

        return {p for p in inspect.signature(cls.__init__).parameters if p != "self"}

    def spec(self) -> EmbedderSpec:
        return EmbedderSpec(self.name, self.options())

    def options(self) -> dict[str, Any]:
        return {"min_face_size": self.min_face_size}

    # -- work -------------------------------------------------------------------------------
    def load(self) -> None:
        if not self._loaded:
            self._load()
            self._loaded = True

    @abstractmethod
    def _load(self) -> None: ...

    def detect(self, pixels: np.ndarray) -> list[Face]:
        """All faces in an HxWx3 uint8 RGB image, largest first."""
        self.load()
        return order_faces(self._detect(pixels))

    @abstractmethod
    def _detect(self, pixels: np.ndarray) -> list[Face]: ...

    def face_in_region(self, pixels: np.ndarray, box: tuple[float, float, float, float]) -> Face:
        """A face assumed to fill ``box`` when the detector found none there (as in LFW's centred crops).

        The landmarks are the usual five-point layout of a frontal face, scaled into the box.
        """
        self.load()
        x, y, w, h = box
        template = ((0.34, 0.46), (0.66, 0.46), (0.5, 0.64), (0.37, 0.82), (0.63, 0.82))
        return Face(box=box, landmarks=tuple((x + u * w, y + v * h) for u, v in template), score=0.0)

    def embed(self, pixels: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """Embeddings (len(faces) x dimension) for faces of one image."""
        return self.embed_batch([(pixels, faces)])[0]

    def embed_batch(self, items: Sequence[tuple[np.ndarray, Sequence[Face]]]) -> list[np.ndarray]:
        """Embeddings for the faces of several images, run through the model in batches."""
        self.load()
        counts = [len(faces) for _, faces in items]
        if sum(counts) == 0:
            return [np.zeros((0, self.dimension), dtype=np.float32) for _ in items]
        flat = l2_normalise(self._embed(items))
        out, start = [], 0
        for count in counts:
            out.append(flat[start : start + count])
            start += count
        return out

    @abstractmethod
    def _embed(self, items: Sequence[tuple[np.ndarray, Sequence[Face]]]) -> np.ndarray:
        """Raw embeddings of every face of every item, in order, as one array."""

    def is_too_small(self, face: Face) -> bool:
        return face.size < self.min_face_size
