"""Building a dataset: every source format, bad images inside a set, resuming after kill -9."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import FACES, LFW, copy_photos, person_photos
from PIL import Image, ImageFilter

from indexer.check import Checker, LoadedIndex
from indexer.errors import DatasetExists, IndexMismatch
from indexer.pipeline import build_dataset
from indexer.store import IndexStore

PHOTOCHECK = [sys.executable, "-m", "indexer.cli"]


def lfw_sample(count: int) -> list[Path]:
    """LFW photos of people A-D (the people the shipped calibration was fitted on)."""
    return sorted(p for p in (LFW / "images").glob("[A-D]*/*.jpg"))[:count]


def faces_by_key(index: Path, dataset: str | None = None) -> dict[tuple[str, int], np.ndarray]:
    """Each face's stored vector (the dataset's array: vectors/<id>.npy), by (entry key, face number)."""
    store = IndexStore(index, readonly=True)
    try:
        found = {}
        for info in store.datasets():
            if dataset not in (None, info.name):
                continue
            ids, vectors = store.embeddings(info.id)
            row = {int(face_id): n for n, face_id in enumerate(ids)}
            for face_id, key, number in store.conn.execute(
                "SELECT f.id, e.key, f.face_number FROM faces f JOIN entries e ON e.id = f.entry_id "
                "WHERE f.dataset_id = ?",
                (info.id,),
            ):
                found[key, number] = vectors[row[face_id]]
        return found
    finally:
        store.close()


def test_bad_images_inside_a_set_are_reported_and_skipped(tmp_path: Path, dlib_embedder):
    source = copy_photos(person_photos("obama")[:2], tmp_path / "set")
    (source / "empty.jpg").write_bytes(b"")
    (source / "paper.jpg").write_bytes(b"%PDF-1.4 not a photo")
    (source / "cut.jpg").write_bytes(person_photos("biden")[0].read_bytes()[:5000])
    Image.new("RGB", (300, 300), (90, 140, 90)).save(source / "lawn.png")
    summary = build_dataset(tmp_path / "index", source, dataset="set", embedder=dlib_embedder, progress=False)
    assert summary.images == 6 and summary.faces == 2 and summary.no_face == 1
    assert sorted((k, c) for k, c, _ in summary.bad) == [
        ("cut.jpg", "unreadable_image"),
        ("empty.jpg", "unreadable_image"),
        ("paper.jpg", "unsupported_format"),
    ]
    report = summary.report.read_text().splitlines()
    assert report[0] == "key,code,message" and len(report) == 4
    assert summary.dataset.images == 6 and summary.dataset.bad == 3


def test_every_source_format_gives_the_same_faces(tmp_path: Path, dlib_embedder):
    photos = person_photos("kit_harington")
    folder = copy_photos(photos, tmp_path / "folder")
    manifest = tmp_path / "set.csv"
    manifest.write_text(
        "file,source_url\n" + "".join(f"folder/{p.parent.name}/{p.name},https://e.x/{p.name}\n" for p in photos)
    )
    shard = tmp_path / "00000.tar"
    with tarfile.open(shard, "w") as tar:
        for number, photo in enumerate(photos):
            for name, data in ((f"{number:09d}.jpg", photo.read_bytes()), (f"{number:09d}.json", b'{"url": "u"}')):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    for name, source in (("folder", folder), ("manifest", manifest), ("webdataset", shard)):
        summary = build_dataset(tmp_path / "index", source, dataset=name, embedder=dlib_embedder, progress=False)
        assert summary.dataset.source_format == name and summary.faces == len(photos)
    vectors = {
        name: sorted(v.tobytes() for v in faces_by_key(tmp_path / "index", name).values())
        for name in ("folder", "manifest", "webdataset")
    }
    assert vectors["folder"] == vectors["manifest"] == vectors["webdataset"]
    with sqlite3.connect(tmp_path / "index" / "metadata.sqlite") as conn:
        manifest_meta = conn.execute(
            "SELECT e.metadata FROM entries e JOIN datasets d ON d.id = e.dataset_id WHERE d.name = 'manifest' LIMIT 1"
        ).fetchone()[0]
    assert json.loads(manifest_meta)["source_url"].startswith("https://e.x/")


def test_people_are_found_where_they_are_and_nowhere_else(faces_index, dlib_embedder):
    """Real dlib on real faces: each held-out photo matches the dataset holding the person only."""
    index_dir, held_out = faces_index
    checker = Checker(LoadedIndex(index_dir), dlib_embedder)
    home = {"obama": "politicians", "biden": "politicians", "kit_harington": "actors", "rose_leslie": "actors"}
    for person, photos in held_out.items():
        for photo in photos:
            answer = checker.check(photo.read_bytes())
            assert answer["error"] is None, (photo, answer["error"])
            verdicts = {r["dataset"]: r["verdict"] for r in answer["results"]}
            expected = {d: ("match" if home.get(person) == d else "no_match") for d in ("politicians", "actors")}
            assert verdicts == expected, (photo, answer["results"])


def test_group_photo_picks_faces_by_number(faces_index, dlib_embedder):
    index_dir, _ = faces_index
    checker = Checker(LoadedIndex(index_dir), dlib_embedder)
    data = (FACES / "groups" / "kit_with_rose.jpg").read_bytes()
    answers = [checker.check(data, face_number=n) for n in (0, 1)]
    assert [a["faces_detected"] for a in answers] == [2, 2]
    assert [a["face"]["number"] for a in answers] == [0, 1]
    assert all({r["dataset"]: r["verdict"] for r in a["results"]}["actors"] == "match" for a in answers)
    missing = checker.check(data, face_number=5)
    assert missing["error"]["code"] == "face_not_found" and missing["results"] == []


def test_a_face_too_small_is_said_to_be(faces_index, dlib_embedder, tmp_path):
    index_dir, _ = faces_index
    from indexer.embedders import create_embedder

    strict = create_embedder("dlib", min_face_size=120)
    answer = Checker(LoadedIndex(index_dir), strict).check((FACES / "edge" / "obama_small.jpg").read_bytes())
    assert answer["error"]["code"] == "face_too_small" and answer["faces_detected"] == 1
    assert answer["results"] == []


def test_an_index_keeps_its_embedder(faces_index, tmp_path, test_pack_root):
    index_dir, _ = faces_index
    with pytest.raises(IndexMismatch, match="built with the dlib embedder"):
        build_dataset(
            index_dir,
            FACES / "people" / "alex_lacamoire",
            dataset="x",
            embedder_name="insightface",
            embedder_options={"model_root": str(test_pack_root)},
            progress=False,
        )


def test_a_complete_dataset_is_not_added_twice(faces_index, dlib_embedder):
    index_dir, _ = faces_index
    with pytest.raises(DatasetExists, match="--replace"):
        build_dataset(
            index_dir, FACES / "people" / "alex_lacamoire", dataset="actors", embedder=dlib_embedder, progress=False
        )


def test_insightface_index_end_to_end(tmp_path: Path, insightface_embedder):
    from onnx_pack import square_image

    source = tmp_path / "squares"
    source.mkdir()
    for seed in range(6):
        Image.fromarray(square_image((320, 224), 96, seed=seed)).save(source / f"{seed}.png")
    summary = build_dataset(
        tmp_path / "index", source, dataset="squares", embedder=insightface_embedder, progress=False
    )
    assert summary.faces == 6
    loaded = LoadedIndex(tmp_path / "index")
    assert loaded.embedder_description["name"] == "insightface"
    assert loaded.embedder_description["dimension"] == 512
    pixels = square_image((320, 224), 96, seed=3)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    answer = Checker(loaded, insightface_embedder).check(buffer.getvalue())
    assert answer["error"] is None and answer["face"]["box"] == [272, 176, 96, 96]
    ((_, scores, _),) = loaded.search(insightface_embedder.embed(pixels, insightface_embedder.detect(pixels))[0])
    assert scores[0] == pytest.approx(1.0, abs=2**-11)


def _entries(index: Path) -> int:
    try:
        with sqlite3.connect(f"file:{index / 'metadata.sqlite'}?mode=ro", uri=True, timeout=0.1) as conn:
            return conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_a_killed_build_resumes_and_equals_an_uninterrupted_one(tmp_path: Path):
    source = tmp_path / "lfw"
    for photo in lfw_sample(64):
        (source / photo.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, source / photo.parent.name / photo.name)
    command = [*PHOTOCHECK, "index", "add", "--dataset", "lfw", "--no-progress", str(source)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    killed = tmp_path / "killed"
    process = subprocess.Popen([*command, "--index", str(killed)], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _entries(killed) < 16 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the build finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = _entries(killed)
    assert 16 <= partial < 64

    resumed = subprocess.run([*command, "--index", str(killed), "--json"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["resumed"] and summary["skipped"] == partial and summary["images"] == 64 - partial

    whole = tmp_path / "whole"
    subprocess.run([*command, "--index", str(whole)], env=env, check=True, capture_output=True)
    a, b = faces_by_key(killed), faces_by_key(whole)
    assert a.keys() == b.keys() and len(a) >= 60  # no face lost or indexed twice
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-6)
    assert LoadedIndex(killed).datasets[0].size == LoadedIndex(whole).datasets[0].size == len(a)


def test_workers_give_the_same_result(tmp_path: Path, dlib_embedder):
    source = copy_photos(lfw_sample(24), tmp_path / "lfw")
    one = build_dataset(tmp_path / "one", source, dataset="s", embedder=dlib_embedder, progress=False)
    two = build_dataset(tmp_path / "two", source, dataset="s", embedder=dlib_embedder, workers=2, progress=False)
    assert one.faces == two.faces
    a, b = faces_by_key(tmp_path / "one"), faces_by_key(tmp_path / "two")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-6)


def test_blurred_faces_are_marked_low_quality_and_small_sharp_ones_are_not(faces_index, dlib_embedder):
    """dlib's scores barely change on sharp faces down to about 44 pixels (docs/confidence.md); blur
    is what weakens them."""
    index_dir, _ = faces_index
    checker = Checker(LoadedIndex(index_dir), dlib_embedder)
    sharp = checker.check((FACES / "people" / "obama" / "obama.jpg").read_bytes())
    small = checker.check((FACES / "edge" / "obama-240p.jpg").read_bytes())
    blurred = io.BytesIO()
    Image.open(FACES / "people" / "obama" / "obama.jpg").filter(ImageFilter.GaussianBlur(6)).save(blurred, "JPEG")
    soft = checker.check(blurred.getvalue())
    assert sharp["face"]["quality"] == "good"
    assert small["face"]["quality"] == "good" and small["face"]["box"][2] < 64
    assert soft["error"] is None and soft["face"]["quality"] == "low"
