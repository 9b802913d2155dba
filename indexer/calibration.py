"""Fitting an embedder's score model from labelled faces (for example LFW).

The model has three parts, all in cosine-similarity space (see docs/confidence.md):

- the *impostor* score of one pair of different people: its survival function 1 - F0(s),
  tabulated where data is plentiful and a generalised Pareto tail above ``tail_start``, so it can
  be evaluated far beyond what the data reaches (a search of a million faces needs it);
- ``gamma``, with which the best of N impostor scores behaves like the best of N**gamma independent
  ones (faces of one person, or of look-alikes, are not independent draws), fitted by comparing
  simulated searches of galleries of 10 to several thousand faces;
- the *genuine* score of two photos of the same person: a density on a grid, each person weighted
  equally so that people with hundreds of photos do not dominate;
- the *query level*: how the query's 5th to 20th best scores in a gallery of N faces predict its
  best stranger there (the mean and spread of that level and its correlation with the best
  stranger, measured on simulated searches of galleries of 25 to 1,600 faces);
- the *recalibration*: a slope and an offset on the log-likelihood ratio, fitted on simulated
  open-set searches (half of them with the person present), where the independence assumptions
  make the raw model a little too sure.

The same parts are fitted for the template of K photos (K = 2 to 5): the mean of K L2-normalised
embeddings of one person, re-normalised, searched against single photos; its scores are distributed
differently from one photo's. They go into the document's ``query_photos`` sections.

``fit_score_model`` returns plain numbers (a small JSON document); ``confidence.ScoreModel`` reads it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from .template import template

if TYPE_CHECKING:
    from .confidence import ScoreModel

TABLE_STEP = 0.0025
GENUINE_STEP = 0.002
GALLERY_SIZES = (10, 30, 100, 300, 1000, 3000)
#: Gallery sizes at which the query level's relation to the best stranger is measured.
LEVEL_SIZES = (25, 50, 100, 200, 400, 800, 1600)
#: The query level: the 5th to 20th best scores (a person with a few photos in a set leaves them to strangers).
LEVEL_RANKS = (5, 20)
#: The query level only ever makes the model humbler: a query whose strangers run high is likelier to
#: meet a close one, but one whose strangers run low can still meet a single look-alike (the coupling
#: is measured in the bulk and weakens in the tail), so a level below the typical one counts as typical.
LEVEL_FLOOR = 0.0
#: Templates drawn per person (random sets of K photos); K = 1 uses every photo.
TEMPLATES_PER_PERSON = 10
#: A K-photo section is fitted only where this many people have K + 1 photos or more.
MIN_PEOPLE_PER_SECTION = 20


def _identity_codes(identities: Sequence[str]) -> np.ndarray:
    _, codes = np.unique(np.asarray(identities), return_inverse=True)
    return codes


def impostor_scores_above(vectors: np.ndarray, codes: np.ndarray, threshold: float, chunk: int = 2048):
    """Histogram of all different-person pair scores, and the exact scores above ``threshold``."""
    edges = np.arange(-1.0, 1.0 + TABLE_STEP, TABLE_STEP)
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    above: list[np.ndarray] = []
    n = len(vectors)
    for start in range(0, n, chunk):
        block = vectors[start : start + chunk] @ vectors.T
        rows = np.arange(start, min(start + chunk, n))
        upper = np.arange(n)[None, :] > rows[:, None]  # each pair once
        different = codes[rows][:, None] != codes[None, :]
        scores = block[upper & different]
        counts += np.histogram(scores, bins=edges)[0]
        above.append(scores[scores > threshold])
    return edges, counts, np.concatenate(above)


def genuine_scores(vectors: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All same-person pair scores, with weights that give each person the same total weight."""
    scores, weights = [], []
    for code in np.unique(codes):
        members = np.flatnonzero(codes == code)
        if len(members) < 2:
            continue
        block = vectors[members] @ vectors[members].T
        pairs = block[np.triu_indices(len(members), 1)]
        scores.append(pairs)
        weights.append(np.full(len(pairs), 1.0 / len(pairs)))
    return np.concatenate(scores), np.concatenate(weights)


