"""Reading, detecting and embedding a dataset on a Ray cluster (``photocheck index add --ray``).

The driver (the process running :func:`indexer.pipeline.build_dataset`) plans units of work from the
source, leaving out what an earlier run committed; Ray Data runs them through a pool of actors, each
of which builds its embedder once from the picklable :class:`EmbedderSpec` and turns image bytes into
records with the same :func:`~indexer.pipeline.read_chunk` as a local build; the records stream back,
in source order, to the driver, which alone writes the index. Workers never touch the store.

Units of work:

- folder and manifest sources: ``CHUNK_SIZE`` images, named by their paths; workers read the files
  themselves, so the paths must be readable on every node (a shared or identically mounted volume);
- webdataset sources: one shard; workers open it themselves, and a shard an earlier run finished is
  not read again.

``ray`` is an optional dependency (``pip install 'photocheck[ray]'``): nothing here imports it at
module level, and the service never imports this module.
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .embedders import EmbedderSpec
from .errors import ClusterError, ImageError
from .sources import Source
from .sources.base import read_file
from .sources.webdataset import WebDatasetSource
from .store import EntryRecord, FaceRecord

if TYPE_CHECKING:
    import pyarrow as pa

    from .pipeline import BuildSummary

log = logging.getLogger("photocheck")

INSTALL_HINT = "pip install 'photocheck[ray]'"
#: Output blocks are cut at about this size, so that a worker's results reach the driver (and are
#: committed) every few hundred images even while it is still reading a 10,000-image shard.
RESULT_BLOCK_BYTES = 256 * 1024


# -- units of work (built on the driver, run on the workers) ---------------------------------


@dataclass(frozen=True)
class UnitItem:
    """One image of a unit: where its bytes are, or why there are none."""

    key: str
    metadata: dict[str, Any]
    path: str | None = None
    data: bytes | None = None  # only for sources that hold the bytes in memory, not on a shared disk
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class WorkUnit:
    """A list of images, or one webdataset shard (less the keys already committed)."""

    items: tuple[UnitItem, ...] = ()
    shard: str | None = None
    skip: frozenset[str] = field(default_factory=frozenset)


def _item(entry) -> UnitItem:
    if entry.error is not None:
        return UnitItem(entry.key, entry.metadata, error_code=entry.error.code, error_message=entry.error.message)
    if entry.path is not None:
        return UnitItem(entry.key, entry.metadata, path=str(Path(entry.path).absolute()))
    try:
        return UnitItem(entry.key, entry.metadata, data=entry.read())
    except ImageError as exc:
        return UnitItem(entry.key, entry.metadata, error_code=exc.code, error_message=exc.message)


def plan_units(source: Source, done: set[str], summary: BuildSummary, chunk_size: int) -> list[WorkUnit]:
    """The work left to do, in source order; counts what an earlier run did in ``summary.skipped``."""
    if isinstance(source, WebDatasetSource):
        return _plan_shards(source, done, summary)
    units: list[WorkUnit] = []
    items: list[UnitItem] = []
    for entry in source:
        if entry.key in done:
            summary.skipped += 1
            continue
        items.append(_item(entry))
        if len(items) >= chunk_size:
            units.append(WorkUnit(items=tuple(items)))
            items = []
    if items:
        units.append(WorkUnit(items=tuple(items)))
    return units


def _plan_shards(source: WebDatasetSource, done: set[str], summary: BuildSummary) -> list[WorkUnit]:
    """One unit per shard. Builds commit in source order, so of the shards that already have
    committed entries, every one but the last is complete: those are not read again, and the last
    is read less the keys it has."""
    committed: dict[str, set[str]] = {}
    for key in done:
        committed.setdefault(key.split("/", 1)[0], set()).add(key)
    stems = [shard.stem for shard in source.shards]
    started = [number for number, stem in enumerate(stems) if stem in committed]
    last = started[-1] if started else -1
    units = []
    for number, shard in enumerate(source.shards):
        keys = committed.get(shard.stem, set())
        summary.skipped += len(keys)
        if keys and number != last:
            continue
        units.append(WorkUnit(shard=str(shard.absolute()), skip=frozenset(keys)))
    return units


def _unit_entries(unit: WorkUnit) -> Iterator[tuple[str, bytes | ImageError, dict]]:
    """(key, bytes or the error reading them, metadata) for each image of a unit, read here."""
    if unit.shard is not None:
        shard = Path(unit.shard)
        for entry in WebDatasetSource(shard).read_shard(shard):
            if entry.key in unit.skip:
                continue
            try:
                yield entry.key, entry.read(), entry.metadata
            except ImageError as exc:
                yield entry.key, exc, entry.metadata
        return
    for item in unit.items:
        data: bytes | ImageError
        if item.error_code is not None:
            data = ImageError(item.error_message or "", code=item.error_code)
        elif item.data is not None:
            data = item.data
        else:
            try:
                data = read_file(Path(item.path or ""))()
            except ImageError as exc:
                data = exc
        yield item.key, data, item.metadata


# -- records as Arrow tables (the form in which they travel back) ----------------------------


def _schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("key", pa.string()),
            ("status", pa.string()),
            ("small_faces", pa.int32()),
            ("error_code", pa.string()),
            ("error_message", pa.string()),
            ("metadata", pa.string()),  # JSON, as the store keeps it
            ("faces", pa.string()),  # JSON: [[face_number, [x, y, w, h], score], ...]
            ("embeddings", pa.binary()),  # float32, faces x dimension, in face order
        ]
    )


def records_to_table(records: list[EntryRecord]) -> pa.Table:
    import pyarrow as pa

    columns: dict[str, list] = {name: [] for name in _schema().names}
    for record in records:
        columns["key"].append(record.key)
        columns["status"].append(record.status)
        columns["small_faces"].append(record.small_faces)
        columns["error_code"].append(record.error_code)
        columns["error_message"].append(record.error_message)
        columns["metadata"].append(
            json.dumps(record.metadata, ensure_ascii=False, default=str) if record.metadata else None
        )
        columns["faces"].append(
            json.dumps([[f.face_number, [float(v) for v in f.box], float(f.score)] for f in record.faces])
        )
        vectors = [np.ascontiguousarray(f.embedding, dtype=np.float32) for f in record.faces]
        columns["embeddings"].append(b"".join(v.tobytes() for v in vectors))
    return pa.Table.from_pydict(columns, schema=_schema())


def table_to_records(table: pa.Table) -> list[EntryRecord]:
    records = []
    for row in table.to_pylist():
        faces = json.loads(row["faces"])
        vectors = np.frombuffer(row["embeddings"], dtype=np.float32).reshape(len(faces), -1) if faces else []
        records.append(
            EntryRecord(
                key=row["key"],
                status=row["status"],
                metadata=json.loads(row["metadata"]) if row["metadata"] else {},
                faces=[
                    FaceRecord(face_number=number, box=tuple(box), score=score, embedding=vector.copy())
                    for (number, box, score), vector in zip(faces, vectors, strict=True)
                ],
                small_faces=row["small_faces"],
                error_code=row["error_code"],
                error_message=row["error_message"],
            )
        )
    return records


# -- the actor -------------------------------------------------------------------------------


class RecordMaker:
    """A Ray Data actor: loads the embedder once, then turns units of work into record tables."""

    def __init__(self, spec: EmbedderSpec, max_pixels: int, chunk_size: int) -> None:
        logging.getLogger("photocheck").setLevel(logging.WARNING)
        self.embedder = spec.create()
        self.embedder.load()
        self.max_pixels = max_pixels
        self.chunk_size = chunk_size

    def __call__(self, batch: dict[str, np.ndarray]) -> Iterator[pa.Table]:
        from .pipeline import read_chunk

        for blob in batch["unit"]:
            unit: WorkUnit = pickle.loads(blob)  # from our own driver, like everything Ray passes
            chunk: list[tuple[str, bytes | ImageError, dict]] = []
            for item in _unit_entries(unit):
                chunk.append(item)
                if len(chunk) >= self.chunk_size:
                    yield records_to_table(read_chunk(self.embedder, (chunk, self.max_pixels)))
                    chunk = []
            if chunk:
                yield records_to_table(read_chunk(self.embedder, (chunk, self.max_pixels)))


# -- the driver ------------------------------------------------------------------------------


def import_ray():
    try:
        import ray
        import ray.data  # ray without its data extra lacks it
    except ImportError as exc:
        raise ClusterError(
            f"Indexing on Ray needs the ray package with Ray Data, which is not installed ({exc}). "
            f"Install it with `{INSTALL_HINT}` (or `pip install 'ray[data]'`), here and on every node.",
            code="ray_not_installed",
        ) from None
    return ray


def connect(ray, address: str) -> bool:
    """Join the cluster at ``address``. ``auto`` follows Ray's own rule: $RAY_ADDRESS, else the
    cluster that `ray start` (or `ray up`) began on this machine, else a local one for this run.

    Returns whether this call made the connection (and so should end it)."""
    if ray.is_initialized():
        return False
    quiet = not log.isEnabledFor(logging.DEBUG)
    target = None if address == "auto" else address
    options: dict[str, Any] = {"logging_level": logging.WARNING if quiet else logging.INFO}
    if target is None:
        options["include_dashboard"] = False  # heeded only when this starts a local cluster
    try:
        ray.init(address=target, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(
            f"Could not join the Ray cluster at {address} ({type(exc).__name__}: {exc}). Give the address "
            "`ray start --head` printed (host:6379) or a Ray client address (ray://host:10001, which needs "
            "ray[client]); with auto, check $RAY_ADDRESS and `ray status`.",
            code="ray_unreachable",
        ) from exc
    if quiet:
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return True


def ray_batches(
    address: str,
    source: Source,
    done: set[str],
    summary: BuildSummary,
    spec: EmbedderSpec,
    *,
    workers: int,
    max_pixels: int,
    chunk_size: int,
    num_gpus: float = 0.0,
) -> Iterator[list[EntryRecord]]:
    """Records of every image of ``source`` not in ``done``, in source order, in lists of up to
    ``chunk_size``, computed by ``workers`` Ray actors (each with ``num_gpus`` GPUs when asked)."""
    ray = import_ray()
    if num_gpus:
        # The driver may have no GPU and describes the embedder on its CPU; the workers use theirs.
        spec = EmbedderSpec(spec.name, {**spec.options, "device": "cuda"})
    units = plan_units(source, done, summary, chunk_size)
    if not units:
        return
    started = connect(ray, address)
    context = ray.data.DataContext.get_current()
    saved = (context.execution_options.preserve_order, context.enable_progress_bars, context.target_max_block_size)
    try:
        # Commits follow source order, as in a local build: an interrupted run leaves a prefix of the
        # source committed, which is what lets the next run skip finished shards without opening them.
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False  # the driver's own bar counts committed images
        context.target_max_block_size = RESULT_BLOCK_BYTES
        rows = [{"unit": pickle.dumps(unit, protocol=pickle.HIGHEST_PROTOCOL)} for unit in units]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
        dataset = dataset.map_batches(
            RecordMaker,
            fn_constructor_args=(spec, max_pixels, chunk_size),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(workers, len(units))),  # no idle actors
            num_cpus=1,
            num_gpus=num_gpus or None,
        )  # Ray Data restarts a dead actor and retries its unit, however often a node is lost
        try:
            for table in dataset.iter_batches(batch_size=chunk_size, batch_format="pyarrow"):
                # A unit retried after its actor died may send again what the driver already has.
                records = [r for r in table_to_records(table) if r.key not in done]
                done.update(r.key for r in records)
                if records:
                    yield records
        except ray.exceptions.RayError as exc:
            raise ClusterError(
                f"The Ray workers stopped: {_first_line(exc)}. What was committed is kept; run the same "
                "command again to resume. Check that every node has photocheck and its embedder installed "
                "and can read the source.",
            ) from exc
    finally:
        # The context is this process's: leave it as it was for any other Ray Data work here.
        context.execution_options.preserve_order, context.enable_progress_bars = saved[:2]
        context.target_max_block_size = saved[2]
        if started:
            ray.shutdown()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return next((line for line in reversed(text) if line.strip()), type(exc).__name__)[:500]
