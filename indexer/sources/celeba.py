"""CelebA as CUHK MMLab distributes it: an image folder beside its annotation files.

Recognised layouts (the first that is present wins):

    Img/img_celeba/ or Img/img_align_celeba/   with Anno/identity_CelebA.txt, Anno/list_bbox_celeba.txt
    img_celeba/ or img_align_celeba/           with the .txt files beside them (torchvision's layout)

``identity_CelebA.txt`` holds ``000001.jpg 2880`` per line; ``list_bbox_celeba.txt`` a count line,
a header (``image_id x_1 y_1 width height``) and a box per image. Key: the image's file name.
Metadata: ``identity`` (the person's number in CelebA), ``bbox`` ([x, y, width, height], which
CelebA annotates on the in-the-wild images, img_celeba) and ``partition`` (train/val/test, from
Eval/list_eval_partition.txt when it is there). The images on disk are read, in name order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import SourceError
from .base import Entry, Source, read_file
from .folder import METADATA_SUFFIXES

log = logging.getLogger("photocheck")

IDENTITY_FILE = "identity_CelebA.txt"
BBOX_FILE = "list_bbox_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IMAGE_FOLDERS = ("Img/img_celeba", "Img/img_align_celeba", "img_celeba", "img_align_celeba", "Img")
PARTITIONS = {"0": "train", "1": "val", "2": "test"}


def annotation(root: Path, name: str) -> Path | None:
    for candidate in (root / "Anno" / name, root / "Eval" / name, root / name):
        if candidate.is_file():
            return candidate
    return None


def looks_like_celeba(root: Path) -> bool:
    return annotation(root, IDENTITY_FILE) is not None or annotation(root, BBOX_FILE) is not None


class CelebASource(Source):
    format = "celeba"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        if not looks_like_celeba(path):
            raise SourceError(f"{path} has neither {IDENTITY_FILE} nor {BBOX_FILE} (in it or in Anno/).")
        self.images = self._image_folder(path)
        self._files: list[Path] | None = None
        self._annotations: dict[str, dict[str, Any]] | None = None

    @staticmethod
    def _image_folder(root: Path) -> Path:
        for name in IMAGE_FOLDERS:
            folder = root / name
            if folder.is_dir():
                nested = folder / folder.name  # Kaggle's copy nests img_align_celeba/img_align_celeba/
                return nested if nested.is_dir() else folder
        raise SourceError(
            f"{root} has CelebA's annotations but no image folder ({', '.join(IMAGE_FOLDERS[:4])}); "
            "unpack img_celeba.7z or img_align_celeba.zip there."
        )

    def _list(self) -> list[Path]:
        if self._files is None:
            self._files = sorted(
                p
                for p in self.images.iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in METADATA_SUFFIXES
            )
        return self._files

    def _read_annotations(self) -> dict[str, dict[str, Any]]:
        if self._annotations is not None:
            return self._annotations
        found: dict[str, dict[str, Any]] = {}
        identity = annotation(self.path, IDENTITY_FILE)
        if identity:
            for number, fields in _rows(identity):
                if len(fields) != 2 or not fields[1].isdigit():
                    got = " ".join(fields)
                    raise SourceError(f"{identity}, line {number}: expected 'IMAGE IDENTITY', got {got!r}.")
                found.setdefault(fields[0], {})["identity"] = int(fields[1])
        boxes = annotation(self.path, BBOX_FILE)
        if boxes:
            for number, fields in _rows(boxes):
                if number <= 2 and (len(fields) == 1 or fields[0] == "image_id"):
                    continue  # the count line and the header
                if len(fields) != 5 or not all(f.lstrip("-").isdigit() for f in fields[1:]):
                    raise SourceError(f"{boxes}, line {number}: expected 'IMAGE X Y WIDTH HEIGHT'.")
                found.setdefault(fields[0], {})["bbox"] = [int(f) for f in fields[1:]]
        partition = annotation(self.path, PARTITION_FILE)
        if partition:
            for _, fields in _rows(partition):
                if len(fields) == 2 and fields[1] in PARTITIONS:
                    found.setdefault(fields[0], {})["partition"] = PARTITIONS[fields[1]]
        self._annotations = found
        return found

    def count(self) -> int:
        return len(self._list())

    def describe(self) -> str:
        return f"celeba {self.images}"

    def __iter__(self) -> Iterator[Entry]:
        annotations = self._read_annotations()
        files = self._list()
        unannotated = sum(1 for p in files if p.name not in annotations)
        if unannotated:
            log.warning("%d of %d CelebA images have no annotation line", unannotated, len(files))
        for path in files:
            yield Entry(key=path.name, metadata=dict(annotations.get(path.name, {})), reader=read_file(path))


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                fields = line.split()
                if fields:
                    yield number, fields
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path} cannot be read: {exc}.") from exc
