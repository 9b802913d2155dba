"""The browser's on-device pipeline, driven from Python: the real static/face-pipeline.js, run in a page.

Shared by the on-device tests and bench/ondevice_gap.py. The page is any page of a running service
(its CSP applies, 'wasm-unsafe-eval' included); the models load once per page.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from playwright.sync_api import Page

LOAD = """async () => {
  const m = await import('/static/face-pipeline.js');
  const align = await import('/static/face-align.js');
  const base = new URL('/static/ondevice/', location.href);
  const manifest = await (await fetch(new URL('manifest.json', base))).json();
  const pipeline = await m.FacePipeline.load(base, manifest, () => {});
  window.__photocheck = { m, align, pipeline };
  return manifest.download_bytes;
}"""

# One photo through the pipeline: every face the detector finds, then the largest, or the one nearest
# the centre or a given point, or with none found the centre region as photocheck eval uses it.
EMBED = """async ([b64, pick, centreRegion, minSize]) => {
  const { m, pipeline } = window.__photocheck;
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const image = await m.decodePhoto(new Blob([bytes]));
  const faces = await pipeline.detect(image);
  const usable = faces.filter((f) => Math.min(f.box[2], f.box[3]) >= minSize);
  let face = null;
  if (usable.length && pick !== 'largest') {
    const [x, y] = pick === 'centre' ? [image.width / 2, image.height / 2] : pick;
    const distance = (f) => (f.box[0] + f.box[2] / 2 - x) ** 2 + (f.box[1] + f.box[3] / 2 - y) ** 2;
    face = usable.reduce((best, f) => (distance(f) < distance(best) ? f : best));
  } else if (usable.length) {
    face = usable[0];
  } else if (centreRegion) {
    const side = centreRegion * Math.min(image.width, image.height);
    face = { box: [(image.width - side) / 2, (image.height - side) / 2, side, side], score: 0 };
  }
  if (!face) return { faces, face: null };
  const described = await pipeline.describe(image, face);
  return {
    faces, face, detected: usable.length > 0,
    embedding: Array.from(described.embedding), landmarks: described.landmarks,
    box: described.box, quality: described.quality,
  };
}"""

CHIP = """async ([b64, width, height, points, template]) => {
  const { align } = window.__photocheck ?? { align: await import('/static/face-align.js') };
  const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const { chip } = align.faceChip({ width, height, data }, points, template ? align[template] : undefined);
  let text = '';
  for (let i = 0; i < chip.length; i += 8192) text += String.fromCharCode(...chip.subarray(i, i + 8192));
  return btoa(text);
}"""

QUALITY = """async ([b64, width, height, box]) => {
  const quality = await import('/static/face-quality.js');
  const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return quality.assessFace({ width, height, data }, box);
}"""

TENSOR = """async ([b64]) => {
  const { m, pipeline } = window.__photocheck;
  const chip = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const tensor = m.chipsToTensor([chip], pipeline.manifest.models.embedder);
  const bytes = new Uint8Array(tensor.buffer);
  let text = '';
  for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return btoa(text);
}"""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class BrowserPipeline:
    """static/face-pipeline.js in ``page``, loaded from the service at ``base_url``."""

    def __init__(self, page: Page, base_url: str, *, path: str = "/privacy") -> None:
        self.page = page
        page.goto(f"{base_url}{path}")
        self.download_bytes = page.evaluate(LOAD)

    def embed(
        self,
        photo: bytes,
        *,
        pick: str | list[float] = "largest",
        centre_region: float | None = None,
        min_size: float = 0,
    ) -> dict[str, Any]:
        out = self.page.evaluate(EMBED, [_b64(photo), pick, centre_region, min_size])
        if out.get("embedding") is not None:
            out["embedding"] = np.asarray(out["embedding"], dtype=np.float32)
        return out

    def chip(self, pixels: np.ndarray, points: list, template: str | None = None) -> np.ndarray:
        height, width = pixels.shape[:2]
        out = self.page.evaluate(CHIP, [_b64(np.ascontiguousarray(pixels).tobytes()), width, height, points, template])
        return np.frombuffer(base64.b64decode(out), np.uint8).reshape(150, 150, 3)

    def quality(self, pixels: np.ndarray, box: list[float]) -> dict[str, float]:
        height, width = pixels.shape[:2]
        return self.page.evaluate(QUALITY, [_b64(np.ascontiguousarray(pixels).tobytes()), width, height, list(box)])

    def tensor(self, chip: np.ndarray) -> np.ndarray:
        out = self.page.evaluate(TENSOR, [_b64(np.ascontiguousarray(chip).tobytes())])
        return np.frombuffer(base64.b64decode(out), np.float32).reshape(1, 3, 150, 150)
