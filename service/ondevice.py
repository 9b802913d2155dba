"""The on-device check, server side: the files the browser runs, and the endpoint that takes an embedding.

``/static/ondevice/<file>`` serves the folder ``photocheck ondevice build`` writes (``make install``
does; PHOTOCHECK_ONDEVICE_DIR says where it is): onnxruntime-web's module and WebAssembly, the face
detector, landmark and ResNet graphs, and their manifest. Only files the manifest lists are served,
gzipped to browsers that take it where a gzipped copy was built. Each file is requested under a
``?v=`` of its SHA-256, so it may be cached for good; the manifest is revalidated every time.

``POST /api/v1/check-embedding`` answers for the 128 numbers the browser computed, as ``/api/v1/check``
answers for a photo: the same per-dataset verdicts and two-decimal confidences, the same rate limit
(one budget shared with uploads), the same origin rules. It takes nothing more than it needs (a small
JSON body: the embedding, the face's size and sharpness), keeps nothing and logs nothing of it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from flask import Blueprint, Flask, abort, current_app, jsonify, request, send_file

from indexer.ondevice.assets import MANIFEST, default_assets_dir, load_manifest

from .api import _state, error_response
from .uploads import MalformedUpload, drain_body

ondevice = Blueprint("ondevice", __name__)

ASSETS_PATH = "/static/ondevice/"
#: The embedding and two numbers fit in 2 KB; nothing larger is read.
MAX_BODY = 4096
#: The model the browser's pipeline computes: an index built with another cannot take its embeddings.
ONDEVICE_MODEL = "dlib_face_recognition_resnet_model_v1"
#: How far from 1 the length of a sent embedding may be (the browser sends it L2-normalised).
NORM_TOLERANCE = 0.01
MAX_FACE_SIZE = 100_000.0
MAX_SHARPNESS = 1e7
CONTENT_TYPES = {".mjs": "text/javascript", ".wasm": "application/wasm", ".onnx": "application/octet-stream"}
FOREVER = 365 * 24 * 3600


def init_app(app: Flask) -> None:
    configured = app.config.get("ONDEVICE_DIR")
    folder = Path(configured) if configured else default_assets_dir()
    manifest = load_manifest(folder)
    app.extensions["photocheck_ondevice"] = (folder, manifest) if manifest else None
    app.register_blueprint(ondevice)


def offer(state) -> dict[str, Any]:
    """Whether pages may check on the device here, and what a first on-device check downloads."""
    loaded = current_app.extensions.get("photocheck_ondevice")
    if state.checker.index.embedder_description.get("model") != ONDEVICE_MODEL:
        return {"available": False, "reason": "other_model", "download_bytes": None}
    if loaded is None:
        return {"available": False, "reason": "no_assets", "download_bytes": None}
    return {"available": True, "reason": None, "download_bytes": loaded[1]["download_bytes"]}


def page_facts() -> dict[str, Any]:
    """For the privacy page: whether the on-device check is offered here, and its download in MB."""
    loaded = current_app.extensions.get("photocheck_ondevice")
    state = current_app.extensions.get("photocheck")
    offered = loaded is not None
    if offered and state is not None and state.ready:
        offered = offer(state)["available"]
    return {"on_device": offered, "on_device_mb": loaded[1]["download_bytes"] / 1e6 if loaded else 0.0}


@ondevice.get(f"{ASSETS_PATH}<path:name>")
def asset(name: str):
    loaded = current_app.extensions.get("photocheck_ondevice")
    if loaded is None:
        abort(404)
    folder, manifest = loaded
    if name == MANIFEST:
        response = send_file(folder / MANIFEST, mimetype="application/json", max_age=0)
        response.headers["Cache-Control"] = "no-cache"
        return response
    entry = manifest["files"].get(name)
    if entry is None:
        abort(404)
    path = folder / name
    mimetype = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
    packed = "gzip_bytes" in entry and "gzip" in request.headers.get("Accept-Encoding", "").lower()
    response = send_file(path.with_name(path.name + ".gz") if packed else path, mimetype=mimetype, conditional=True)
    response.headers.pop("Content-Disposition", None)
    if packed:
        response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    current = request.args.get("v") == entry["sha256"][:16]
    response.headers["Cache-Control"] = f"public, max-age={FOREVER}, immutable" if current else "no-cache"
    return response


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _number(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MalformedUpload(f"'{name}' must be a finite number.")
    if not low <= value <= high:
        raise MalformedUpload(f"'{name}' must be between {low:g} and {high:g}.")
    return float(value)


def read_embedding_request(dimension: int) -> tuple[np.ndarray, float, float]:
    """(embedding, face size, sharpness) from a JSON body; MalformedUpload for anything else."""
    if (request.content_length or 0) > MAX_BODY:
        drain_body()
        _too_large()
    if (request.mimetype or "").lower() != "application/json":
        drain_body()
        raise MalformedUpload(
            'Send a JSON body (Content-Type: application/json): {"embedding": [128 numbers], '
            '"face": {"size": pixels, "sharpness": variance}}.'
        )
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        drain_body()
        _too_large()
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError):
        raise MalformedUpload("The body is not valid JSON (NaN and Infinity are not numbers here).") from None
    if not isinstance(data, dict) or set(data) != {"embedding", "face"}:
        raise MalformedUpload("The body must be an object with exactly 'embedding' and 'face'.")
    embedding, face = data["embedding"], data["face"]
    if not isinstance(embedding, list) or len(embedding) != dimension:
        raise MalformedUpload(f"'embedding' must be a list of {dimension} numbers.")
    for value in embedding:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise MalformedUpload("Every value of 'embedding' must be a finite number.")
    vector = np.asarray(embedding, dtype=np.float64)
    norm = float(np.linalg.norm(vector))
    if abs(norm - 1.0) > NORM_TOLERANCE:
        raise MalformedUpload(f"'embedding' must be L2-normalised (its length is {norm:.3g}, not 1).")
    if not isinstance(face, dict) or set(face) != {"size", "sharpness"}:
        raise MalformedUpload("'face' must be an object with exactly 'size' and 'sharpness'.")
    size = _number(face["size"], "face.size", 0.0, MAX_FACE_SIZE)
    if size == 0:
        raise MalformedUpload("'face.size' must be more than 0.")
    sharpness = _number(face["sharpness"], "face.sharpness", 0.0, MAX_SHARPNESS)
    return vector.astype(np.float32), size, sharpness


class BodyTooLarge(MalformedUpload):
    code = "upload_too_large"


def _too_large() -> None:
    raise BodyTooLarge(
        f"The request is larger than {MAX_BODY} bytes. Send only the embedding and the face's size and sharpness."
    )


@ondevice.post("/api/v1/check-embedding")
def check_embedding():
    """An embedding computed on the person's device in, the same answer as for their photo out."""
    state = _state()
    index = state.checker.index
    if index.embedder_description.get("model") != ONDEVICE_MODEL:
        drain_body()
        return error_response(
            "on_device_unavailable",
            f"This index was built with {index.embedder_description.get('name')}'s model; the on-device check "
            "computes dlib embeddings, which it cannot compare. Use the upload check.",
            409,
        )
    vector, size, sharpness = read_embedding_request(int(index.embedder_description["dimension"]))
    answer = state.checker.check_embedding(vector, face_size=size, sharpness=sharpness)
    del vector
    if answer["error"]:
        error = answer["error"]
        return error_response(error["code"], error["message"])
    answer["index"] = index.describe()
    return jsonify(answer)
