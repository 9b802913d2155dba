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


def test_templates_of_several_photos_have_their_own_distributions(model):
    """Three photos' template scores higher against the person's other photos, and against strangers:
    a score that is a rare stranger's for one photo is a common one for a template."""
    one, three = model.for_photos(1), model.for_photos(3)
    assert one is model and three.photos == 3 and model.for_photos(9).photos == 5
    assert three.best_impostor_quantile(0.99, 1000) > one.best_impostor_quantile(0.99, 1000)
    genuine_median = {m.photos: m.genuine_grid[np.searchsorted(m.genuine_cumulative, 0.5)] for m in (one, three)}
    assert genuine_median[3] > genuine_median[1] + 0.005
    rare_stranger = one.best_impostor_quantile(0.99, 1000)
    assert three.probability(rare_stranger, 1000, 0.5) < one.probability(rare_stranger, 1000, 0.5)
    assert three.probability(genuine_median[3], 1000, 0.5) > 0.95


def test_query_photos_picks_the_template_model():
    config = default_config(DLIB)
    scores = np.array([0.95])
    by_photos = [confidence.confidence(scores, 1000, config, query_photos=k) for k in (1, 2, 3)]
    assert by_photos[0] > by_photos[1] > by_photos[2]


def test_a_model_without_template_or_level_parts_reads_as_before(model):
    """Indexes record their score model; one written before templates answers every K as one photo."""
    document = {k: v for k, v in shipped_score_model(DLIB["model"]).items() if k not in ("query_photos", "query_level")}
    config = {**default_config(DLIB), "score_model": document}
    old = ScoreModel(document)
    assert old.for_photos(3) is old
    scores = np.concatenate([[0.945], np.linspace(0.93, 0.88, 63)])
    value = confidence.confidence(scores, 1000, config, query_photos=3)
    assert (
        value == confidence.confidence(scores, 1000, config) == pytest.approx(float(old.probability(0.945, 1000, 0.5)))
    )


def test_strangers_running_high_make_the_answer_humbler(model):
    """The 5th to 20th best scores say how high this query's strangers run in this set: higher than
    usual, and the same best score means less; lower than usual counts as usual (never surer)."""
    config = default_config(DLIB)
    typical = model.expected_ranked_impostors(1000, np.arange(1, 65))
    answers = {}
    for shift in (-0.01, 0.0, 0.02):
        scores = np.concatenate([[0.945], typical[1:] + shift])
        assert model.query_level(scores, 1000) == pytest.approx(shift, abs=1e-6)
        answers[shift] = confidence.confidence(scores, 1000, config)
    assert answers[0.02] < answers[0.0] - 0.3 and answers[-0.01] == pytest.approx(answers[0.0])
    # A set too small to tell, or only the best score known: the plain model.
    assert model.query_level(typical[:20], 20) is None and model.query_level(typical[:5], 1000) is None


@pytest.mark.xfail(
    strict=True,
    reason="known limitation (docs/confidence.md): the query level reads a dozen or more photos of the person "
    "as strangers running high; a rule on the scores alone cost held-out FPIR, the fix needs the neighbours' vectors",
)
def test_more_photos_of_the_person_never_make_the_answer_humbler_than_the_plain_model():
    """A dozen photos of the person or more fill the 5th to 20th best scores, which the query level would
    read as strangers running high: the answer must never fall below the model's without the level."""
    config = default_config(DLIB)  # the shipped model, as an index records and reads it
    model = confidence.score_model(config)
    for size in (1000, 10_000, 100_000):
        typical = model.expected_ranked_impostors(size, np.arange(1, 65))
        for best in (0.97, 0.975):
            plain = float(model.probability(best, size, 0.5))
            values = []
            for k in range(31):
                own = np.linspace(0.96, 0.93, k)  # the person's other photos, just below the best
                scores = np.sort(np.concatenate([[best], own, typical[1 : 64 - k]]))[::-1]
                values.append(confidence.confidence(scores, size, config))
            assert min(values) >= plain - 1e-12, (size, best, values)
            # Without photos of the person beyond the best, the level still reads (a typical one).
            assert values[0] == pytest.approx(float(model.probability(best, size, 0.5, level=0.0)), abs=1e-3)


def test_the_ranked_strangers_are_computed_once_per_size(model):
    ranks = np.arange(5, 21)
    first = model.expected_ranked_impostors(1234, ranks)
    assert model.expected_ranked_impostors(1234, ranks) is first and not first.flags.writeable
    assert np.all(np.diff(first) < 0)
