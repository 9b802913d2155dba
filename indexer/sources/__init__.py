"""Readers of disclosed training sets: generic layouts (a folder, a CSV/JSONL manifest, webdataset tar
shards) and the layouts real sets are distributed in (FFHQ, CelebA, MegaFace-style Flickr folders)."""

from __future__ import annotations

from pathlib import Path

from ..errors import SourceError
from .base import Entry, Source
from .celeba import CelebASource, looks_like_celeba
from .ffhq import METADATA_FILE as FFHQ_METADATA
from .ffhq import FFHQSource, looks_like_ffhq
from .folder import FolderSource
from .manifest import ManifestSource
from .megaface import MegaFaceSource, looks_like_megaface
from .webdataset import WebDatasetSource

FORMATS = ("auto", "folder", "manifest", "webdataset", "ffhq", "celeba", "megaface")
MANIFEST_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson")

__all__ = ["FORMATS", "Entry", "Source", "detect_format", "open_source"]


def detect_format(path: Path) -> str:
    """The layout of ``path``, from its marker files; a plain folder of images when there are none.

    A set's own markers decide first (FFHQ's metadata JSON, CelebA's annotation files, MegaFace's
    NSID folders), then tar shards, then a folder of images; a file is a manifest, shards or FFHQ's JSON.
    """
    if path.is_dir():
        if (path / FFHQ_METADATA).is_file():
            return "ffhq"
        if looks_like_celeba(path):
            return "celeba"
        if looks_like_megaface(path):
            return "megaface"
        return "webdataset" if any(path.glob("*.tar")) and not _has_images(path) else "folder"
    name = path.name.lower()
    if name.endswith(".tar") or ("*" in name and ".tar" in name):
        return "webdataset"
    if path.suffix.lower() in MANIFEST_SUFFIXES:
        return "manifest"
    if path.suffix.lower() == ".json" and path.is_file() and looks_like_ffhq(path):
        return "ffhq"
    if not path.exists() and "*" not in str(path):
        raise SourceError(f"{path} does not exist.")
    raise SourceError(
        f"Cannot tell what {path} is. Give a folder of images, a .csv/.jsonl manifest, .tar shards, or a set in "
        f"its own layout (FFHQ, CelebA, MegaFace), or say which with --format ({', '.join(FORMATS[1:])})."
    )


def _has_images(path: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() not in (".tar", ".parquet", ".json") for p in path.iterdir())


def open_source(path: str | Path, format: str = "auto", *, path_column: str | None = None) -> Source:
    path = Path(path)
    chosen = detect_format(path) if format == "auto" else format
    if chosen in ("folder", "megaface", "celeba") and not path.is_dir():
        raise SourceError(f"{path} is not a folder.")
    if chosen == "folder":
        return FolderSource(path)
    if chosen == "megaface":
        return MegaFaceSource(path)
    if chosen == "celeba":
        return CelebASource(path)
    if chosen == "ffhq":
        if not path.exists():
            raise SourceError(f"{path} does not exist.")
        return FFHQSource(path)
    if chosen == "manifest":
        if not path.is_file():
            raise SourceError(f"The manifest {path} does not exist.")
        return ManifestSource(path, path_column=path_column)
    if chosen == "webdataset":
        return WebDatasetSource(path)
    raise SourceError(f"Unknown source format {format!r}; choose one of {', '.join(FORMATS)}.")
