"""Readers of disclosed training sets: a folder, a CSV/JSONL manifest, webdataset tar shards."""

from __future__ import annotations

from pathlib import Path

from ..errors import SourceError
from .base import Entry, Source
from .folder import FolderSource
from .manifest import ManifestSource
from .webdataset import WebDatasetSource

FORMATS = ("auto", "folder", "manifest", "webdataset")
MANIFEST_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson")

__all__ = ["FORMATS", "Entry", "Source", "detect_format", "open_source"]


def detect_format(path: Path) -> str:
    """``folder`` for a directory of images, ``webdataset`` for tar shards, ``manifest`` for CSV/JSONL."""
    if path.is_dir():
        return "webdataset" if any(path.glob("*.tar")) and not _has_images(path) else "folder"
    name = path.name.lower()
    if name.endswith(".tar") or ("*" in name and ".tar" in name):
        return "webdataset"
    if path.suffix.lower() in MANIFEST_SUFFIXES:
        return "manifest"
    if not path.exists() and "*" not in str(path):
        raise SourceError(f"{path} does not exist.")
    raise SourceError(
        f"Cannot tell what {path} is. Give a folder of images, a .csv/.jsonl manifest or .tar shards, "
        "or say which with --format."
    )


def _has_images(path: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() not in (".tar", ".parquet", ".json") for p in path.iterdir())


def open_source(path: str | Path, format: str = "auto", *, path_column: str | None = None) -> Source:
    path = Path(path)
    chosen = detect_format(path) if format == "auto" else format
    if chosen == "folder":
        if not path.is_dir():
            raise SourceError(f"{path} is not a folder.")
        return FolderSource(path)
    if chosen == "manifest":
        if not path.is_file():
            raise SourceError(f"The manifest {path} does not exist.")
        return ManifestSource(path, path_column=path_column)
    if chosen == "webdataset":
        return WebDatasetSource(path)
    raise SourceError(f"Unknown source format {format!r}; choose one of {', '.join(FORMATS)}.")
