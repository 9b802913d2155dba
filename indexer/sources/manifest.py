"""A CSV or JSONL manifest: one row per image, a column with its path (relative to the manifest),
and any metadata columns (source_url, photo_id, license, uploader, ...), kept per entry."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ImageError, SourceError
from .base import Entry, Source, read_file

#: Column names tried, in order, when ``path_column`` is not given.
PATH_COLUMNS = ("path", "image_path", "file", "filename", "file_name", "image", "filepath")
KEY_COLUMNS = ("key", "id", "image_id", "photo_id")


class ManifestSource(Source):
    format = "manifest"

    def __init__(self, path: Path, *, path_column: str | None = None) -> None:
        super().__init__(path)
        self.base = path.parent
        self.path_column = path_column
        self._rows: list[dict[str, Any]] | None = None

    def _read_rows(self) -> list[dict[str, Any]]:
        if self._rows is not None:
            return self._rows
        suffix = self.path.suffix.lower()
        try:
            if suffix in (".jsonl", ".ndjson"):
                rows = []
                with open(self.path, encoding="utf-8") as f:
                    for number, line in enumerate(f, 1):
                        if not line.strip():
                            continue
                        try:
                            row = json.loads(line)
                        except ValueError as exc:
                            raise SourceError(f"{self.path}, line {number}: not valid JSON ({exc}).") from exc
                        if not isinstance(row, dict):
                            raise SourceError(f"{self.path}, line {number}: each line must be a JSON object.")
                        rows.append(row)
            else:
                with open(self.path, encoding="utf-8-sig", newline="") as f:
                    sample = f.read(8192)
                    f.seek(0)
                    try:
                        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
                    except csv.Error:
                        dialect = csv.excel
                    rows = list(csv.DictReader(f, dialect=dialect))
        except OSError as exc:
            raise SourceError(f"The manifest {self.path} could not be read: {exc.strerror or exc}.") from exc
        except (UnicodeDecodeError, csv.Error) as exc:
            raise SourceError(f"The manifest {self.path} is not UTF-8 CSV or JSONL: {exc}.") from exc
        self._rows = rows
        return rows

    def _column(self, rows: list[dict[str, Any]]) -> str:
        columns = list(rows[0].keys()) if rows else []
        if self.path_column:
            if rows and self.path_column not in columns:
                raise SourceError(
                    f"The manifest has no column {self.path_column!r}; its columns are: {', '.join(columns)}."
                )
            return self.path_column
        for name in PATH_COLUMNS:
            if name in columns:
                return name
        raise SourceError(
            f"The manifest {self.path.name} has no image path column (looked for {', '.join(PATH_COLUMNS)}). "
            f"Its columns are: {', '.join(columns) or 'none'}. Name the right one with --path-column."
        )

    def count(self) -> int:
        return len(self._read_rows())

    def __iter__(self) -> Iterator[Entry]:
        rows = self._read_rows()
        if not rows:
            return
        column = self._column(rows)
        key_column = next((k for k in KEY_COLUMNS if k in rows[0] and k != column), None)
        seen: set[str] = set()
        for number, row in enumerate(rows, 1):
            value = str(row.get(column) or "").strip()
            metadata = {k: v for k, v in row.items() if k != column and v not in (None, "")}
            key = str(row.get(key_column) or "").strip() if key_column else ""
            key = key or value or f"row-{number}"
            if key in seen:
                key = f"{key}#row-{number}"
            seen.add(key)
            if not value:
                yield Entry(
                    key=key,
                    metadata=metadata,
                    error=ImageError(f"Row {number} has no {column!r}.", code="missing_file"),
                )
            elif "://" in value:
                yield Entry(
                    key=key,
                    metadata=metadata,
                    error=ImageError(
                        f"Row {number} names a URL ({value}); photocheck indexes local files. "
                        "Download the set first (img2dataset writes webdataset shards that photocheck reads).",
                        code="missing_file",
                    ),
                )
            else:
                path = self.base / value
                yield Entry(key=key, metadata=metadata, reader=read_file(path), path=path)
