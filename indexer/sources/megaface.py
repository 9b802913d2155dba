"""MegaFace-style Flickr sets: a folder per Flickr account, files named by Flickr photo id.

MegaFace's distractor set (``FlickrFinal2``) is laid out as ``<3 digits>/<owner NSID>/<photo id>_<face>.jpg``
(e.g. ``901/9019583@N08/8032652775_0.jpg``), each image with a ``.jpg.json`` sidecar holding the face's
``bounding_box`` and ``landmarks``. Other Flickr sets follow the same idea: an owner folder and
photo files named ``<photo id>.jpg`` or ``<photo id>_<secret>_<size>.jpg`` as Flickr serves them.

Everything a folder source keeps is kept (key: the relative path; the JSON sidecar), and the layout's
own facts are added: ``flickr_nsid`` (the nearest enclosing folder named like an NSID),
``flickr_photo_id`` (the file name's leading digits) and ``face_index`` (the ``_<face>`` number).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..lookup import NSID
from .base import Entry
from .folder import FolderSource

#: <photo id>, then an optional face number (MegaFace) or Flickr's _<secret>[_<size>] suffix.
PHOTO_FILE = re.compile(r"^(?P<photo>\d{4,20})(?:_(?P<face>\d{1,3})(?=\.|$)|_[0-9a-f]{6,}(?:_[a-z0-9]{1,2})?(?=\.|$))?")
#: MegaFace's own top folder.
MEGAFACE_ROOT = "FlickrFinal2"


def looks_like_megaface(path: Path) -> bool:
    """A folder with MegaFace's FlickrFinal2 folder, or with NSID-named folders one or two levels down."""
    if path.name == MEGAFACE_ROOT or (path / MEGAFACE_ROOT).is_dir():
        return True
    return any(NSID.match(folder.name) for _, folder in _folders(path, levels=2, limit=200))


def _folders(root: Path, levels: int, limit: int) -> Iterator[tuple[int, Path]]:
    """Subfolders breadth-first, at most ``limit`` of them, so detection stays cheap on a huge set."""
    frontier, seen = [root], 0
    for depth in range(1, levels + 1):
        following = []
        for folder in frontier:
            try:
                children = sorted(e.path for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
            except OSError:
                continue
            for child in children:
                seen += 1
                if seen > limit:
                    return
                yield depth, Path(child)
                following.append(Path(child))
        frontier = following


def flickr_facts(relative: str) -> dict[str, Any]:
    """What a MegaFace-style path says about its photo: owner NSID, photo id, face number."""
    parts = relative.split("/")
    facts: dict[str, Any] = {}
    owner = next((p for p in reversed(parts[:-1]) if NSID.match(p)), None)
    if owner:
        facts["flickr_nsid"] = owner
    match = PHOTO_FILE.match(parts[-1])
    if match:
        facts["flickr_photo_id"] = match.group("photo")
        if match.group("face") is not None:
            facts["face_index"] = int(match.group("face"))
    return facts


class MegaFaceSource(FolderSource):
    format = "megaface"

    def __iter__(self) -> Iterator[Entry]:
        for entry in super().__iter__():
            # The sidecar's own fields win: it is the set's metadata, the path only our reading of it.
            entry.metadata = {**flickr_facts(entry.key), **entry.metadata}
            yield entry
