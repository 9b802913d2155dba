// The face pipeline of the on-device check, in onnxruntime-web: find the faces, place 68 landmarks on
// one, cut dlib's chip from its 5, and embed the chip and its mirror with dlib's ResNet, as the server
// does. Everything runs on this device; the caller sends only the embedding and two quality numbers.
//
// The runtime and the models come from the service that served this module, listed in its
// /static/ondevice/manifest.json: nothing is fetched from anywhere else, and nothing runs until the
// first on-device check asks for it.

import { CHIP_SIZE, detectorBox, FACEAPI_TEMPLATE_5, faceChip, fivePoints, mirrorChip, resampleRegion } from "./face-align.js";
import { assessFace } from "./face-quality.js";

/** face-api's own settings for its SSD (src/ssdMobilenetv1): boxes above 0.5, suppressed at IoU 0.5. */
export const MIN_SCORE = 0.5;
export const NMS_IOU = 0.5;
export const MAX_FACES = 100;
/** Photos larger than this are refused here as the server refuses them (PHOTOCHECK_MAX_PIXELS). */
export const MAX_PIXELS = 50_000_000;

export class PipelineError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** Whether this browser can run the pipeline at all: null if it can, else a reason code. */
export function missingFeature() {
  if (typeof WebAssembly !== "object" || typeof WebAssembly.instantiate !== "function") return "no_webassembly";
  if (typeof createImageBitmap !== "function") return "no_image_decoding";
  if (typeof fetch !== "function" || typeof ReadableStream !== "function") return "no_streams";
  return null;
}

/** Fetch `url` whole, calling onBytes(n) as bytes arrive. */
async function fetchBytes(url, onBytes) {
  const response = await fetch(url, { credentials: "omit", referrerPolicy: "no-referrer" });
  if (!response.ok) throw new PipelineError("assets_unavailable", `HTTP ${response.status} for ${url}`);
  if (!response.body) {
    const buffer = new Uint8Array(await response.arrayBuffer());
    onBytes(buffer.length);
    return buffer;
  }
  const reader = response.body.getReader();
  const parts = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    length += value.length;
    onBytes(value.length);
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return bytes;
}

export class FacePipeline {
  /**
   * Load the runtime and the three models. `base` is the assets folder URL (ending in /),
   * `manifest` its manifest.json, `onProgress({loaded, total})` reports the bytes so far.
   */
  static async load(base, manifest, onProgress = () => {}) {
    const missing = missingFeature();
    if (missing) throw new PipelineError(missing, "This browser cannot run the on-device check.");
    const url = (name) => new URL(`${name}?v=${manifest.files[name].sha256.slice(0, 16)}`, base).href;
    const needed = [manifest.runtime.module, manifest.runtime.glue, manifest.runtime.wasm, ...Object.values(manifest.models).map((m) => m.file)];
    const total = needed.reduce((sum, name) => sum + manifest.files[name].bytes, 0);
    let loaded = 0;
    const counted = (n) => {
      loaded += n;
      onProgress({ loaded, total });
    };
    onProgress({ loaded, total });

    const [ort, wasm, detector, landmarks, embedder] = await Promise.all([
      import(url(manifest.runtime.module)).then((module) => {
        counted(manifest.files[manifest.runtime.module].bytes);
        return module;
      }),
      fetchBytes(url(manifest.runtime.wasm), counted),
      fetchBytes(url(manifest.models.detector.file), counted),
      fetchBytes(url(manifest.models.landmarks.file), counted),
      fetchBytes(url(manifest.models.embedder.file), counted),
    ]);
    // The runtime's own files, from this service: no CDN. Threads need a cross-origin isolated page,
    // which a host page of the widget is not; one thread everywhere keeps the two alike.
    ort.env.wasm.wasmPaths = { mjs: url(manifest.runtime.glue), wasm: url(manifest.runtime.wasm) };
    ort.env.wasm.wasmBinary = wasm;
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
    const sessions = [];
    for (const model of [detector, landmarks, embedder]) sessions.push(await ort.InferenceSession.create(model, options));
    counted(manifest.files[manifest.runtime.glue].bytes);
    return new FacePipeline(ort, sessions, manifest);
  }

