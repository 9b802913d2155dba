"""From the best similarity in a dataset to a calibrated confidence and a verdict.

The confidence is the estimated probability that the dataset holds a photo of the same person as
the query, given the best cosine similarity ``s`` between the query and the dataset's N faces:

    P(in set | s, N) = prior * f1(s) / (prior * f1(s) + (1 - prior) * f0N(s))

where f0N is the density of the best of N impostor scores (every face is a stranger) and f1 the
density of the best score when one face is the person's own (the best of a genuine score and N - 1
impostor scores). Both come from the embedder's score model (``ScoreModel``), fitted on labelled
faces; a bigger dataset makes a high stranger score likelier, so the same ``s`` means less in it.

Two refinements, each optional in the model document (a document without them gives the plain model):

- **the query's own strangers** (``query_level``): some faces look like many strangers, others like
  few. How high the query's 5th to 20th best scores in the dataset sit, against what the model
  expects for N faces, says how high its best stranger is likely to be; the two are coupled by a
  Gaussian copula whose correlation was measured on simulated searches of each gallery size.
- **several photos of the person** (``query_photos``): the query may be the template of K photos
  (the mean of their L2-normalised embeddings, re-normalised), whose genuine and impostor scores
  are distributed differently from one photo's; each K has its own fitted distributions.

The method, its assumptions and the figures it was fitted on are in docs/confidence.md.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

DEFAULT_PRIOR = 0.5
DEFAULT_THRESHOLDS = {"match": 0.95, "possible": 0.5}
VERDICTS = ("match", "possible", "no_match")

_FLOOR = 1e-300


class ScoreModel:
    """An embedder's impostor and genuine score distributions (see ``calibration.py``)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.photos = int(document.get("photos", 1))
        self._by_photos: dict[int, ScoreModel] = {1: self}
        for photos, section in (document.get("query_photos") or {}).items():
            self._by_photos[int(photos)] = ScoreModel(_photos_document(document, int(photos), section))
        impostor = document["impostor"]
        self.table_scores = np.asarray(impostor["table_scores"], dtype=np.float64)
        self.table_survival = np.asarray(impostor["table_survival"], dtype=np.float64)
        self.table_density = np.maximum(-np.gradient(self.table_survival, self.table_scores), 0.0)
        self.tail_start = float(impostor["tail_start"])
        self.tail_probability = float(impostor["tail_probability"])
        self.tail_shape = float(impostor["tail_shape"])
        self.tail_scale = float(impostor["tail_scale"])
        self.gamma = float(document.get("gamma", 1.0))
        low = document.get("low_quality") or {}
        # A blurred query face scores lower against photos of the same person and a little higher
        # against strangers: shifts measured on blurred LFW photos (docs/confidence.md).
        self.shifts = {
            "good": (0.0, 0.0),
            "low": (float(low.get("genuine_shift", 0.0)), float(low.get("impostor_shift", 0.0))),
        }
        # Slope and offset of the log-likelihood ratio, per query quality and whether the query level
        # was read (each fitted on simulated searches; a part missing falls back to the plainer one).
        level_part = document.get("query_level") or {}
        plain = document.get("recalibration") or {}
        blurred = low.get("recalibration") or plain
        parts = {
            ("good", False): plain,
            ("low", False): blurred,
            ("good", True): level_part.get("recalibration") or plain,
            ("low", True): low.get("level_recalibration") or level_part.get("recalibration") or blurred,
        }
        self.recalibration = {
            key: (float(values.get("slope", 1.0)), float(values.get("offset", 0.0))) for key, values in parts.items()
        }
        level = document.get("query_level") or {}
        self.level_ranks = tuple(int(r) for r in level.get("ranks", (5, 20)))
        self.level_sizes = np.log(np.asarray(level.get("sizes", []), dtype=np.float64))
        self.level_mean = np.asarray(level.get("mean", []), dtype=np.float64)
        self.level_sd = np.asarray(level.get("sd", []), dtype=np.float64)
        self.level_correlation = np.asarray(level.get("correlation", []), dtype=np.float64)
        # The lowest normal score of the level that counts (0: a low level is read as a typical one).
        self.level_floor = float(level.get("floor", -4.0))
        self._ranked_impostors: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
        grid = np.asarray(document["genuine"]["grid"], dtype=np.float64)
        density = np.maximum(np.asarray(document["genuine"]["density"], dtype=np.float64), 0.0)
        cumulative = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
        total = cumulative[-1] if cumulative[-1] > 0 else 1.0
        self.genuine_grid = grid
        self.genuine_density = density / total
        self.genuine_cumulative = cumulative / total

    # -- one impostor pair ------------------------------------------------------------------
    def _tail(self, excess: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Generalised Pareto survival and density above ``tail_start``."""
        xi, beta = self.tail_shape, self.tail_scale
        if abs(xi) < 1e-9:
            survival = np.exp(-excess / beta)
            return survival, survival / beta
        base = np.maximum(1.0 + xi * excess / beta, 0.0)
        survival = np.where(base > 0, base ** (-1.0 / xi), 0.0)
        density = np.where(base > 0, base ** (-1.0 / xi - 1.0) / beta, 0.0)
        return survival, density

    def impostor_survival(self, s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, dtype=np.float64)
        table = np.interp(s, self.table_scores, self.table_survival, left=1.0, right=self.tail_probability)
        tail, _ = self._tail(np.maximum(s - self.tail_start, 0.0))
        return np.where(s > self.tail_start, self.tail_probability * tail, table)

    def impostor_density(self, s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, dtype=np.float64)
        table = np.interp(s, self.table_scores, self.table_density, left=0.0, right=self.table_density[-1])
        _, tail = self._tail(np.maximum(s - self.tail_start, 0.0))
        return np.where(s > self.tail_start, self.tail_probability * tail, table)

    # -- the best of N ----------------------------------------------------------------------
    def effective(self, n: int) -> float:
        return max(float(n), 1.0) ** self.gamma

    def log_best_impostor_cdf(self, s: np.ndarray, n: int) -> np.ndarray:
        survival = np.clip(self.impostor_survival(s), 0.0, 1.0 - 1e-16)
        return self.effective(n) * np.log1p(-survival)

    def log_best_impostor_density(self, s: np.ndarray, n: int) -> np.ndarray:
        effective = self.effective(n)
        survival = np.clip(self.impostor_survival(s), 0.0, 1.0 - 1e-16)
        return (
            math.log(effective)
            + np.log(np.maximum(self.impostor_density(s), _FLOOR))
            + (effective - 1.0) * np.log1p(-survival)
        )

    def best_impostor_quantile(self, p: float, n: int) -> float:
        """The score that the best of N strangers stays below with probability ``p``."""
        low, high = float(self.table_scores[0]), 1.0
        for _ in range(60):
            middle = (low + high) / 2
            if math.exp(float(self.log_best_impostor_cdf(np.array(middle), n))) < p:
                low = middle
            else:
                high = middle
        return (low + high) / 2

    def log_best_impostor_survival(self, s: np.ndarray, n: int) -> np.ndarray:
        """log P(best of N strangers > s), accurate far into the tail."""
        log_cdf = self.log_best_impostor_cdf(s, n)
        return np.log(np.maximum(-np.expm1(log_cdf), _FLOOR))

    # -- the query's own strangers --------------------------------------------------------------
    def expected_ranked_impostors(self, n: int, ranks: np.ndarray) -> np.ndarray:
        """The typical r-th best of N strangers' scores (the median of that order statistic, for the
        N^gamma independent strangers that N faces count as)."""
        key = (int(n), tuple(int(r) for r in np.asarray(ranks).ravel()))
        cached = self._ranked_impostors.get(key)
        if cached is None:
            effective = self.effective(n)
            target = np.log((np.asarray(key[1], dtype=np.float64) - 1 / 3) / (effective + 1 / 3))
            low = np.full(len(target), float(self.table_scores[0]))
            high = np.ones(len(target))
            for _ in range(40):
                middle = (low + high) / 2
                above = np.log(np.maximum(self.impostor_survival(middle), _FLOOR)) > target
                low, high = np.where(above, middle, low), np.where(above, high, middle)
            cached = (low + high) / 2
            cached.setflags(write=False)  # shared by every call for this N
            self._ranked_impostors[key] = cached
        return cached

    def query_level(self, scores: np.ndarray, n: int, *, low_quality: bool = False) -> float | None:
        """How much higher than expected the query's 5th to 20th best scores sit in a dataset of N
        faces (the median difference), or None where the model has no such part or the dataset is
        too small for it: ranks beyond the first few stay strangers even for a person with several
        photos in the set."""
        if not len(self.level_sizes) or len(scores) < self.level_ranks[1] or n < float(np.exp(self.level_sizes[0])):
            return None
        return self.measure_level(scores, n, low_quality=low_quality)

    def measure_level(self, scores: np.ndarray, n: int, *, low_quality: bool = False) -> float | np.ndarray:
        """``query_level`` without the checks (the fit measures it at every gallery size); for a matrix of
        best scores (one search per row), one level per row."""
        first, last = self.level_ranks
        ranks = np.arange(first, last + 1)
        ordered = -np.sort(-np.asarray(scores, dtype=np.float64), axis=-1)
        expected = self.expected_ranked_impostors(n, ranks) + self.shifts["low" if low_quality else "good"][1]
        levels = np.median(ordered[..., ranks - 1] - expected, axis=-1)
        return float(levels) if np.ndim(levels) == 0 else levels

    def _level_parameters(self, n: int) -> tuple[float, float, float]:
        """(mean, sd, correlation with the best stranger) of the query level for a dataset of N faces:
        measured at a few gallery sizes, interpolated in log N, held constant beyond them."""
        x = math.log(max(n, 1))
        return (
            float(np.interp(x, self.level_sizes, self.level_mean)),
            float(np.interp(x, self.level_sizes, self.level_sd)),
            float(np.interp(x, self.level_sizes, self.level_correlation)),
        )

    # -- genuine --------------------------------------------------------------------------------
    def genuine_pdf(self, s: np.ndarray) -> np.ndarray:
        return np.interp(s, self.genuine_grid, self.genuine_density, left=0.0, right=0.0)

    def genuine_cdf(self, s: np.ndarray) -> np.ndarray:
        return np.interp(s, self.genuine_grid, self.genuine_cumulative, left=0.0, right=1.0)

    def genuine_quantile(self, p: float, *, low_quality: bool = False) -> float:
        """The score that a share ``p`` of one photo's genuine scores (two photos of one person) stay
        below; with ``low_quality``, as a blurred face scores (its distribution shifted)."""
        shift = self.shifts["low" if low_quality else "good"][0]
        return float(np.interp(p, self.genuine_cumulative, self.genuine_grid)) + shift

    # -- the answer -----------------------------------------------------------------------------
    def log_likelihood_ratio(
        self, s: float | np.ndarray, n: int, *, low_quality: bool = False, level: float | np.ndarray | None = None
    ) -> np.ndarray:
        """log f1(s) / f0N(s): how much likelier the best score is if the person is in the set.

        With the query ``level`` (``query_level``), the best stranger's distribution is the one given
        that level: a Gaussian copula between the two, with the correlation measured for N faces."""
        s = np.clip(np.asarray(s, dtype=np.float64), self.table_scores[0], 1.0)
        genuine_shift, impostor_shift = self.shifts["low" if low_quality else "good"]
        g, i = s - genuine_shift, s - impostor_shift  # the distributions move, the score stays
        rho, z_level = 0.0, 0.0
        if level is not None and n > 1 and len(self.level_sizes):
            mean, sd, rho = self._level_parameters(n)
            z_level = (
                np.clip((np.asarray(level, dtype=np.float64) - mean) / sd, self.level_floor, 4.0) if sd > 0 else 0.0
            )
        log_genuine = np.log(np.maximum(self.genuine_pdf(g), _FLOOR))
        log_genuine_cdf = np.log(np.maximum(self.genuine_cdf(g), _FLOOR))
        if rho == 0.0:
            log_cdf_rest = self.log_best_impostor_cdf(i, max(n - 1, 1)) if n > 1 else np.zeros_like(s)
            log_density_rest = self.log_best_impostor_density(i, n - 1) if n > 1 else np.full_like(s, -np.inf)
            log_in = np.logaddexp(log_genuine + log_cdf_rest, log_genuine_cdf + log_density_rest)
            return log_in - self.log_best_impostor_density(i, n)
        log_copula_all, _ = self._copula(i, n, rho, z_level)
        log_copula_rest, log_cdf_rest = self._copula(i, n - 1, rho, z_level)
        log_in = np.logaddexp(
            log_genuine + log_cdf_rest,
            log_genuine_cdf + self.log_best_impostor_density(i, n - 1) + log_copula_rest,
        )
        return log_in - (self.log_best_impostor_density(i, n) + log_copula_all)

    def _copula(self, s: np.ndarray, n: int, rho: float, z_level: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the best of N strangers at ``s``, given the query level's normal score ``z_level``: the
        log Gaussian copula density (what the level changes in the best stranger's density) and the
        log conditional probability that the best stranger stays below ``s``."""
        from scipy.special import log_ndtr, ndtri

        log_cdf = self.log_best_impostor_cdf(s, n)
        log_survival = self.log_best_impostor_survival(s, n)
        # The best stranger's normal score, from whichever side keeps precision.
        z = np.where(log_cdf < math.log(0.5), ndtri(np.exp(log_cdf)), -ndtri(np.exp(log_survival)))
        z = np.clip(z, -38.0, 38.0)
        spread = math.sqrt(1.0 - rho * rho)
        log_density = -math.log(spread) - (rho * rho * (z * z + z_level * z_level) - 2 * rho * z * z_level) / (
            2 * spread * spread
        )
        return log_density, log_ndtr((z - rho * z_level) / spread)

    def probability(
        self,
        s: float | np.ndarray,
        n: int,
        prior: float,
        *,
        low_quality: bool = False,
        level: float | np.ndarray | None = None,
    ) -> np.ndarray:
        """P(in set | s, N). The likelihood ratio is recalibrated (slope, offset) as fitted on simulated
        searches, where the model's independence assumptions make it a little too sure; a blurred query
        face has its own shifted distributions and recalibration, fitted on blurred photos."""
        read_level = level is not None and len(self.level_sizes) > 0
        slope, offset = self.recalibration[("low" if low_quality else "good", read_level)]
        log_ratio = slope * self.log_likelihood_ratio(s, n, low_quality=low_quality, level=level) + offset
        log_odds = math.log(prior / (1.0 - prior)) + log_ratio
        return 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))

    def for_photos(self, photos: int) -> ScoreModel:
        """The model for a query that is the template of ``photos`` photos of the person: the section
        fitted for the most photos up to that many (a document without sections serves every K as one
        photo, as indexes built before templates existed do)."""
        fitted = [k for k in self._by_photos if k <= max(int(photos), 1)]
        return self._by_photos[max(fitted)]


