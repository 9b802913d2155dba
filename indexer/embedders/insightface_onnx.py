"""insightface: the buffalo_l pack (SCRFD det_10g + ArcFace w600k_r50, 512-d) on onnxruntime.

insightface is used as a pre- and post-processing library (SCRFD decoding, ``norm_crop``,
ArcFace input normalisation) around sessions that photocheck creates itself, so that the provider
choice, threads and errors are ours. Its weights are for non-commercial research only.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ModelError
from ..models import DEFAULT_PACK, get_pack, require_pack, resolve_model_root
from ..onnx_session import active_device, create_session
from .base import DEFAULT_MIN_FACE_SIZE, Face, FaceEmbedder, log


class InsightFaceEmbedder(FaceEmbedder):
    name = "insightface"

    def __init__(
        self,
        *,
        pack: str = DEFAULT_PACK,
        model_root: str | None = None,
        device: str = "auto",
        threads: int = 0,
        detect_size: int = 640,
        detect_threshold: float = 0.5,
        batch_size: int = 32,
        min_face_size: int = DEFAULT_MIN_FACE_SIZE,
    ) -> None:
        super().__init__(min_face_size=min_face_size)
        self.pack = get_pack(pack)
        self.model_root = model_root
        self.device = device
        self.threads = int(threads)
        self.detect_size = int(detect_size)
        self.detect_threshold = float(detect_threshold)
        self.batch_size = max(1, int(batch_size))
        self._dimension: int | None = None

    @property
    def model_id(self) -> str:
        return f"{self.pack.name}/{self.pack.recognizer.removesuffix('.onnx')}"

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.load()
        assert self._dimension is not None
        return self._dimension

    @property
    def active_device(self) -> str:
        self.load()
        return active_device(self._recognizer.session)

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "pack": self.pack.name,
            "model_root": self.model_root,
            "device": self.device,
            "threads": self.threads,
            "detect_size": self.detect_size,
            "detect_threshold": self.detect_threshold,
            "batch_size": self.batch_size,
        }

    def _load(self) -> None:
        from insightface.model_zoo.arcface_onnx import ArcFaceONNX
        from insightface.model_zoo.scrfd import SCRFD

        directory = require_pack(self.pack.name, resolve_model_root(self.model_root))
        detector_path = directory / self.pack.detector
        recognizer_path = directory / self.pack.recognizer
        try:
            detector_session = create_session(detector_path, self.device, self.threads)
            recognizer_session = create_session(recognizer_path, self.device, self.threads)
            self._detector = SCRFD(model_file=str(detector_path), session=detector_session, static_shape_sessions=False)
            self._detector.prepare(0, det_thresh=self.detect_threshold, input_size=(self.detect_size,) * 2)
            self._recognizer = ArcFaceONNX(model_file=str(recognizer_path), session=recognizer_session)
        except ModelError:
            raise
        except Exception as exc:  # onnxruntime and insightface report broken models in many ways
            raise ModelError(
                f"The models in {directory} could not be loaded ({exc}). "
                f"Download the pack again with `photocheck models download {self.pack.name} --force`."
            ) from exc
        if not self._detector.use_kps:
            raise ModelError(f"{detector_path.name} gives no facial keypoints; photocheck needs a SCRFD *kps model.")
        output_shape = self._recognizer.output_shape
        if len(output_shape) != 2 or not isinstance(output_shape[1], int):
            raise ModelError(f"{recognizer_path.name} does not output (batch, dimension) embeddings.")
        self._dimension = int(output_shape[1])
        log.info(
            "insightface %s loaded from %s on %s (%d-d)",
            self.pack.name,
            directory,
            active_device(recognizer_session),
            self._dimension,
        )

    def _detect(self, pixels: np.ndarray) -> list[Face]:
        bgr = np.ascontiguousarray(pixels[:, :, ::-1])
        boxes, keypoints = self._detector.detect(bgr, input_size=(self.detect_size, self.detect_size))
        height, width = pixels.shape[:2]
        faces = []
        for (x1, y1, x2, y2, score), points in zip(boxes, keypoints, strict=True):
            x1, y1 = max(0.0, float(x1)), max(0.0, float(y1))
            x2, y2 = min(float(width), float(x2)), min(float(height), float(y2))
            if x2 - x1 < 2 or y2 - y1 < 2:
                continue
            faces.append(
                Face(
                    box=(x1, y1, x2 - x1, y2 - y1),
                    landmarks=tuple((float(px), float(py)) for px, py in points),
                    score=float(score),
                )
            )
        return faces

    def _embed(self, items: Sequence[tuple[np.ndarray, Sequence[Face]]]) -> np.ndarray:
        from insightface.utils.face_align import norm_crop

        size = self._recognizer.input_size[0]
        chips = []
        with warnings.catch_warnings():
            # insightface calls a scikit-image API that scikit-image has deprecated; not ours to fix.
            warnings.simplefilter("ignore", FutureWarning)
            for pixels, faces in items:
                if not faces:
                    continue
                bgr = np.ascontiguousarray(pixels[:, :, ::-1])
                chips.extend(
                    norm_crop(bgr, np.asarray(face.landmarks, dtype=np.float32), image_size=size) for face in faces
                )
        outputs = [
            self._recognizer.get_feat(chips[start : start + self.batch_size])
            for start in range(0, len(chips), self.batch_size)
        ]
        return np.concatenate(outputs, axis=0).astype(np.float32)