  constructor(ort, [detector, landmarks, embedder], manifest) {
    this.ort = ort;
    this.detector = detector;
    this.landmarker = landmarks;
    this.embedder = embedder;
    this.manifest = manifest;
    this.detectorSize = manifest.models.detector.input_size;
    this.landmarkSize = manifest.models.landmarks.input_size;
  }

  /** Every face in an RGB image, largest first: [{ box: [x, y, width, height], score }]. */
  async detect(image) {
    const size = this.detectorSize;
    const scale = size / Math.max(image.width, image.height);
    const width = Math.max(1, Math.round(image.width * scale));
    const height = Math.max(1, Math.round(image.height * scale));
    // Letterboxed into the top-left corner, as face-api.js does; the rest stays black.
    const input = new Float32Array(size * size * 3);
    resampleRegion(image, { x: 0, y: 0, width: image.width, height: image.height }, width, height, input, size);
    const output = await this.detector.run({ image: new this.ort.Tensor("float32", input, [1, size, size, 3]) });
    const boxes = output.boxes.data;
    const scores = output.scores.data;
    const kept = nonMaxSuppression(boxes, scores, MAX_FACES, NMS_IOU, MIN_SCORE);
    const sx = (size / width) * image.width, sy = (size / height) * image.height;
    const faces = kept.map((i) => {
      const top = Math.max(0, boxes[i * 4]) * sy, left = Math.max(0, boxes[i * 4 + 1]) * sx;
      const bottom = Math.min(1, boxes[i * 4 + 2]) * sy, right = Math.min(1, boxes[i * 4 + 3]) * sx;
      return { box: [left, top, right - left, bottom - top], score: scores[i] };
    });
    return faces.sort((a, b) => b.box[2] * b.box[3] - a.box[2] * a.box[3] || a.box[0] - b.box[0] || a.box[1] - b.box[1]);
  }

  /** The 68 landmarks of a face (its detector box), in image pixels. */
  async landmarks(image, box) {
    const size = this.landmarkSize;
    const [x, y, w, h] = box;
    const side = Math.max(w, h);
    const region = { x: x + w / 2 - side / 2, y: y + h / 2 - side / 2, width: side, height: side };
    const input = resampleRegion(image, region, size, size);
    const output = await this.landmarker.run({ face: new this.ort.Tensor("float32", input, [1, size, size, 3]) });
    const values = output.landmarks.data;
    const points = [];
    for (let i = 0; i < 68; i++) points.push([region.x + values[2 * i] * side, region.y + values[2 * i + 1] * side]);
    return points;
  }

  /** The embedding of a chip and its mirror, as the server computes it (mean of the two, L2-normalised). */
  async embedChip(chip) {
    const { input, output: outputName } = this.manifest.models.embedder;
    const tensor = chipsToTensor([chip, mirrorChip(chip)], this.manifest.models.embedder);
    const output = await this.embedder.run({ [input]: new this.ort.Tensor("float32", tensor, [2, 3, CHIP_SIZE, CHIP_SIZE]) });
    const data = output[outputName].data;
    const dimension = data.length / 2;
    const sum = new Float32Array(dimension);
    for (const half of [data.subarray(0, dimension), data.subarray(dimension)]) {
      const norm = Math.hypot(...half) || 1;
      for (let i = 0; i < dimension; i++) sum[i] += half[i] / norm;
    }
    const norm = Math.hypot(...sum) || 1;
    return sum.map((v) => v / norm);
  }

  /** Landmarks, chip, embedding and quality of one detected face. */
  async describe(image, face) {
    const landmarks = await this.landmarks(image, face.box);
    const { details, chip } = faceChip(image, fivePoints(landmarks), FACEAPI_TEMPLATE_5);
    const embedding = await this.embedChip(chip);
    const box = detectorBox(details);
    return { landmarks, chip, embedding, box, quality: assessFace(image, box) };
  }
}

