"""Fitting an embedder's score model from labelled faces (for example LFW).

The model has three parts, all in cosine-similarity space (see docs/confidence.md):

- the *impostor* score of one pair of different people: its survival function 1 - F0(s),
  tabulated where data is plentiful and a generalised Pareto tail above ``tail_start``, so it can
  be evaluated far beyond what the data reaches (a search of a million faces needs it);
- ``gamma``, with which the best of N impostor scores behaves like the best of N**gamma independent
  ones (faces of one person, or of look-alikes, are not independent draws), fitted by comparing
  simulated searches of galleries of 10 to several thousand faces;
- the *genuine* score of two photos of the same person: a density on a grid, each person weighted
  equally so that people with hundreds of photos do not dominate.

``fit_score_model`` returns plain numbers (a small JSON document); ``confidence.ScoreModel`` reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

TABLE_STEP = 0.0025
GENUINE_STEP = 0.002
GALLERY_SIZES = (10, 30, 100, 300, 1000, 3000)


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


def simulated_best_impostors(
    vectors: np.ndarray, codes: np.ndarray, sizes: Sequence[int], trials: int, seed: int
) -> dict[int, np.ndarray]:
    """For each gallery size N: the best score of a query against N random faces of other people."""
    rng = np.random.default_rng(seed)
    out = {}
    for size in sizes:
        best = []
        for _ in range(trials):
            query = rng.integers(len(vectors))
            others = np.flatnonzero(codes != codes[query])
            if len(others) < size:
                break
            gallery = rng.choice(others, size, replace=False)
            best.append(float((vectors[gallery] @ vectors[query]).max()))
        if best:
            out[size] = np.asarray(best)
    return out


def fit_score_model(
    vectors: np.ndarray,
    identities: Sequence[str],
    *,
    model: str,
    fitted_on: str,
    tail_start: float | None = None,
    trials: int = 500,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the score model of one embedder from L2-normalised embeddings of labelled faces."""
    from scipy.optimize import minimize_scalar
    from scipy.stats import gaussian_kde, genpareto

    from .confidence import ScoreModel

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    codes = _identity_codes(identities)
    # The tail starts where about 0.7% of impostor pairs remain: enough data to fit, far enough out.
    edges, counts, _ = impostor_scores_above(vectors, codes, 2.0)
    total = counts.sum()
    survival = 1.0 - np.cumsum(counts) / total  # survival at each bin's upper edge
    if tail_start is None:
        tail_start = float(edges[1:][np.argmax(survival < 0.007)])
    _, _, above = impostor_scores_above(vectors, codes, tail_start)
    p_tail = len(above) / total
    xi, _, beta = genpareto.fit(above - tail_start, floc=0)

    keep = (edges[1:] <= tail_start) & (survival < 0.9999)
    table_scores = np.round(edges[1:][keep], 6)
    table_survival = survival[keep]

    genuine, weights = genuine_scores(vectors, codes)
    grid = np.arange(np.floor(min(genuine.min(), tail_start - 0.2) * 100) / 100, 1.0 + GENUINE_STEP, GENUINE_STEP)
    density = gaussian_kde(genuine, weights=weights)(grid)

    document: dict[str, Any] = {
        "model": model,
        "fitted_on": fitted_on,
        "fitted_at": datetime.now(UTC).strftime("%Y-%m-%d"),
        "faces": len(vectors),
        "people": len(np.unique(codes)),
        "impostor_pairs": int(total),
        "genuine_pairs": len(genuine),
        "impostor": {
            "table_scores": table_scores.tolist(),
            "table_survival": [float(f"{v:.6g}") for v in table_survival],
            "tail_start": round(float(tail_start), 6),
            "tail_probability": float(p_tail),
            "tail_shape": float(xi),
            "tail_scale": float(beta),
        },
        "gamma": 1.0,
        "genuine": {"grid": np.round(grid, 6).tolist(), "density": [float(f"{v:.6g}") for v in density]},
    }

    best = simulated_best_impostors(vectors, codes, GALLERY_SIZES, trials, seed)

    def negative_log_likelihood(gamma: float) -> float:
        score_model = ScoreModel({**document, "gamma": gamma})
        return -sum(float(score_model.log_best_impostor_density(values, n).sum()) for n, values in best.items())

    fit = minimize_scalar(negative_log_likelihood, bounds=(0.3, 1.2), method="bounded")
    document["gamma"] = round(float(fit.x), 4)
    document["gallery_check"] = {
        str(n): {
            "simulated_median": round(float(np.median(values)), 4),
            "simulated_q99": round(float(np.quantile(values, 0.99)), 4),
            "model_median": round(ScoreModel(document).best_impostor_quantile(0.5, n), 4),
            "model_q99": round(ScoreModel(document).best_impostor_quantile(0.99, n), 4),
        }
        for n, values in best.items()
    }
    return document


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