def _photos_document(document: dict[str, Any], photos: int, section: dict[str, Any]) -> dict[str, Any]:
    """A K-photo section as a document of its own: its distributions and recalibration, with the
    document's blurred-face shifts (measured on one photo; see docs/confidence.md)."""
    low = document.get("low_quality") or {}
    merged = {key: value for key, value in document.items() if key not in ("query_photos", "query_level")}
    merged.update(section)
    merged["photos"] = photos
    merged["low_quality"] = {
        "genuine_shift": low.get("genuine_shift", 0.0),
        "impostor_shift": low.get("impostor_shift", 0.0),
    }
    return merged


# -- the index's confidence configuration ---------------------------------------------------------


@cache
def _shipped_models() -> dict[str, dict[str, Any]]:
    folder = resources.files("indexer") / "data" / "calibration"
    models = {}
    for item in folder.iterdir():
        if item.name.endswith(".json"):
            document = json.loads(item.read_text(encoding="utf-8"))
            models[document["model"]] = document
    return models


def shipped_score_model(model: str) -> dict[str, Any] | None:
    return _shipped_models().get(model)


def default_config(embedder: dict[str, Any], *, prior: float | None = None) -> dict[str, Any]:
    """What a new index records: method, prior, thresholds and the embedder's score model."""
    document = shipped_score_model(embedder["model"])
    if document is None:
        from .calibration import gaussian_score_model

        document = gaussian_score_model(embedder["model"])
    return {
        "method": "best-of-N impostor model (docs/confidence.md)",
        "prior": DEFAULT_PRIOR if prior is None else float(prior),
        "thresholds": dict(DEFAULT_THRESHOLDS),
        "score_model": document,
    }