/** RGB chips -> the ResNet's N x 3 x 150 x 150 input, as the server computes it (chips_to_tensor in
 * indexer/embedders/dlib_onnx.py): (pixel - mean) * pixel_scale per channel, in float32, with the
 * server's constants from the manifest. */
export function chipsToTensor(chips, { mean_rgb: mean, pixel_scale: scale }) {
  const plane = CHIP_SIZE * CHIP_SIZE;
  const means = mean.map(Math.fround);
  const tensor = new Float32Array(chips.length * 3 * plane);
  chips.forEach((pixels, n) => {
    for (let i = 0; i < plane; i++) {
      for (let k = 0; k < 3; k++) tensor[(n * 3 + k) * plane + i] = (pixels[i * 3 + k] - means[k]) * scale;
    }
  });
  return tensor;
}

/** face-api.js's non-maximum suppression: best first, a box goes when it overlaps a kept one by more than `iou`. */
export function nonMaxSuppression(boxes, scores, maxResults, iou, minScore) {
  const candidates = [];
  for (let i = 0; i < scores.length; i++) if (scores[i] > minScore) candidates.push(i);
  candidates.sort((a, b) => scores[b] - scores[a]);
  const kept = [];
  const area = (i) => (Math.max(boxes[i * 4], boxes[i * 4 + 2]) - Math.min(boxes[i * 4], boxes[i * 4 + 2])) *
    (Math.max(boxes[i * 4 + 1], boxes[i * 4 + 3]) - Math.min(boxes[i * 4 + 1], boxes[i * 4 + 3]));
  const overlap = (i, j) => {
    const ai = area(i), aj = area(j);
    if (ai <= 0 || aj <= 0) return 0;
    const top = Math.max(Math.min(boxes[i * 4], boxes[i * 4 + 2]), Math.min(boxes[j * 4], boxes[j * 4 + 2]));
    const left = Math.max(Math.min(boxes[i * 4 + 1], boxes[i * 4 + 3]), Math.min(boxes[j * 4 + 1], boxes[j * 4 + 3]));
    const bottom = Math.min(Math.max(boxes[i * 4], boxes[i * 4 + 2]), Math.max(boxes[j * 4], boxes[j * 4 + 2]));
    const right = Math.min(Math.max(boxes[i * 4 + 1], boxes[i * 4 + 3]), Math.max(boxes[j * 4 + 1], boxes[j * 4 + 3]));
    const inter = Math.max(bottom - top, 0) * Math.max(right - left, 0);
    return inter / (ai + aj - inter);
  };
  for (const i of candidates) {
    if (kept.length >= maxResults) break;
    if (kept.every((j) => overlap(i, j) <= iou)) kept.push(i);
  }
  return kept;
}

/** A photo (Blob) as an RGB image {width, height, data}, EXIF orientation applied, alpha over white,
 * colours as stored (no colour-profile conversion: the server's decoder does none either). */
export async function decodePhoto(blob) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch {
    throw new PipelineError("unreadable_here", "This browser cannot read this photo's format.");
  }
  try {
    const { width, height } = bitmap;
    if (width * height > MAX_PIXELS) throw new PipelineError("image_too_large", "This photo has too many pixels to check.");
    const canvas = typeof OffscreenCanvas === "function" ? new OffscreenCanvas(width, height) : Object.assign(document.createElement("canvas"), { width, height });
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.fillStyle = "#fff";
    context.fillRect(0, 0, width, height);
    context.drawImage(bitmap, 0, 0);
    const rgba = context.getImageData(0, 0, width, height).data;
    const data = new Uint8Array(width * height * 3);
    for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
      data[j] = rgba[i];
      data[j + 1] = rgba[i + 1];
      data[j + 2] = rgba[i + 2];
    }
    return { width, height, data };
  } finally {
    bitmap.close();
  }
}
