"""How well a face can be judged: its size and sharpness in the photo.

A small or blurred face gives a weaker embedding: a photo of the same person scores lower against
it, so "not found" means less. ``FaceQuality.low`` marks such faces; the confidence then uses the
recalibration fitted on degraded photos (see docs/confidence.md), and the answer says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .embedders import Face

#: The face is resampled to this many pixels across before its sharpness is measured, so that a
#: small face, blown up, reads as blurred too.
SAMPLE = 96
#: Below either of these a face is "low quality" (chosen on LFW, see docs/confidence.md).
GOOD_SIZE = 64
GOOD_SHARPNESS = 60.0


@dataclass(frozen=True)
class FaceQuality:
    size: float  # shorter side of the face box, in pixels of the photo
    sharpness: float  # variance of the Laplacian of the face resampled to SAMPLE pixels

    @property
    def low(self) -> bool:
        return self.size < GOOD_SIZE or self.sharpness < GOOD_SHARPNESS

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
