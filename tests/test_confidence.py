"""The confidence: monotone in the score, humbler in bigger sets and for blurred faces, and says so."""

from __future__ import annotations

import numpy as np
import pytest

from indexer import confidence
from indexer.confidence import ScoreModel, default_config, shipped_score_model, verdict

DLIB = {"name": "dlib", "model": "dlib_face_recognition_resnet_model_v1", "dimension": 128}


@pytest.fixture(scope="module")
def model() -> ScoreModel:
    return ScoreModel(shipped_score_model(DLIB["model"]))


def test_higher_scores_mean_more(model):
    scores = np.linspace(0.85, 0.99, 30)
    values = model.probability(scores, 1000, 0.5)
    assert np.all(np.diff(values) >= -1e-12) and values[0] < 0.05 and values[-1] > 0.95


def test_the_same_score_means_less_in_a_bigger_set(model):
    sizes = [10, 1_000, 100_000, 1_000_000]
    values = [float(model.probability(0.95, n, 0.5)) for n in sizes]
    assert values == sorted(values, reverse=True) and values[0] > 0.95 and values[-1] < 0.5


def test_the_prior_moves_the_answer(model):
    assert model.probability(0.94, 1000, 0.1) < model.probability(0.94, 1000, 0.5) < model.probability(0.94, 1000, 0.9)


def test_a_blurred_face_gives_a_less_certain_no_match(model):
    for score in (0.90, 0.92):
        sharp = float(model.probability(score, 500, 0.5))
        blurred = float(model.probability(score, 500, 0.5, low_quality=True))
        assert blurred > sharp


def test_figures_the_docs_quote(model):
    """docs/confidence.md: the best of a million strangers is about the median genuine score."""
    assert model.best_impostor_quantile(0.5, 1_000_000) == pytest.approx(0.954, abs=0.004)
    assert model.best_impostor_quantile(0.5, 10) == pytest.approx(0.883, abs=0.004)


def test_verdicts_follow_the_thresholds():
    config = default_config(DLIB)
    assert config["thresholds"] == {"match": 0.95, "possible": 0.5} and config["prior"] == 0.5
    assert [verdict(v, config) for v in (0.99, 0.95, 0.7, 0.5, 0.2)] == [
        "match",
        "match",
        "possible",
        "possible",
        "no_match",
    ]
    assert confidence.confidence(np.array([]), 0, config) == 0.0


def test_an_embedder_without_a_fit_gets_an_assumed_model_that_says_so():
    config = default_config({"name": "insightface", "model": "buffalo_l/w600k_r50", "dimension": 512})
    described = confidence.describe_thresholds(config)
    assert described["assumed"] is True and "not fitted" in described["fitted_on"]
    model = ScoreModel(config["score_model"])
    assert model.probability(0.75, 1000, 0.5) > 0.9 and model.probability(0.2, 1000, 0.5) < 0.05
