"""Uploads that never touch the disk.

Werkzeug spools a multipart file larger than 500 KB into a temporary file; ``InMemoryRequest``
keeps every part in memory instead (the upload size is capped by MAX_CONTENT_LENGTH). An upload
over the cap is read to its end and discarded before the 413 answer, so that a client still
sending receives the answer rather than a reset connection.
"""

from __future__ import annotations

import io
from typing import IO

from flask import Request, g, request
from werkzeug.exceptions import BadRequest, HTTPException

from indexer.errors import PhotocheckError
from indexer.template import MAX_PHOTOS

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


class TooManyPhotos(MalformedUpload):
    code = "too_many_photos"


class PhotoTooLarge(PhotocheckError):
    code = "upload_too_large"


def upload_error() -> Exception | None:
    """A problem met while reading the body early (the rate limit counts its photos first, see
    ``photos_sent``), raised again where the view answers it."""
    return g.pop("upload_error", None)


def photos_sent(field: str = "image") -> int:
    """How many photos a request carries, for the rate limit (at least 1, at most ``MAX_PHOTOS``).

    Reading a multipart body's parts here parses it, in memory, before the view does; a body that
    cannot be read counts as one photo, and its error waits for the view (``upload_error``)."""
    if request.endpoint != "api.check" or (request.mimetype or "").lower() != "multipart/form-data":
        return 1
    try:
        return min(max(len(request.files.getlist(field)), 1), MAX_PHOTOS)
    except (HTTPException, ReceiveTimeout) as exc:
        g.upload_error = exc
        return 1


def read_uploads(field: str = "image", *, max_photo_bytes: int | None = None) -> tuple[list[bytes], str | None]:
    """The uploaded photos' bytes (1 to ``MAX_PHOTOS`` multipart fields ``field``, or a raw ``image/*``
    body) and the ``face`` choice, if any. The declared type is never trusted: the bytes are sniffed
    later. A photo over ``max_photo_bytes`` is refused (413) by its number."""
    content_type = (request.mimetype or "").lower()
    if content_type == "multipart/form-data":
        problem = upload_error()
        try:
            if problem is not None:
                raise problem
            uploads = request.files.getlist(field)
            face = request.form.get("face")
        except BadRequest as exc:
            raise MalformedUpload(
                f"The multipart body could not be read. Send each photo as a form field '{field}'."
            ) from exc
        if not uploads:
            raise MalformedUpload(
                f"No photo was sent: put it in the multipart form field '{field}'"
                + (f" (this request has {', '.join(sorted(request.files))})." if request.files else ".")
            )
        if len(uploads) > MAX_PHOTOS:
            for upload in uploads:
                upload.close()
            raise TooManyPhotos(
                f"{len(uploads)} photos were sent; at most {MAX_PHOTOS} of one person are checked together. Send fewer."
            )
        photos = []
        for upload in uploads:
            photos.append(upload.read())
            upload.close()
        for number, data in enumerate(photos):
            if max_photo_bytes is not None and len(data) > max_photo_bytes:
                raise PhotoTooLarge(
                    f"Photo {number + 1} is larger than {max_photo_bytes / 1024 / 1024:g} MB. Use a smaller copy of it."
                )
        return photos, face
    if content_type.startswith("image/") or content_type == "application/octet-stream":
        return [request.get_data(cache=False)], request.args.get("face")
    raise MalformedUpload(
        "Send the photo as multipart/form-data in the field 'image' (up to 5 photos of one person, each in its "
        "own field 'image'), or as the raw request body with an image/* Content-Type."
    )
