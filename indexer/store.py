"""The index on disk: FAISS vectors, SQLite metadata and a manifest, one directory for many datasets.

Layout of an index directory::

    manifest.json         what built the index and which datasets are live (the commit point)
    metadata.sqlite       datasets, entries (one per image read) and faces (box, detection score)
    vectors/<id>.npy      each face's vector, float16, once (see vectors.py); <id>.ids.npy their keys
    vectors/<id>.faiss    one FAISS index per dataset; FAISS ids are the ``faces`` primary keys
                          (<id>-v<n>.faiss after ``photocheck index rebuild``: a new name each time)
    reports/<name>-bad-images.csv   the images a build could not use, with the reason
    .lock                 held by whoever writes

Writes follow one protocol, so that the index on disk is never half-written: a FAISS file is
written beside its final name and renamed into place; a chunk's vectors are appended to the
dataset's array before its SQLite transaction commits; then the manifest, which names the live
datasets, is replaced in one rename. Readers start from the manifest, so they see either the old
index or the new one. A writer that died between two steps leaves rows that the next writer
reconciles (``_reconcile``, ``VectorWriter``).

The vector array keeps every face, so a dataset's FAISS index can be rebuilt with another type
without reading the images again, and a killed build resumes where its last chunk was committed.
Readers map the FAISS files and the arrays read-only (``FaceIndex``): the workers of one service
share their pages, and a worker starts without reading them.

Indexes written before the vectors moved out of SQLite (format 1) are still served as they are;
``migrate`` (``photocheck index migrate``) brings them up to date before anything is written.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import logging
import math
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import lookup
from .atomic import atomic_path, write_atomic
from .errors import (
    DatasetExists,
    DatasetNotFound,
    IndexBusy,
    IndexCorrupt,
    IndexMismatch,
    IndexNotFound,
    IndexOutdated,
    PhotocheckError,
    SourceError,
)
from .vectors import VectorWriter, ids_path, open_ids, open_rows, open_vectors, read_rows

log = logging.getLogger("photocheck")

FORMAT = "photocheck-index"
#: 2: each face's vector in vectors/<id>.npy; 1: in SQLite, a float32 BLOB per face (``migrate``).
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
DATABASE = "metadata.sqlite"
VECTORS = "vectors"
REPORTS = "reports"
LOCK = ".lock"

#: Up to this many faces a dataset is searched exactly (float32 copies of its vectors, 520 bytes a
#: face with its id); above it, an inverted file of compressed codes whose best candidates are
#: re-ranked exactly. See ``choose_index_type`` for the measurements behind these settings.
EXACT_SEARCH_LIMIT = 100_000
#: The codes of the compressed type (see ``choose_index_type``).
COMPRESSED_CODES = "RaBitQ"
#: Lists an inverted file of L lists probes: PROBED_PER_ROOT * sqrt(L) (see ``choose_index_type``).
PROBED_PER_ROOT = 6
#: Candidates of a compressed search re-ranked with exact scores from the dataset's vectors.
RERANK = 1024
#: Vectors converted to float32 at a time when an index is built (128-d: 128 MB).
BUILD_CHUNK = 262_144
#: Vectors the inverted file's lists and codes are trained on: this many, or 40 per list (what
#: FAISS's k-means asks for) when that is more.
TRAINING_SAMPLE = 200_000


def default_nprobe(lists: int) -> int:
    return max(16, min(lists, round(PROBED_PER_ROOT * math.sqrt(lists))))


SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('building', 'complete', 'replaced', 'removing')),
    title TEXT,
    description TEXT,
    disclosure_url TEXT,
    removal_url TEXT,
    date TEXT,
    license TEXT,
    evidence INTEGER NOT NULL DEFAULT 0,
    source TEXT,
    source_format TEXT,
    index_type TEXT,
    search_params TEXT,
    index_file TEXT,
    entry_counts TEXT,
    catalog TEXT,
    created_at TEXT NOT NULL,
    completed_at TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS datasets_live_name ON datasets(name) WHERE status = 'complete';
CREATE UNIQUE INDEX IF NOT EXISTS datasets_building_name ON datasets(name) WHERE status = 'building';
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    dataset_id INTEGER NOT NULL REFERENCES datasets(id),
    key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('indexed', 'no_face', 'too_small', 'bad')),
    faces INTEGER NOT NULL DEFAULT 0,
    small_faces INTEGER NOT NULL DEFAULT 0,
    error_code TEXT,
    error_message TEXT,
    metadata TEXT,
    UNIQUE (dataset_id, key)
);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    dataset_id INTEGER NOT NULL REFERENCES datasets(id),
    entry_id INTEGER NOT NULL REFERENCES entries(id),
    face_number INTEGER NOT NULL,
    x REAL NOT NULL, y REAL NOT NULL, w REAL NOT NULL, h REAL NOT NULL,
    score REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_dataset ON faces(dataset_id);
CREATE TABLE IF NOT EXISTS dataset_stats (
    dataset_id INTEGER PRIMARY KEY REFERENCES datasets(id),
    count INTEGER NOT NULL,
    mean BLOB NOT NULL,
    covariance BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_entry ON faces(entry_id);
"""

