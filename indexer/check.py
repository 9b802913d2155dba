"""Checking a photo against a loaded index: the one answer every interface (CLI, HTTP, bulk) shows.

The answer holds dataset-level facts only: which datasets likely hold a photo of the person, with a
verdict and a confidence. It never holds another person's image, URL, name, entry key or raw
similarity. The one exception is asked for explicitly (``evidence=True``, for keyed bulk callers)
and applies only to datasets added with ``--evidence``: their results then name the matched entries'
own source references, so that the person can ask for their removal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import confidence
from .embedders import Face, FaceEmbedder, create_embedder
from .errors import (
    FaceNotFound,
    FaceTooSmall,
    IndexCorrupt,
    NoFace,
    NotSamePerson,
    NoUsablePhoto,
    PhotocheckError,
    SamePhoto,
)
from .images import DEFAULT_MAX_PIXELS, load_image
from .quality import FaceQuality, assess
from .store import DatasetInfo, FaceIndex, IndexStore, check_embedder
from .template import MAX_PHOTOS, copied_from, disagreeing_pairs, is_blurred, refusal_message, template

log = logging.getLogger("photocheck")

#: Neighbours fetched per dataset: the best is the candidate match, the rest describe how crowded
#: the dataset is around the query.
NEIGHBOURS = 64
#: At most this many entries are named as evidence per dataset.
EVIDENCE_LIMIT = 10
#: Where evidence looks for each reference in an entry's own metadata, first name first.
EVIDENCE_FIELDS = {
    "source_url": ("source_url", "url", "page_url", "photo_url", "image_url", "flickr_url"),
    "photo_id": ("photo_id", "image_id", "flickr_id", "id"),
    "license": ("license", "licence", "license_name", "license_url"),
}


@dataclass
class DatasetIndex:
    info: DatasetInfo
    index: FaceIndex

    @property
    def size(self) -> int:
        return int(self.index.ntotal)


class LoadedIndex:
    """A read-only snapshot of an index directory, its files memory-mapped for searching."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for attempt in range(3):
            store = IndexStore(self.root, readonly=True)
            try:
                live = set(store.live_dataset_ids())
                infos = [d for d in store.datasets() if d.id in live]
                datasets = [DatasetIndex(info, store.open_for_search(info)) for info in infos]
            except (RuntimeError, IndexCorrupt, OSError) as exc:
                # A writer replaced the index between reading the manifest and the files: read again.
                if attempt == 2:
                    raise IndexCorrupt(f"The vector files of {self.root} cannot be read: {exc}") from exc
                time.sleep(0.2)
                continue
            finally:
                store.close()
            break
        self.manifest = store.manifest
        self.datasets = datasets
        self._metadata: IndexStore | None = None
        self._metadata_lock = threading.Lock()

    @property
    def embedder_description(self) -> dict[str, Any]:
        return self.manifest["embedder"]

    @property
    def version(self) -> int:
        return int(self.manifest["index_version"])

    @property
    def confidence_config(self) -> dict[str, Any]:
        return self.manifest["confidence"]

    def describe(self) -> dict[str, Any]:
        return {
            "embedder": self.embedder_description["name"],
            "model": self.embedder_description["model"],
            "version": self.version,
            "datasets": len(self.datasets),
            "faces": sum(d.size for d in self.datasets),
        }

    def entry_metadata(self, face_ids: list[int]) -> dict[int, dict[str, Any]]:
        """Entry key and the dataset's own metadata of these faces, read (read-only) from SQLite."""
        with self._metadata_lock:
            if self._metadata is None:
                self._metadata = IndexStore(self.root, readonly=True)
            return self._metadata.entry_metadata(face_ids)

    def search(self, vector: np.ndarray, k: int = NEIGHBOURS) -> list[tuple[DatasetIndex, np.ndarray, np.ndarray]]:
        """Within each dataset separately: its ``k`` best (scores, face ids), best first."""
        return [(dataset, *dataset.index.search(vector, k)) for dataset in self.datasets]


