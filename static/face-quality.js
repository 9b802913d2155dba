// How well a face can be judged, measured in the browser as the server measures it (indexer/quality.py):
// the face region in grey, resampled to 96x96 (area averaging when it shrinks, bilinear when it grows),
// then the variance of its Laplacian. The service compares the sharpness with its own threshold, so the
// on-device check and the upload check mark the same faces as blurred.

export const SAMPLE = 96;

// OpenCV's fixed-point RGB -> grey (cv::cvtColor, COLOR_RGB2GRAY on 8-bit pixels).
const R2Y = 4899, G2Y = 9617, B2Y = 1868;

// Python's round(): halves go to the even neighbour.
function roundHalfEven(value) {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** { size, sharpness } of the face in `box` ([x, y, width, height]) of an RGB image {width, height, data}. */
export function assessFace(image, box) {
  const [x, y, w, h] = box;
  const size = Math.min(w, h);
  const left = Math.max(0, Math.trunc(x)), top = Math.max(0, Math.trunc(y));
  const right = Math.min(image.width, roundHalfEven(x + w)), bottom = Math.min(image.height, roundHalfEven(y + h));
  if (right - left < 2 || bottom - top < 2) return { size, sharpness: 0 };
  const cw = right - left, ch = bottom - top;
  const gray = new Uint8Array(cw * ch);
  for (let r = 0; r < ch; r++) {
    for (let c = 0; c < cw; c++) {
      const i = ((top + r) * image.width + left + c) * 3;
      gray[r * cw + c] = (image.data[i] * R2Y + image.data[i + 1] * G2Y + image.data[i + 2] * B2Y + 8192) >> 14;
    }
  }
  const sample = w > SAMPLE ? resizeArea(gray, cw, ch, SAMPLE) : resizeLinear(gray, cw, ch, SAMPLE);
  return { size, sharpness: laplacianVariance(sample, SAMPLE) };
}

// cv::resize INTER_AREA when shrinking: each output pixel averages the source area it covers.
function resizeArea(gray, width, height, out) {
  const xs = areaTable(width, out), ys = areaTable(height, out);
  const result = new Uint8Array(out * out);
  for (let oy = 0; oy < out; oy++) {
    for (let ox = 0; ox < out; ox++) {
      let sum = 0;
      for (const [sy, wy] of ys[oy]) for (const [sx, wx] of xs[ox]) sum += wx * wy * gray[sy * width + sx];
      result[oy * out + ox] = Math.min(255, Math.max(0, Math.round(sum)));
    }
  }
  return result;
}

function areaTable(size, out) {
  const scale = size / out;
  const table = [];
  for (let o = 0; o < out; o++) {
    const start = o * scale, end = start + scale;
    const cells = [];
    if (scale < 1) {
      // Growing along this axis (a clipped box): OpenCV falls back to bilinear-like weights.
      const at = Math.min(Math.max((o + 0.5) * scale - 0.5, 0), size - 1);
      const s = Math.floor(at), f = at - s;
      cells.push([s, 1 - f]);
      if (f > 0 && s + 1 < size) cells.push([s + 1, f]);
    } else {
      for (let s = Math.floor(start); s < Math.min(Math.ceil(end - 1e-9), size); s++) {
        const w = (Math.min(end, s + 1) - Math.max(start, s)) / scale;
        if (w > 1e-9) cells.push([s, w]);
      }
    }
    table.push(cells);
  }
  return table;
}

// cv::resize INTER_LINEAR: pixel centres aligned, edges repeated.
function resizeLinear(gray, width, height, out) {
  const result = new Uint8Array(out * out);
  const sx = width / out, sy = height / out;
  for (let oy = 0; oy < out; oy++) {
    const fy = Math.max((oy + 0.5) * sy - 0.5, 0);
    const y0 = Math.min(Math.floor(fy), height - 1), y1 = Math.min(y0 + 1, height - 1), wy = Math.min(fy - y0, 1);
    for (let ox = 0; ox < out; ox++) {
      const fx = Math.max((ox + 0.5) * sx - 0.5, 0);
      const x0 = Math.min(Math.floor(fx), width - 1), x1 = Math.min(x0 + 1, width - 1), wx = Math.min(fx - x0, 1);
      const top = gray[y0 * width + x0] * (1 - wx) + gray[y0 * width + x1] * wx;
      const bottom = gray[y1 * width + x0] * (1 - wx) + gray[y1 * width + x1] * wx;
      result[oy * out + ox] = Math.round(top * (1 - wy) + bottom * wy);
    }
  }
  return result;
}

// Variance of cv::Laplacian(ksize=1) with OpenCV's default border (reflect 101).
function laplacianVariance(pixels, size) {
  const at = (r, c) => {
    const rr = r < 0 ? -r : r >= size ? 2 * size - 2 - r : r;
    const cc = c < 0 ? -c : c >= size ? 2 * size - 2 - c : c;
    return pixels[rr * size + cc];
  };
  let sum = 0, squares = 0;
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      const value = at(r - 1, c) + at(r + 1, c) + at(r, c - 1) + at(r, c + 1) - 4 * at(r, c);
      sum += value;
      squares += value * value;
    }
  }
  const n = size * size;
  const mean = sum / n;
  return squares / n - mean * mean;
}