def draw_templates(
    vectors: np.ndarray, codes: np.ndarray, photos: int, rng: np.random.Generator, *, spare: int = 0
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Templates of ``photos`` photos for every person with ``photos + spare`` photos or more: every
    photo when ``photos`` is 1, else up to ``TEMPLATES_PER_PERSON`` random sets per person. Returns
    the templates, their people's codes and the rows each was made of."""
    templates, owners, members = [], [], []
    for code in np.unique(codes):
        rows = np.flatnonzero(codes == code)
        if len(rows) < photos + spare:
            continue
        if photos == 1:
            chosen = [np.array([row]) for row in rows]
        else:
            chosen = [np.sort(rng.choice(rows, photos, replace=False)) for _ in range(TEMPLATES_PER_PERSON)]
            chosen = list({tuple(c): c for c in chosen}.values())
        for rows_of_template in chosen:
            templates.append(template(vectors[rows_of_template]))
            owners.append(code)
            members.append(rows_of_template)
    if not templates:
        return np.zeros((0, vectors.shape[1]), np.float32), np.zeros(0, np.int64), []
    return np.stack(templates), np.asarray(owners), members


def template_impostor_scores_above(
    templates: np.ndarray, owners: np.ndarray, vectors: np.ndarray, codes: np.ndarray, threshold: float
):
    """Like ``impostor_scores_above``, for templates against single photos of other people."""
    edges = np.arange(-1.0, 1.0 + TABLE_STEP, TABLE_STEP)
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    above: list[np.ndarray] = []
    for start in range(0, len(templates), 512):
        block = templates[start : start + 512] @ vectors.T
        scores = block[owners[start : start + 512][:, None] != codes[None, :]]
        counts += np.histogram(scores, bins=edges)[0]
        above.append(scores[scores > threshold])
    return edges, counts, np.concatenate(above)


def template_genuine_scores(
    vectors: np.ndarray, codes: np.ndarray, photos: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of templates of ``photos`` photos against each other photo of the same person, with
    weights that give each person the same total weight (one photo: every same-person pair once)."""
    if photos == 1:
        return genuine_scores(vectors, codes)
    templates, owners, members = draw_templates(vectors, codes, photos, rng, spare=1)
    scores, people = [], []
    for vector, owner, rows in zip(templates, owners, members, strict=True):
        others = np.setdiff1d(np.flatnonzero(codes == owner), rows)
        scores.append(vectors[others] @ vector)
        people.append(np.full(len(others), owner))
    scores_array, people_array = np.concatenate(scores), np.concatenate(people)
    _, inverse, counts = np.unique(people_array, return_inverse=True, return_counts=True)
    return scores_array, 1.0 / counts[inverse]


def draw_gallery(others: np.ndarray, codes: np.ndarray, size: int, rng: np.random.Generator, *, spread: bool):
    """``size`` random photos among the rows ``others``. A dataset may hold many photos of some people
    (a random draw of LFW's photos) or about one photo per person (``spread``: the fewest photos per
    person that make up the size); the fit simulates both, half and half, because a look-alike
    with many photos in the set gives the query many chances."""
    if not spread:
        return rng.choice(others, size, replace=False)
    shuffled = others[rng.permutation(len(others))]
    order = np.argsort(codes[shuffled], kind="stable")
    # The rank of each photo among its person's photos (in the shuffled order): 0 for the first.
    rank = np.empty(len(shuffled), dtype=np.int64)
    sorted_codes = codes[shuffled][order]
    starts = np.searchsorted(sorted_codes, sorted_codes)
    rank[order] = np.arange(len(order)) - starts
    return shuffled[np.argsort(rank, kind="stable")[:size]]


def simulated_searches(
    templates: np.ndarray,
    owners: np.ndarray,
    vectors: np.ndarray,
    codes: np.ndarray,
    sizes: Sequence[int],
    trials: int,
    rng: np.random.Generator,
    *,
    keep: int = LEVEL_RANKS[1],
) -> dict[int, np.ndarray]:
    """For each gallery size N: the ``keep`` best scores (best first) of random templates against N
    random photos of other people, one row per trial."""
    out = {}
    for size in sizes:
        rows = []
        for _ in range(trials):
            query = int(rng.integers(len(templates)))
            others = np.flatnonzero(codes != owners[query])
            if len(others) < size:
                break
            gallery = draw_gallery(others, codes, size, rng, spread=len(rows) % 2 == 1)
            scores = vectors[gallery] @ templates[query]
            top = min(keep, size)
            rows.append(np.sort(np.partition(scores, size - top)[size - top :])[::-1])
        if rows:
            out[size] = np.asarray(rows)
    return out


def _normal_scores(values: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri
    from scipy.stats import rankdata

    return ndtri(rankdata(values) / (len(values) + 1))


def fit_query_level(document: dict[str, Any], searches: dict[int, np.ndarray]) -> dict[str, Any]:
    """The query level's mean and spread at each gallery size, and its correlation (of normal scores,
    a Gaussian copula) with the best stranger's score, from simulated searches of strangers only."""
    from .confidence import ScoreModel

    model = ScoreModel({**document, "query_level": {"ranks": list(LEVEL_RANKS)}})
    sizes, means, spreads, correlations = [], [], [], []
    for size, rows in sorted(searches.items()):
        if rows.shape[1] < LEVEL_RANKS[1]:
            continue
        levels = np.asarray(model.measure_level(rows, size))
        best = rows[:, 0]
        sizes.append(size)
        means.append(round(float(levels.mean()), 5))
        spreads.append(round(float(levels.std()), 5))
        correlations.append(round(float(np.corrcoef(_normal_scores(best), _normal_scores(levels))[0, 1]), 4))
    return {
        "ranks": list(LEVEL_RANKS),
        "sizes": sizes,
        "mean": means,
        "sd": spreads,
        "correlation": [max(0.0, c) for c in correlations],
        "floor": LEVEL_FLOOR,
        "searches": int(sum(len(rows) for rows in searches.values())),
    }


def fit_section(
    vectors: np.ndarray,
    codes: np.ndarray,
    photos: int,
    *,
    tail_start: float | None = None,
    trials: int = 500,
    seed: int = 0,
) -> dict[str, Any]:
    """The impostor tail, gamma, genuine density and query level for templates of ``photos`` photos."""
    from scipy.optimize import minimize_scalar
    from scipy.stats import gaussian_kde, genpareto

    from .confidence import ScoreModel

    rng = np.random.default_rng(seed)
    if photos == 1:
        templates, owners = vectors, codes
        edges, counts, _ = impostor_scores_above(vectors, codes, 2.0)
    else:
        templates, owners, _ = draw_templates(vectors, codes, photos, rng)
        edges, counts, _ = template_impostor_scores_above(templates, owners, vectors, codes, 2.0)
    total = counts.sum()
    survival = 1.0 - np.cumsum(counts) / total  # survival at each bin's upper edge
    if tail_start is None:
        # The tail starts where about 0.7% of impostor pairs remain: enough data to fit, far enough out.
        tail_start = float(edges[1:][np.argmax(survival < 0.007)])
    if photos == 1:
        _, _, above = impostor_scores_above(vectors, codes, tail_start)
    else:
        _, _, above = template_impostor_scores_above(templates, owners, vectors, codes, tail_start)
    p_tail = len(above) / total
    xi, _, beta = genpareto.fit(above - tail_start, floc=0)
    keep = (edges[1:] <= tail_start) & (survival < 0.9999)

    genuine, weights = template_genuine_scores(vectors, codes, photos, rng)
    grid = np.arange(np.floor(min(genuine.min(), tail_start - 0.2) * 100) / 100, 1.0 + GENUINE_STEP, GENUINE_STEP)
    density = gaussian_kde(genuine, weights=weights)(grid)

    section: dict[str, Any] = {
        "templates": len(templates),
        "impostor_pairs": int(total),
        "genuine_pairs": len(genuine),
        "impostor": {
            "table_scores": np.round(edges[1:][keep], 6).tolist(),
            "table_survival": [float(f"{v:.6g}") for v in survival[keep]],
            "tail_start": round(float(tail_start), 6),
            "tail_probability": float(p_tail),
            "tail_shape": float(xi),
            "tail_scale": float(beta),
        },
        "gamma": 1.0,
        "genuine": {"grid": np.round(grid, 6).tolist(), "density": [float(f"{v:.6g}") for v in density]},
    }
    if photos == 1:
        del section["templates"]

    searches = simulated_searches(templates, owners, vectors, codes, GALLERY_SIZES, trials, rng)
    best = {size: rows[:, 0] for size, rows in searches.items()}

    def negative_log_likelihood(gamma: float) -> float:
        score_model = ScoreModel({**section, "gamma": gamma})
        return -sum(float(score_model.log_best_impostor_density(values, n).sum()) for n, values in best.items())

    fit = minimize_scalar(negative_log_likelihood, bounds=(0.3, 1.2), method="bounded")
    section["gamma"] = round(float(fit.x), 4)
    fitted = ScoreModel(section)
    section["gallery_check"] = {
        str(n): {
            "simulated_median": round(float(np.median(values)), 4),
            "simulated_q99": round(float(np.quantile(values, 0.99)), 4),
            "model_median": round(fitted.best_impostor_quantile(0.5, n), 4),
            "model_q99": round(fitted.best_impostor_quantile(0.99, n), 4),
        }
        for n, values in best.items()
    }
    level_searches = simulated_searches(templates, owners, vectors, codes, LEVEL_SIZES, trials, rng)
    section["query_level"] = fit_query_level(section, level_searches)
    return section


# -- recalibration on simulated open-set searches ---------------------------------------------


@dataclass
class Searches:
    """Simulated open-set searches: per search, its best scores (best first), gallery size and truth."""

    scores: list[np.ndarray]
    sizes: np.ndarray
    present: np.ndarray
    photos: int

    def log_likelihood_ratios(
        self, model: ScoreModel, *, low_quality: bool = False, use_level: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """The model's (raw, not recalibrated) log-likelihood ratio for each search, and whether it
        read the query level there (``use_level``, and a gallery large enough for it)."""
        ratios = np.empty(len(self.sizes))
        leveled = np.zeros(len(self.sizes), dtype=bool)
        for size in np.unique(self.sizes):
            rows = np.flatnonzero(self.sizes == size)
            best = np.array([self.scores[row][0] for row in rows])
            levels = None
            if use_level and model.query_level(self.scores[rows[0]], int(size)) is not None:
                top = np.stack([self.scores[row][: model.level_ranks[1]] for row in rows])
                levels = model.measure_level(top, int(size), low_quality=low_quality)
                leveled[rows] = True
            ratios[rows] = model.log_likelihood_ratio(best, int(size), low_quality=low_quality, level=levels)
        return ratios, leveled

    def recalibrations(self, model: ScoreModel, *, low_quality: bool = False) -> tuple[dict, dict | None]:
        """The recalibration of the model read without the query level (every search), and with it
        (the searches whose galleries are large enough), as document parts."""
        plain, _ = self.log_likelihood_ratios(model, low_quality=low_quality, use_level=False)
        with_level, leveled = self.log_likelihood_ratios(model, low_quality=low_quality)
        out = []
        for ratios, rows in ((plain, np.ones(len(plain), dtype=bool)), (with_level, leveled)):
            if not rows.any():
                out.append(None)
                continue
            slope, offset = fit_recalibration(ratios[rows], self.present[rows])
            sizes = self.sizes[rows]
            out.append(
                {
                    "slope": slope,
                    "offset": offset,
                    "fitted_on": f"{rows.sum()} simulated open-set searches with {self.photos} query "
                    f"photo{'s' if self.photos > 1 else ''}{' (blurred)' if low_quality else ''}, galleries of "
                    f"{sizes.min()} to {sizes.max()} faces, half of them holding 1 to 3 photos of the person",
                }
            )
        return out[0], out[1]


def simulate_open_set(
    vectors: np.ndarray,
    identities: Sequence[str],
    photos: int,
    *,
    searches: int,
    sizes: tuple[int, int] = (10, 2500),
    enrolled: tuple[int, int] = (1, 3),
    seed: int = 0,
    query_vectors: np.ndarray | None = None,
) -> Searches:
    """Open-set searches, each against a gallery of its own: a gallery size drawn log-uniformly from
    ``sizes``, and for half of the searches (present) 1 to 3 other photos of the person in it; the
    rest of the gallery is random photos of other people. The query is the template of ``photos``
    photos of the person (taken from ``query_vectors``, blurred copies for instance, when given).
    Needs people with ``photos + 1`` photos or more."""
    codes = _identity_codes(identities)
    rng = np.random.default_rng(seed)
    queries = vectors if query_vectors is None else np.ascontiguousarray(query_vectors, dtype=np.float32)
    eligible = [c for c in np.unique(codes) if np.count_nonzero(codes == c) >= photos + 1]
    if len(eligible) < 2:
        raise ValueError(f"simulating searches with {photos} query photos needs people with {photos + 1} photos")
    all_scores, all_sizes, all_present = [], [], []
    for number in range(searches):
        present = number % 2 == 0
        person = eligible[int(rng.integers(len(eligible)))]
        rows = rng.permutation(np.flatnonzero(codes == person))
        query = template(queries[rows[:photos]])
        # Sizes on a grid of 48 (log-spaced), so that searches of one size are computed together.
        size = round(math.exp(math.log(sizes[0]) + int(rng.integers(48)) / 47 * math.log(sizes[1] / sizes[0])))
        others = np.flatnonzero(codes != person)
        size = min(size, len(others))
        own = rows[photos : photos + int(rng.integers(enrolled[0], enrolled[1] + 1))] if present else rows[:0]
        strangers = draw_gallery(others, codes, size - len(own), rng, spread=number % 4 >= 2)
        gallery = np.concatenate([own, strangers])
        scores = vectors[gallery] @ query
        top = min(64, len(scores))
        all_scores.append(np.sort(np.partition(scores, len(scores) - top)[len(scores) - top :])[::-1])
        all_sizes.append(len(gallery))
        all_present.append(present)
    return Searches(all_scores, np.asarray(all_sizes), np.asarray(all_present), photos)


def fit_recalibration(log_ratios: np.ndarray, present: np.ndarray) -> tuple[float, float]:
    """Slope and offset of the log-likelihood ratio that make it calibrated on these searches
    (logistic regression, present and absent searches weighing the same)."""
    from scipy.optimize import minimize

    weights = np.where(present, 0.5 / present.mean(), 0.5 / (1 - present.mean()))
    x = np.clip(log_ratios, -60, 60)

    def loss(parameters: np.ndarray) -> float:
        z = parameters[0] * x + parameters[1]
        return float(np.sum(weights * (np.logaddexp(0, z) - present * z)))

    fit = minimize(loss, np.array([1.0, 0.0]), method="Nelder-Mead", options={"xatol": 1e-5, "fatol": 1e-8})
    return round(float(fit.x[0]), 4), round(float(fit.x[1]), 4)


# -- the whole model --------------------------------------------------------------------------


def fit_score_model(
    vectors: np.ndarray,
    identities: Sequence[str],
    *,
    model: str,
    fitted_on: str,
    query_photos: Sequence[int] = (1, 2, 3, 4, 5),
    recalibration_searches: int = 6000,
    tail_start: float | None = None,
    trials: int = 500,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the score model of one embedder from L2-normalised embeddings of labelled faces: one
    photo, and templates of each K in ``query_photos`` for which enough people have K + 1 photos."""
    from .confidence import ScoreModel

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    codes = _identity_codes(identities)
    counts = np.bincount(codes)
    document: dict[str, Any] = {
        "model": model,
        "fitted_on": fitted_on,
        "fitted_at": datetime.now(UTC).strftime("%Y-%m-%d"),
        "faces": len(vectors),
        "people": len(counts),
        **fit_section(vectors, codes, 1, tail_start=tail_start, trials=trials, seed=seed),
    }
    sections: dict[str, Any] = {}
    for photos in sorted(set(query_photos) - {1}):
        people = int(np.count_nonzero(counts >= photos + 1))
        if people < MIN_PEOPLE_PER_SECTION:
            continue
        section = fit_section(vectors, codes, photos, trials=trials, seed=seed + photos)
        section["people"] = people
        sections[str(photos)] = section
    if sections:
        document["query_photos"] = sections
    if recalibration_searches:
        for photos, section in [(1, document), *((int(k), s) for k, s in sections.items())]:
            searches = simulate_open_set(
                vectors, identities, photos, searches=recalibration_searches, seed=seed + 100 + photos
            )
            raw = ScoreModel({key: value for key, value in section.items() if key != "query_photos"})
            section["recalibration"], with_level = searches.recalibrations(raw)
            if with_level:
                section["query_level"]["recalibration"] = with_level
    return document


def fit_low_quality(
    document: dict[str, Any],
    vectors: np.ndarray,
    blurred: np.ndarray,
    identities: Sequence[str],
    *,
    blur: str,
    searches: int = 4000,
    seed: int = 0,
) -> dict[str, Any]:
    """The ``low_quality`` part: how much lower genuine and higher impostor scores run when the query
    photo is blurred (``blurred[i]`` is photo i blurred and embedded again), each person weighing the
    same, and the recalibration of the shifted model on simulated searches with blurred queries."""
    from .confidence import ScoreModel

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    blurred = np.ascontiguousarray(blurred, dtype=np.float32)
    codes = _identity_codes(identities)
    rng = np.random.default_rng(seed)
    genuine_shifts, impostor_shifts = [], []
    for code in np.unique(codes):
        rows = np.flatnonzero(codes == code)
        candidates = np.flatnonzero(codes != code)
        strangers = rng.choice(candidates, min(300, len(candidates)), replace=False)
        query = rows[int(rng.integers(len(rows)))]
        impostor_shifts.append(float((vectors[strangers] @ (blurred[query] - vectors[query])).mean()))
        if len(rows) > 1:
            others = rows[rows != query]
            genuine_shifts.append(float((vectors[others] @ (blurred[query] - vectors[query])).mean()))
    low = {
        "genuine_shift": round(float(np.mean(genuine_shifts)), 4),
        "impostor_shift": round(float(np.mean(impostor_shifts)), 4),
        "fitted_on": f"{len(impostor_shifts)} people, one photo each blurred ({blur}) against 300 strangers and "
        f"(for {len(genuine_shifts)} of them) their other photos",
    }
    simulated = simulate_open_set(vectors, identities, 1, searches=searches, seed=seed + 7, query_vectors=blurred)
    shifted = ScoreModel(
        {key: value for key, value in {**document, "low_quality": low}.items() if key != "query_photos"}
    )
    low["recalibration"], with_level = simulated.recalibrations(shifted, low_quality=True)
    if with_level:
        low["level_recalibration"] = with_level
    return low


#: Assumed score distributions for recognizers that no fit ships for (mean, sd of cosine scores).
#: ArcFace R50 (WebFace600K) figures are typical of published LFW/IJB score plots, not measured here.
ASSUMED = {
    "buffalo_l/w600k_r50": {"impostor": (0.02, 0.08), "genuine": (0.68, 0.11)},
}
GENERIC = {"impostor": (0.0, 0.1), "genuine": (0.6, 0.15)}


def gaussian_score_model(model: str, *, gamma: float = 0.87) -> dict[str, Any]:
    """A score model from assumed normal impostor and genuine distributions, marked ``assumed``.

    Used for an embedder with no fitted model (the insightface pack cannot be fetched where photocheck
    is developed). Replace it with a fit: ``photocheck eval --fit-calibration``.
    """
    from scipy.stats import genpareto, norm

    figures = ASSUMED.get(model, GENERIC)
    (imp_mean, imp_sd), (gen_mean, gen_sd) = figures["impostor"], figures["genuine"]
    tail_start = float(norm.ppf(1 - 0.007, imp_mean, imp_sd))
    table_scores = np.arange(imp_mean - 4 * imp_sd, tail_start, TABLE_STEP)
    excess = norm.ppf(np.linspace(1 - 0.007, 1 - 1e-9, 20_000), imp_mean, imp_sd) - tail_start
    xi, _, beta = genpareto.fit(excess, floc=0)
    grid = np.arange(gen_mean - 5 * gen_sd, 1.0 + GENUINE_STEP, GENUINE_STEP)
    return {
        "model": model,
        "assumed": True,
        "fitted_on": (
            f"not fitted: assumed impostor cosine N({imp_mean}, {imp_sd}) and genuine N({gen_mean}, {gen_sd}); "
            "fit this embedder on labelled faces with `photocheck eval --fit-calibration`"
        ),
        "impostor": {
            "table_scores": np.round(table_scores, 6).tolist(),
            "table_survival": norm.sf(table_scores, imp_mean, imp_sd).tolist(),
            "tail_start": tail_start,
            "tail_probability": 0.007,
            "tail_shape": float(xi),
            "tail_scale": float(beta),
        },
        "gamma": gamma,
        "genuine": {"grid": np.round(grid, 6).tolist(), "density": norm.pdf(grid, gen_mean, gen_sd).tolist()},
    }
