"""The JSON API under /api/v1: check a photo, look up a Flickr account, list the datasets and the
catalog, describe itself (OpenAPI)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from indexer.check import Timer
from indexer.errors import PhotocheckError
from indexer.template import MAX_PHOTOS

from . import metrics
from .openapi import openapi_document
from .uploads import MalformedUpload, read_uploads

api = Blueprint("api", __name__, url_prefix="/api/v1")

#: HTTP status for each stable error code; anything a person sent wrong is a 4xx, never a 5xx.
STATUS = {
    "malformed_request": 400,
    "bad_flickr_query": 400,
    "unreadable_image": 400,
    "origin_not_allowed": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "image_too_large": 413,
    "upload_too_large": 413,
    "unsupported_format": 415,
    "no_face": 422,
    "face_too_small": 422,
    "face_not_found": 422,
    "not_same_person": 422,
    "no_usable_photo": 422,
    "too_many_photos": 400,
    "rate_limited": 429,
    "index_not_loaded": 503,
}


class IndexNotLoaded(PhotocheckError):
    code = "index_not_loaded"


def error_response(code: str, message: str, status: int | None = None, **extra: Any):
    response = jsonify({"error": {"code": code, "message": message}, **extra})
    response.status_code = status or STATUS.get(code, 400)
    return response


def _state():
    state = current_app.extensions["photocheck"]
    if not state.ready:
        raise IndexNotLoaded(f"{state.error} Try again in a moment.")
    return state


#: Multipart framing around each photo (boundaries, part headers): a few hundred bytes, with room to spare.
PART_OVERHEAD = 16 * 1024


def photo_limit(config: dict[str, Any]) -> int:
    """The most bytes one photo may have (PHOTOCHECK_MAX_UPLOAD_MB)."""
    return int(float(config["MAX_UPLOAD_MB"]) * 1024 * 1024)


@api.before_app_request
def several_photos_fit():
    """A check may carry up to MAX_PHOTOS photos of MAX_UPLOAD_MB each, MAX_CHECK_MB in all (never less
    than one photo's limit); a raw body is one photo. Set before the rate limit reads the body to count
    its photos."""
    if request.endpoint == "api.check" and (request.mimetype or "").lower() == "multipart/form-data":
        config = current_app.config
        one = photo_limit(config)
        together = max(one, int(float(config["MAX_CHECK_MB"]) * 1024 * 1024))
        request.max_content_length = min((one + PART_OVERHEAD) * MAX_PHOTOS, together + PART_OVERHEAD)


def face_numbers(value: str | None, photos: int) -> list[int | None]:
    """The ``face`` field: empty, one face number for every photo, or one per photo ("1,0,2")."""
    if value is None or not value.strip():
        return [None] * photos
    numbers: list[int | None] = []
    for part in value.split(","):
        part = part.strip()
        if not part.isascii() or not part.isdigit():
            raise MalformedUpload(
                f"'face' must be a face number (0, 1, ...), or one per photo separated by commas (1,0,2), "
                f"not {value!r}."
            )
        numbers.append(int(part))
    if len(numbers) == 1:
        return numbers * photos
    if len(numbers) != photos:
        raise MalformedUpload(
            f"'face' gives {len(numbers)} face numbers for {photos} photo{'s' if photos != 1 else ''}: give one for "
            "every photo, or one per photo in the order they were sent."
        )
    return numbers


def checked(state, photos: list[bytes], **options: Any) -> dict[str, Any]:
    """One check of 1 to MAX_PHOTOS photos of one person, when this process's turn comes (one at a time:
    service/worker.py), its stages timed for the metrics when they are on."""
    timer = Timer() if metrics.metrics() else None
    arrived = time.perf_counter()
    with state.checking:
        waited = time.perf_counter() - arrived
        answer = state.checker.check_photos(photos, timer=timer, **options)
    if timer is not None:
        metrics.observe_stages({"queue": waited, **timer.seconds})
    return answer


@api.post("/check")
def check():
    """1 to 5 photos of one person in, one answer out; nothing about them is kept."""
    state = _state()
    photos, face = read_uploads(max_photo_bytes=photo_limit(current_app.config))
    answer = checked(state, photos, face_numbers=face_numbers(face, len(photos)))
    del photos
    if answer["error"]:
        error = answer["error"]
        return error_response(
            error["code"],
            error["message"],
            faces_detected=answer["faces_detected"],
            faces=answer["faces"],
            photos=answer["photos"],
        )
    answer["index"] = state.checker.index.describe()
    return jsonify(answer)


@api.get("/datasets")
def datasets():
    from .ondevice import offer  # service/ondevice.py builds on this module

    state = _state()
    return jsonify({**state.datasets(), "on_device": offer(state)})


@api.get("/lookup")
def lookup():
    """Which of a Flickr account's photos (or is a photo) in each dataset; the query is neither kept nor logged."""
    return jsonify(_state().lookup(request.args.get("flickr", "")))


@api.get("/catalog")
def catalog():
    """The shipped catalog: disclosed datasets, never-disclosed collections, remedies. No index needed."""
    from indexer.catalog import load_catalog

    return jsonify(load_catalog().as_dict())


@api.get("/openapi.json")
def openapi():
    return jsonify(openapi_document(current_app.config))
