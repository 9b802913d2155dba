// dlib's face alignment, in the browser: the 150x150 chip the ResNet takes, cut as dlib cuts it.
//
// The server calls dlib.get_face_chips(pixels, shapes, size=150, padding=0.25) on its 5 landmarks.
// This module does the same steps as dlib's get_face_chip_details and extract_image_chips
// (dlib/image_transforms/interpolation.h): the similarity transform from the 5-point template to
// the landmarks, the chip rectangle and angle, the pyramid_down<2> levels that keep a downscaled chip
// from aliasing, and the bilinear sampling that truncates to 8 bits and leaves outside pixels black.
// Given the same landmarks it gives the same chip (tests/test_ondevice.py compares them).
//
// Images here are { width, height, data } with data an RGB Uint8Array (3 bytes a pixel, rows top down).

export const CHIP_SIZE = 150;
export const CHIP_PADDING = 0.25;

/** dlib's 5-point template on the unit square: the outer and inner corner of the eye on the image's
 * right, the same for the eye on its left, then the base of the nose. */
export const TEMPLATE_5 = [
  [0.8595674595992, 0.2134981538014],
  [0.6460604764104, 0.2289674387677],
  [0.1205750620789, 0.2137274526848],
  [0.3340850613712, 0.2290642403242],
  [0.4901123135679, 0.6277975316475],
];

/** The points of the 68-point (iBUG) layout that are dlib's 5: eye corners 45, 42, 36, 39 and nose base 33. */
export const FIVE_OF_68 = [45, 42, 36, 39, 33];

/** Where those five of face-api's landmarks fall, on average, in dlib's template frame (the unit square
 * that TEMPLATE_5 is drawn in, placed by dlib's own 5 landmarks). face-api marks the eyes and the nose a
 * little higher than dlib's 5-point model, so aligning face-api's points to this template gives the chip
 * dlib would cut. Fitted on 240 LFW photos of people A-D (`bench/ondevice_gap.py --fit`); on held-out
 * photos it brings the embedding gap to the server's down by a quarter (README, "The on-device check"). */
export const FACEAPI_TEMPLATE_5 = [
  [0.850513, 0.202979],
  [0.646337, 0.208412],
  [0.123082, 0.190854],
  [0.324611, 0.207048],
  [0.486545, 0.60682],
];

/** Where the server's HOG detector box sits in the chip, in chip pixels: its centre and side. Fitted with
 * the template above (`bench/ondevice_gap.py --fit`), so that the size and sharpness measured here
 * describe the region the server measures. */
export const DETECTOR_BOX_IN_CHIP = { x: 71.0, y: 72.2, size: 136.5 };

export function fivePoints(landmarks68) {
  return FIVE_OF_68.map((i) => landmarks68[i]);
}

/** The least-squares similarity transform taking `from` points to `to` points (Umeyama's, as dlib's
 * find_similarity_transform): x' = a x - b y + tx, y' = b x + a y + ty. */
export function similarityTransform(from, to) {
  const n = from.length;
  let fx = 0, fy = 0, tx = 0, ty = 0;
  for (let i = 0; i < n; i++) {
    fx += from[i][0]; fy += from[i][1]; tx += to[i][0]; ty += to[i][1];
  }
  fx /= n; fy /= n; tx /= n; ty /= n;
  let dot = 0, cross = 0, norm = 0;
  for (let i = 0; i < n; i++) {
    const px = from[i][0] - fx, py = from[i][1] - fy;
    const qx = to[i][0] - tx, qy = to[i][1] - ty;
    dot += px * qx + py * qy;
    cross += px * qy - py * qx;
    norm += px * px + py * py;
  }
  const a = norm ? dot / norm : 1;
  const b = norm ? cross / norm : 0;
  return { a, b, tx: tx - (a * fx - b * fy), ty: ty - (b * fx + a * fy) };
}

const apply = (t, x, y) => [t.a * x - t.b * y + t.tx, t.b * x + t.a * y + t.ty];

/** dlib's chip_details for 5 landmarks: { rect: {l, t, r, b}, angle, rows, cols }, rect in image pixels.
 * `template` says where the 5 points belong in the chip (dlib's own, or face-api's fitted one). */
export function chipDetails(points5, size = CHIP_SIZE, padding = CHIP_PADDING, template = TEMPLATE_5) {
  const from = template.map(([x, y]) => [((padding + x) / (2 * padding + 1)) * size, ((padding + y) / (2 * padding + 1)) * size]);
  const t = similarityTransform(from, points5);
  const angle = Math.atan2(t.b, t.a);
  const scale = Math.hypot(t.a, t.b);
  const [cx, cy] = apply(t, size / 2, size / 2);
  // centered_drect(p, w, h): dlib's rectangles include their right and bottom edges.
  const half = (size * scale - 1) / 2;
  return { rect: { l: cx - half, t: cy - half, r: cx + half, b: cy + half }, angle, rows: size, cols: size, transform: t };
}

