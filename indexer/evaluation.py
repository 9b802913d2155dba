"""Measuring an embedder and its confidence on labelled faces: verification on LFW-format pairs,
open-set identification on a folder per person, and the plots that show both.

LFW's photos are centred on the person: where a photo holds several faces, the one nearest the
centre counts; where none is found, the centre region is used, and the report counts how often.
Two LFW photos are filed under the wrong person (``MISLABELLED``); they are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .embedders import FaceEmbedder
from .errors import ImageError, PhotocheckError
from .images import load_image
from .workers import map_ordered

#: The share of an LFW-style photo that the centre region covers when no face is detected.
CENTRE_REGION = 0.44

#: LFW photos filed under the wrong person, left out of fitting and of the open-set protocol:
#: Elena_de_Chavez_0001 shows Hugo Chavez, Barbara_Boxer_0001 shows Gray Davis.
MISLABELLED = frozenset({"Elena_de_Chavez/Elena_de_Chavez_0001.jpg", "Barbara_Boxer/Barbara_Boxer_0001.jpg"})


def is_mislabelled(path: Path) -> bool:
    return f"{path.parent.name}/{path.name}" in MISLABELLED


@dataclass
class EmbeddedPhotos:
    paths: list[Path]
    vectors: np.ndarray  # one row per photo (zeros where the photo could not be read)
    detected: np.ndarray  # True where a face was detected, False where the centre region was used
    unreadable: list[Path]


def embed_centre_face(embedder: FaceEmbedder, path: Path) -> tuple[np.ndarray | None, bool]:
    """The embedding of the face nearest the photo's centre (or of the centre region)."""
    try:
        pixels = load_image(Path(path).read_bytes())
    except (ImageError, OSError):
        return None, False
    height, width = pixels.shape[:2]
    faces = [f for f in embedder.detect(pixels) if not embedder.is_too_small(f)]
    if faces:
        face = min(
            faces,
            key=lambda f: (f.box[0] + f.box[2] / 2 - width / 2) ** 2 + (f.box[1] + f.box[3] / 2 - height / 2) ** 2,
        )
        return embedder.embed(pixels, [face])[0], True
    side = CENTRE_REGION * min(width, height)
    face = embedder.face_in_region(pixels, ((width - side) / 2, (height - side) / 2, side, side))
    return embedder.embed(pixels, [face])[0], False


def embed_photos(
    paths: list[Path], embedder: FaceEmbedder, *, workers: int = 1, progress: bool = True
) -> EmbeddedPhotos:
    from tqdm import tqdm

    embedder.load()
    vectors = np.zeros((len(paths), embedder.dimension), dtype=np.float32)
    detected = np.zeros(len(paths), dtype=bool)
    unreadable = []
    results = map_ordered(embed_centre_face, paths, embedder, workers)
    for row, (vector, found) in enumerate(
        tqdm(results, total=len(paths), unit="photo", desc="embedding", disable=not progress)
    ):
        if vector is None:
            unreadable.append(paths[row])
        else:
            vectors[row], detected[row] = vector, found
    if len(unreadable) == len(paths):
        raise PhotocheckError("None of the photos could be read.", code="no_photos")
    return EmbeddedPhotos(list(paths), vectors, detected, unreadable)


# -- verification on pairs -------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    first: str  # path relative to the images folder: Name/Name_0001.jpg
    second: str
    same: bool
    fold: int


def _photo(name: str, number: str) -> str:
    return f"{name}/{name}_{int(number):04d}.jpg"


