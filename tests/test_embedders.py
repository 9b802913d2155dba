"""Both embedders behind one interface: real dlib on real faces, insightface on the test pack."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from conftest import FACES, PEOPLE, person_photos
from onnx_pack import build_pack, square_image

from indexer.embedders import EmbedderSpec, create_embedder, resolve_embedder_name
from indexer.errors import DeviceUnavailable, ModelNotFound, PhotocheckError
from indexer.images import load_image
from indexer.onnx_session import choose_providers, session_options


def pixels_of(path: Path) -> np.ndarray:
    return load_image(path.read_bytes())


@pytest.fixture(scope="module")
def people_embeddings(dlib_embedder) -> dict[Path, np.ndarray]:
    out = {}
    for person in PEOPLE:
        for photo in person_photos(person):
            pixels = pixels_of(photo)
            faces = dlib_embedder.detect(pixels)
            assert len(faces) == 1, f"{photo} should hold exactly one face"
            out[photo] = dlib_embedder.embed(pixels, faces)[0]
    return out


def test_dlib_embeddings_are_unit_float32_128d(people_embeddings, dlib_embedder):
    assert dlib_embedder.dimension == 128 and dlib_embedder.model_id == "dlib_face_recognition_resnet_model_v1"
    for vector in people_embeddings.values():
        assert vector.dtype == np.float32 and vector.shape == (128,)
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_dlib_same_person_is_closer_than_anyone_else(people_embeddings):
    photos = list(people_embeddings)
    same, different = [], []
    for i, a in enumerate(photos):
        for b in photos[i + 1 :]:
            score = float(people_embeddings[a] @ people_embeddings[b])
            (same if a.parent == b.parent else different).append(score)
    assert min(same) > max(different)


def test_dlib_batches_equal_single_images(dlib_embedder):
    photos = [person_photos(p)[0] for p in PEOPLE[:3]]
    items = []
    for photo in photos:
        pixels = pixels_of(photo)
        items.append((pixels, dlib_embedder.detect(pixels)))
    batched = dlib_embedder.embed_batch(items)
    for (pixels, faces), vectors in zip(items, batched, strict=True):
        np.testing.assert_allclose(dlib_embedder.embed(pixels, faces), vectors, atol=1e-5)


def test_dlib_group_photo_faces_numbered_by_decreasing_area(dlib_embedder):
    faces = dlib_embedder.detect(pixels_of(FACES / "groups" / "kit_with_rose.jpg"))
    assert len(faces) == 2
    assert faces[0].area >= faces[1].area
    for face in faces:
        assert len(face.landmarks) == 5
        x, y, w, h = face.box
        assert all(x <= px <= x + w and y <= py <= y + h for px, py in face.landmarks)


def test_dlib_boxes_map_back_from_the_downscaled_detection(dlib_embedder):
    """Detection runs on a copy scaled to detect_size; boxes come back in original pixels."""
    pixels = pixels_of(FACES / "people" / "obama" / "obama4.jpg")  # 1434 x 2333
    # Detection only: dlib's runtime loads faster, and the ResNet plays no part here.
    small = create_embedder("dlib", detect_size=800, runtime="dlib")
    (face_small,) = small.detect(pixels)
    (face_full,) = create_embedder("dlib", detect_size=4000, upsample=0, runtime="dlib").detect(pixels)
    assert face_small.box[2] > 200  # in original pixels, not the 800-pixel copy's
    assert np.allclose(face_small.box, face_full.box, atol=face_full.box[2] * 0.15)


def test_dlib_upsamples_only_photos_that_stay_within_the_detect_size(dlib_embedder):
    assert (dlib_embedder.upsample, dlib_embedder.detect_size) == ("auto", 1024)
    assert [dlib_embedder.upsampling(side) for side in (250, 512, 513, 1024)] == [1, 1, 0, 0]
    assert create_embedder("dlib", upsample=1).upsampling(1024) == 1
    with pytest.raises(PhotocheckError, match="auto"):
        create_embedder("dlib", upsample="twice")
    small = pixels_of(FACES / "edge" / "obama_small.jpg")  # 320 x 240: upsampled, as every photo was before
    assert dlib_embedder.detect(small) == create_embedder("dlib", upsample=1, runtime="dlib").detect(small)
    large = pixels_of(FACES / "people" / "rose_leslie" / "img1.jpg")  # 1280 x 799: downscaled, not upsampled
    assert dlib_embedder.detect(large) == create_embedder("dlib", upsample=0, runtime="dlib").detect(large)


def test_dlib_small_faces_are_flagged(dlib_embedder):
    pixels = pixels_of(FACES / "edge" / "obama-240p.jpg")
    (face,) = dlib_embedder.detect(pixels)
    strict = create_embedder("dlib", min_face_size=int(face.size) + 1)
    assert strict.is_too_small(face) and not dlib_embedder.is_too_small(face)


def test_dlib_runtime_is_an_option_not_part_of_the_model():
    onnx = create_embedder("dlib", threads=1, batch_size=8)
    own = create_embedder("dlib", runtime="dlib")
    assert onnx.runtime == "onnx" and own.runtime == "dlib"
    # What an index records is the same whichever runtime built it.
    assert onnx.describe() == own.describe()
    assert onnx.describe()["model"] == "dlib_face_recognition_resnet_model_v1" and "runtime" not in onnx.describe()
    # Worker processes and Ray actors rebuild the embedder from its spec: the runtime and threads go along.
    spec = onnx.spec()
    assert spec == EmbedderSpec("dlib", onnx.options())
    rebuilt = spec.create()
    assert (rebuilt.runtime, rebuilt.threads, rebuilt.batch_size) == ("onnx", 1, 8)
    assert own.spec().create().runtime == "dlib"
    with pytest.raises(PhotocheckError, match=r"onnx .* or dlib") as caught:
        create_embedder("dlib", runtime="tensorflow")
    assert caught.value.code == "unknown_runtime"
    with pytest.raises(DeviceUnavailable, match="--dlib-runtime onnx"):
        create_embedder("dlib", runtime="dlib", device="cuda").load()


def test_dlib_onnx_runs_face_and_mirror_in_one_batch(dlib_embedder, monkeypatch):
    """Faces of several images go through the network batch_size at a time, each with its mirror image."""
    embedder = create_embedder("dlib", batch_size=2)
    embedder.load()
    session = embedder._session
    original = session.run
    calls = []

    def counting_run(names, feed, *args):
        calls.append(next(iter(feed.values())).shape[0])
        return original(names, feed, *args)

    monkeypatch.setattr(session, "run", counting_run)
    items = []
    for name in ("obama_and_biden.jpg", "kit_with_rose.jpg"):
        pixels = pixels_of(FACES / "groups" / name)
        items.append((pixels, embedder.detect(pixels)))
    assert [len(faces) for _, faces in items] == [3, 2]
    calls.clear()
    batched = embedder.embed_batch(items)
    assert calls == [4, 4, 2]  # five faces, two at a time, each run holding the faces and their mirrors
    for (pixels, faces), vectors in zip(items, batched, strict=True):
        for face, vector in zip(faces, vectors, strict=True):
            np.testing.assert_allclose(dlib_embedder.embed(pixels, [face])[0], vector, atol=1e-5)


def test_onnx_threads_do_not_spin_when_there_are_several():
    assert session_options(1).intra_op_num_threads == 1
    with pytest.raises(Exception, match="allow_spinning"):  # not set: onnxruntime's default, spinning
        session_options(1).get_session_config_entry("session.intra_op.allow_spinning")
    for threads in (0, 2):
        assert session_options(threads).get_session_config_entry("session.intra_op.allow_spinning") == "0"


# -- insightface on the buffalo_l-shaped test pack ----------------------------------------------


def test_insightface_runs_its_real_loading_and_inference_code(insightface_embedder):
    assert insightface_embedder.model_id == "buffalo_l/w600k_r50"
    assert insightface_embedder.dimension == 512
    assert insightface_embedder.active_device == "cpu"
    (face,) = insightface_embedder.detect(square_image((320, 224), 96, seed=1))
    x, y, w, h = face.box
    assert (x, y, w, h) == pytest.approx((272, 176, 96, 96), abs=2)
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in face.landmarks)
    assert insightface_embedder.detect(np.zeros((480, 640, 3), np.uint8)) == []


def test_insightface_detects_in_original_coordinates_of_any_size(insightface_embedder):
    """SCRFD letterboxes to 640x640; boxes must come back in the caller's pixels."""
    pixels = square_image((320, 224), 96, seed=1)
    big = np.kron(pixels, np.ones((2, 2, 1), dtype=np.uint8))  # 960 x 1280: the square is now 192 px
    (face,) = insightface_embedder.detect(big)
    assert face.box == pytest.approx((544, 352, 192, 192), abs=4)


