"""webdataset tar shards as img2dataset writes them: ``{key}.jpg`` + ``{key}.json`` (+ ``{key}.txt``)
inside ``*.tar``, with an optional ``{shard}.parquet`` beside each shard.

Shards are streamed member by member; nothing is unpacked to disk.
"""

from __future__ import annotations

import glob
import json
import logging
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ImageError, SourceError
from .base import Entry, Source

log = logging.getLogger("photocheck")

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "heic", "heif", "avif", "img")


def _split(name: str) -> tuple[str, str]:
    """webdataset's rule: the key is everything before the first dot of the file name."""
    directory, _, base = name.rpartition("/")
    stem, dot, extension = base.partition(".")
    return (f"{directory}/{stem}" if directory else stem), extension.lower() if dot else ""


class WebDatasetSource(Source):
    format = "webdataset"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.shards = self._find_shards(path)

    @staticmethod
    def _find_shards(path: Path) -> list[Path]:
        if path.is_dir():
            shards = sorted(path.glob("*.tar"))
        elif path.is_file():
            shards = [path]
        else:
            shards = sorted(Path(p) for p in glob.glob(str(path)))
        if not shards:
            raise SourceError(f"No webdataset shards (*.tar) at {path}.")
        return shards

    def count(self) -> int | None:
        total = 0
        for shard in self.shards:
            table = self._parquet(shard)
            if table is None:
                return None
            total += sum(1 for row in table.values() if row.get("status", "success") == "success")
        return total

    @staticmethod
    def _parquet(shard: Path) -> dict[str, dict[str, Any]] | None:
        side = shard.with_suffix(".parquet")
        if not side.is_file():
            return None
        try:
            import pyarrow.parquet as pq

            rows = pq.read_table(side).to_pylist()
        except Exception as exc:  # noqa: BLE001 - a broken sidecar loses metadata, not images
            log.warning("ignoring unreadable %s: %s", side, exc)
            return None
        return {
            str(r.get("key")): {k: v for k, v in r.items() if v is not None} for r in rows if r.get("key") is not None
        }

    def __iter__(self) -> Iterator[Entry]:
        for shard in self.shards:
            yield from self.read_shard(shard)

    def read_shard(self, shard: Path) -> Iterator[Entry]:
        """The entries of one shard, in order (a Ray worker reads its shards with this)."""
        parquet = self._parquet(shard) or {}
        group_key: str | None = None
        group: dict[str, bytes] = {}
        try:
            with tarfile.open(shard, mode="r|*") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    key, extension = _split(member.name)
                    if key != group_key:
                        if group_key is not None:
                            yield self._entry(shard, group_key, group, parquet)
                        group_key, group = key, {}
                    handle = tar.extractfile(member)
                    group[extension] = handle.read() if handle else b""
        except (tarfile.TarError, OSError, EOFError) as exc:
            if group_key is not None:
                yield self._entry(shard, group_key, group, parquet, broken=True)
                group_key = None
            yield Entry(
                key=f"{shard.stem}/<shard>",
                error=ImageError(
                    f"The shard {shard.name} is truncated or corrupt ({exc}); entries after this point were skipped.",
                    code="bad_shard",
                ),
            )
            return
        if group_key is not None:
            yield self._entry(shard, group_key, group, parquet)

    @staticmethod
    def _entry(shard: Path, key: str, group: dict[str, bytes], parquet: dict, broken: bool = False) -> Entry:
        metadata: dict[str, Any] = dict(parquet.get(key, {}))
        if "json" in group:
            try:
                value = json.loads(group["json"])
                metadata.update(value if isinstance(value, dict) else {"json": value})
            except ValueError:
                log.warning("%s: %s.json is not valid JSON; its metadata is ignored", shard.name, key)
        if "txt" in group and "caption" not in metadata:
            metadata["caption"] = group["txt"].decode("utf-8", "replace")
        entry_key = f"{shard.stem}/{key}"
        image = next((group[e] for e in IMAGE_EXTENSIONS if e in group), None)
        if image is None or broken:
            reason = (
                "its image was cut off"
                if broken
                else f"it holds no image (only {', '.join(sorted(group)) or 'nothing'})"
            )
            return Entry(
                key=entry_key, metadata=metadata, error=ImageError(f"{entry_key}: {reason}.", code="missing_file")
            )
        return Entry(key=entry_key, metadata=metadata, data=image)
