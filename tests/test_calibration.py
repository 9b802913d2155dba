"""Fitting a score model: on synthetic faces (people as points on the sphere, photos scattered around
them), in seconds; the shipped model is fitted on LFW by bench/fit_score_model.py."""

from __future__ import annotations

import time

import numpy as np
import pytest

from indexer.calibration import draw_gallery, fit_score_model, simulate_open_set, template
from indexer.confidence import ScoreModel
from indexer.evaluation import expected_calibration_error


def synthetic_faces(people: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """2 to 8 photos per person in 32 dimensions: a person's photos score about 0.8 together, strangers
    about 0.5, and some people look more alike than others."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=32)
    common /= np.linalg.norm(common)
    vectors, names = [], []
    for person in range(people):
        centre = common + rng.normal(scale=0.17, size=32)
        centre /= np.linalg.norm(centre)
        for _ in range(int(rng.integers(2, 9))):
            photo = centre + rng.normal(scale=0.09, size=32)
            vectors.append(photo / np.linalg.norm(photo))
            names.append(f"person{person:03d}")
    return np.asarray(vectors, dtype=np.float32), names


@pytest.fixture(scope="module")
def fitted() -> tuple[dict, float]:
    vectors, names = synthetic_faces(90)
    started = time.monotonic()
    document = fit_score_model(
        vectors, names, model="synthetic", fitted_on="synthetic", query_photos=(1, 3, 7), recalibration_searches=800
    )
    return document, time.monotonic() - started


def test_a_fit_gives_each_number_of_photos_its_own_part(fitted):
    document, seconds = fitted
    assert seconds < 60
    # Seven photos plus one to score them against: fewer than 20 people have eight, so no K=7 part.
    assert set(document["query_photos"]) == {"3"}
    for part in (document, document["query_photos"]["3"]):
        assert 0.3 <= part["gamma"] <= 1.2
        assert {"slope", "offset"} <= set(part["recalibration"]) and part["recalibration"]["slope"] > 0
        level = part["query_level"]
        assert level["sizes"][0] == 25 and max(level["sizes"]) < len(synthetic_faces(90)[0])
        assert len(level["correlation"]) == len(level["sizes"]) and all(0 <= c < 1 for c in level["correlation"])
        assert "recalibration" in level


def test_a_template_scores_higher_with_its_own_person(fitted):
    document, _ = fitted
    model = ScoreModel(document)
    one, three = model.for_photos(1), model.for_photos(3)
    medians = [m.genuine_grid[np.searchsorted(m.genuine_cumulative, 0.5)] for m in (one, three)]
    assert medians[1] > medians[0]
    for part in (one, three):
        genuine = part.genuine_grid[np.searchsorted(part.genuine_cumulative, 0.5)]
        stranger = part.best_impostor_quantile(0.5, 200)
        assert part.probability(genuine, 200, 0.5) > 0.8 > 0.2 > part.probability(stranger, 200, 0.5)


def test_the_fitted_model_is_calibrated_on_searches_it_was_not_fitted_on(fitted):
    document, _ = fitted
    model = ScoreModel(document)
    vectors, names = synthetic_faces(90, seed=1)  # other people
    searches = simulate_open_set(vectors, names, 1, searches=600, sizes=(30, 400), seed=5)
    values = np.empty(len(searches.sizes))
    for row, (scores, size) in enumerate(zip(searches.scores, searches.sizes, strict=True)):
        values[row] = model.probability(scores[0], int(size), 0.5, level=model.query_level(scores, int(size)))
    error, _ = expected_calibration_error(values, searches.present)
    assert error < 0.08


def test_templates_and_galleries():
    vectors = np.eye(3, dtype=np.float32)
    assert np.allclose(template(vectors[:2]), [2**-0.5, 2**-0.5, 0])
    codes = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    rng = np.random.default_rng(0)
    spread = draw_gallery(np.arange(10), codes, 4, rng, spread=True)
    assert sorted(codes[spread]) == [0, 1, 2, 3]  # one photo each before anyone's second
    assert len(set(draw_gallery(np.arange(10), codes, 7, rng, spread=False))) == 7
    searches = simulate_open_set(*synthetic_faces(30), 2, searches=40, sizes=(10, 50))
    assert searches.present.sum() == 20 and all(10 <= n <= 50 for n in searches.sizes)
    assert all(np.all(np.diff(s) <= 0) for s in searches.scores)
