"""How well a face can be judged: its sharpness in the photo.

A blurred face gives a weaker embedding: a photo of the same person scores lower against it, so
"not found" means less. ``FaceQuality.low`` marks such faces; the confidence then uses the score
distributions measured on blurred photos (see docs/confidence.md), and the answer says so. A face
too small to judge at all is refused earlier (``face_too_small``); between that and about 64 pixels
dlib's scores hardly change (measured on LFW faces shrunk to 44 pixels), but a small face blown up
also reads as blurred here, and is marked when it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .embedders import Face

#: The face is resampled to this many pixels across before its sharpness is measured, so that a
#: small face, blown up, reads as blurred too.
SAMPLE = 96
#: Below this a face is "low quality": 1% of LFW's faces, 99% of them blurred with a 2.5-pixel Gaussian.
GOOD_SHARPNESS = 30.0


@dataclass(frozen=True)
class FaceQuality:
    size: float  # shorter side of the face box, in pixels of the photo
    sharpness: float  # variance of the Laplacian of the face resampled to SAMPLE pixels

    @property
    def low(self) -> bool:
        return self.sharpness < GOOD_SHARPNESS

    @property
    def label(self) -> str:
        return "low" if self.low else "good"


def assess(pixels: np.ndarray, face: Face) -> FaceQuality:
    import cv2

    height, width = pixels.shape[:2]
    x, y, w, h = face.box
    left, top = max(0, int(x)), max(0, int(y))
    right, bottom = min(width, round(x + w)), min(height, round(y + h))
    if right - left < 2 or bottom - top < 2:
        return FaceQuality(size=face.size, sharpness=0.0)
    gray = cv2.cvtColor(np.ascontiguousarray(pixels[top:bottom, left:right]), cv2.COLOR_RGB2GRAY)
    sample = cv2.resize(gray, (SAMPLE, SAMPLE), interpolation=cv2.INTER_AREA if w > SAMPLE else cv2.INTER_LINEAR)
    return FaceQuality(size=face.size, sharpness=float(cv2.Laplacian(sample, cv2.CV_64F).var()))
