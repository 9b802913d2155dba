"""face-api's TF.js face detector and 68-point landmark net, rebuilt as ONNX graphs.

The npm package ``@vladmandic/face-api`` (MIT) ships the weights of two small networks as TF.js
layers: an SSD MobileNet v1 face detector and a 68-point landmark CNN. This module reads their
weights manifests and binary shards and writes the same networks with ``onnx.helper``, so that the
browser runs them in onnxruntime-web next to the dlib ResNet, with one runtime for the three.

What makes the graphs equal to face-api.js's own (``src/ssdMobilenetv1``, ``src/faceLandmarkNet``
in the package):

- TF "same" padding puts the odd row/column of padding at the bottom/right (stride 2 on even sizes);
- TF filters are [kh, kw, Cin, Cout]; depthwise ones [kh, kw, C, 1] become [C, 1, kh, kw], group C;
- the detector's depthwise batch norms (eps 0.001) are folded into their filters; relu6 is Clip(0, 6);
- the detector takes x / 127.5 - 1 of a 512x512 image (the caller letterboxes the photo into its
  top-left corner); its box head goes back to channels-last before the reshape that TF.js does, the
  boxes decode against the stored anchors with scale factors 10/10/5/5, and a box's score is the
  sigmoid of class column 1. Non-maximum suppression (IoU 0.5) is the caller's;
- the landmark net takes a 112x112 face crop as (x - mean) / 255 and gives 68 (x, y) points relative
  to that crop.

The weights stay 8-bit as shipped (``q * scale + min``, dequantized inside the graph, folded by
onnxruntime when the session starts), so the models are as small on the wire as face-api's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: face-api.js's own numbers (src/ssdMobilenetv1/mobileNetV1.ts, src/faceFeatureExtractor/FaceFeatureExtractor.ts).
BATCH_NORM_EPSILON = 0.0010000000474974513
DETECTOR_INPUT = 512
LANDMARK_INPUT = 112
LANDMARK_MEAN_RGB = (122.782, 117.001, 104.298)
OPSET = 13

DETECTOR_MANIFEST = "ssd_mobilenetv1_model-weights_manifest.json"
LANDMARK_MANIFEST = "face_landmark_68_model-weights_manifest.json"


class WeightsError(ValueError):
    """The TF.js weights are not what this converter knows how to read."""


@dataclass(frozen=True)
class TfjsTensor:
    """One weight of a TF.js manifest: either plain values, or 8-bit codes with their scale and minimum."""

    name: str
    shape: tuple[int, ...]
    values: np.ndarray | None = None  # float32/int32, already dequantized (small tensors, or unquantized ones)
    codes: np.ndarray | None = None  # uint8, for weights kept quantized
    scale: float = 1.0
    minimum: float = 0.0

    def dequantized(self) -> np.ndarray:
        """The values as TF.js holds them: ``code * scale + min`` in double precision, stored as float32."""
        if self.values is not None:
            return self.values
        assert self.codes is not None
        return (self.codes.astype(np.float64) * self.scale + self.minimum).astype(np.float32)


_DTYPES = {"float32": np.float32, "int32": np.int32, "uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}


def read_tfjs_weights(manifest: Path) -> dict[str, TfjsTensor]:
    """Every weight of a TF.js ``*-weights_manifest.json`` and its shards, by name."""
    groups = json.loads(manifest.read_text())
    tensors: dict[str, TfjsTensor] = {}
    for group in groups:
        data = b"".join((manifest.parent / path).read_bytes() for path in group["paths"])
        offset = 0
        for entry in group["weights"]:
            shape = tuple(int(n) for n in entry["shape"])
            count = int(np.prod(shape, dtype=np.int64)) if shape else 1
            quantization = entry.get("quantization")
            stored = np.dtype(_DTYPES[quantization["dtype"] if quantization else entry["dtype"]])
            size = count * stored.itemsize
            if offset + size > len(data):
                raise WeightsError(f"{manifest.name}: the shards end inside weight {entry['name']!r}")
            raw = np.frombuffer(data, dtype=stored, count=count, offset=offset).reshape(shape)
            offset += size
            name = entry["name"]
            if quantization is None:
                tensors[name] = TfjsTensor(name, shape, values=raw.astype(_DTYPES[entry["dtype"]]))
            elif quantization["dtype"] == "uint8" and entry["dtype"] == "float32":
                tensors[name] = TfjsTensor(
                    name,
                    shape,
                    codes=raw.copy(),
                    scale=float(quantization["scale"]),
                    minimum=float(quantization["min"]),
                )
            elif entry["dtype"] == "int32":
                value = raw.astype(np.float64) * float(quantization.get("scale", 1)) + float(quantization.get("min", 0))
                tensors[name] = TfjsTensor(name, shape, values=value.astype(np.int32))
            else:
                raise WeightsError(f"{manifest.name}: weight {name!r} is stored in a way this converter does not read")
        if offset != len(data):
            raise WeightsError(f"{manifest.name}: {len(data) - offset} bytes of the shards belong to no weight")
    return tensors


class GraphBuilder:
    """Nodes and initializers of one ONNX graph, NCHW inside, with TF's padding and layouts at the edges."""

    def __init__(self, weights: dict[str, TfjsTensor]) -> None:
        self.weights = weights
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = set()

    # -- names and constants ------------------------------------------------------------------
    def name(self, hint: str) -> str:
        base = hint.replace("/", "_")
        name, n = base, 1
        while name in self._names:
            n += 1
            name = f"{base}_{n}"
        self._names.add(name)
        return name

    def constant(self, hint: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], hint: str, **attributes) -> str:
        from onnx import helper

        output = self.name(hint)
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def tensor(self, name: str) -> TfjsTensor:
        try:
            return self.weights[name]
        except KeyError:
            raise WeightsError(f"the weights have no {name!r}; is this face-api's model?") from None

    def filters(self, name: str, *, depthwise: bool = False, channel_scale: np.ndarray | None = None) -> str:
        """A TF filter as an ONNX Conv weight, kept 8-bit and dequantized in the graph.

        ``channel_scale`` multiplies each output channel (a folded batch norm)."""
        weight = self.tensor(name)
        # [kh, kw, Cin, Cout] -> [Cout, Cin, kh, kw]; depthwise [kh, kw, C, 1] -> [C, 1, kh, kw] (with group C)
        order = (2, 3, 0, 1) if depthwise else (3, 2, 0, 1)
        if weight.codes is None:
            values = np.transpose(weight.dequantized(), order)
            if channel_scale is not None:
                values = values * channel_scale.reshape(-1, 1, 1, 1)
            return self.constant(name, values.astype(np.float32))
        codes = np.transpose(weight.codes, order)
        channels = codes.shape[0]
        scale = np.full(channels, weight.scale, dtype=np.float64)
        minimum = np.full(channels, weight.minimum, dtype=np.float64)
        if channel_scale is not None:
            scale, minimum = scale * channel_scale, minimum * channel_scale
        cast = self.node("Cast", [self.constant(f"{name}/codes", codes)], f"{name}/float", to=1)
        scaled = self.node(
            "Mul",
            [cast, self.constant(f"{name}/scale", scale.astype(np.float32).reshape(-1, 1, 1, 1))],
            f"{name}/scaled",
        )
        return self.node(
            "Add", [scaled, self.constant(f"{name}/min", minimum.astype(np.float32).reshape(-1, 1, 1, 1))], f"{name}/w"
        )

    # -- layers ---------------------------------------------------------------------------------
    @staticmethod
    def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
        """TF's "same": the output is ceil(size / stride); an odd total puts the extra one after."""
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2

    def conv(
        self, x: str, size: int, weight: str, kernel: int, stride: int, bias: str | None, hint: str, group: int = 1
    ) -> tuple[str, int]:
        before, after = self.same_padding(size, kernel, stride)
        inputs = [x, weight] + ([bias] if bias else [])
        out = self.node(
            "Conv",
            inputs,
            hint,
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[before, before, after, after],
            group=group,
        )
        return out, -(-size // stride)

    def bias(self, name: str) -> str:
        return self.constant(name, self.tensor(name).dequantized().astype(np.float32).reshape(-1))

    def relu6(self, x: str, hint: str) -> str:
        return self.node(
            "Clip",
            [
                x,
                self.constant(f"{hint}/zero", np.array(0, np.float32)),
                self.constant(f"{hint}/six", np.array(6, np.float32)),
            ],
            f"{hint}/relu6",
        )

    def model(self, inputs: list, outputs: list, name: str, doc: str):
        from onnx import checker, helper

        graph = helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="photocheck")
        model.ir_version = 8  # what onnxruntime-web and onnxruntime both read
        model.doc_string = doc
        checker.check_model(model, full_check=True)
        return model


