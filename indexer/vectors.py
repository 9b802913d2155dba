"""Each dataset's face vectors, stored once: a float16 array on disk that readers memory-map.

    vectors/<id>.npy       float16, one row per face, in the order of the faces' SQLite keys
    vectors/<id>.ids.npy   int64, those keys, ascending: row i holds the face whose key is ids[i]

Both are plain NumPy files (``np.load(path, mmap_mode="r")`` reads them). The rows serve exact
search, the exact re-ranking of a compressed index's candidates, the gallery statistics and any
rebuild with another index type, so that no image is read twice.

A build appends each chunk's rows before the chunk's SQLite transaction commits (``VectorWriter``):
the file never holds fewer rows than SQLite has faces, and rows that a killed writer appended
without committing are cut off when the build resumes. SQLite assigns keys in increasing order, so
the n-th face of a dataset is its n-th row. The header is written with room for the final shape
and rewritten when the dataset is finished; no reader opens the file before the manifest names the
dataset.

Half precision halves the file against float32 and moves a cosine by at most 2^-11 (each
component is rounded by at most 2^-11 of itself, and the rounding errors weigh at most |q||v| = 1);
exact search and re-ranking both compute from these same values, so they agree.
"""

from __future__ import annotations

import io
import mmap
import os
from pathlib import Path

import numpy as np

from .atomic import atomic_path, fsync_dir
from .errors import IndexCorrupt

DTYPE = np.dtype("<f2")
#: NumPy pads a header so that the first dimension can grow to 21 digits in place: 128 bytes for
#: (rows, dimension) of this dtype, whatever the row count.
HEADER_BYTES = 128


def _header(rows: int, dimension: int) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": DTYPE.str, "fortran_order": False, "shape": (int(rows), int(dimension))}
    )
    header = buffer.getvalue()
    if len(header) != HEADER_BYTES:  # a NumPy that pads differently: refuse rather than misplace rows
        raise RuntimeError(f"unexpected .npy header length {len(header)} (expected {HEADER_BYTES})")
    return header


def ids_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".npy") + ".ids.npy")


class VectorWriter:
    """Appends the rows of a dataset being built; SQLite's faces are what counts as committed."""

    def __init__(self, path: Path, dimension: int, committed: int) -> None:
        self.path = Path(path)
        self.dimension = int(dimension)
        self.row_bytes = self.dimension * DTYPE.itemsize
        if not self.path.exists():
            if committed:
                raise IndexCorrupt(
                    f"{self.path} is missing, but {committed} faces were recorded for it; remove the dataset "
                    "(`photocheck index remove`) and add it again."
                )
            with open(self.path, "wb") as f:
                f.write(_header(0, self.dimension))
                f.flush()
                os.fsync(f.fileno())
            fsync_dir(self.path.parent)  # the new file's directory entry, or a crash may lose it
        held = (self.path.stat().st_size - HEADER_BYTES) // self.row_bytes
        if held < committed:
            raise IndexCorrupt(
                f"{self.path} holds {held} face vectors but {committed} faces were recorded; remove the dataset "
                "(`photocheck index remove`) and add it again."
            )
        self.rows = committed
        self.truncate(committed)  # what a writer killed before its SQLite commit left behind

    def _end(self, rows: int) -> int:
        return HEADER_BYTES + rows * self.row_bytes

    def append(self, vectors: np.ndarray) -> None:
        """Write rows after the last committed one, durably, before the caller commits them."""
        data = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, self.dimension), dtype=DTYPE)
        if not len(data):
            return
        with open(self.path, "r+b") as f:
            f.seek(self._end(self.rows))
            f.write(data.tobytes())
            f.truncate()
            f.flush()
            os.fsync(f.fileno())
        self.rows += len(data)

    def truncate(self, rows: int) -> None:
        """Back to ``rows`` rows: cut off what was appended for a commit that failed or never came."""
        if self.path.stat().st_size != self._end(rows):
            with open(self.path, "r+b") as f:
                f.truncate(self._end(rows))
                f.flush()
                os.fsync(f.fileno())
        self.rows = rows

    def finish(self, ids: np.ndarray) -> None:
        """Record the final shape in the header, and the row's keys beside the rows."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) != self.rows:
            raise IndexCorrupt(f"{self.path} holds {self.rows} face vectors, but {len(ids)} faces were recorded.")
        if len(ids) > 1 and not (np.diff(ids) > 0).all():
            raise IndexCorrupt(f"the faces of {self.path} are not in key order.")
        with open(self.path, "r+b") as f:
            f.write(_header(self.rows, self.dimension))
            f.flush()
            os.fsync(f.fileno())
        with atomic_path(ids_path(self.path)) as tmp, open(tmp, "wb") as f:
            np.save(f, ids)


def _map(path: Path, dtype: np.dtype, columns: int | None, random: bool) -> np.ndarray:
    """A read-only memory map of a .npy file, without reading its contents."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran_order, found = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran_order, found = np.lib.format.read_array_header_2_0(f)
        offset = f.tell()
        expected_shape = len(shape) == (1 if columns is None else 2) and (columns is None or shape[1] == columns)
        if found != dtype or fortran_order or not expected_shape:
            raise IndexCorrupt(f"{path} is not a {dtype} array of the expected shape (it is {found}, {shape}).")
        rows = int(shape[0])
        width = 1 if columns is None else columns
        if os.fstat(f.fileno()).st_size < offset + rows * width * dtype.itemsize:
            raise IndexCorrupt(f"{path} is shorter than its header says ({rows} rows).")
        if rows == 0:
            return np.empty(shape, dtype)
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if random and hasattr(mapped, "madvise"):
        # A re-ranking reads a few hundred scattered rows (and their keys): read-ahead would pull in
        # 32 pages around each one, filling the cache (and every worker's resident set) with rows
        # nobody asked for.
        mapped.madvise(mmap.MADV_RANDOM)
    return np.frombuffer(mapped, dtype=dtype, count=rows * width, offset=offset).reshape(shape)


def open_vectors(path: Path, dimension: int) -> np.ndarray:
    """The dataset's rows, float16, memory-mapped read-only (pages are read when touched)."""
    return _map(Path(path), DTYPE, dimension, random=True)


def open_ids(path: Path) -> np.ndarray:
    """The faces' keys, one per row, memory-mapped read-only."""
    return _map(ids_path(Path(path)), np.dtype("<i8"), None, random=True)  # looked up a few at a time


def open_rows(path: Path, dimension: int, rows: int) -> np.ndarray:
    """The first ``rows`` rows of an array, memory-mapped read-only, whatever its header says (the
    header of a build that is not finished yet does not count its rows)."""
    path = Path(path)
    if rows == 0:
        return np.empty((0, dimension), DTYPE)
    if not path.exists():
        raise IndexCorrupt(f"{path} is missing; remove the dataset and add it again.")
    held = (path.stat().st_size - HEADER_BYTES) // (dimension * DTYPE.itemsize)
    if held < rows:
        raise IndexCorrupt(f"{path} holds {held} vectors for {rows} faces; remove the dataset and add it again.")
    return np.memmap(path, dtype=DTYPE, mode="r", offset=HEADER_BYTES, shape=(rows, dimension))


def read_rows(vectors: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` as float32 (how FAISS takes them)."""
    return np.ascontiguousarray(vectors[start:stop], dtype=np.float32)
