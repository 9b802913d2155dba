"""Uploads that never touch the disk.

Werkzeug spools a multipart file larger than 500 KB into a temporary file; ``InMemoryRequest``
keeps every part in memory instead (the upload size is capped by MAX_CONTENT_LENGTH). An upload
over the cap is read to its end and discarded before the 413 answer, so that a client still
sending receives the answer rather than a reset connection.
"""

from __future__ import annotations

import io
from typing import IO

from flask import Request, request
from werkzeug.exceptions import BadRequest

from indexer.errors import PhotocheckError

#: Past this, an oversized upload is not drained any further: the connection is closed instead.
DRAIN_LIMIT = 256 * 1024 * 1024


class InMemoryRequest(Request):
    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()


def drain_body() -> None:
    """Read what is left of the request body and throw it away, in small pieces."""
    stream = request.environ.get("wsgi.input")
    if stream is None:
        return
    remaining = DRAIN_LIMIT
    try:
        while remaining > 0:
            chunk = stream.read(min(65536, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
    except (OSError, ValueError, ReceiveTimeout):  # past the deadline the drain stops; the connection closes
        pass


class ReceiveTimeout(Exception):
    """The request's body did not arrive within its deadline (raised by the socket, service/worker.py)."""


class MalformedUpload(PhotocheckError):
    code = "malformed_request"


def read_upload(field: str = "image") -> tuple[bytes, str | None]:
    """The uploaded image's bytes (multipart field ``field``, or a raw ``image/*`` body) and the
    ``face`` choice, if any. The declared type is never trusted: the bytes are sniffed later."""
    content_type = (request.mimetype or "").lower()
    if content_type == "multipart/form-data":
        try:
            upload = request.files.get(field)
            face = request.form.get("face")
        except BadRequest as exc:
            raise MalformedUpload(
                "The multipart body could not be read. Send the photo as the form field 'image'."
            ) from exc
        if upload is None:
            raise MalformedUpload(
                f"No photo was sent: put it in the multipart form field '{field}'"
                + (f" (this request has {', '.join(sorted(request.files))})." if request.files else ".")
            )
        data = upload.read()
        upload.close()
        return data, face
    if content_type.startswith("image/") or content_type == "application/octet-stream":
        return request.get_data(cache=False), request.args.get("face")
    raise MalformedUpload(
        "Send the photo as multipart/form-data in the field 'image', or as the raw request body with an "
        "image/* Content-Type."
    )
