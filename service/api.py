"""The JSON API under /api/v1: check a photo, look up a Flickr account, list the datasets and the
catalog, describe itself (OpenAPI)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from indexer.check import Timer
from indexer.errors import PhotocheckError

from . import metrics
from .openapi import openapi_document
from .uploads import MalformedUpload, read_upload

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


def _face_number(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise MalformedUpload(f"'face' must be a face number (0, 1, ...), not {value!r}.") from None
    if number < 0:
        raise MalformedUpload("'face' must be 0 or more.")
    return number


def checked(state, data: bytes, **options: Any) -> dict[str, Any]:
    """One check, when this process's turn comes (one at a time: service/worker.py), its stages timed
    for the metrics when they are on."""
    timer = Timer() if metrics.metrics() else None
    arrived = time.perf_counter()
    with state.checking:
        waited = time.perf_counter() - arrived
        answer = state.checker.check(data, timer=timer, **options)
    if timer is not None:
        metrics.observe_stages({"queue": waited, **timer.seconds})
    return answer


@api.post("/check")
def check():
    """One photo in, one answer out; nothing about it is kept."""
    state = _state()
    data, face = read_upload()
    answer = checked(state, data, face_number=_face_number(face))
    del data
    if answer["error"]:
        error = answer["error"]
        return error_response(
            error["code"], error["message"], faces_detected=answer["faces_detected"], faces=answer["faces"]
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
