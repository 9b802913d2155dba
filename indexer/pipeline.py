"""The one function that builds a dataset into an index: the CLI, the demo and the tests call it.

Images are read in a fixed order, decoded, searched for faces and embedded in chunks (by worker
processes when ``workers > 1``, or by Ray actors with ``ray_address``: see distributed.py); each
chunk's results are committed to SQLite in one transaction, by this process only.
A build that is interrupted (Ctrl-C, kill -9) resumes from the last committed chunk when the same
command runs again, and ends with the same faces as an uninterrupted build.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import confidence
from .embedders import FaceEmbedder, create_embedder, resolve_embedder_name
from .errors import ImageError, IndexMismatch
from .images import DEFAULT_MAX_PIXELS, load_image
from .sources import Entry, open_source
from .store import MANIFEST, DatasetInfo, EntryRecord, FaceRecord, IndexStore, read_manifest
from .workers import map_ordered

log = logging.getLogger("photocheck")

#: Images per unit of work: one SQLite transaction, one batch through the recognizer.
CHUNK_SIZE = 16


@dataclass
class BuildSummary:
    dataset: DatasetInfo
    resumed: bool
    skipped: int = 0  # images already done by an earlier, interrupted run
    images: int = 0
    faces: int = 0
    no_face: int = 0
    too_small: int = 0
    bad: list[tuple[str, str, str]] = field(default_factory=list)
    seconds: float = 0.0
    report: Path | None = None
    embedder: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.name,
            "resumed": self.resumed,
            "skipped": self.skipped,
            "images": self.images,
            "faces": self.faces,
            "no_face": self.no_face,
            "too_small": self.too_small,
            "bad": [{"key": k, "code": c, "message": m} for k, c, m in self.bad],
            "seconds": round(self.seconds, 2),
            "report": str(self.report) if self.report else None,
            "embedder": self.embedder,
            "totals": self.dataset.as_dict(),
        }


# -- reading one chunk of images (runs in worker processes) --------------------------------


#: One unit of work: (key, bytes or the error reading them, metadata) per image, and the pixel limit.
Chunk = tuple[list[tuple[str, bytes | ImageError, dict]], int]


def read_chunk(embedder: FaceEmbedder, chunk: Chunk) -> list[EntryRecord]:
    """Decode, detect and embed a chunk of images; a bad image becomes a record, never an exception."""
    items, max_pixels = chunk
    records: list[EntryRecord] = []
    pending: list[tuple[EntryRecord, Any, list]] = []
    for key, data, metadata in items:
        record = EntryRecord(key=key, status="bad", metadata=metadata)
        records.append(record)
        try:
            if isinstance(data, ImageError):
                raise data
            pixels = load_image(data, max_pixels=max_pixels)
            faces = embedder.detect(pixels)
        except ImageError as exc:
            record.error_code, record.error_message = exc.code, exc.message
            continue
        except Exception as exc:  # noqa: BLE001 - one odd image must not stop a million-image build
            record.error_code, record.error_message = "processing_failed", f"{type(exc).__name__}: {exc}"
            continue
        usable = [(number, face) for number, face in enumerate(faces) if not embedder.is_too_small(face)]
        record.small_faces = len(faces) - len(usable)
        if not faces:
            record.status = "no_face"
        elif not usable:
            record.status = "too_small"
        else:
            record.status = "indexed"
            pending.append((record, pixels, usable))
    if pending:
        vectors = embedder.embed_batch([(pixels, [f for _, f in usable]) for _, pixels, usable in pending])
        for (record, _, usable), embedded in zip(pending, vectors, strict=True):
            record.faces = [
                FaceRecord(face_number=number, box=face.box, score=face.score, embedding=vector)
                for (number, face), vector in zip(usable, embedded, strict=True)
            ]
    return records


# -- the build -----------------------------------------------------------------------------


def _chunks(entries: Iterable[Entry], done: set[str], summary: BuildSummary, max_pixels: int) -> Iterator[Chunk]:
    chunk: list[tuple[str, bytes | ImageError, dict]] = []
    for entry in entries:
        if entry.key in done:
            summary.skipped += 1
            continue
        try:
            data: bytes | ImageError = entry.read()
        except ImageError as exc:
            data = exc
        chunk.append((entry.key, data, entry.metadata))
        if len(chunk) >= CHUNK_SIZE:
            yield chunk, max_pixels
            chunk = []
    if chunk:
        yield chunk, max_pixels


def index_embedder(index_dir: Path, requested: str, options: dict[str, Any]) -> FaceEmbedder:
    """The embedder to use with an index: the one it records, or a new choice for a new index."""
    if (Path(index_dir) / MANIFEST).is_file():
        recorded = read_manifest(Path(index_dir))["embedder"]["name"]
        if requested not in ("auto", recorded):
            raise IndexMismatch(
                f"The index at {index_dir} was built with the {recorded} embedder, so it takes only {recorded} "
                f"embeddings. Leave out --embedder (or pass --embedder {recorded}), or use another --index."
            )
        name = recorded
    else:
        name = resolve_embedder_name(requested, model_root=options.get("model_root"))
    return create_embedder(name, **options)


def build_dataset(
    index_dir: str | os.PathLike,
    source_path: str | os.PathLike,
    *,
    dataset: str,
    embedder: FaceEmbedder | None = None,
    embedder_name: str = "auto",
    embedder_options: dict[str, Any] | None = None,
    source_format: str = "auto",
    path_column: str | None = None,
    replace: bool = False,
    workers: int = 1,
    index_type: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = True,
    fields: dict[str, Any] | None = None,
    prior: float | None = None,
    ray_address: str | None = None,
    ray_num_gpus: float = 0.0,
) -> BuildSummary:
    """Read every image of ``source_path``, embed every face, and make the dataset live in the index.

    With ``ray_address`` (``auto``, a GCS address ``host:6379`` or ``ray://host:10001``), ``workers``
    Ray actors (with ``ray_num_gpus`` GPUs each) do the reading and embedding; the result is the same.
    """
    from tqdm import tqdm

    started = time.monotonic()
    index_dir = Path(index_dir)
    if ray_address is not None:
        from .distributed import import_ray

        import_ray()  # before anything is written: without ray there is nothing to resume
    # Absolute, so that paths in bad-image reports are the same whichever machine read the image.
    source = open_source(Path(source_path).absolute(), source_format, path_column=path_column)
    if embedder is None:
        embedder = index_embedder(index_dir, embedder_name, embedder_options or {})
    embedder.load()
    described = embedder.describe()
    log.debug("embedder: %s (%s, %d-d)", described["name"], described["model"], described["dimension"])
    store = IndexStore.create_or_open(index_dir, described, confidence.default_config(described, prior=prior))
    try:
        with store.writing():
            info, resumed = store.begin_dataset(
                dataset,
                source=str(Path(source_path).resolve()),
                source_format=source.format,
                replace=replace,
                **(fields or {}),
            )
            summary = BuildSummary(dataset=info, resumed=resumed, embedder=described)
            done = store.done_keys(info.id)
            if resumed:
                log.info("resuming %s: %d images were already done", dataset, len(done))
            total = source.count()
            bar = tqdm(
                total=None if total is None else max(total - len(done), 0),
                unit="img",
                desc=dataset,
                disable=not progress,
                dynamic_ncols=True,
            )
            try:
                if ray_address is None:
                    chunks = _chunks(source, done, summary, max_pixels)
                    batches = map_ordered(read_chunk, chunks, embedder, workers)
                else:
                    from .distributed import ray_batches

                    batches = ray_batches(
                        ray_address,
                        source,
                        done,
                        summary,
                        embedder.spec(),
                        workers=workers,
                        max_pixels=max_pixels,
                        chunk_size=CHUNK_SIZE,
                        num_gpus=ray_num_gpus,
                    )
                for records in batches:
                    store.record_entries(info.id, records)
                    for record in records:
                        summary.images += 1
                        summary.faces += len(record.faces)
                        if record.status == "no_face":
                            summary.no_face += 1
                        elif record.status == "too_small":
                            summary.too_small += 1
                        elif record.status == "bad":
                            summary.bad.append((record.key, record.error_code or "", record.error_message or ""))
                    bar.update(len(records))
                    elapsed = max(time.monotonic() - started, 1e-6)
                    bar.set_postfix_str(f"{summary.faces / elapsed:.1f} faces/s, {summary.faces} faces", refresh=False)
            finally:
                bar.close()
                summary.report = store.write_report(info)
            summary.dataset = store.finish_dataset(info, index_type=index_type)
            summary.report = store.write_report(summary.dataset)
    finally:
        store.close()
    summary.seconds = time.monotonic() - started
    return summary
