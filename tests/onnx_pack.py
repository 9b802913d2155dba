"""Small ONNX models with the input and output signatures of insightface's buffalo_l pack.

The real pack cannot be downloaded here, so the tests run the insightface backend's real loading
and inference code on these. They are built with onnx.helper, in a temporary model root:

- ``det_10g.onnx``: input ``input.1`` [1, 3, ?, ?]; nine outputs (scores, box distances and
  keypoint offsets for strides 8, 16 and 32, two anchors per cell), like SCRFD-10GF. Its score is
  the share of non-black pixels in a 96-pixel window around each stride-32 anchor, so it
  "detects" a lit square of about 96 pixels, centred on a multiple of 32, on a black background;
  the box is 96 pixels around the anchor, with five keypoints inside it.
- ``w600k_r50.onnx``: input ``input.1`` [N, 3, 112, 112] -> [N, 512], like ArcFace R50: a fixed
  random projection of the 8x8 average-pooled crop, so that different crops give different
  embeddings and the same crop gives the same one.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

STRIDES = (8, 16, 32)
KEYPOINT_OFFSETS = [-0.45, -0.35, 0.45, -0.35, 0.0, 0.1, -0.35, 0.5, 0.35, 0.5]
OPSET = [helper.make_opsetid("", 18)]


def _const(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name=f"{name}_value"))


def build_detector(path: Path) -> Path:
    nodes = [
        _const("axes_c", np.array([1], dtype=np.int64)),
        helper.make_node("ReduceMean", ["input.1", "axes_c"], ["gray"], keepdims=1, name="gray_mean"),
        # 1 where a pixel is not black, 0 where it is (the input arrives as (v - 127.5) / 128).
        _const("lift", np.array(0.9, dtype=np.float32)),
        _const("steep", np.array(100.0, dtype=np.float32)),
        _const("lo", np.array(0.0, dtype=np.float32)),
        _const("hi", np.array(1.0, dtype=np.float32)),
        helper.make_node("Add", ["gray", "lift"], ["lifted"], name="lift_add"),
        helper.make_node("Mul", ["lifted", "steep"], ["steeped"], name="steep_mul"),
        helper.make_node("Clip", ["steeped", "lo", "hi"], ["lit"], name="lit_clip"),
        _const("cut", np.array(0.9, dtype=np.float32)),
        _const("gain", np.array(20.0, dtype=np.float32)),
        _const("off", np.array(0.0, dtype=np.float32)),
        _const("flat1", np.array([-1, 1], dtype=np.int64)),
        _const("box_dist", np.full((1, 4), 1.5, dtype=np.float32)),
        _const("kps_dist", np.array([KEYPOINT_OFFSETS], dtype=np.float32)),
    ]
    scores, boxes, keypoints = [], [], []
    for s in STRIDES:
        # The share of lit pixels in a 3x3-cell window centred on each anchor; only stride 32 answers.
        half = 3 * s // 2
        nodes += [
            helper.make_node(
                "AveragePool",
                ["lit"],
                [f"cover{s}"],
                kernel_shape=[3 * s, 3 * s],
                strides=[s, s],
                pads=[half, half, half - 1, half - 1],
            ),
            helper.make_node("Sub", [f"cover{s}", "cut"], [f"margin{s}"]),
            helper.make_node("Mul", [f"margin{s}", "gain"], [f"logit{s}"]),
            helper.make_node("Sigmoid", [f"logit{s}"], [f"prob{s}"]),
            *([] if s == 32 else [helper.make_node("Mul", [f"prob{s}", "off"], [f"silent{s}"])]),
            helper.make_node("Transpose", [f"prob{s}" if s == 32 else f"silent{s}"], [f"nhwc{s}"], perm=[0, 2, 3, 1]),
            helper.make_node("Concat", [f"nhwc{s}", f"nhwc{s}"], [f"anchors{s}"], axis=3),
            helper.make_node("Reshape", [f"anchors{s}", "flat1"], [f"score_{s}"]),
            helper.make_node("Mul", [f"score_{s}", "off"], [f"zeros{s}"]),
            helper.make_node("Add", [f"zeros{s}", "box_dist"], [f"bbox_{s}"]),
            helper.make_node("Add", [f"zeros{s}", "kps_dist"], [f"kps_{s}"]),
        ]
        scores.append(helper.make_tensor_value_info(f"score_{s}", TensorProto.FLOAT, [f"n{s}", 1]))
        boxes.append(helper.make_tensor_value_info(f"bbox_{s}", TensorProto.FLOAT, [f"n{s}", 4]))
        keypoints.append(helper.make_tensor_value_info(f"kps_{s}", TensorProto.FLOAT, [f"n{s}", 10]))
    graph = helper.make_graph(
        nodes,
        "scrfd_like",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "h", "w"])],
        scores + boxes + keypoints,
    )
    model = helper.make_model(graph, opset_imports=OPSET)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def build_recognizer(path: Path, dimension: int = 512, seed: int = 7) -> Path:
    projection = np.random.default_rng(seed).standard_normal((3 * 8 * 8, dimension)).astype(np.float32)
    nodes = [
        helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[14, 14], strides=[14, 14], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1, name="flatten"),
        # Centre each crop's features so that the common brightness does not dominate the angle.
        _const("feature_axis", np.array([1], dtype=np.int64)),
        helper.make_node("ReduceMean", ["flat", "feature_axis"], ["level"], keepdims=1, name="level_mean"),
        helper.make_node("Sub", ["flat", "level"], ["centred"], name="centre"),
        _const("projection", projection),
        helper.make_node("MatMul", ["centred", "projection"], ["683"], name="embed"),
    ]
    graph = helper.make_graph(
        nodes,
        "arcface_like",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["N", dimension])],
    )
    model = helper.make_model(graph, opset_imports=OPSET)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def build_pack(root: Path, name: str = "buffalo_l") -> Path:
    """Write a buffalo_l-shaped pack into ``root/name`` and return that directory."""
    directory = root / name
    directory.mkdir(parents=True, exist_ok=True)
    build_detector(directory / "det_10g.onnx")
    build_recognizer(directory / "w600k_r50.onnx")
    return directory


def build_pack_zip(path: Path) -> Path:
    """A zip laid out like the release archive (models at the top level)."""
    staging = path.parent / "pack-staging"
    directory = build_pack(staging)
    with zipfile.ZipFile(path, "w") as zf:
        for model in sorted(directory.iterdir()):
            zf.write(model, model.name)
    return path


def square_image(centre: tuple[int, int], side: int, size=(480, 640), seed: int | None = None) -> np.ndarray:
    """A dark RGB image with one bright square (textured when ``seed`` is given): a "face"."""
    height, width = size
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    cx, cy = centre
    half = side // 2
    if seed is None:
        patch = np.full((side, side, 3), 255, dtype=np.uint8)
    else:
        coarse = np.random.default_rng(seed).integers(120, 256, (8, 8, 3), dtype=np.uint8)
        patch = np.kron(coarse, np.ones((side // 8 + 1, side // 8 + 1, 1), dtype=np.uint8))[:side, :side]
    pixels[cy - half : cy - half + side, cx - half : cx - half + side] = patch
    return pixels
