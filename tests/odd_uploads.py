"""Bad and odd uploads, and what the service must answer to each.

Used by tests/test_service.py against a real server, and runnable on its own against any running
photocheck service (the check outside the suite)::

    python tests/odd_uploads.py --url http://127.0.0.1:8000 --photo ../shared/faces/people/obama/obama.jpg
"""

from __future__ import annotations

import argparse
import io
import os
import struct
import sys
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

DEFAULT_PHOTO = Path(__file__).resolve().parents[2] / "shared" / "faces" / "people" / "obama" / "obama.jpg"


@dataclass
class Upload:
    name: str
    body: bytes
    content_type: str = "image/jpeg"
    multipart: bool = True
    fields: dict[str, str] | None = None
    field: str = "image"
    #: The statuses that are right for this upload (200 means: a face must be found).
    expect: tuple[int, ...] = (200,)
    code: str | None = None


def _encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def cases(photo: Path = DEFAULT_PHOTO) -> Iterator[Upload]:
    """Twenty-five kinds of bad and odd uploads and more, with the answers that are right for them."""
    import pillow_heif

    original = photo.read_bytes()
    face = ImageOps.exif_transpose(Image.open(io.BytesIO(original))).convert("RGB")
    face.thumbnail((800, 800))
    jpeg = _encode(face, "JPEG", quality=92)

    yield Upload("empty file", b"", expect=(400,), code="unreadable_image")
    yield Upload("truncated JPEG", jpeg[: len(jpeg) // 3], expect=(400,), code="unreadable_image")
    yield Upload(
        "PNG decompression bomb (60000 x 60000 claimed)",
        png_claiming(60_000, 60_000),
        "image/png",
        expect=(413,),
        code="image_too_large",
    )
    big = Image.new("L", (12_000, 12_000), 128)
    yield Upload(
        "JPEG of 144 megapixels in a small file",
        _encode(big, "JPEG", quality=50),
        expect=(413,),
        code="image_too_large",
    )
    yield Upload("PNG sent as image/jpeg (wrong declared type)", _encode(face, "PNG"), "image/jpeg")
    yield Upload("JPEG sent as application/octet-stream, raw body", jpeg, "application/octet-stream", multipart=False)
    yield Upload("raw JPEG body", jpeg, "image/jpeg", multipart=False)
    yield Upload(
        "SVG drawing",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><circle r="4"/></svg>',
        "image/svg+xml",
        expect=(415,),
        code="unsupported_format",
    )
    yield Upload(
        "PDF document",
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF",
        "application/pdf",
        expect=(415,),
        code="unsupported_format",
    )
    yield Upload("40 MB upload", os.urandom(40 * 1024 * 1024), expect=(413,), code="upload_too_large")
    rotated = face.rotate(90, expand=True)  # stored sideways, EXIF says how to turn it upright
    exif = rotated.getexif()
    exif[0x0112] = 6
    yield Upload("EXIF-rotated JPEG", _encode(rotated, "JPEG", quality=92, exif=exif.tobytes()))
    yield Upload("CMYK JPEG", _encode(face.convert("CMYK"), "JPEG", quality=92))
    yield Upload("progressive JPEG", _encode(face, "JPEG", quality=90, progressive=True))
    yield Upload("grayscale JPEG", _encode(face.convert("L"), "JPEG", quality=92))
    sixteen = Image.fromarray(__import__("numpy").asarray(face.convert("L"), dtype="uint16") * 257)
    yield Upload("16-bit grayscale PNG", _encode(sixteen, "PNG"), "image/png")
    yield Upload("palette PNG", _encode(face.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"), "image/png")
    rgba = face.convert("RGBA")
    yield Upload("PNG with alpha", _encode(rgba, "PNG"), "image/png")
    frames = [face.convert("P", palette=Image.Palette.ADAPTIVE), Image.new("P", face.size)]
    yield Upload(
        "animated GIF (face in the first frame)",
        _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0),
        "image/gif",
    )
    heif = io.BytesIO()
    pillow_heif.from_pillow(face).save(heif, quality=90)
    yield Upload("HEIC", heif.getvalue(), "image/heic")
    yield Upload("WebP", _encode(face, "WEBP", quality=90), "image/webp")
    yield Upload("BMP", _encode(face, "BMP"), "image/bmp")
    yield Upload("TIFF", _encode(face, "TIFF"), "image/tiff")
    yield Upload("1 x 1 PNG", _encode(Image.new("RGB", (1, 1)), "PNG"), "image/png", expect=(422,), code="no_face")
    yield Upload(
        "photo of a wall (no face)",
        _encode(Image.new("RGB", (640, 480), (180, 170, 160)), "JPEG"),
        expect=(422,),
        code="no_face",
    )
    tiny = face.copy()
    tiny.thumbnail((90, 90))
    yield Upload("face too small to judge", _encode(tiny, "PNG"), "image/png", expect=(422,))
    yield Upload("random bytes", os.urandom(20_000), "image/jpeg", expect=(415,), code="unsupported_format")
    yield Upload(
        "HTML page",
        b"<!DOCTYPE html><html><body>hi</body></html>",
        "text/html",
        expect=(415,),
        code="unsupported_format",
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("photo.jpg", jpeg)
    yield Upload(
        "ZIP archive holding a photo", archive.getvalue(), "application/zip", expect=(415,), code="unsupported_format"
    )
    yield Upload("PNG header claiming 0 x 0", png_claiming(0, 0), "image/png", expect=(400,), code="unreadable_image")
    broken_exif = jpeg[:2] + b"\xff\xe1\x00\x10Exif\x00\x00MM\x00*\xff\xff\xff\xff" + jpeg[2:]
    yield Upload("JPEG with a corrupt EXIF block", broken_exif, expect=(200, 400))
    yield Upload(
        "raw body declared text/plain", jpeg, "text/plain", multipart=False, expect=(400,), code="malformed_request"
    )
    yield Upload("multipart without the image field", jpeg, field="photo", expect=(400,), code="malformed_request")
    yield Upload(
        "face number that is not a number", jpeg, fields={"face": "first"}, expect=(400,), code="malformed_request"
    )
    yield Upload("face number past the faces found", jpeg, fields={"face": "7"}, expect=(422,), code="face_not_found")


def send(url: str, upload: Upload, session=None):
    import requests

    http = session or requests
    if upload.multipart:
        files = {upload.field: ("upload", upload.body, upload.content_type)}
        return http.post(f"{url}/api/v1/check", files=files, data=upload.fields or {}, timeout=120)
    return http.post(
        f"{url}/api/v1/check", data=upload.body, headers={"Content-Type": upload.content_type}, timeout=120
    )


def judge(upload: Upload, response) -> str | None:
    """What is wrong with the answer, or None when it is right."""
    if not response.headers.get("Content-Type", "").startswith("application/json"):
        return f"answered {response.status_code} with {response.headers.get('Content-Type')}, not JSON"
    body = response.json()
    if response.status_code not in upload.expect:
        return f"answered {response.status_code} {body}, expected {upload.expect}"
    if response.status_code == 200:
        if body.get("error") is not None or body.get("faces_detected", 0) < 1:
            return f"answered 200 without a face: {body}"
        return None
    error = body.get("error") or {}
    if not error.get("code") or not error.get("message"):
        return f"answered {response.status_code} without an error code and message: {body}"
    if upload.code and error["code"] != upload.code:
        return f"answered code {error['code']}, expected {upload.code}"
    return None


def main() -> int:
    import requests

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO, help="a photo holding one face")
    args = parser.parse_args()
    failures = 0
    for upload in cases(args.photo):
        try:
            response = send(args.url, upload)
            problem = judge(upload, response)
            status = response.status_code
        except requests.RequestException as exc:
            problem, status = f"no answer: {exc}", "---"
        healthy = requests.get(f"{args.url}/readyz", timeout=30).status_code == 200
        failures += bool(problem) or not healthy
        print(
            f"{'ok  ' if not problem and healthy else 'FAIL'} {status} {upload.name}"
            + (f": {problem}" if problem else "")
            + ("" if healthy else " (service not ready afterwards)")
        )
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