#: Built score models by the identity of their document (a loaded index keeps one for its lifetime),
#: so that a check does not rebuild or re-serialise one per dataset. The document is held too, so an
#: id is never reused for another while cached.
_MODELS: dict[int, tuple[dict[str, Any], ScoreModel]] = {}


def score_model(config: dict[str, Any]) -> ScoreModel:
    document = config["score_model"]
    cached = _MODELS.get(id(document))
    if cached is None or cached[0] is not document:
        if len(_MODELS) > 64:
            _MODELS.clear()
        cached = _MODELS[id(document)] = (document, ScoreModel(document))
    return cached[1]


def confidence(
    scores: np.ndarray, size: int, config: dict[str, Any], *, low_quality: bool = False, query_photos: int = 1
) -> float:
    """The probability that a dataset of ``size`` faces holds the person, from the query's best scores
    in it, best first (the search's nearest faces: the first gives the evidence, the 5th to 20th how
    high this query's strangers run).

    ``query_photos``: how many photos of the person the query vector stands for (1, or the template
    of several photos, whose scores the model reads with the distributions fitted for templates)."""
    if size == 0 or len(scores) == 0:
        return 0.0
    model = score_model(config).for_photos(query_photos)
    level = model.query_level(scores, size, low_quality=low_quality)
    value = model.probability(float(scores[0]), size, float(config["prior"]), low_quality=low_quality, level=level)
    return float(value)


def confidences(
    scores: np.ndarray, size: int, config: dict[str, Any], *, low_quality: bool = False, query_photos: int = 1
) -> np.ndarray:
    """For each score, the confidence the dataset would get if that score were the best one."""
    if size == 0 or len(scores) == 0:
        return np.zeros(len(scores))
    model = score_model(config).for_photos(query_photos)
    level = model.query_level(scores, size, low_quality=low_quality)
    values = model.probability(
        np.asarray(scores, np.float64), size, float(config["prior"]), low_quality=low_quality, level=level
    )
    return np.asarray(values, dtype=np.float64)


def verdict(value: float, config: dict[str, Any]) -> str:
    thresholds = config["thresholds"]
    if value >= thresholds["match"]:
        return "match"
    if value >= thresholds["possible"]:
        return "possible"
    return "no_match"


def describe_thresholds(config: dict[str, Any]) -> dict[str, Any]:
    """What ``index list`` and the datasets endpoint report about verdicts."""
    document = config["score_model"]
    return {
        "method": config["method"],
        "prior": config["prior"],
        "match": config["thresholds"]["match"],
        "possible": config["thresholds"]["possible"],
        "fitted_on": document.get("fitted_on"),
        "assumed": bool(document.get("assumed", False)),
    }
