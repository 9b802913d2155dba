"""Several photos of one person: the template, and the refusals, on the real shared faces (dlib)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import FACES, PEOPLE, person_photos

from indexer.confidence import default_config
from indexer.images import load_image
from indexer.template import (
    copied_from,
    disagreeing_pairs,
    is_blurred,
    refusal_message,
    same_person_threshold,
    template,
)


@pytest.fixture(scope="module")
def faces(dlib_embedder):
    """(person, embedding) of every photo of ../shared/faces/people, and the config of a dlib index."""
    found = []
    for person in PEOPLE:
        for photo in person_photos(person):
            pixels = load_image(photo.read_bytes())
            found.append((person, dlib_embedder.embed(pixels, dlib_embedder.detect(pixels)[:1])[0]))
    return found, default_config(dlib_embedder.describe())


def test_one_persons_photos_pass_and_different_people_are_refused(faces):
    found, config = faces
    same, different = [], []
    for (a, va), (b, vb) in itertools.combinations(found, 2):
        (same if a == b else different).append(bool(disagreeing_pairs([va, vb], [False, False], config)))
    assert len(same) == 12 and not any(same)  # every pair of one person's photos is taken for one person
    assert sum(different) >= 0.9 * len(different)  # 64 of 66 pairs of different people are refused
    # A blurred face scores lower against its own person: the bar is lower when either face is blurred.
    assert 0.8 < same_person_threshold(config, low_quality=True) < same_person_threshold(config) < 0.9


def test_the_template_is_the_normalised_mean(faces):
    found, _ = faces
    vectors = [v for person, v in found if person == "obama"]
    mean = template(vectors)
    assert mean.dtype == np.float32 and float(np.linalg.norm(mean)) == pytest.approx(1.0, abs=1e-6)
    # Closer to each of the person's photos than they are to each other: the template stands for all of them.
    assert min(float(mean @ v) for v in vectors) > min(float(a @ b) for a, b in itertools.combinations(vectors, 2))


def test_a_copy_of_a_photo_is_found_and_odd_ones_are_named(faces, dlib_embedder):
    found, _ = faces
    obama = [v for person, v in found if person == "obama"]
    # two_people.jpg is obama4.jpg and biden.jpg pasted side by side: its Obama is a copy of obama4.jpg.
    pixels = load_image((FACES / "groups" / "two_people.jpg").read_bytes())
    pasted = dlib_embedder.embed(pixels, dlib_embedder.detect(pixels))
    assert sorted(copied_from(obama, v) for v in pasted if copied_from(obama, v) is not None) == [3]  # obama4.jpg
    assert all(copied_from(obama[:3], v) is None for v in pasted)  # his other photos are not copies, nor Biden

    labels = ["me.jpg", "beach.jpg", "party.jpg"]
    assert "party.jpg does not look like the same person as me.jpg and beach.jpg." in refusal_message(
        labels, [(0, 2), (1, 2)]
    )
    assert "me.jpg and party.jpg do not look like the same person." in refusal_message(labels, [(0, 2)])
    assert is_blurred([True]) and is_blurred([True, False]) and not is_blurred([True, False, False])