DATASET_FIELDS = ("title", "description", "disclosure_url", "removal_url", "date", "license", "evidence", "catalog")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def choose_index_type(count: int) -> str:
    """The FAISS factory string for a dataset of ``count`` faces.

    Exact search up to ``EXACT_SEARCH_LIMIT`` faces: a query costs time in proportion to N (2 ms at
    100,000 faces on the development machine, 22 ms at a million, 190 ms at ten million). Above it,
    an inverted file of about 4 sqrt(N) lists holding RaBitQ codes (one bit a dimension and two
    factors: 33-34 bytes a face with its id), of which a search probes ``default_nprobe`` (384 of
    4,096 lists at a million faces, 768 of 16,384 at ten million); its ``RERANK`` best candidates
    are scored again exactly from the dataset's vectors (``FaceIndex``), so that the best score,
    which the confidence is computed from, is exact whenever exact search's best face is among them.
    On faces drawn like dlib's (``bench/index_types.py``): recall@1 against exact search 0.997 at a
    million faces in 1.9 ms a query, 0.992 at ten million in 7.2 ms.

    Why these. RaBitQ codes live in ordinary inverted lists, which FAISS memory-maps in place; the
    faster fast-scan codes (4-bit PQ, RaBitQ fast-scan) live in block lists that FAISS copies into
    each worker's memory. 8-bit PQ scanned no faster and trained several times slower; half-precision
    vectors (the type before) take 266 bytes a face. With more lists a smaller share of them reaches
    the same recall (0.99 takes about a tenth of 4,096 lists, a twentieth of 16,384), hence probes
    in proportion to the square root of the lists. At ten million faces the 1-bit codes of the
    625,000 faces a search scans rank the best face below the 256th often enough to cost recall
    (0.988 with 256 candidates, 0.993 with 1,024, at 1,024 lists probed); re-ranking 1,024 reads
    1,024 rows of the array, 0.3 ms when they are in the page cache.
    """
    if count <= EXACT_SEARCH_LIMIT:
        return "IDMap2,Flat"
    lists = 2 ** round(math.log2(4 * math.sqrt(count)))
    return f"IVF{lists},{COMPRESSED_CODES}"


def is_exact(factory: str) -> bool:
    parts = factory.split(",")
    return parts[-1] == "Flat" and all(part.startswith("IDMap") for part in parts[:-1])


def build_faiss_index(
    vectors: np.ndarray,
    ids: np.ndarray,
    factory: str,
    *,
    nprobe: int | None = None,
    rerank: int | None = None,
    progress=None,
):
    """A FAISS index over ``vectors`` (L2-normalised; float32, or the store's float16 rows, read a
    chunk at a time), searched with ``cosine_scores``, with its search settings (``search_params``)
    applied.

    Exact search uses inner products, which are cosines. Approximate types use L2 distances, which
    rank unit vectors the same way: face embeddings fill a narrow cone (dlib's different-person
    cosines sit near 0.84), where an inverted file's inner-product assignment to centroids of
    unequal length loses recall and k-means in L2 does not.
    """
    import faiss

    dimension = vectors.shape[1]
    metric = faiss.METRIC_INNER_PRODUCT if is_exact(factory) else faiss.METRIC_L2
    try:
        index = faiss.index_factory(dimension, factory, metric)
    except RuntimeError as exc:
        raise PhotocheckError(f"FAISS cannot build {factory!r}: {exc}", code="bad_index_type") from exc
    if not index.is_trained:
        rng = np.random.default_rng(0)
        sample_size = TRAINING_SAMPLE
        with contextlib.suppress(RuntimeError):
            sample_size = max(sample_size, 40 * faiss.extract_index_ivf(index).nlist)
        if len(vectors) <= sample_size:
            sample = read_rows(vectors, 0, len(vectors))
        else:  # rows in file order: a sorted sample reads the array front to back
            rows = np.sort(rng.choice(len(vectors), sample_size, replace=False))
            sample = np.ascontiguousarray(vectors[rows], dtype=np.float32)
        index.train(sample)
        del sample
    if not _supports_ids(index):
        index = faiss.IndexIDMap2(index)
    ids = np.asarray(ids, dtype=np.int64)
    for start in range(0, len(vectors), BUILD_CHUNK):
        stop = min(start + BUILD_CHUNK, len(vectors))
        index.add_with_ids(read_rows(vectors, start, stop), np.ascontiguousarray(ids[start:stop]))
        if progress is not None:
            progress(stop)
    apply_search_params(index, search_params(index, factory, nprobe, rerank))
    return index


def search_params(index, factory: str, nprobe: int | None = None, rerank: int | None = None) -> dict[str, Any]:
    """What a reader must set to search ``index`` (built from ``factory``) as it was meant to be
    searched: the lists an inverted file probes, and how many candidates an approximate type has
    re-ranked exactly."""
    import faiss

    params: dict[str, Any] = {}
    with contextlib.suppress(RuntimeError):
        ivf = faiss.extract_index_ivf(index)
        params["nprobe"] = int(nprobe or default_nprobe(ivf.nlist))
    if not is_exact(factory):
        params["rerank"] = int(rerank or RERANK)
    return params


def cosine_scores(index, raw: np.ndarray) -> np.ndarray:
    """FAISS's answer as cosine similarities, whichever metric the index uses."""
    import faiss

    if index.metric_type == faiss.METRIC_L2:
        return 1.0 - raw / 2.0  # squared distance between unit vectors
    return raw


def _supports_ids(index) -> bool:
    import faiss

    return isinstance(index, faiss.IndexIDMap | faiss.IndexIVF)


def apply_search_params(index, params: dict[str, Any]) -> None:
    import faiss

    with contextlib.suppress(RuntimeError):
        ivf = faiss.extract_index_ivf(index)
        if "nprobe" in params:
            ivf.nprobe = int(params["nprobe"])