def read_pairs(path: Path) -> list[Pair]:
    """LFW's View 2 file (a ``10 300`` header, then folds of 300 same and 300 different pairs), or a
    headerless file with ``#`` comments (such as pairs-dev.txt), split into 10 folds in order."""
    lines = [line.split() for line in Path(path).read_text().splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        raise PhotocheckError(f"{path} holds no pairs.", code="bad_pairs")
    header = lines[0]
    if len(header) == 2 and all(t.isdigit() for t in header):
        folds, per_kind = int(header[0]), int(header[1])
        body = lines[1:]
        if len(body) != folds * per_kind * 2:
            raise PhotocheckError(
                f"{path} says {folds} folds of {per_kind} + {per_kind} pairs, but has {len(body)} pairs.",
                code="bad_pairs",
            )
        fold_of = [i // (2 * per_kind) for i in range(len(body))]
    else:
        body = lines
        fold_of = [i * 10 // len(body) for i in range(len(body))]
    pairs = []
    for number, (tokens, fold) in enumerate(zip(body, fold_of, strict=True), 1):
        if len(tokens) == 3:
            pairs.append(Pair(_photo(tokens[0], tokens[1]), _photo(tokens[0], tokens[2]), True, fold))
        elif len(tokens) == 4:
            pairs.append(Pair(_photo(tokens[0], tokens[1]), _photo(tokens[2], tokens[3]), False, fold))
        else:
            raise PhotocheckError(f"{path}, pair {number}: expected 'NAME i j' or 'NAME1 i NAME2 j'.", code="bad_pairs")
    return pairs


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """The probability that a random genuine pair scores above a random impostor pair (ties count half)."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    positives = labels.astype(bool)
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def tar_at_far(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """True-accept rate at false-accept rates from 1e-1 down to the smallest the impostors support."""
    impostors = np.sort(scores[~labels])[::-1]
    genuine = scores[labels]
    out = {}
    far = 0.1
    while far * len(impostors) >= 1 - 1e-9:
        threshold = impostors[round(far * len(impostors)) - 1]
        out[f"{far:.0e}"] = float((genuine > threshold).mean())
        far /= 10
    return out


def ten_fold_accuracy(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> tuple[float, float, list[float]]:
    """LFW's protocol: a threshold chosen on nine folds, the accuracy measured on the tenth."""
    accuracies, thresholds = [], []
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        candidates = np.unique(scores[train])
        correct = [((scores[train] > t) == labels[train]).mean() for t in candidates]
        threshold = float(candidates[int(np.argmax(correct))])
        thresholds.append(threshold)
        accuracies.append(float(((scores[test] > threshold) == labels[test]).mean()))
    return float(np.mean(accuracies)), float(np.std(accuracies)), thresholds


def expected_calibration_error(confidence: np.ndarray, outcome: np.ndarray, bins: int = 10) -> tuple[float, list[dict]]:
    """Among answers given with confidence c, how far the share of true matches is from c (weighted mean)."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    table, error = [], 0.0
    for b in range(bins):
        members = which == b
        if not members.any():
            continue
        mean_conf, share = float(confidence[members].mean()), float(outcome[members].mean())
        error += members.mean() * abs(mean_conf - share)
        table.append(
            {
                "from": float(edges[b]),
                "to": float(edges[b + 1]),
                "answers": int(members.sum()),
                "mean_confidence": mean_conf,
                "share_true": share,
            }
        )
    return float(error), table


@dataclass
class PairsReport:
    accuracy: float
    accuracy_std: float
    auc: float
    tar_at_far: dict[str, float]
    ece: float
    reliability: list[dict]
    pairs: int
    same: int
    faces_not_detected: int
    photos: int
    unreadable: int
    scores: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    score_thresholds: dict[str, float]

    def as_dict(self) -> dict:
        return {
            "protocol": "verification on pairs",
            "pairs": self.pairs,
            "same_pairs": self.same,
            "photos": self.photos,
            "faces_not_detected": self.faces_not_detected,
            "unreadable_photos": self.unreadable,
            "accuracy": round(self.accuracy, 4),
            "accuracy_std": round(self.accuracy_std, 4),
            "auc": round(self.auc, 5),
            "tar_at_far": {k: round(v, 4) for k, v in self.tar_at_far.items()},
            "ece": round(self.ece, 4),
            "reliability": self.reliability,
            "score_thresholds": {k: round(v, 4) for k, v in self.score_thresholds.items()},
        }


def score_for_confidence(model, target: float, n: int, prior: float) -> float:
    """The best score at which the confidence reaches ``target`` (the confidence grows with the score)."""
    low, high = float(model.table_scores[0]), 1.0
    for _ in range(60):
        middle = (low + high) / 2
        if float(model.probability(middle, n, prior)) < target:
            low = middle
        else:
            high = middle
    return high


def evaluate_pairs(
    pairs: list[Pair], images: Path, embedder: FaceEmbedder, config: dict, *, workers: int = 1, progress: bool = True
) -> PairsReport:
    from .confidence import score_model

    photos = sorted({p.first for p in pairs} | {p.second for p in pairs})
    embedded = embed_photos([images / p for p in photos], embedder, workers=workers, progress=progress)
    row = {p: i for i, p in enumerate(photos)}
    bad = {str(p.relative_to(images)) for p in embedded.unreadable}
    usable = [p for p in pairs if p.first not in bad and p.second not in bad]
    first = embedded.vectors[[row[p.first] for p in usable]]
    second = embedded.vectors[[row[p.second] for p in usable]]
    scores = np.einsum("ij,ij->i", first, second)
    labels = np.array([p.same for p in usable])
    folds = np.array([p.fold for p in usable])
    accuracy, spread, _ = ten_fold_accuracy(scores, labels, folds)
    model = score_model(config)
    # One pair is a search of a "dataset" of one face; the prior is the share of same-person pairs.
    prior = float(labels.mean())
    confidence = model.probability(scores, 1, prior)
    ece, table = expected_calibration_error(confidence, labels)
    thresholds = config["thresholds"]
    return PairsReport(
        accuracy=accuracy,
        accuracy_std=spread,
        auc=roc_auc(scores, labels),
        tar_at_far=tar_at_far(scores, labels),
        ece=ece,
        reliability=table,
        pairs=len(usable),
        same=int(labels.sum()),
        faces_not_detected=int((~embedded.detected).sum() - len(embedded.unreadable)),
        photos=len(photos),
        unreadable=len(embedded.unreadable),
        scores=scores,
        labels=labels,
        confidence=confidence,
        score_thresholds={
            name: score_for_confidence(model, thresholds[name], 1, prior) for name in ("match", "possible")
        },
    )


# -- open-set identification -----------------------------------------------------------------


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".gif", ".avif"}


@dataclass
class Protocol:
    gallery: list[Path]
    gallery_people: list[str]
    probes: list[Path]  # per searched person, the first query photo
    probe_people: list[str]
    present: np.ndarray  # per probe: is the person in the gallery?
    query_sets: list[list[Path]] = field(default_factory=list)  # per searched person, its query photos
    left_out: list[Path] = field(default_factory=list)  # known mislabelled photos

    @property
    def query_photos(self) -> int:
        return min((len(q) for q in self.query_sets), default=1)


def identities_protocol(
    root: Path,
    *,
    seed: int = 0,
    max_photos: int | None = None,
    distractors: int | None = None,
    query_photos: int = 1,
) -> Protocol:
    """A seeded half of the people with ``query_photos + 1`` or more photos are enrolled (all their
    photos but the query photos, or at most ``max_photos``), with one photo of each person who has
    fewer as distractors; each searched person's ``query_photos`` held-out photos are searched
    (present), and as many photos of each person not enrolled (absent). With one query photo, the
    people with two or more photos are searched and those with one are the distractors. A search
    with fewer query photos uses the first of them, so one protocol serves K = 1, 2, 3."""
    people, left_out = {}, []
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        photos = []
        for photo in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            (left_out if is_mislabelled(photo) else photos).append(photo)
        if photos:
            people[folder.name] = photos
    several = sorted(name for name, photos in people.items() if len(photos) >= query_photos + 1)
    single = sorted(name for name, photos in people.items() if len(photos) < query_photos + 1)
    if len(several) < 2:
        raise PhotocheckError(
            f"{root} needs at least two people with {query_photos + 1} or more photos each.", code="bad_identities"
        )
    rng = np.random.default_rng(seed)
    order = [several[i] for i in rng.permutation(len(several))]
    enrolled, absent = sorted(order[: len(order) // 2]), sorted(order[len(order) // 2 :])
    gallery, gallery_people, query_sets, probe_people, present = [], [], [], [], []
    for name in enrolled:
        photos = [people[name][i] for i in rng.permutation(len(people[name]))]
        query_sets.append(photos[:query_photos])
        probe_people.append(name)
        present.append(True)
        rest = photos[query_photos:]
        kept = rest if max_photos is None else rest[:max_photos]
        gallery += kept
        gallery_people += [name] * len(kept)
    for name in absent:
        if query_photos == 1:  # as before templates: the same protocol for the same seed
            query_sets.append([people[name][int(rng.integers(len(people[name])))]])
        else:
            query_sets.append([people[name][i] for i in rng.permutation(len(people[name]))[:query_photos]])
        probe_people.append(name)
        present.append(False)
    chosen = single if distractors is None else [single[i] for i in sorted(rng.permutation(len(single))[:distractors])]
    for name in chosen:
        gallery.append(people[name][0])
        gallery_people.append(name)
    return Protocol(
        gallery,
        gallery_people,
        [q[0] for q in query_sets],
        probe_people,
        np.array(present),
        query_sets=query_sets,
        left_out=left_out,
    )


@dataclass
class IdentitiesReport:
    gallery_faces: int
    people_enrolled: int
    probes: int
    present: np.ndarray
    confidence: np.ndarray
    best: np.ndarray
    right_person: np.ndarray
    thresholds: dict[str, float]
    ece: float
    reliability: list[dict]
    faces_not_detected: int
    query_photos: int = 1
    left_out: int = 0

    def rates(self, threshold: float) -> dict[str, float]:
        said_yes = self.confidence >= threshold
        return {
            "fnir": float((~said_yes[self.present]).mean()),
            "fpir": float(said_yes[~self.present].mean()),
        }

    def curve(self) -> list[dict[str, float]]:
        points = []
        for threshold in np.unique(np.concatenate([[0.0, 1.0], self.confidence])):
            points.append({"threshold": float(threshold), **self.rates(float(threshold))})
        return points

    def fnir_at_fpir(self, fpir: float = 0.01) -> float:
        """The share of present people missed by the best score's threshold that lets at most this share
        of absent people through (the best any rule on the best score could do here)."""
        absent = np.sort(self.best[~self.present])[::-1]
        allowed = int(np.floor(fpir * len(absent)))
        threshold = absent[allowed] if allowed < len(absent) else -np.inf
        return float((self.best[self.present] <= threshold).mean())

    def as_dict(self) -> dict:
        return {
            "protocol": "open-set identification",
            "query_photos": self.query_photos,
            "gallery_faces": self.gallery_faces,
            "people_enrolled": self.people_enrolled,
            "probes": self.probes,
            "present_probes": int(self.present.sum()),
            "absent_probes": int((~self.present).sum()),
            "faces_not_detected": self.faces_not_detected,
            "mislabelled_photos_left_out": self.left_out,
            "match": {"threshold": self.thresholds["match"], **self.rates(self.thresholds["match"])},
            "possible_or_match": {"threshold": self.thresholds["possible"], **self.rates(self.thresholds["possible"])},
            "top_hit_is_the_person": round(float(self.right_person[self.present].mean()), 4),
            "fnir_at_fpir_1pct": round(self.fnir_at_fpir(0.01), 4),
            "ece": round(self.ece, 4),
            "reliability": self.reliability,
            "curve": self.curve(),
        }


def evaluate_identities(
    protocol: Protocol,
    embedder: FaceEmbedder,
    config: dict,
    *,
    query_photos: Sequence[int] | None = None,
    workers: int = 1,
    progress: bool = True,
) -> list[IdentitiesReport]:
    """Enrol the gallery in a temporary index and search every searched person through it: for each K
    in ``query_photos`` (default: the protocol's number of query photos), with the template of their
    first K query photos (the mean of the L2-normalised embeddings, re-normalised), the confidence
    reading it as K photos. One report per K."""
    import tempfile

    from . import confidence as confidence_module
    from .check import LoadedIndex
    from .store import EntryRecord, FaceRecord, IndexStore
    from .template import template

    counts = sorted(set(query_photos or [protocol.query_photos]))
    if counts[0] < 1 or counts[-1] > protocol.query_photos:
        raise PhotocheckError(
            f"This protocol holds {protocol.query_photos} query photo(s) per person; cannot search with {counts[-1]}.",
            code="bad_identities",
        )
    query_paths = [photo for photos in protocol.query_sets for photo in photos]
    embedded = embed_photos(protocol.gallery + query_paths, embedder, workers=workers, progress=progress)
    count = len(protocol.gallery)
    unreadable = set(embedded.unreadable)
    row_of = {}
    for offset, photo in enumerate(query_paths):
        row_of.setdefault(photo, count + offset)
    with tempfile.TemporaryDirectory(prefix="photocheck-eval-") as directory:
        store = IndexStore.create_or_open(Path(directory), embedder.describe(), config)
        with store.writing():
            info, _ = store.begin_dataset("gallery", source=str(directory), source_format="folder")
            records = [
                EntryRecord(key=f"{i}", status="indexed", faces=[FaceRecord(0, (0, 0, 1, 1), 1.0, embedded.vectors[i])])
                for i in range(count)
                if protocol.gallery[i] not in unreadable
            ]
            store.record_entries(info.id, records)
            store.finish_dataset(info)
        store.close()
        index = LoadedIndex(Path(directory))
        people_by_id = {}
        with IndexStore(Path(directory), readonly=True) as reader:
            for face_id, entry in reader.entry_metadata(range(1, count + 1)).items():
                people_by_id[face_id] = protocol.gallery_people[int(entry["key"])]
        reports = []
        for photos in counts:
            confidences, best, right = [], [], []
            for query_set, person in zip(protocol.query_sets, protocol.probe_people, strict=True):
                rows = [row_of[p] for p in query_set[:photos] if p not in unreadable] or [row_of[query_set[0]]]
                vector = embedded.vectors[rows[0]] if len(rows) == 1 else template(embedded.vectors[rows])
                ((dataset, scores, ids),) = index.search(vector)
                confidences.append(confidence_module.confidence(scores, dataset.size, config, query_photos=len(rows)))
                best.append(float(scores[0]))
                right.append(people_by_id.get(int(ids[0])) == person)
            confidences_array = np.array(confidences)
            ece, table = expected_calibration_error(confidences_array, protocol.present)
            reports.append(
                IdentitiesReport(
                    gallery_faces=count - len([p for p in protocol.gallery if p in unreadable]),
                    people_enrolled=int(protocol.present.sum()),
                    probes=len(protocol.query_sets),
                    present=protocol.present,
                    confidence=confidences_array,
                    best=np.array(best),
                    right_person=np.array(right),
                    thresholds=dict(config["thresholds"]),
                    ece=ece,
                    reliability=table,
                    faces_not_detected=int((~embedded.detected).sum() - len(embedded.unreadable)),
                    query_photos=photos,
                    left_out=len(protocol.left_out),
                )
            )
    return reports