# -- the detector ---------------------------------------------------------------------------------


def _kernel(builder: GraphBuilder, name: str) -> int:
    return builder.tensor(name).shape[0]


def build_detector(weights: dict[str, TfjsTensor]):
    """face-api's SSD MobileNet v1: image [1, 512, 512, 3] (0-255, RGB) -> boxes [1, 5118, 4], scores [1, 5118].

    Boxes are (top, left, bottom, right), relative to the 512x512 input."""
    from onnx import TensorProto, helper

    b = GraphBuilder(weights)
    image = "image"
    scaled = b.node("Div", [image, b.constant("half_range", np.array(127.5, np.float32))], "scaled")
    centred = b.node("Sub", [scaled, b.constant("one", np.array(1.0, np.float32))], "centred")
    x = b.node("Transpose", [centred], "nchw", perm=[0, 3, 1, 2])
    size = DETECTOR_INPUT

    def pointwise(x: str, size: int, prefix: str, stride: int) -> tuple[str, int]:
        weight_name = f"{prefix}/weights"
        kernel = _kernel(b, weight_name)
        out, size = b.conv(
            x, size, b.filters(weight_name), kernel, stride, b.bias(f"{prefix}/convolution_bn_offset"), prefix
        )
        return b.relu6(out, prefix), size

    def depthwise(x: str, size: int, prefix: str, stride: int) -> tuple[str, int]:
        gamma = b.tensor(f"{prefix}/BatchNorm/gamma").dequantized().astype(np.float32)
        beta = b.tensor(f"{prefix}/BatchNorm/beta").dequantized().astype(np.float32)
        mean = b.tensor(f"{prefix}/BatchNorm/moving_mean").dequantized().astype(np.float32)
        variance = b.tensor(f"{prefix}/BatchNorm/moving_variance").dequantized().astype(np.float32)
        factor = gamma.astype(np.float64) / np.sqrt(variance.astype(np.float64) + BATCH_NORM_EPSILON)
        offset = (beta.astype(np.float64) - mean.astype(np.float64) * factor).astype(np.float32)
        weight_name = f"{prefix}/depthwise_weights"
        channels = b.tensor(weight_name).shape[2]
        out, size = b.conv(
            x,
            size,
            b.filters(weight_name, depthwise=True, channel_scale=factor),
            _kernel(b, weight_name),
            stride,
            b.constant(f"{prefix}/folded_bias", offset),
            prefix,
            group=channels,
        )
        return b.relu6(out, prefix), size

    x, size = pointwise(x, size, "MobilenetV1/Conv2d_0_pointwise", 2)
    conv11 = conv11_size = None
    for layer in range(1, 14):
        stride = 2 if layer in (2, 4, 6, 12) else 1
        x, size = depthwise(x, size, f"MobilenetV1/Conv2d_{layer}_depthwise", stride)
        x, size = pointwise(x, size, f"MobilenetV1/Conv2d_{layer}_pointwise", 1)
        if layer == 11:
            conv11, conv11_size = x, size
    assert conv11 is not None and conv11_size is not None
    features = {0: (conv11, conv11_size), 1: (x, size)}
    y, y_size = x, size
    for layer in range(8):
        y, y_size = pointwise(y, y_size, f"Prediction/Conv2d_{layer}_pointwise", 2 if layer % 2 else 1)
        if layer in (1, 3, 5, 7):
            features[2 + layer // 2] = (y, y_size)

    encodings, classes = [], []
    for predictor in range(6):
        source, source_size = features[predictor]
        for head, width, collected in (("BoxEncodingPredictor", 4, encodings), ("ClassPredictor", 3, classes)):
            prefix = f"Prediction/BoxPredictor_{predictor}/{head}"
            out, _ = b.conv(
                source, source_size, b.filters(f"{prefix}/weights"), 1, 1, b.bias(f"{prefix}/biases"), prefix
            )
            # TF.js reshapes its channels-last output: go back to NHWC first, or the anchors get mixed up.
            nhwc = b.node("Transpose", [out], f"{prefix}/nhwc", perm=[0, 2, 3, 1])
            shape = b.constant(f"{prefix}/shape", np.array([1, -1, width], np.int64))
            collected.append(b.node("Reshape", [nhwc, shape], f"{prefix}/flat"))
    encoding = b.node("Concat", encodings, "box_encodings", axis=1)
    logits = b.node("Concat", classes, "class_logits", axis=1)

    anchors = b.tensor("Output/extra_dim").dequantized().astype(np.float32).reshape(-1, 4)
    sizes = np.stack([anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]], axis=1)
    centres = anchors[:, :2] + sizes / np.float32(2)
    sizes_name = b.constant("anchor_sizes", sizes[None].astype(np.float32))
    centres_name = b.constant("anchor_centres", centres[None].astype(np.float32))

    def columns(x: str, start: int, end: int, hint: str) -> str:
        return b.node(
            "Slice",
            [
                x,
                b.constant(f"{hint}/start", np.array([start], np.int64)),
                b.constant(f"{hint}/end", np.array([end], np.int64)),
                b.constant(f"{hint}/axis", np.array([2], np.int64)),
            ],
            hint,
        )

    offsets = b.node(
        "Div", [columns(encoding, 0, 2, "centre_codes"), b.constant("ten", np.array(10, np.float32))], "centre_offsets"
    )
    centre = b.node("Add", [b.node("Mul", [offsets, sizes_name], "centre_shift"), centres_name], "centre")
    growth = b.node(
        "Exp",
        [
            b.node(
                "Div", [columns(encoding, 2, 4, "size_codes"), b.constant("five", np.array(5, np.float32))], "size_logs"
            )
        ],
        "growth",
    )
    half = b.node(
        "Div", [b.node("Mul", [growth, sizes_name], "box_sizes"), b.constant("two", np.array(2, np.float32))], "half"
    )
    b.nodes.append(
        _named_node(
            "Concat",
            [b.node("Sub", [centre, half], "corner_min"), b.node("Add", [centre, half], "corner_max")],
            "boxes",
            axis=2,
        )
    )
    face = b.node("Sigmoid", [columns(logits, 1, 2, "face_logit")], "face_probability")
    b.nodes.append(_named_node("Reshape", [face, b.constant("scores_shape", np.array([1, -1], np.int64))], "scores"))

    anchors_count = anchors.shape[0]
    return b.model(
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, DETECTOR_INPUT, DETECTOR_INPUT, 3])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, anchors_count, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, anchors_count]),
        ],
        "face_detector",
        "face-api's SSD MobileNet v1 face detector (MIT), converted from @vladmandic/face-api's TF.js weights. "
        "Input: a 512x512 RGB image, 0-255, the photo letterboxed into its top-left corner. Output: boxes "
        "(top, left, bottom, right) relative to the input, and each box's face probability; NMS is the caller's.",
    )