/** The server's detector box for this face, estimated from the alignment: [x, y, width, height]. */
export function detectorBox(details) {
  const [x, y] = apply(details.transform, DETECTOR_BOX_IN_CHIP.x, DETECTOR_BOX_IN_CHIP.y);
  const side = DETECTOR_BOX_IN_CHIP.size * Math.hypot(details.transform.a, details.transform.b);
  return [x - side / 2, y - side / 2, side, side];
}

// ---- dlib's rectangles and pyramid ----------------------------------------------------------

const rectArea = (r) => (r.t > r.b || r.l > r.r ? 0 : (r.r - r.l + 1) * (r.b - r.t + 1));
// pyramid_down<2>::point_down: p/2 - (1.25, 0.75)
const rectDown = (r) => ({ l: r.l / 2 - 1.25, t: r.t / 2 - 0.75, r: r.r / 2 - 1.25, b: r.b / 2 - 0.75 });
const center = (r) => [(r.l + r.r) / 2, (r.t + r.b) / 2];

function rotatePoint([cx, cy], [x, y], angle) {
  const s = Math.sin(angle), c = Math.cos(angle);
  const dx = x - cx, dy = y - cy;
  return [c * dx - s * dy + cx, s * dx + c * dy + cy];
}

// drectangle -> rectangle: each side rounded as dlib does, floor(x + 0.5).
const toIntRect = (r) => ({
  l: Math.floor(r.l + 0.5), t: Math.floor(r.t + 0.5), r: Math.floor(r.r + 0.5), b: Math.floor(r.b + 0.5),
});

/** A copy of the pixels inside an integer rectangle (clipped to the image). */
export function subImage(image, rect) {
  const l = Math.max(rect.l, 0), t = Math.max(rect.t, 0);
  const r = Math.min(rect.r, image.width - 1), b = Math.min(rect.b, image.height - 1);
  const width = Math.max(r - l + 1, 0), height = Math.max(b - t + 1, 0);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const start = ((t + y) * image.width + l) * 3;
    data.set(image.data.subarray(start, start + width * 3), y * width * 3);
  }
  return { width, height, data };
}

/** dlib's pyramid_down<2> on an RGB image: a 5x5 [1 4 6 4 1] filter, every other row and column, 8-bit
 * sums divided by 256 with truncation. */
export function pyramidDown(image) {
  const { width, height, data } = image;
  if (height <= 8 || width <= 8) return { width: 0, height: 0, data: new Uint8Array(0) };
  const tempWidth = Math.floor((width - 3) / 2);
  const outHeight = Math.floor((height - 3) / 2);
  const temp = new Uint16Array(height * tempWidth * 3);
  for (let r = 0; r < height; r++) {
    const row = r * width * 3;
    for (let c = 0, oc = 0; c < tempWidth; c++, oc += 2) {
      for (let k = 0; k < 3; k++) {
        const i = row + oc * 3 + k;
        temp[(r * tempWidth + c) * 3 + k] = data[i] + 4 * data[i + 3] + 6 * data[i + 6] + 4 * data[i + 9] + data[i + 12];
      }
    }
  }
  const out = new Uint8Array(outHeight * tempWidth * 3);
  const stride = tempWidth * 3;
  for (let r = 2, dr = 0; r < height - 2; r += 2, dr++) {
    for (let c = 0; c < stride; c++) {
      const i = r * stride + c;
      const sum = temp[i - 2 * stride] + 4 * temp[i - stride] + 6 * temp[i] + 4 * temp[i + stride] + temp[i + 2 * stride];
      out[dr * stride + c] = sum >> 8;
    }
  }
  return { width: tempWidth, height: outHeight, data: out };
}

/** dlib's extract_image_chips for one chip: the RGB chip (rows x cols x 3). */
export function extractChip(image, details) {
  const { rect, angle, rows, cols } = details;
  const size = rows * cols;
  let depth = 0;
  let grow = 2;
  let down = rectDown(rect);
  while (rectArea(down) > size) {
    down = rectDown(down);
    depth++;
    grow = grow * 2 + 2;
  }
  const c = center(rect);
  const corners = [[rect.l, rect.t], [rect.r, rect.t], [rect.l, rect.b], [rect.r, rect.b]].map((p) => rotatePoint(c, p, angle));
  const xs = corners.map((p) => p[0]), ys = corners.map((p) => p[1]);
  const grown = { l: Math.min(...xs) - grow, t: Math.min(...ys) - grow, r: Math.max(...xs) + grow, b: Math.max(...ys) + grow };
  const clipped = {
    l: Math.max(grown.l, 0), t: Math.max(grown.t, 0), r: Math.min(grown.r, image.width - 1), b: Math.min(grown.b, image.height - 1),
  };
  const box = toIntRect(clipped);
  const chip = new Uint8Array(size * 3);
  if (box.l > box.r || box.t > box.b) return chip; // the face is wholly outside the photo

  let source = subImage(image, box);
  let level = -1;
  let local = { l: rect.l - box.l, t: rect.t - box.t, r: rect.r - box.l, b: rect.b - box.t };
  while (rectArea(rectDown(local)) > size) {
    level++;
    local = rectDown(local);
  }
  for (let i = 0; i <= level; i++) source = pyramidDown(source);

  // The affine map from chip pixels to source pixels through three corners, as dlib's find_affine_transform.
  const lc = center(local);
  const [x0, y0] = rotatePoint(lc, [local.l, local.t], angle);
  const [x1, y1] = rotatePoint(lc, [local.r, local.t], angle);
  const [x2, y2] = rotatePoint(lc, [local.l, local.b], angle);
  const ux = (x1 - x0) / (cols - 1), uy = (y1 - y0) / (cols - 1);
  const vx = (x2 - x0) / (rows - 1), vy = (y2 - y0) / (rows - 1);
  const { width, height, data } = source;
  for (let r = 0; r < rows; r++) {
    for (let col = 0; col < cols; col++) {
      const px = x0 + ux * col + vx * r;
      const py = y0 + uy * col + vy * r;
      const left = Math.floor(px), top = Math.floor(py);
      if (!(left >= 0 && top >= 0 && left + 1 < width && top + 1 < height)) continue; // black
      const fx = px - left, fy = py - top;
      const i = (top * width + left) * 3, j = i + width * 3, o = (r * cols + col) * 3;
      for (let k = 0; k < 3; k++) {
        const value = (1 - fy) * ((1 - fx) * data[i + k] + fx * data[i + 3 + k]) + fy * ((1 - fx) * data[j + k] + fx * data[j + 3 + k]);
        chip[o + k] = value; // a Uint8Array truncates, as dlib's assign_pixel does
      }
    }
  }
  return chip;
}