def read_faiss_index(path: Path):
    """A FAISS file memory-mapped read-only: its codes are read from the page cache when a search
    touches them, so a worker starts without reading them and the workers of one service share
    one copy. (``IO_FLAG_MMAP_IFC`` maps the arrays in place; the older ``IO_FLAG_MMAP`` maps an
    inverted file through ``OnDiskInvertedLists``, which searched 2-3 times slower here.)"""
    import faiss

    return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)


class FaceIndex:
    """A dataset's index opened for searching: the FAISS index, and, for approximate types, the
    dataset's vectors to re-rank its best candidates with exact scores."""

    def __init__(self, index, vectors: np.ndarray | None = None, ids: np.ndarray | None = None, rerank: int = 0):
        self.index = index
        self.vectors = vectors
        self.ids = ids
        self.rerank = int(rerank) if vectors is not None else 0
        # A dataset built in one go has consecutive keys: a face's row is then its key less the first
        # one, without a binary search through the memory-mapped keys (0.4 ms for 256 faces at 10M).
        self._first = (
            int(ids[0]) if ids is not None and len(ids) and int(ids[-1]) - int(ids[0]) + 1 == len(ids) else None
        )

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best (cosine similarities, face ids) for one L2-normalised query, best first.

        Re-ranked, the scores are exact: each is the query's cosine with the face's stored vector,
        as exact search over those vectors computes it (in float64, rounded once to float32, so
        that the order of the sum cannot change the rounding)."""
        query = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))
        count = self.ntotal
        if count == 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        if not self.rerank:
            raw, found = self.index.search(query, min(k, count))
            keep = found[0] >= 0
            return cosine_scores(self.index, raw[0][keep]).astype(np.float32), found[0][keep]
        _, found = self.index.search(query, min(max(k, self.rerank), count))
        found = found[0][found[0] >= 0]
        if self._first is not None:
            # Consecutive keys: a row within bounds holds its face, without reading the keys again.
            rows = found - self._first
            missing = len(rows) and (rows.min() < 0 or rows.max() >= len(self.ids))
        else:
            rows = np.searchsorted(self.ids, found)
            missing = len(rows) and (rows.max() >= len(self.ids) or not np.array_equal(self.ids[rows], found))
        if missing:
            raise IndexCorrupt("a face of the index has no stored vector; rebuild the dataset.")
        scores = self.vectors[rows].astype(np.float64) @ query[0].astype(np.float64)
        best = np.argsort(-scores, kind="stable")[:k]
        return scores[best].astype(np.float32), found[best]


@dataclass
class GalleryStats:
    """Mean and covariance of a dataset's embeddings.

    With them, the mean and spread of a query's similarity to every face of the dataset are exact
    and cheap (q.m and q'Cq), whatever the dataset's size: the confidence uses them to judge how
    far the best match stands out from the crowd.
    """

    count: int
    mean: np.ndarray
    covariance: np.ndarray

    @classmethod
    def of(cls, vectors: np.ndarray) -> GalleryStats:
        """From the vectors (float32, or the store's float16 rows), a chunk at a time."""
        dimension = vectors.shape[1]
        if len(vectors) == 0:
            return cls(0, np.zeros(dimension, np.float32), np.zeros((dimension, dimension), np.float32))
        # Sums around the first vector, not the origin: the embeddings sit far from it, and sums of
        # squares around the origin would lose the spread to rounding.
        pivot = vectors[0].astype(np.float64)
        total = np.zeros(dimension, np.float64)
        products = np.zeros((dimension, dimension), np.float64)
        for start in range(0, len(vectors), BUILD_CHUNK):
            data = vectors[start : start + BUILD_CHUNK].astype(np.float64) - pivot
            total += data.sum(axis=0)
            products += data.T @ data
        shift = total / len(vectors)
        covariance = products / len(vectors) - np.outer(shift, shift)
        return cls(len(vectors), (pivot + shift).astype(np.float32), covariance.astype(np.float32))


@dataclass
class FaceRecord:
    face_number: int
    box: tuple[float, float, float, float]
    score: float
    embedding: np.ndarray


@dataclass
class EntryRecord:
    """The outcome of reading one image of a dataset."""

    key: str
    status: str  # indexed | no_face | too_small | bad
    metadata: dict[str, Any] = field(default_factory=dict)
    faces: list[FaceRecord] = field(default_factory=list)
    small_faces: int = 0
    error_code: str | None = None
    error_message: str | None = None


@dataclass
class DatasetInfo:
    id: int
    name: str
    status: str
    title: str | None
    description: str | None
    disclosure_url: str | None
    removal_url: str | None
    date: str | None
    license: str | None
    evidence: bool
    source: str | None
    source_format: str | None
    index_type: str | None
    search_params: dict[str, Any]
    created_at: str
    completed_at: str | None
    images: int = 0
    faces: int = 0
    no_face: int = 0
    too_small: int = 0
    bad: int = 0
    catalog: str | None = None  # the catalog entry it was added with (indexer/catalog.py)
    index_file: str | None = None  # under vectors/; None: <id>.faiss

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title or self.name,
            "description": self.description,
            "disclosure_url": self.disclosure_url,
            "removal_url": self.removal_url,
            "date": self.date,
            "license": self.license,
            "faces": self.faces,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.public(),
            "status": self.status,
            "evidence": self.evidence,
            "source": self.source,
            "source_format": self.source_format,
            "index_type": self.index_type,
            "catalog": self.catalog,
            "images": self.images,
            "no_face": self.no_face,
            "too_small": self.too_small,
            "bad": self.bad,
            "created_at": self.created_at,
            "completed_at": self.completed_at,
        }


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        if root.is_dir() and any(root.iterdir()):
            raise IndexNotFound(f"{root} is not a photocheck index (it has no {MANIFEST}).")
        raise IndexNotFound(
            f"There is no index at {root}. Build one with `photocheck index add --index {root} --dataset NAME SOURCE`."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"{path} cannot be read: {exc}.") from exc
    if manifest.get("format") != FORMAT:
        raise IndexCorrupt(f"{path} is not a photocheck index manifest.")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise IndexMismatch(
            f"{root} was written by a newer photocheck (format {manifest['format_version']}); upgrade photocheck."
        )
    return manifest


def check_embedder(manifest: dict[str, Any], described: dict[str, Any], root: Path) -> None:
    """Refuse to mix embeddings from different models in one index."""
    recorded = manifest["embedder"]
    for key in ("name", "model", "dimension"):
        if recorded.get(key) != described.get(key):
            raise IndexMismatch(
                f"The index at {root} was built with the {recorded['name']} embedder "
                f"({recorded['model']}, {recorded['dimension']}-d), not {described['name']} "
                f"({described['model']}, {described['dimension']}-d). Use --embedder {recorded['name']}, "
                "or build a separate index for the other embedder."
            )


class IndexStore:
    """Read and write access to one index directory. Writers hold ``.lock`` exclusively."""

    def __init__(self, root: Path, *, readonly: bool = False) -> None:
        self.root = Path(root)
        self.readonly = readonly
        self.manifest = read_manifest(self.root)
        self._conn: sqlite3.Connection | None = None
        self._writers: dict[int, VectorWriter] = {}

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def create_or_open(cls, root: Path, embedder: dict[str, Any], confidence: dict[str, Any]) -> IndexStore:
        """Open the index at ``root`` for writing, creating it for ``embedder`` when it is new."""
        root = Path(root)
        if (root / MANIFEST).is_file():
            store = cls(root)
            check_embedder(store.manifest, embedder, root)
            return store
        if root.exists() and not root.is_dir():
            raise IndexNotFound(f"{root} exists and is not a directory.")
        if root.is_dir() and any(p.name not in (LOCK, DATABASE, VECTORS, REPORTS) for p in root.iterdir()):
            raise IndexNotFound(f"{root} is not empty and is not a photocheck index; choose an empty or new folder.")
        (root / VECTORS).mkdir(parents=True, exist_ok=True)
        (root / REPORTS).mkdir(exist_ok=True)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "index_version": 0,
            "created_at": _now(),
            "updated_at": _now(),
            "embedder": embedder,
            "metric": "cosine",
            "confidence": confidence,
            "datasets": [],
        }
        write_atomic(root / MANIFEST, json.dumps(manifest, indent=2).encode())
        return cls(root)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            path = self.root / DATABASE
            if self.readonly:
                if not path.exists():
                    raise IndexCorrupt(f"{path} is missing; the index is incomplete.")
                self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            else:
                self._conn = sqlite3.connect(path, isolation_level=None)
                self._conn.execute("PRAGMA journal_mode=DELETE")  # readers then never write a -wal or -shm file
                self._conn.execute("PRAGMA synchronous=FULL")
                self._conn.executescript(SCHEMA)
                columns = {r[1] for r in self._conn.execute("PRAGMA table_info(datasets)")}
                for column in ("catalog", "index_file", "entry_counts"):  # indexes made before them
                    if column not in columns:
                        self._conn.execute(f"ALTER TABLE datasets ADD COLUMN {column} TEXT")
                lookup.create_schema(self._conn)
            self._conn.row_factory = sqlite3.Row
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> IndexStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock = open(self.root / LOCK, "a+")  # noqa: SIM115 - held for the block
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IndexBusy(
                    f"Another photocheck process is writing to {self.root}. Wait for it to finish, then retry."
                ) from None
            self.manifest = read_manifest(self.root)
            self._writers.clear()  # another process may have written since
            yield
        finally:
            self._writers.clear()
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()

    @property
    def outdated(self) -> bool:
        """Written by a photocheck that kept the vectors in SQLite: served as it is, written only
        after ``migrate``."""
        return int(self.manifest.get("format_version", 0)) < FORMAT_VERSION

    @contextlib.contextmanager
    def writing(self) -> Iterator[IndexStore]:
        """Hold the index's write lock; another writer gets ``index_busy`` at once."""
        with self._locked():
            if self.outdated:
                raise IndexOutdated(
                    f"The index at {self.root} was written by an older photocheck (format "
                    f"{self.manifest.get('format_version', 0)}, which kept each face's vector in SQLite). It can "
                    f"still be served as it is; to change it, run `photocheck index migrate --index {self.root}` "
                    "once (it moves the vectors out of SQLite), then this command again."
                )
            self._reconcile()
            lookup.backfill(self.conn)  # Flickr identifiers of datasets indexed before lookups existed
            yield self

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- the manifest -----------------------------------------------------------------------
    @property
    def embedder(self) -> dict[str, Any]:
        return self.manifest["embedder"]

    @property
    def index_version(self) -> int:
        return int(self.manifest["index_version"])

    def live_dataset_ids(self) -> list[int]:
        return [int(d["id"]) for d in self.manifest.get("datasets", [])]

    def _write_manifest(self, **changes: Any) -> None:
        manifest = dict(self.manifest)
        manifest.update(changes)
        rows = self.conn.execute(
            "SELECT d.id, d.name, (SELECT COUNT(*) FROM faces f WHERE f.dataset_id = d.id) AS faces "
            "FROM datasets d WHERE d.status = 'complete' ORDER BY d.name"
        ).fetchall()
        manifest["datasets"] = [{"id": r["id"], "name": r["name"], "faces": r["faces"]} for r in rows]
        manifest["index_version"] = self.index_version + 1
        manifest["updated_at"] = _now()
        write_atomic(self.root / MANIFEST, json.dumps(manifest, indent=2).encode())
        self.manifest = manifest

    def set_confidence(self, confidence: dict[str, Any]) -> None:
        self._write_manifest(confidence=confidence)

    def _reconcile(self) -> None:
        """Finish what a writer that died between two steps of a commit left behind."""
        conn = self.conn
        live = set(self.live_dataset_ids())
        complete = {r["id"] for r in conn.execute("SELECT id FROM datasets WHERE status = 'complete'")}
        leftovers = [r["id"] for r in conn.execute("SELECT id FROM datasets WHERE status IN ('replaced', 'removing')")]
        if complete != live:
            log.info("index manifest brought up to date with its metadata")
            self._write_manifest()
        for dataset_id in leftovers:
            if dataset_id not in set(self.live_dataset_ids()):
                self._delete_dataset_rows(dataset_id)

    # -- reading metadata -------------------------------------------------------------------
    def _dataset_from_row(self, row: sqlite3.Row, counts: dict[str, int] | None = None) -> DatasetInfo:
        values = dict(row)
        values.pop("entry_counts", None)
        values["evidence"] = bool(values["evidence"])
        values["search_params"] = json.loads(values["search_params"] or "{}")
        return DatasetInfo(**values, **(counts or {}))

    def _counts(self, dataset_id: int) -> dict[str, int]:
        counts = {"images": 0, "faces": 0, "no_face": 0, "too_small": 0, "bad": 0}
        for row in self.conn.execute(
            "SELECT status, COUNT(*) AS n, SUM(faces) AS f FROM entries WHERE dataset_id = ? GROUP BY status",
            (dataset_id,),
        ):
            counts["images"] += row["n"]
            counts["faces"] += row["f"] or 0
            if row["status"] in ("no_face", "too_small", "bad"):
                counts[row["status"]] = row["n"]
        return counts

    def datasets(self, *, include_unfinished: bool = False) -> list[DatasetInfo]:
        """Live datasets (those the manifest names), and unfinished builds when asked."""
        ids = self.live_dataset_ids()
        rows = [
            r
            for r in self.conn.execute("SELECT * FROM datasets ORDER BY name, id")
            if r["id"] in ids or (include_unfinished and r["status"] == "building")
        ]
        return [self._dataset_from_row(r, self._recorded_counts(r)) for r in rows]

    def _recorded_counts(self, row: sqlite3.Row) -> dict[str, int]:
        """A finished dataset's counts as recorded when it was finished (counting ten million entries
        takes seconds, which every service worker would spend starting), else counted now."""
        recorded = row["entry_counts"] if "entry_counts" in row.keys() else None  # noqa: SIM118 - a Row
        if row["status"] == "complete" and recorded:
            return json.loads(recorded)
        return self._counts(row["id"])

    def dataset(self, name: str) -> DatasetInfo:
        for info in self.datasets():
            if info.name == name:
                return info
        raise DatasetNotFound(f"The index at {self.root} has no dataset named {name!r}.")

    def building(self, name: str) -> DatasetInfo | None:
        row = self.conn.execute("SELECT * FROM datasets WHERE name = ? AND status = 'building'", (name,)).fetchone()
        return self._dataset_from_row(row, self._counts(row["id"])) if row else None

    def done_keys(self, dataset_id: int) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT key FROM entries WHERE dataset_id = ?", (dataset_id,))}

    def vector_path(self, dataset_id: int, index_file: str | None = None) -> Path:
        """The dataset's FAISS file (a rebuild gives it a new name: see ``rebuild_dataset``)."""
        return self.root / VECTORS / (index_file or f"{dataset_id}.faiss")

    def array_path(self, dataset_id: int) -> Path:
        """The dataset's vectors, float16, one row per face (vectors.py)."""
        return self.root / VECTORS / f"{dataset_id}.npy"

    def report_path(self, name: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return self.root / REPORTS / f"{safe}-bad-images.csv"

    # -- writing ----------------------------------------------------------------------------
    def begin_dataset(
        self, name: str, *, source: str, source_format: str, replace: bool = False, **fields: Any
    ) -> tuple[DatasetInfo, bool]:
        """Start a dataset build, or find the unfinished one to resume. Returns (dataset, resumed)."""
        if not name or any(c in name for c in "/\\\n\r\t") or name.startswith("."):
            raise SourceError(f"{name!r} cannot be a dataset name: use letters, digits, '-', '_' or '.'.")
        unfinished = self.building(name)
        if unfinished is not None:
            if unfinished.source != source:
                raise DatasetExists(
                    f"An unfinished build of {name!r} reads {unfinished.source}, not {source}. "
                    f"Run the same command again to resume it, or `photocheck index remove --index {self.root} "
                    f"--dataset {name}` to discard it first."
                )
            self._update_fields(unfinished.id, fields)
            return self.building(name), True  # type: ignore[return-value]
        live = [d for d in self.datasets() if d.name == name]
        if live and not replace:
            raise DatasetExists(
                f"The index already holds a complete dataset {name!r} ({live[0].faces} faces). "
                "Add --replace to rebuild it, or choose another --dataset name."
            )
        values = {k: fields.get(k) for k in DATASET_FIELDS}
        values["evidence"] = int(bool(values["evidence"]))
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO datasets (name, status, source, source_format, created_at, "
                + ", ".join(DATASET_FIELDS)
                + ") VALUES (?, 'building', ?, ?, ?, "
                + ", ".join("?" for _ in DATASET_FIELDS)
                + ")",
                (name, source, source_format, _now(), *values.values()),
            )
        return self.building(name), False  # type: ignore[return-value]

    def _update_fields(self, dataset_id: int, fields: dict[str, Any]) -> None:
        given = {k: v for k, v in fields.items() if k in DATASET_FIELDS and v is not None}
        if "evidence" in given:
            given["evidence"] = int(bool(given["evidence"]))
        if given:
            with self._transaction() as conn:
                conn.execute(
                    f"UPDATE datasets SET {', '.join(f'{k} = ?' for k in given)} WHERE id = ?",
                    (*given.values(), dataset_id),
                )

    def _writer(self, dataset_id: int) -> VectorWriter:
        if dataset_id not in self._writers:
            committed = self.conn.execute("SELECT COUNT(*) FROM faces WHERE dataset_id = ?", (dataset_id,)).fetchone()
            dimension = int(self.embedder["dimension"])
            self._writers[dataset_id] = VectorWriter(self.array_path(dataset_id), dimension, committed[0])
        return self._writers[dataset_id]

    def record_entries(self, dataset_id: int, records: Sequence[EntryRecord]) -> None:
        """Commit a batch of read images and their faces: the faces' vectors are appended to the
        dataset's array first, then everything else goes into SQLite in one transaction."""
        writer = self._writer(dataset_id)
        dimension = int(self.embedder["dimension"])
        vectors = [face.embedding for record in records for face in record.faces]
        writer.append(np.asarray(vectors, dtype=np.float32).reshape(-1, dimension))
        try:
            self._record_rows(dataset_id, records)
        except BaseException:
            # Whether SQLite committed is not known here (an interrupt may come after its COMMIT): the
            # next writer counts the faces SQLite holds and cuts off the rows beyond them.
            self._writers.pop(dataset_id, None)
            raise

    def _record_rows(self, dataset_id: int, records: Sequence[EntryRecord]) -> None:
        with self._transaction() as conn:
            recorded: list[tuple[int, dict[str, Any]]] = []
            for record in records:
                cursor = conn.execute(
                    "INSERT INTO entries (dataset_id, key, status, faces, small_faces, error_code, error_message, "
                    "metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        dataset_id,
                        record.key,
                        record.status,
                        len(record.faces),
                        record.small_faces,
                        record.error_code,
                        record.error_message,
                        json.dumps(record.metadata, ensure_ascii=False, default=str) if record.metadata else None,
                    ),
                )
                entry_id = cursor.lastrowid
                recorded.append((entry_id, record.metadata))
                conn.executemany(
                    "INSERT INTO faces (dataset_id, entry_id, face_number, x, y, w, h, score) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(dataset_id, entry_id, face.face_number, *face.box, face.score) for face in record.faces],
                )
            lookup.record_identifiers(conn, dataset_id, recorded)  # the Flickr ids in their metadata

    def face_ids(self, dataset_id: int) -> np.ndarray:
        """The keys of a dataset's faces, ascending: the i-th is the face of the array's row i."""
        cursor = self.conn.execute("SELECT id FROM faces WHERE dataset_id = ? ORDER BY id", (dataset_id,))
        chunks = []
        while rows := cursor.fetchmany(1_000_000):
            chunks.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
        return np.concatenate(chunks) if chunks else np.empty(0, np.int64)

    def vectors(self, dataset_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of a dataset in key order: the vectors float16 and memory-mapped, whether
        the dataset is finished or not."""
        if self.outdated:
            raise IndexOutdated(
                f"The vectors of {self.root} are still in SQLite; run `photocheck index migrate --index {self.root}`."
            )
        ids = self.face_ids(dataset_id)
        return ids, open_rows(self.array_path(dataset_id), int(self.embedder["dimension"]), len(ids))

    def embeddings(self, dataset_id: int) -> tuple[np.ndarray, np.ndarray]:
        """All (ids, vectors) of a dataset, in id order, as float32 (for small datasets and tests:
        ``vectors`` maps them without reading them)."""
        ids, vectors = self.vectors(dataset_id)
        return ids, np.asarray(vectors, dtype=np.float32)

    def write_report(self, dataset: DatasetInfo) -> Path | None:
        rows = self.conn.execute(
            "SELECT key, error_code, error_message FROM entries WHERE dataset_id = ? AND status = 'bad' ORDER BY id",
            (dataset.id,),
        ).fetchall()
        path = self.report_path(dataset.name)
        if not rows:
            path.unlink(missing_ok=True)
            return None
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["key", "code", "message"])
        writer.writerows([tuple(r) for r in rows])
        path.parent.mkdir(exist_ok=True)
        write_atomic(path, buffer.getvalue().encode())
        return path

    def finish_dataset(
        self,
        dataset: DatasetInfo,
        *,
        index_type: str | None = None,
        nprobe: int | None = None,
        rerank: int | None = None,
        progress=None,
    ) -> DatasetInfo:
        """Build the dataset's FAISS index from its stored vectors and make it live."""
        ids = self.face_ids(dataset.id)
        writer = self._writer(dataset.id)
        writer.finish(ids)
        vectors = open_rows(self.array_path(dataset.id), writer.dimension, len(ids))
        factory, params = self._write_index(
            dataset.id, None, ids, vectors, index_type=index_type, nprobe=nprobe, rerank=rerank, progress=progress
        )
        stats = GalleryStats.of(vectors)
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO dataset_stats (dataset_id, count, mean, covariance) VALUES (?, ?, ?, ?)",
                (dataset.id, stats.count, stats.mean.tobytes(), stats.covariance.tobytes()),
            )
            conn.execute(
                "UPDATE datasets SET status = 'replaced' WHERE name = ? AND status = 'complete'", (dataset.name,)
            )
            conn.execute(
                "UPDATE datasets SET status = 'complete', completed_at = ?, index_type = ?, search_params = ?, "
                "index_file = NULL, entry_counts = ? WHERE id = ?",
                (_now(), factory, json.dumps(params), json.dumps(self._counts(dataset.id)), dataset.id),
            )
        self._write_manifest()
        for row in self.conn.execute("SELECT id FROM datasets WHERE status = 'replaced'").fetchall():
            self._delete_dataset_rows(row["id"])
        return self.dataset(dataset.name)

    def rebuild_dataset(
        self, name: str, *, index_type: str | None = None, nprobe: int | None = None, rerank: int | None = None
    ) -> DatasetInfo:
        """Build a live dataset's FAISS index again from its stored vectors (another type, other
        search settings), without reading its images. The new file gets a name that neither the live
        file nor any other file has (a rebuild that died before its manifest leaves the version where
        it was), so that a reader never pairs it with the old settings; the manifest makes it live."""
        info = self.dataset(name)
        ids, vectors = self.vectors(info.id)
        version = self.index_version + 1
        while (index_file := f"{info.id}-v{version}.faiss") == info.index_file or self.vector_path(
            info.id, index_file
        ).exists():
            version += 1
        factory, params = self._write_index(
            info.id, index_file, ids, vectors, index_type=index_type, nprobe=nprobe, rerank=rerank
        )
        with self._transaction() as conn:
            conn.execute(
                "UPDATE datasets SET index_type = ?, search_params = ?, index_file = ? WHERE id = ?",
                (factory, json.dumps(params), index_file, info.id),
            )
        self._write_manifest()
        self._delete_index_files(info.id, keep=index_file)
        return self.dataset(name)

    def _write_index(
        self,
        dataset_id: int,
        index_file: str | None,
        ids: np.ndarray,
        vectors: np.ndarray,
        *,
        index_type: str | None,
        nprobe: int | None,
        rerank: int | None,
        progress=None,
    ) -> tuple[str, dict[str, Any]]:
        """Build a dataset's FAISS index (of ``index_type``, or the type chosen for its size) and
        write it to ``index_file`` atomically; returns (its factory string, its search settings)."""
        import faiss

        factory = (index_type or choose_index_type(len(ids))) if len(ids) else "IDMap2,Flat"
        index = build_faiss_index(vectors, ids, factory, nprobe=nprobe, rerank=rerank, progress=progress)
        with atomic_path(self.vector_path(dataset_id, index_file)) as tmp:
            faiss.write_index(index, str(tmp))
        return factory, search_params(index, factory, nprobe, rerank)

    def tune_dataset(self, name: str, *, nprobe: int | None = None, rerank: int | None = None) -> DatasetInfo:
        """Change how a live dataset's index is searched (lists probed, candidates re-ranked) without
        building it again; the manifest's new version tells a service to reload."""
        info = self.dataset(name)
        params = dict(info.search_params)
        for key, value in (("nprobe", nprobe), ("rerank", rerank)):
            if value is not None:
                if key not in params:
                    raise PhotocheckError(
                        f"{name}'s index ({info.index_type}) has no {key} to set.", code="bad_setting"
                    )
                params[key] = int(value)
        with self._transaction() as conn:
            conn.execute("UPDATE datasets SET search_params = ? WHERE id = ?", (json.dumps(params), info.id))
        self._write_manifest()
        return self.dataset(name)

    def remove_dataset(self, name: str) -> dict[str, int]:
        """Remove a dataset's vectors and rows; returns how many faces and images went."""
        info = self.dataset(name) if name in {d.name for d in self.datasets()} else self.building(name)
        if info is None:
            raise DatasetNotFound(f"The index at {self.root} has no dataset named {name!r}.")
        with self._transaction() as conn:
            conn.execute("UPDATE datasets SET status = 'removing' WHERE id = ?", (info.id,))
        self._write_manifest()
        removed = self._delete_dataset_rows(info.id)
        return {"faces": removed["faces"], "images": removed["images"]}

    def _delete_dataset_rows(self, dataset_id: int) -> dict[str, int]:
        with self._transaction() as conn:
            faces = conn.execute("DELETE FROM faces WHERE dataset_id = ?", (dataset_id,)).rowcount
            images = conn.execute("DELETE FROM entries WHERE dataset_id = ?", (dataset_id,)).rowcount
            conn.execute("DELETE FROM dataset_stats WHERE dataset_id = ?", (dataset_id,))
            lookup.delete_identifiers(conn, dataset_id)
            conn.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))
        self._writers.pop(dataset_id, None)
        self._delete_index_files(dataset_id)
        for path in (self.array_path(dataset_id), ids_path(self.array_path(dataset_id))):
            path.unlink(missing_ok=True)
        return {"faces": faces, "images": images}

    def _delete_index_files(self, dataset_id: int, keep: str | None = None) -> None:
        """The dataset's FAISS files but ``keep``: <id>.faiss and those of rebuilds, <id>-v<n>.faiss."""
        for path in [self.vector_path(dataset_id), *(self.root / VECTORS).glob(f"{dataset_id}-v*.faiss")]:
            if path.name != keep:
                path.unlink(missing_ok=True)

    # -- migrating an older index -----------------------------------------------------------
    def migrate(self) -> dict[str, Any]:
        """Bring an index written by an older photocheck up to this format; returns what was done.

        Format 1 kept each face's float32 vector in SQLite (``faces.embedding``). Each dataset's
        vectors are written to its array (vectors.py) first; then the column is dropped and the
        database compacted; then the manifest, the commit point, says format 2. A migration that is
        interrupted runs again: every array is written anew while the column is there; once it is
        dropped, the database is compacted if it has free pages left and the manifest written. The
        FAISS files stay as they are: their ids are the same face keys. Readers may go on serving the
        index meanwhile.
        """
        with self._locked():
            found = int(self.manifest.get("format_version", 0))
            if not self.outdated:
                return {"from_version": found, "to_version": FORMAT_VERSION, "datasets": 0, "faces": 0}
            dimension = int(self.embedder["dimension"])
            conn = self.conn
            faces = 0
            datasets = [r["id"] for r in conn.execute("SELECT id FROM datasets ORDER BY id").fetchall()]
            if "embedding" in {r[1] for r in conn.execute("PRAGMA table_info(faces)")}:
                for dataset_id in datasets:
                    path = self.array_path(dataset_id)
                    path.unlink(missing_ok=True)  # an interrupted migration's, or a stray one
                    writer = VectorWriter(path, dimension, 0)
                    cursor = conn.execute(
                        "SELECT id, embedding FROM faces WHERE dataset_id = ? ORDER BY id", (dataset_id,)
                    )
                    ids = []
                    while rows := cursor.fetchmany(65_536):
                        blobs = b"".join(r[1] for r in rows)
                        writer.append(np.frombuffer(blobs, dtype=np.float32).reshape(len(rows), dimension))
                        ids.extend(r[0] for r in rows)
                    writer.finish(np.asarray(ids, dtype=np.int64))
                    faces += len(ids)
                with self._transaction() as conn:
                    conn.execute("ALTER TABLE faces DROP COLUMN embedding")
                conn.execute("VACUUM")  # give back the space the vectors took
            else:  # dropped by an interrupted migration: the arrays were complete before it
                faces = conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
                if conn.execute("PRAGMA freelist_count").fetchone()[0]:  # interrupted before its VACUUM ended
                    conn.execute("VACUUM")
            self._write_manifest(format_version=FORMAT_VERSION)
        return {"from_version": found, "to_version": FORMAT_VERSION, "datasets": len(datasets), "faces": faces}

    # -- reading for search -----------------------------------------------------------------
    def open_for_search(self, info: DatasetInfo) -> FaceIndex:
        """The dataset's index memory-mapped read-only, checked against the manifest; with its
        vectors for re-ranking when its search settings ask for it."""
        index = read_faiss_index(self.vector_path(info.id, info.index_file))
        apply_search_params(index, info.search_params)
        recorded = {int(d["id"]): int(d["faces"]) for d in self.manifest.get("datasets", [])}
        if info.id in recorded and recorded[info.id] != index.ntotal:
            raise IndexCorrupt(
                f"{self.vector_path(info.id, info.index_file)} holds {index.ntotal} faces, the manifest "
                f"{recorded[info.id]}."
            )
        rerank = int(info.search_params.get("rerank", 0))
        if not rerank or self.outdated:
            return FaceIndex(index)
        dimension = int(self.embedder["dimension"])
        vectors = open_vectors(self.array_path(info.id), dimension)
        ids = open_ids(self.array_path(info.id))
        if len(vectors) != index.ntotal or len(ids) != index.ntotal:
            raise IndexCorrupt(
                f"{self.array_path(info.id)} holds {len(vectors)} vectors for {index.ntotal} faces; remove the "
                "dataset (`photocheck index remove`) and add it again."
            )
        return FaceIndex(index, vectors, ids, rerank)

    def gallery_stats(self, dataset_id: int) -> GalleryStats:
        row = self.conn.execute(
            "SELECT count, mean, covariance FROM dataset_stats WHERE dataset_id = ?", (dataset_id,)
        ).fetchone()
        dimension = int(self.embedder["dimension"])
        if row is None:
            raise IndexCorrupt(
                f"Dataset {dataset_id} of {self.root} has no gallery statistics; rebuild it with --replace."
            )
        return GalleryStats(
            count=row["count"],
            mean=np.frombuffer(row["mean"], dtype=np.float32).copy(),
            covariance=np.frombuffer(row["covariance"], dtype=np.float32).reshape(dimension, dimension).copy(),
        )

    def entry_metadata(self, face_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Source references of matched faces (for evidence to keyed callers); never for public answers."""
        ids = [int(i) for i in face_ids]
        if not ids:
            return {}
        rows = self.conn.execute(
            "SELECT f.id, e.key, e.metadata FROM faces f JOIN entries e ON e.id = f.entry_id "
            f"WHERE f.id IN ({', '.join('?' for _ in ids)})",
            ids,
        ).fetchall()
        return {r["id"]: {"key": r["key"], **json.loads(r["metadata"] or "{}")} for r in rows}