def test_insightface_embeddings_are_unit_and_distinguish_crops(insightface_embedder):
    vectors = []
    for seed in (1, 2, 1):
        pixels = square_image((320, 224), 96, seed=seed)
        vectors.append(insightface_embedder.embed(pixels, insightface_embedder.detect(pixels))[0])
    assert all(v.dtype == np.float32 and v.shape == (512,) for v in vectors)
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-5)
    assert float(vectors[0] @ vectors[2]) == pytest.approx(1.0, abs=1e-5)
    assert float(vectors[0] @ vectors[1]) < 0.5


def test_insightface_recognizer_runs_in_batches(test_pack_root, monkeypatch):
    embedder = create_embedder("insightface", model_root=str(test_pack_root), batch_size=2)
    embedder.load()
    calls = []
    session = embedder._recognizer.session
    original = session.run

    def counting_run(names, feed, *args):
        calls.append(next(iter(feed.values())).shape[0])
        return original(names, feed, *args)

    monkeypatch.setattr(session, "run", counting_run)
    items = []
    for seed in range(5):
        pixels = square_image((320, 224), 96, seed=seed)
        items.append((pixels, embedder.detect(pixels)))
    calls.clear()
    batched = embedder.embed_batch(items)
    assert calls == [2, 2, 1]
    for (pixels, faces), vectors in zip(items, batched, strict=True):
        np.testing.assert_allclose(embedder.embed(pixels, faces), vectors, atol=1e-5)


