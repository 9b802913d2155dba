"""From the best similarity in a dataset to a calibrated confidence and a verdict.

The confidence is the estimated probability that the dataset holds a photo of the same person as
the query, given the best cosine similarity ``s`` between the query and the dataset's N faces:

    P(in set | s, N) = prior * f1(s) / (prior * f1(s) + (1 - prior) * f0N(s))

where f0N is the density of the best of N impostor scores (every face is a stranger) and f1 the
density of the best score when one face is the person's own (the best of a genuine score and N - 1
impostor scores). Both come from the embedder's score model (``ScoreModel``), fitted on labelled
faces; a bigger dataset makes a high stranger score likelier, so the same ``s`` means less in it.
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
        self.recalibration = {
            quality: (float(values.get("slope", 1.0)), float(values.get("offset", 0.0)))
            for quality, values in (
                ("good", document.get("recalibration") or {}),
                ("low", low.get("recalibration") or document.get("recalibration") or {}),
            )
        }
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
    def log_likelihood_ratio(self, s: float | np.ndarray, n: int, *, low_quality: bool = False) -> np.ndarray:
        """log f1(s) / f0N(s): how much likelier the best score is if the person is in the set."""
        s = np.clip(np.asarray(s, dtype=np.float64), self.table_scores[0], 1.0)
        genuine_shift, impostor_shift = self.shifts["low" if low_quality else "good"]
        g, i = s - genuine_shift, s - impostor_shift  # the distributions move, the score stays
        log_cdf_rest = self.log_best_impostor_cdf(i, max(n - 1, 1)) if n > 1 else np.zeros_like(s)
        log_density_rest = self.log_best_impostor_density(i, n - 1) if n > 1 else np.full_like(s, -np.inf)
        log_in = np.logaddexp(
            np.log(np.maximum(self.genuine_pdf(g), _FLOOR)) + log_cdf_rest,
            np.log(np.maximum(self.genuine_cdf(g), _FLOOR)) + log_density_rest,
        )
        return log_in - self.log_best_impostor_density(i, n)

    def probability(self, s: float | np.ndarray, n: int, prior: float, *, low_quality: bool = False) -> np.ndarray:
        """P(in set | s, N). The likelihood ratio is recalibrated (slope, offset) as fitted on simulated
        searches, where the model's independence assumptions make it a little too sure; a blurred query
        face has its own shifted distributions and recalibration, fitted on blurred photos."""
        slope, offset = self.recalibration["low" if low_quality else "good"]
        log_ratio = slope * self.log_likelihood_ratio(s, n, low_quality=low_quality) + offset
        log_odds = math.log(prior / (1.0 - prior)) + log_ratio
        return 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))


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
    """The probability that a dataset of ``size`` faces holds the person, from the query's best scores.

    ``query_photos``: how many photos of the person the query vector stands for (1, or the template of
    several photos); the score model does not tell them apart yet."""
    if size == 0 or len(scores) == 0:
        return 0.0
    model = score_model(config)
    return float(model.probability(float(scores[0]), size, float(config["prior"]), low_quality=low_quality))


def confidences(
    scores: np.ndarray, size: int, config: dict[str, Any], *, low_quality: bool = False, query_photos: int = 1
) -> np.ndarray:
    """For each score, the confidence the dataset would get if that score were the best one."""
    if size == 0 or len(scores) == 0:
        return np.zeros(len(scores))
    model = score_model(config)
    values = model.probability(np.asarray(scores, np.float64), size, float(config["prior"]), low_quality=low_quality)
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