/** The chip of a face, from its 5 landmarks in dlib's order (`template`: where they belong in the chip). */
export function faceChip(image, points5, template = TEMPLATE_5, size = CHIP_SIZE, padding = CHIP_PADDING) {
  const details = chipDetails(points5, size, padding, template);
  return { details, chip: extractChip(image, details) };
}

/** The chip mirrored left to right (the server embeds both and averages). */
export function mirrorChip(chip, size = CHIP_SIZE) {
  const out = new Uint8Array(chip.length);
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      const from = (r * size + c) * 3, to = (r * size + (size - 1 - c)) * 3;
      out[to] = chip[from]; out[to + 1] = chip[from + 1]; out[to + 2] = chip[from + 2];
    }
  }
  return out;
}

// ---- resampling for the detector and landmark inputs ---------------------------------------------

/** Area-averaged (when shrinking) or bilinear (when growing) resampling of a region of `image` into a
 * `outWidth` x `outHeight` float RGB buffer (0-255), NHWC. `region` is {x, y, width, height} in source
 * pixels and may reach outside the image, where the output is black. */
export function resampleRegion(image, region, outWidth, outHeight, out = new Float32Array(outWidth * outHeight * 3), outStride = outWidth) {
  const sx = region.width / outWidth, sy = region.height / outHeight;
  const columns = axisWeights(region.x, sx, outWidth, image.width);
  const rows = axisWeights(region.y, sy, outHeight, image.height);
  const { data, width } = image;
  const line = new Float32Array(image.width * 3);
  for (let oy = 0; oy < outHeight; oy++) {
    line.fill(0);
    const { indices: ri, weights: rw } = rows[oy];
    // First down the rows (only the columns used), then along the line.
    for (let k = 0; k < ri.length; k++) {
      const start = ri[k] * width * 3, w = rw[k];
      for (let i = 0; i < width * 3; i++) line[i] += w * data[start + i];
    }
    for (let ox = 0; ox < outWidth; ox++) {
      const { indices: ci, weights: cw } = columns[ox];
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < ci.length; k++) {
        const i = ci[k] * 3, w = cw[k];
        r += w * line[i]; g += w * line[i + 1]; b += w * line[i + 2];
      }
      const o = (oy * outStride + ox) * 3;
      out[o] = r; out[o + 1] = g; out[o + 2] = b;
    }
  }
  return out;
}

// For each output pixel along one axis, the source pixels and weights: box (area) weights when
// shrinking, bilinear at pixel centres when growing. Source pixels outside [0, limit) weigh nothing.
function axisWeights(origin, scale, count, limit) {
  const table = [];
  for (let o = 0; o < count; o++) {
    const indices = [], weights = [];
    if (scale > 1) {
      const start = origin + o * scale, end = start + scale;
      for (let s = Math.floor(start); s < Math.ceil(end); s++) {
        const w = (Math.min(end, s + 1) - Math.max(start, s)) / scale;
        if (w > 0 && s >= 0 && s < limit) { indices.push(s); weights.push(w); }
      }
    } else {
      // A sample point within the image takes its edge pixels beyond the last centre; outside, black.
      const at = origin + (o + 0.5) * scale - 0.5;
      if (at >= -0.5 && at <= limit - 0.5) {
        const s = Math.floor(at), f = at - s;
        const first = Math.min(Math.max(s, 0), limit - 1), second = Math.min(Math.max(s + 1, 0), limit - 1);
        indices.push(first, second);
        weights.push(1 - f, f);
      }
    }
    table.push({ indices, weights });
  }
  return table;
}