def test_missing_pack_names_both_remedies(tmp_path):
    embedder = create_embedder("insightface", model_root=str(tmp_path))
    with pytest.raises(ModelNotFound) as caught:
        embedder.load()
    message = caught.value.message
    assert "photocheck models download buffalo_l" in message and "--embedder dlib" in message
    assert str(tmp_path) in message


def test_auto_picks_insightface_only_when_the_pack_is_there(tmp_path, monkeypatch):
    assert resolve_embedder_name("auto", model_root=str(tmp_path)) == "dlib"
    build_pack(tmp_path)
    assert resolve_embedder_name("auto", model_root=str(tmp_path)) == "insightface"
    monkeypatch.setenv("PHOTOCHECK_MODEL_ROOT", str(tmp_path))
    assert resolve_embedder_name("auto") == "insightface"


def test_provider_choice():
    cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers("auto", cuda) == cuda
    assert choose_providers("cuda", cuda) == cuda
    assert choose_providers("cpu", cuda) == ["CPUExecutionProvider"]
    assert choose_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(DeviceUnavailable, match="onnxruntime-gpu"):
        choose_providers("cuda", ["CPUExecutionProvider"])


def test_cuda_that_does_not_start_falls_back_to_cpu_and_says_so(test_pack_root, monkeypatch, caplog):
    """onnxruntime-gpu lists CUDA even on a host whose GPU or CUDA libraries are missing."""
    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    with caplog.at_level(logging.INFO, logger="photocheck"):
        auto = create_embedder("insightface", model_root=str(test_pack_root), device="auto")
        auto.load()
    assert auto.active_device == "cpu"
    assert "running on the CPU" in caplog.text
    strict = create_embedder("insightface", model_root=str(test_pack_root), device="cuda")
    with pytest.raises(DeviceUnavailable, match="--device cpu"):
        strict.load()


def test_dlib_cnn_detector_is_an_option(dlib_embedder):
    cnn = create_embedder("dlib", detector="cnn", upsample=0)
    pixels = pixels_of(FACES / "edge" / "obama_small.jpg")  # 320 x 240: quick even for the CNN on a CPU
    (face,) = cnn.detect(pixels)
    (hog_face,) = dlib_embedder.detect(pixels)
    assert face.score > 0.5 and np.allclose(face.box[:2], hog_face.box[:2], atol=25)
    assert cnn.embed(pixels, [face]).shape == (1, 128)
