"""Are the converted face-api models the same networks? The ONNX graphs against face-api.js itself.

face-api.js (@vladmandic/face-api's own ES module, TF.js on its CPU backend) runs in headless Chromium
on the same inputs as the ONNX graphs that `photocheck ondevice build` wrote (onnxruntime, here):
the detector on letterboxed 512x512 photos (every one of its 5118 boxes and scores compared), the
landmark net on 112x112 face crops. Prints the largest differences. TF.js's CPU backend is slow
(tens of seconds a detector pass), which is why this is a benchmark script and not a test
(tests/test_ondevice.py compares the landmark net only).

    python bench/ondevice_conversion.py --photos 3
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _common import FACES, machine_facts, print_facts, say, table  # noqa: E402

from indexer.images import load_image  # noqa: E402
from indexer.ondevice.assets import default_assets_dir  # noqa: E402

REFERENCE = """async ([detector, inputs]) => {
  const faceapi = await import('/dist/face-api.esm.js');
  const tf = faceapi.tf;
  await tf.setBackend('cpu');
  const name = detector ? 'ssd_mobilenetv1_model' : 'face_landmark_68_model';
  const net = detector ? faceapi.nets.ssdMobilenetv1 : faceapi.nets.faceLandmark68Net;
  const manifest = await (await fetch(`/model/${name}-weights_manifest.json`)).json();
  const weights = await (await fetch(`/model/${name}.bin`)).arrayBuffer();
  net.loadFromWeightMap(tf.io.decodeWeights(weights, manifest.flatMap((g) => g.weights)));
  const size = detector ? 512 : 112;
  const out = [];
  for (const values of inputs) {
    const input = await faceapi.toNetInput(tf.tensor4d(values, [1, size, size, 3]));
    const started = performance.now();
    if (detector) {
      const { boxes, scores } = net.forwardInput(input);
      const ms = performance.now() - started;
      out.push({ boxes: Array.from(boxes[0].dataSync()), scores: Array.from(scores[0].dataSync()), ms });
    } else {
      out.push({ landmarks: Array.from(net.forwardInput(input).dataSync()), ms: performance.now() - started });
    }
  }
  return out;
}"""


def letterbox(pixels: np.ndarray, size: int = 512) -> np.ndarray:
    from PIL import Image

    scale = size / max(pixels.shape[:2])
    width, height = max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale))
    canvas = np.zeros((size, size, 3), np.float32)
    canvas[:height, :width] = np.asarray(Image.fromarray(pixels).resize((width, height), Image.BILINEAR), np.float32)
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=3, help="How many shared photos (the detector is slow in TF.js).")
    args = parser.parse_args()

    import onnxruntime as ort
    from browser import chromium
    from PIL import Image

    folder = default_assets_dir()
    package = ROOT / "node_modules" / "@vladmandic" / "face-api"
    photos = sorted((FACES / "people").rglob("*.jp*g"))[:: max(1, 17 // args.photos)][: args.photos]
    detector_inputs = [letterbox(load_image(p.read_bytes())) for p in photos]
    crops = []
    for photo in photos:
        pixels = load_image(photo.read_bytes())
        side = min(pixels.shape[:2]) // 2
        y, x = pixels.shape[0] // 4, (pixels.shape[1] - side) // 2
        crops.append(np.asarray(Image.fromarray(pixels[y : y + side, x : x + side]).resize((112, 112)), np.float32))

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(package)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    facts = machine_facts()
    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        started = time.monotonic()
        landmark_reference = page.evaluate(REFERENCE, [False, [c.ravel().tolist() for c in crops]])
        detector_reference = page.evaluate(REFERENCE, [True, [d.ravel().tolist() for d in detector_inputs]])
        say(f"face-api.js ran in {time.monotonic() - started:.0f}s")
    server.shutdown()

    detector = ort.InferenceSession(str(folder / "models" / "face-detector.onnx"))
    landmarks = ort.InferenceSession(str(folder / "models" / "face-landmarks.onnx"))
    rows = []
    for photo, x, crop, ref, ref_landmarks in zip(
        photos, detector_inputs, crops, detector_reference, landmark_reference, strict=True
    ):
        boxes, scores = detector.run(None, {"image": x[None]})
        ref_boxes = np.asarray(ref["boxes"], np.float32).reshape(-1, 4)
        ref_scores = np.asarray(ref["scores"], np.float32)
        faces = ref_scores > 0.5
        (points,) = landmarks.run(None, {"face": crop[None]})
        rows.append(
            [
                photo.name,
                float(np.abs(boxes[0] - ref_boxes).max()),
                float(np.abs(boxes[0][faces] - ref_boxes[faces]).max()) if faces.any() else float("nan"),
                float(np.abs(scores[0] - ref_scores).max()),
                float(np.abs(points[0] - np.asarray(ref_landmarks["landmarks"])).max()),
            ]
        )
    print_facts(facts)
    print(
        table(
            ["photo", "boxes (all 5118)", "boxes (score > 0.5)", "scores", "landmarks"],
            rows,
            digits=8,
        )
    )
    print("largest differences, in the models' own units (boxes and landmarks relative to the input, 0-1)")


if __name__ == "__main__":
    main()
