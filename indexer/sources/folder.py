"""A folder tree of images. Key: the path relative to the folder. Metadata: an optional JSON sidecar.

A sidecar sits beside its image as ``photo.jpg.json`` or ``photo.json``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from .base import Entry, Source, read_file

log = logging.getLogger("photocheck")

#: Files that describe a set rather than hold its images; everything else is tried as an image
#: (the format is read from the bytes, so an image without an extension is still found).
METADATA_SUFFIXES = {".json", ".jsonl", ".txt", ".md", ".csv", ".tsv", ".parquet", ".yaml", ".yml", ".html"}


class FolderSource(Source):
    format = "folder"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._files: list[Path] | None = None

    def _list(self) -> list[Path]:
        if self._files is None:
            found = []
            for directory, subdirs, files in os.walk(self.path, followlinks=False):
                subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
                for name in files:
                    if name.startswith(".") or Path(name).suffix.lower() in METADATA_SUFFIXES:
                        continue
                    found.append(Path(directory) / name)
            self._files = sorted(found, key=lambda p: p.relative_to(self.path).as_posix())
        return self._files

    def count(self) -> int:
        return len(self._list())

    def __iter__(self) -> Iterator[Entry]:
        for path in self._list():
            key = path.relative_to(self.path).as_posix()
            yield Entry(key=key, metadata=self._sidecar(path), reader=read_file(path), path=path)

    @staticmethod
    def _sidecar(path: Path) -> dict:
        for candidate in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
            if candidate != path and candidate.is_file():
                try:
                    value = json.loads(candidate.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    log.warning("ignoring unreadable sidecar %s: %s", candidate, exc)
                    return {}
                return value if isinstance(value, dict) else {"value": value}
        return {}
