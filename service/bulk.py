"""Bulk checks for organisations with an API key: ``POST /api/v1/bulk``, many photos in one request.

Each request names its key (``Authorization: Bearer pck_...``). The key is looked up by its SHA-256
in the keys database, opened read-only on every request: a revoked key is refused at once, and
answering writes nothing (no last-used time either). Each key has its own rate limit (its row's
``rate``, in flask-limiter's syntax), counted per request whatever the number of photos in it.

The photos are parts of one multipart body, each in a field named ``image`` whose filename is the
member's id; parts with the same filename are photos of one member (up to 5), checked together as
one person (``Checker.check_photos``). All of them are held in memory only (``InMemoryRequest``),
checked one member after another, and answered together, one answer per member in the order of
their first photo, each with its own verdicts or its own error. A dataset added with
``--evidence`` also names, for these keyed callers only, the matched entries' source references.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask_limiter import Limiter
from limits import parse_many
from werkzeug.exceptions import BadRequest, HTTPException

from indexer.keys import DEFAULT_RATE, KEYS_DATABASE, ApiKey, KeyStore
from indexer.template import MAX_PHOTOS

from .api import _state, checked, error_response
from .uploads import MalformedUpload, drain_body

bulk = Blueprint("bulk", __name__, url_prefix="/api/v1")

FIELD = "image"


def keys_database(config: dict[str, Any]) -> Path | None:
    if config.get("KEYS_DB"):
        return Path(config["KEYS_DB"])
    return Path(config["INDEX"]) / KEYS_DATABASE if config.get("INDEX") else None


def _unauthorized(code: str, message: str):
    drain_body()  # a client still sending its photos then reads the answer instead of a reset connection
    response = error_response(code, message, 401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="photocheck bulk"' + (
        "" if code == "missing_key" else ', error="invalid_token"'
    )
    return response


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@bulk.before_request
def authenticate():
    request.max_content_length = int(float(current_app.config["BULK_MAX_UPLOAD_MB"]) * 1024 * 1024)
    token = _bearer_token()
    if token is None:
        return _unauthorized("missing_key", "Bulk checks need an API key: send it as 'Authorization: Bearer <key>'.")
    key = lookup_key(keys_database(current_app.config), token)
    if key is None:
        return _unauthorized("bad_key", "This API key is not known here. Check it, or ask the operator for one.")
    if key.revoked:
        return _unauthorized("revoked_key", "This API key has been revoked. Ask the operator for a new one.")
    g.api_key = key
    return None


def lookup_key(path: Path | None, token: str) -> ApiKey | None:
    """The key row for ``token``, read afresh (read-only) on every request."""
    if path is None:
        return None
    with KeyStore(path, readonly=True) as store:
        return store.lookup(token)


def key_rate() -> str:
    """The calling key's own limit; a row whose rate cannot be read gets the default."""
    rate = g.api_key.rate
    try:
        parse_many(rate)
    except ValueError:
        return DEFAULT_RATE
    return rate


def key_identity() -> str:
    return f"api-key-{g.api_key.id}"


def read_members() -> list[tuple[str, list[bytes]]]:
    """(id, photos) of every member, in the order of their first ``image`` part: parts with the same
    filename are one member's photos."""
    if (request.mimetype or "").lower() != "multipart/form-data":
        raise MalformedUpload(
            f"Send the photos as multipart/form-data: one field '{FIELD}' per photo, its filename being the member's "
            "id (several photos of one member under the same id)."
        )
    try:
        parts = request.files.getlist(FIELD)
        unnamed = request.form.getlist(FIELD)
    except BadRequest as exc:
        raise MalformedUpload(f"The multipart body could not be read. Send each photo as a field '{FIELD}'.") from exc
    if unnamed:
        raise MalformedUpload(f"Each '{FIELD}' part needs a filename: it is the member's id in the answer.")
    if not parts:
        raise MalformedUpload(
            f"No photo was sent: put each in a multipart field '{FIELD}', its filename being the member's id."
        )
    limit = int(current_app.config["BULK_MAX_IMAGES"])
    if len(parts) > limit:
        for part in parts:
            part.close()
        raise TooManyImages(limit, len(parts))
    members: dict[str, list[bytes]] = {}
    for part in parts:
        members.setdefault(part.filename or "", []).append(part.read())
        part.close()
    return list(members.items())


class TooManyImages(MalformedUpload):
    code = "too_many_images"

    def __init__(self, limit: int, sent: int) -> None:
        super().__init__(f"{sent} photos were sent in one request; at most {limit} are taken. Send fewer per request.")
        self.limit = limit


@bulk.post("/bulk")
def check_many():
    """Many members' photos in, one answer per member out, in order; nothing about them is kept."""
    state = _state()
    members = read_members()
    checker = state.checker
    results = []
    for number, (member_id, photos) in enumerate(members):
        members[number] = (member_id, [])  # drop each member's photos as soon as they are answered
        # A member at a time: single checks take turns with it.
        too_many = len(photos) > MAX_PHOTOS
        answer = _too_many_photos(len(photos)) if too_many else checked(state, photos, evidence=True)
        del photos
        results.append({"id": member_id, **answer})
    return jsonify({"index": checker.index.describe(), "results": results})


def _too_many_photos(sent: int) -> dict[str, Any]:
    message = f"{sent} photos were sent for this member; at most {MAX_PHOTOS} are checked together. Send fewer."
    return {
        "faces_detected": 0,
        "faces": [],
        "face": None,
        "quality": None,
        "photos": [],
        "results": [],
        "error": {"code": "too_many_photos", "message": message},
    }


@bulk.errorhandler(TooManyImages)
def too_many_images(exc: TooManyImages):
    # A 400, as for every request outside the OpenAPI document's schema (maxItems); 413 is for bytes.
    return error_response(exc.code, exc.message, 400, max_images=exc.limit)


@bulk.errorhandler(413)
def upload_too_large(exc: HTTPException):
    drain_body()
    limit = current_app.config["BULK_MAX_UPLOAD_MB"]
    return error_response(
        "upload_too_large", f"The request is larger than {limit} MB. Send fewer or smaller photos per request.", 413
    )


@bulk.errorhandler(429)
def rate_limited(exc: HTTPException):
    drain_body()
    response = error_response(
        "rate_limited",
        f"This key's rate limit ({g.api_key.rate}) is reached; wait as long as Retry-After says, then send again.",
        429,
    )
    if getattr(exc, "response", None) is not None:  # flask-limiter's Retry-After and limit headers
        for header, value in exc.response.headers.items():
            if header.lower().startswith(("retry-after", "x-ratelimit")):
                response.headers[header] = value
    return response


def register_bulk(app: Flask, limiter: Limiter) -> None:
    """Add the bulk endpoint to ``app``, limited per key by ``limiter``."""
    app.register_blueprint(bulk)
    app.view_functions["bulk.check_many"] = limiter.limit(key_rate, key_func=key_identity)(
        app.view_functions["bulk.check_many"]
    )