def embedder_for_index(index: LoadedIndex, **options: Any) -> FaceEmbedder:
    """The embedder recorded in the index, with this host's options (device, model root)."""
    recorded = index.embedder_description
    embedder = create_embedder(recorded["name"], **options)
    embedder.load()
    check_embedder(index.manifest, embedder.describe(), index.root)
    return embedder


class Timer:
    """Accumulates seconds per stage when a caller wants a breakdown (the latency benchmarks)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


@contextmanager
def _no_timer(_name: str):
    yield


def _face_json(face: Face) -> dict[str, Any]:
    return {"box": face.box_list(), "score": round(float(face.score), 2)}


class Checker:
    """Answers "is this person in the datasets?" for one image at a time."""

    def __init__(self, index: LoadedIndex, embedder: FaceEmbedder, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.index = index
        self.embedder = embedder
        self.max_pixels = max_pixels

    def warm_up(self) -> None:
        """Run every stage once on a synthetic image: imports, allocations and model set-up happen
        now, before the service takes requests, not during the first person's check."""
        from .images import prepare_decoders

        prepare_decoders()
        pixels = np.full((160, 160, 3), 127, dtype=np.uint8)
        self.embedder.detect(pixels)
        face = Face(
            box=(40.0, 40.0, 80.0, 80.0),
            landmarks=((60.0, 70.0), (100.0, 70.0), (80.0, 90.0), (65.0, 105.0), (95.0, 105.0)),
            score=1.0,
        )
        vector = self.embedder.embed(pixels, [face])[0]
        self.index.search(vector)
        confidence.confidence(np.array([0.5], dtype=np.float32), 10, self.index.confidence_config)

    def check(
        self, data: bytes, *, face_number: int | None = None, timer: Timer | None = None, evidence: bool = False
    ) -> dict[str, Any]:
        """The answer for one image; errors go into its ``error`` field, never raised.

        With ``evidence``, the results of datasets that allow it (added with ``--evidence``) carry an
        ``evidence`` list: the entries among the nearest faces whose own best similarity would reach
        the 'possible' verdict, with their source references. Only keyed bulk callers ask for it.
        """
        answer: dict[str, Any] = {"faces_detected": 0, "faces": [], "face": None, "results": [], "error": None}
        stage: Callable = timer.stage if timer else _no_timer
        try:
            vector, quality = self._read_face(data, face_number, answer, stage)
            with stage("search"):
                answer["results"] = self.results_for(vector, low_quality=quality.low, evidence=evidence)
            del vector
        except PhotocheckError as exc:
            answer["error"] = exc.as_dict()
        return answer

    def check_photos(
        self,
        photos: Sequence[bytes | PhotocheckError],
        *,
        face_numbers: Sequence[int | None] | None = None,
        labels: Sequence[str] | None = None,
        timer: Timer | None = None,
        evidence: bool = False,
    ) -> dict[str, Any]:
        """One answer for 1 to ``MAX_PHOTOS`` photos of one person, searched together as their template.

        A photo may be given as the error that kept its caller from reading it (a missing file): it is
        recorded as not used, with that error. ``face_numbers``: the face to use in each photo (None:
        the largest). ``labels``: the photos' names in messages ("photo 1", "photo 2"... by default).

        The answer is ``check``'s (its ``faces_detected``, ``faces`` and ``face`` are those of the first
        photo used), plus ``quality`` (the template's: low when at least half of the photos used are
        blurred) and ``photos``: per photo its faces, the face used and its quality, or the error that
        kept it out. Photos that cannot be used are left out; with none left, or photos of different
        people (``not_same_person``: their records then say which others each ``differs_from``), the
        answer has an ``error`` and no results. Errors are never raised.
        """
        if not 1 <= len(photos) <= MAX_PHOTOS:
            raise ValueError(f"check_photos takes 1 to {MAX_PHOTOS} photos, not {len(photos)}")
        face_numbers = list(face_numbers) if face_numbers is not None else [None] * len(photos)
        labels = list(labels) if labels is not None else [f"photo {n + 1}" for n in range(len(photos))]
        stage: Callable = timer.stage if timer else _no_timer
        records: list[dict[str, Any]] = []
        used: list[int] = []
        vectors: list[np.ndarray] = []
        low: list[bool] = []
        for number, data in enumerate(photos):
            record: dict[str, Any] = {"faces_detected": 0, "faces": [], "face": None, "error": None}
            records.append(record)
            try:
                if isinstance(data, PhotocheckError):
                    raise data
                vector, quality = self._read_face(data, face_numbers[number], record, stage)
                copy = copied_from(vectors, vector)
                if copy is not None:
                    raise SamePhoto(
                        f"The face in {labels[number]} is the same as in {labels[used[copy]]} (the same photo, or "
                        "one taken a moment later): it adds nothing. Add a different photo of yourself."
                    )
            except PhotocheckError as exc:
                record["error"] = exc.as_dict()
                continue
            used.append(number)
            vectors.append(vector)
            low.append(quality.low)
        lead = records[used[0]] if used else records[0]
        answer: dict[str, Any] = {
            "faces_detected": lead["faces_detected"],
            "faces": lead["faces"],
            "face": lead["face"],
            "quality": None,
            "photos": records,
            "results": [],
            "error": None,
        }
        try:
            if not used:
                if len(photos) == 1:
                    raise PhotocheckError(records[0]["error"]["message"], code=records[0]["error"]["code"])
                raise NoUsablePhoto(
                    f"None of the {len(photos)} photos could be used: "
                    + "; ".join(f"{labels[n]}: {r['error']['message'].rstrip('.')}" for n, r in enumerate(records))
                    + "."
                )
            pairs = disagreeing_pairs(vectors, low, self.index.confidence_config)
            if pairs:
                pairs = [(used[i], used[j]) for i, j in pairs]
                for number, record in enumerate(records):
                    record["differs_from"] = sorted({j if i == number else i for i, j in pairs if number in (i, j)})
                # In a group photo, say which face: the person may have picked the wrong one.
                named = [
                    f"{label} (face {record['face']['number']})" if record["faces_detected"] > 1 else label
                    for label, record in zip(labels, records, strict=True)
                ]
                raise NotSamePerson(refusal_message(named, pairs), pairs)
            blurred = is_blurred(low)
            answer["quality"] = "low" if blurred else "good"
            query = template(vectors)
            del vectors
            with stage("search"):
                answer["results"] = self.results_for(
                    query, low_quality=blurred, query_photos=len(used), evidence=evidence
                )
        except PhotocheckError as exc:
            answer["error"] = exc.as_dict()
        return answer

    def _read_face(
        self, data: bytes, face_number: int | None, record: dict[str, Any], stage: Callable
    ) -> tuple[np.ndarray, FaceQuality]:
        """The embedding and quality of the chosen face of one photo; fills ``record``'s faces and face."""
        with stage("decode"):
            pixels = load_image(data, max_pixels=self.max_pixels)
        with stage("detect"):
            faces = self.embedder.detect(pixels)
        record["faces_detected"] = len(faces)
        record["faces"] = [_face_json(f) for f in faces]
        chosen = self._choose(faces, face_number)
        quality = assess(pixels, faces[chosen])
        record["face"] = {"number": chosen, "box": faces[chosen].box_list(), "quality": quality.label}
        with stage("embed"):
            vector = self.embedder.embed(pixels, [faces[chosen]])[0]
        del pixels
        return vector, quality

    def results_for(
        self, vector: np.ndarray, *, low_quality: bool = False, query_photos: int = 1, evidence: bool = False
    ) -> list[dict[str, Any]]:
        """Per dataset: {"dataset", "title", "verdict", "confidence"} (+ "evidence" when asked), for one
        L2-normalised query vector (a single photo's embedding, or the template of `query_photos` photos).

        The confidence here models one photo per query; ``query_photos`` is the seam for templates of
        several photos (their score distributions differ)."""
        config = self.index.confidence_config
        results = []
        for dataset, scores, ids in self.index.search(vector):
            value = confidence.confidence(
                scores, dataset.size, config, low_quality=low_quality, query_photos=query_photos
            )
            result = {
                "dataset": dataset.info.name,
                "title": dataset.info.title or dataset.info.name,
                "verdict": confidence.verdict(value, config),
                "confidence": round(value, 2),
            }
            if evidence and dataset.info.evidence:
                result["evidence"] = self._evidence(
                    dataset, scores, ids, low_quality=low_quality, query_photos=query_photos
                )
            results.append(result)
        return results

    def check_embedding(self, vector: np.ndarray, *, face_size: float, sharpness: float) -> dict[str, Any]:
        """The answer for an embedding computed elsewhere (the browser's on-device check), with the
        face's size and sharpness measured there: the same results a photo of that face would get.

        ``vector`` must already be validated (finite, the index's dimension); it is L2-normalised here.
        Errors go into the answer's ``error`` field, never raised."""
        answer: dict[str, Any] = {"face": None, "results": [], "error": None}
        try:
            if face_size < self.embedder.min_face_size:
                raise FaceTooSmall(
                    f"The face is only {face_size:.0f} pixels across; at least {self.embedder.min_face_size} are "
                    "needed to judge. Use a sharper photo in which your face is larger."
                )
            quality = FaceQuality(size=face_size, sharpness=sharpness)
            answer["face"] = {"quality": quality.label}
            norm = float(np.linalg.norm(vector))
            unit = np.asarray(vector, dtype=np.float32) / np.float32(norm)
            answer["results"] = self.results_for(unit, low_quality=quality.low)
        except PhotocheckError as exc:
            answer["error"] = exc.as_dict()
        return answer

    def _evidence(
        self, dataset: DatasetIndex, scores: np.ndarray, ids: np.ndarray, *, low_quality: bool, query_photos: int = 1
    ) -> list[dict[str, Any]]:
        """The entries whose nearest face alone would make the verdict at least 'possible', best first."""
        config = self.index.confidence_config
        values = confidence.confidences(
            scores, dataset.size, config, low_quality=low_quality, query_photos=query_photos
        )
        strong = [(int(i), float(v)) for i, v in zip(ids, values, strict=True) if v >= config["thresholds"]["possible"]]
        if not strong:
            return []
        metadata = self.index.entry_metadata([i for i, _ in strong])
        found: dict[str, dict[str, Any]] = {}
        for face_id, value in strong:  # best first: an entry's first face is its best
            entry = metadata.get(face_id)
            if entry is None or entry["key"] in found:
                continue
            reference: dict[str, Any] = {"key": entry["key"]}
            for name, candidates in EVIDENCE_FIELDS.items():
                given = next((entry[c] for c in candidates if entry.get(c) not in (None, "")), None)
                reference[name] = None if given is None else str(given)
            reference["confidence"] = round(value, 2)
            found[entry["key"]] = reference
            if len(found) == EVIDENCE_LIMIT:
                break
        return list(found.values())

    def _choose(self, faces: list[Face], face_number: int | None) -> int:
        if not faces:
            raise NoFace(
                "No face was found in this photo. Use a photo where your face is clearly visible, "
                "facing the camera, and not too dark."
            )
        if face_number is not None and not 0 <= face_number < len(faces):
            raise FaceNotFound(
                f"Face {face_number} was asked for, but the photo has {len(faces)} "
                f"face{'s' if len(faces) != 1 else ''} (numbered from 0)."
            )
        chosen = face_number if face_number is not None else 0
        face = faces[chosen]
        if self.embedder.is_too_small(face):
            raise FaceTooSmall(
                f"The face is only {face.size:.0f} pixels across; at least {self.embedder.min_face_size} are needed "
                "to judge. Use a sharper photo in which your face is larger."
            )
        return chosen
