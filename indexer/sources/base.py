"""What every reader of a disclosed set yields: entries with a stable key, bytes and metadata."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..errors import ImageError


@dataclass
class Entry:
    """One image of a dataset. ``key`` is stable across runs, so an interrupted build can resume."""

    key: str
    metadata: dict[str, Any] = field(default_factory=dict)
    data: bytes | None = None
    reader: Callable[[], bytes] | None = None
    #: Set when the source already knows the entry cannot be read (a missing file, a broken tar member).
    error: ImageError | None = None
    #: The file holding the bytes, when there is one: a reader on another machine opens it there (Ray).
    path: Path | None = None

    def read(self) -> bytes:
        if self.error is not None:
            raise self.error
        if self.data is not None:
            return self.data
        if self.reader is None:
            raise ImageError(f"{self.key}: the source gave no bytes for this entry.")
        return self.reader()


class Source(ABC):
    """A disclosed training set on disk, read in a deterministic order."""

    format: ClassVar[str]

    def __init__(self, path: Path) -> None:
        self.path = path

    @abstractmethod
    def __iter__(self) -> Iterator[Entry]: ...

    def count(self) -> int | None:
        """How many entries to expect, when that is cheap to know (for the progress bar)."""
        return None

    def describe(self) -> str:
        return f"{self.format} {self.path}"


def read_file(path: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ImageError(f"{path} does not exist.", code="missing_file") from None
        except OSError as exc:
            raise ImageError(f"{path} could not be read: {exc.strerror or exc}.", code="unreadable_file") from None

    return read
