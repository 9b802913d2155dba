"""FFHQ as NVIDIA distributes it: ``ffhq-dataset-v2.json`` beside its image folders.

The JSON maps each image's index to ``metadata`` (the original Flickr photo: ``photo_url``,
``photo_title``, ``author``, ``license``, ``license_url``, ``country``, dates), ``image`` (the aligned
1024x1024 PNG: ``file_path`` such as ``images1024x1024/00000/00000.png``), ``thumbnail``
(128x128) and ``in_the_wild`` (the original photo, with ``face_rect``). Entries are read from the
folder that is on disk, in this order: images1024x1024, in-the-wild-images, thumbnails128x128.

Key: the image's ``file_path``. Metadata: the Flickr photo's fields, the FFHQ index and category
(training/validation), and for in-the-wild images the face rectangle. Every image the JSON lists
becomes an entry, also those whose file is missing (a partial download): they are reported as
missing, and their metadata still answers Flickr lookups.

The JSON is 255 MB with 68 landmarks per image; it is decoded one image at a time, so memory holds
the text and one record, not the whole document as Python objects.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ImageError, SourceError
from .base import Entry, Source, read_file

log = logging.getLogger("photocheck")

METADATA_FILE = "ffhq-dataset-v2.json"
#: (the JSON's section, its folder), most useful first: the aligned set is what FFHQ is.
IMAGE_KINDS = (("image", "images1024x1024"), ("in_the_wild", "in-the-wild-images"), ("thumbnail", "thumbnails128x128"))
PHOTO_FIELDS = (
    "photo_url",
    "photo_title",
    "author",
    "country",
    "license",
    "license_url",
    "date_uploaded",
    "date_crawled",
)


def looks_like_ffhq(path: Path) -> bool:
    """A JSON whose first record has FFHQ's ``metadata.photo_url`` and ``image.file_path``."""
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(65536)
    except OSError:
        return False
    return '"photo_url"' in head and '"file_path"' in head and '"metadata"' in head


def iter_records(text: str, source: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(key, value) of a top-level JSON object, decoded one value at a time."""
    decoder = json.JSONDecoder()
    position = _skip(text, 0)
    if position >= len(text) or text[position] != "{":
        raise SourceError(f"{source} is not FFHQ metadata: it does not hold a JSON object.")
    position = _skip(text, position + 1)
    if position < len(text) and text[position] == "}":
        return
    while True:
        try:
            key, position = decoder.raw_decode(text, position)
            position = _skip(text, position)
            if text[position] != ":":
                raise ValueError("expected ':'")
            value, position = decoder.raw_decode(text, _skip(text, position + 1))
        except (ValueError, IndexError) as exc:
            raise SourceError(f"{source} is not valid JSON near character {position}: {exc}.") from exc
        if not isinstance(key, str) or not isinstance(value, dict):
            raise SourceError(f"{source}: record {key!r} is not an FFHQ image record.")
        yield key, value
        position = _skip(text, position)
        if position < len(text) and text[position] == ",":
            position = _skip(text, position + 1)
            continue
        if position < len(text) and text[position] == "}":
            return
        raise SourceError(f"{source} is not valid JSON near character {position}: expected ',' or '}}'.")


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


class FFHQSource(Source):
    format = "ffhq"

    def __init__(self, path: Path) -> None:
        if path.is_dir():
            metadata = path / METADATA_FILE
            if not metadata.is_file():
                raise SourceError(f"{path} has no {METADATA_FILE}; give the folder that holds it, or the JSON itself.")
        else:
            metadata, path = path, path.parent
        super().__init__(path)
        self.metadata_path = metadata
        self._records: list[tuple[str, dict[str, Any]]] | None = None
        self._kind: tuple[str, str] | None = None

    def _read(self) -> list[tuple[str, dict[str, Any]]]:
        if self._records is None:
            try:
                text = self.metadata_path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise SourceError(f"{self.metadata_path} cannot be read: {exc}.") from exc
            # Keep only what the entries need: the landmarks are most of the file.
            self._records = [(key, self._slim(key, value)) for key, value in iter_records(text, self.metadata_path)]
            del text
        return self._records

    @staticmethod
    def _slim(key: str, record: dict[str, Any]) -> dict[str, Any]:
        photo = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
        slim: dict[str, Any] = {"ffhq_index": key, "category": record.get("category")}
        slim.update({f: photo[f] for f in PHOTO_FIELDS if photo.get(f) not in (None, "")})
        for section, _ in IMAGE_KINDS:
            part = record.get(section)
            if isinstance(part, dict) and isinstance(part.get("file_path"), str):
                slim[f"_{section}_path"] = part["file_path"]
                if section == "in_the_wild" and part.get("face_rect"):
                    slim["_face_rect"] = part["face_rect"]
        return slim

    def _chosen_kind(self) -> tuple[str, str]:
        if self._kind is None:
            present = [kind for kind in IMAGE_KINDS if (self.path / kind[1]).is_dir()]
            self._kind = present[0] if present else IMAGE_KINDS[0]
            if not present:
                log.warning(
                    "%s: none of %s is here; every image will be reported missing (their metadata still "
                    "answers Flickr lookups)",
                    self.path,
                    ", ".join(folder for _, folder in IMAGE_KINDS),
                )
            else:
                log.info("FFHQ: reading %s", self._kind[1])
        return self._kind

    def count(self) -> int:
        return len(self._read())

    def describe(self) -> str:
        return f"ffhq {self.metadata_path}"

    def __iter__(self) -> Iterator[Entry]:
        section, folder = self._chosen_kind()
        records = self._read()
        missing = sum(1 for _, r in records if not (self.path / str(r.get(f"_{section}_path", ""))).is_file())
        if missing:
            log.warning(
                "%s lists %d images; %d of them are not on disk under %s: they are reported as missing, and "
                "their metadata still answers Flickr lookups",
                self.metadata_path.name,
                len(records),
                missing,
                folder,
            )
        for key, record in records:
            relative = record.get(f"_{section}_path")
            metadata = {k: v for k, v in record.items() if not k.startswith("_")}
            if section == "in_the_wild" and "_face_rect" in record:
                metadata["face_rect"] = record["_face_rect"]
            if not relative:
                yield Entry(
                    key=f"{folder}/{key}",
                    metadata=metadata,
                    error=ImageError(f"FFHQ record {key} names no {section} file.", code="missing_file"),
                )
                continue
            yield Entry(key=relative, metadata=metadata, reader=read_file(self.path / relative))