def _named_node(op: str, inputs: list[str], output: str, **attributes):
    from onnx import helper

    return helper.make_node(op, inputs, [output], name=output, **attributes)


# -- the landmark net -------------------------------------------------------------------------------


def build_landmarks(weights: dict[str, TfjsTensor]):
    """face-api's 68-point landmark net: face [1, 112, 112, 3] (0-255, RGB) -> landmarks [1, 136].

    The output is x0, y0, x1, y1, ... relative to the 112x112 crop (0-1 inside it)."""
    from onnx import TensorProto, helper

    b = GraphBuilder(weights)
    mean = np.array(LANDMARK_MEAN_RGB, np.float32).reshape(1, 1, 1, 3)
    centred = b.node("Sub", ["face", b.constant("mean_rgb", mean)], "centred")
    scaled = b.node("Div", [centred, b.constant("range", np.array(255, np.float32))], "scaled")
    x = b.node("Transpose", [scaled], "nchw", perm=[0, 3, 1, 2])
    size = LANDMARK_INPUT

    def separable(x: str, size: int, prefix: str, stride: int) -> tuple[str, int]:
        channels = b.tensor(f"{prefix}/depthwise_filter").shape[2]
        depth, size = b.conv(
            x,
            size,
            b.filters(f"{prefix}/depthwise_filter", depthwise=True),
            3,
            stride,
            None,
            f"{prefix}/depthwise",
            group=channels,
        )
        point, size = b.conv(
            depth, size, b.filters(f"{prefix}/pointwise_filter"), 1, 1, b.bias(f"{prefix}/bias"), f"{prefix}/pointwise"
        )
        return point, size

    def dense_block(x: str, size: int, prefix: str, first: bool) -> tuple[str, int]:
        if first:
            out1, size = b.conv(
                x, size, b.filters(f"{prefix}/conv0/filters"), 3, 2, b.bias(f"{prefix}/conv0/bias"), f"{prefix}/conv0"
            )
        else:
            out1, size = separable(x, size, f"{prefix}/conv0", 2)
        out1 = b.node("Relu", [out1], f"{prefix}/out1")
        out2, _ = separable(out1, size, f"{prefix}/conv1", 1)
        in3 = b.node("Relu", [b.node("Add", [out1, out2], f"{prefix}/sum2")], f"{prefix}/in3")
        out3, _ = separable(in3, size, f"{prefix}/conv2", 1)
        sum3 = b.node("Add", [out2, out3], f"{prefix}/sum23")
        in4 = b.node("Relu", [b.node("Add", [out1, sum3], f"{prefix}/sum3")], f"{prefix}/in4")
        out4, _ = separable(in4, size, f"{prefix}/conv3", 1)
        total = b.node(
            "Add",
            [out1, b.node("Add", [out2, b.node("Add", [out3, out4], f"{prefix}/sum34")], f"{prefix}/sum234")],
            f"{prefix}/sum4",
        )
        return b.node("Relu", [total], f"{prefix}/out"), size

    for block in range(4):
        x, size = dense_block(x, size, f"dense{block}", block == 0)
    pooled = b.node("AveragePool", [x], "pooled", kernel_shape=[7, 7], strides=[2, 2])
    flat = b.node("Flatten", [pooled], "features", axis=1)
    fc = b.tensor("fc/weights")
    if fc.codes is None:
        fc_weight = b.constant("fc/weights", fc.dequantized().astype(np.float32))
    else:
        codes = b.node("Cast", [b.constant("fc/codes", fc.codes)], "fc/float", to=1)
        scaled = b.node("Mul", [codes, b.constant("fc/scale", np.array(fc.scale, np.float32))], "fc/scaled")
        fc_weight = b.node("Add", [scaled, b.constant("fc/min", np.array(fc.minimum, np.float32))], "fc/w")
    product = b.node("MatMul", [flat, fc_weight], "fc_product")
    b.nodes.append(_named_node("Add", [product, b.bias("fc/bias")], "landmarks"))
    return b.model(
        [helper.make_tensor_value_info("face", TensorProto.FLOAT, [1, LANDMARK_INPUT, LANDMARK_INPUT, 3])],
        [helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, [1, 136])],
        "face_landmarks_68",
        "face-api's 68-point face landmark net (MIT), converted from @vladmandic/face-api's TF.js weights. "
        "Input: a 112x112 RGB face crop, 0-255. Output: x0, y0, ... x67, y67 relative to the crop.",
    )


def convert(model_dir: Path) -> dict[str, object]:
    """Both networks from face-api's ``model/`` folder: {"face-detector": ModelProto, "face-landmarks": ModelProto}."""
    return {
        "face-detector": build_detector(read_tfjs_weights(model_dir / DETECTOR_MANIFEST)),
        "face-landmarks": build_landmarks(read_tfjs_weights(model_dir / LANDMARK_MANIFEST)),
    }
