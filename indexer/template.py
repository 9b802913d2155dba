"""Several photos of one person, one query: their template, and the checks that they are one person.

A person's photos are searched together as a template: the mean of their L2-normalised embeddings,
normalised again. On LFW it finds a person far more surely than any one photo does, and more
surely than the best of separate searches, which gives every stranger several chances (issue 13).

Averaging two people would give an answer about neither, so photos are refused
(``not_same_person``) when any two of their faces score below what two photos of one person
almost never score: the 0.1% quantile of the embedder's own genuine distribution, read from the
index's score model (as a blurred face scores, when either face is blurred). A face as close to an
earlier photo's as a copy of it is (cosine 0.99 or more) adds nothing and would only make the
answer falsely sure: that photo is left out (``same_photo``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import confidence

#: The most photos of one person checked together.
MAX_PHOTOS = 5
#: Two faces that score below this quantile of the genuine distribution are not taken for one person.
SAME_PERSON_QUANTILE = 0.001
#: Re-encoded or resized copies of a photo score 0.99 or more against it (dlib, ../shared/faces); distinct
#: photos of one person reach that in 0.5% of LFW's genuine pairs: near-identical shots, which add little.
SAME_PHOTO_SIMILARITY = 0.99


def template(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """The mean of the L2-normalised ``vectors``, L2-normalised."""
    stacked = np.asarray(np.stack(vectors), dtype=np.float64)
    stacked /= np.maximum(np.linalg.norm(stacked, axis=1, keepdims=True), 1e-12)
    mean = stacked.mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def copied_from(vectors: Sequence[np.ndarray], vector: np.ndarray) -> int | None:
    """The position of the first of ``vectors`` that ``vector`` is a copy of, if any."""
    for number, other in enumerate(vectors):
        if float(np.dot(other, vector)) >= SAME_PHOTO_SIMILARITY:
            return number
    return None


def same_person_threshold(config: dict[str, Any], *, low_quality: bool = False) -> float:
    """The similarity two faces of one person stay above but for ``SAME_PERSON_QUANTILE`` of pairs."""
    return confidence.score_model(config).genuine_quantile(SAME_PERSON_QUANTILE, low_quality=low_quality)


def disagreeing_pairs(
    vectors: Sequence[np.ndarray], low: Sequence[bool], config: dict[str, Any]
) -> list[tuple[int, int]]:
    """The pairs (i, j), i < j, of faces too far apart to be one person's."""
    thresholds = {quality: same_person_threshold(config, low_quality=quality) for quality in (False, True)}
    pairs = []
    for i in range(len(vectors)):
        for j in range(i + 1, len(vectors)):
            if float(np.dot(vectors[i], vectors[j])) < thresholds[low[i] or low[j]]:
                pairs.append((i, j))
    return pairs


def is_blurred(low: Sequence[bool]) -> bool:
    """Whether a template counts as blurred: when at least half of its photos are. A blurred face
    pulls the template as much as a sharp one, so the answer is as unsure as the blurred model says
    once they weigh as much; with one photo, that photo's own quality."""
    return 2 * sum(bool(v) for v in low) >= len(low)


def _listing(labels: Sequence[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def refusal_message(labels: Sequence[str], pairs: Sequence[tuple[int, int]]) -> str:
    """A sentence naming the photos that disagree, and what to do. ``labels``: the photos' names as the
    person knows them (file names, or "photo 1", "photo 2"...)."""
    involved = [n for n in range(len(labels)) if any(n in pair for pair in pairs)]
    # The odd one out: a photo in every disagreeing pair.
    odd = [n for n in involved if all(n in pair for pair in pairs)]
    if len(odd) == 1 and len(pairs) > 1:
        one = odd[0]
        others = [labels[j if i == one else i] for i, j in pairs]
        what = f"{labels[one]} does not look like the same person as {_listing(others)}"
    else:
        what = "; ".join(f"{labels[i]} and {labels[j]} do not look like the same person" for i, j in pairs)
    return (
        f"These photos do not seem to show one person: {what}. Check with photos of yourself only (in a "
        "group photo, choose your own face), or check each photo on its own."
    )
