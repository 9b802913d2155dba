"""Fuzzed uploads: hypothesis strategies that mutate real image files, and hostile files made on purpose.

The seeds are a real face photo and a real group photo from ../shared/faces, encoded by the real
encoders as JPEG, PNG, WebP, GIF, TIFF and HEIC. Hypothesis picks a seed and a mutation: a
truncation, bit flips, bytes spliced in, one format's header spliced onto another's body, or a
header rewritten to declare a huge size. Beside them, files made to hurt (``hostile_uploads``): an
EXIF bomb, a GIF of thousands of frames, decompression bombs just under the pixel limit and just
over it, and a photo of two hundred faces.

Used by tests/test_fuzz.py (seeded, a few hundred inputs) and bench/fuzz_uploads.py (longer).
Every input must get a 2xx, or a 4xx with an error code, in time, and no worker may die.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hypothesis import strategies as st
from PIL import Image, ImageOps

FACES = Path(__file__).resolve().parents[2] / "shared" / "faces"
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "HEIC")
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "TIFF": "image/tiff",
    "HEIC": "image/heic",
}


@dataclass(frozen=True)
class FuzzUpload:
    description: str
    body: bytes
    content_type: str


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    if fmt == "HEIC":
        import pillow_heif

        buffer = io.BytesIO()
        pillow_heif.from_pillow(image.convert("RGB")).save(buffer, quality=80)
        return buffer.getvalue()
    buffer = io.BytesIO()
    if fmt == "GIF":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE)
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _photo(path: Path, side: int) -> Image.Image:
    image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    image.thumbnail((side, side))
    return image


@lru_cache(maxsize=1)
def seeds() -> tuple[tuple[str, str, bytes], ...]:
    """(name, format, bytes): each real photo in each format, small enough to check quickly."""
    photos = {
        "obama": _photo(FACES / "people" / "obama" / "obama.jpg", 240),
        "group": _photo(FACES / "groups" / "obama_and_biden.jpg", 320),
    }
    return tuple((name, fmt, encode(image, fmt)) for name, image in photos.items() for fmt in FORMATS)


# -- header surgery ---------------------------------------------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def declare_size(fmt: str, data: bytes, width: int, height: int) -> bytes:
    """The same file with its header claiming ``width`` x ``height`` (checksums kept valid for PNG)."""
    out = bytearray(data)
    if fmt == "PNG" and data[12:16] == b"IHDR":
        body = struct.pack(">II", width, height) + data[24:29]
        out[8:33] = _png_chunk(b"IHDR", body)
    elif fmt == "JPEG":
        for marker in (b"\xff\xc0", b"\xff\xc2", b"\xff\xc1"):
            at = data.find(marker)
            if at > 0:
                out[at + 5 : at + 9] = struct.pack(">HH", min(height, 65535), min(width, 65535))
                break
    elif fmt == "GIF":
        out[6:10] = struct.pack("<HH", min(width, 65535), min(height, 65535))
    elif fmt == "WEBP":
        at = data.find(b"VP8X")
        if at > 0:
            out[at + 12 : at + 18] = (min(width, 1 << 24) - 1).to_bytes(3, "little") + (
                min(height, 1 << 24) - 1
            ).to_bytes(3, "little")
        else:
            at = data.find(b"VP8 ")
            if at > 0:
                out[at + 14 : at + 18] = struct.pack("<HH", min(width, 16383), min(height, 16383))
    elif fmt == "TIFF":
        out[-8:] = struct.pack("<II", width, height)  # scribbles over the tail: a broken IFD either way
    else:  # HEIC: the ispe box holds the size
        at = data.find(b"ispe")
        if at > 0:
            out[at + 8 : at + 16] = struct.pack(">II", width, height)
    return bytes(out)


# -- the hypothesis strategies ----------------------------------------------------------------------


@st.composite
def mutated_uploads(draw) -> FuzzUpload:
    name, fmt, data = draw(st.sampled_from(seeds()))
    kind = draw(st.sampled_from(("truncate", "flip", "insert", "splice", "declare", "overwrite")))
    content_type = draw(st.sampled_from((CONTENT_TYPES[fmt], "image/jpeg", "application/octet-stream")))
    if kind == "truncate":
        at = draw(st.integers(0, len(data) - 1))
        return FuzzUpload(f"{name}.{fmt} truncated at {at} of {len(data)}", data[:at], content_type)
    if kind == "flip":
        flips = draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 7)), min_size=1, max_size=64))
        out = bytearray(data)
        for position, bit in flips:
            out[position] ^= 1 << bit
        return FuzzUpload(f"{name}.{fmt} with {len(flips)} bits flipped", bytes(out), content_type)
    if kind == "insert":
        at = draw(st.integers(0, len(data)))
        junk = draw(st.binary(min_size=1, max_size=2048))
        out = data[:at] + junk + data[at:]
        return FuzzUpload(f"{name}.{fmt} with {len(junk)} bytes inserted at {at}", out, content_type)
    if kind == "overwrite":
        at = draw(st.integers(0, min(len(data) - 1, 4096)))
        junk = draw(st.binary(min_size=1, max_size=256))
        out = data[:at] + junk + data[at + len(junk) :]
        return FuzzUpload(f"{name}.{fmt} overwritten with {len(junk)} bytes at {at}", out, content_type)
    if kind == "splice":
        other_name, other_fmt, other = draw(st.sampled_from(seeds()))
        head = draw(st.integers(8, min(len(data), 2048)))
        tail = draw(st.integers(0, len(other) - 1))
        return FuzzUpload(
            f"{name}.{fmt} header ({head} bytes) on {other_name}.{other_fmt} body from {tail}",
            data[:head] + other[tail:],
            content_type,
        )
    huge = st.sampled_from((0, 1, 65535, 1 << 16, 1 << 24, (1 << 31) - 1, (1 << 32) - 1))
    side = st.one_of(huge, st.integers(0, 1 << 20))
    width, height = draw(side), draw(side)
    out = declare_size(fmt, data, width, height)
    return FuzzUpload(f"{name}.{fmt} declaring {width} x {height}", out, content_type)


# -- files made to hurt -----------------------------------------------------------------------------


def exif_bomb(photo: Image.Image) -> bytes:
    """A JPEG whose EXIF holds one IFD with 4000 entries pointing at 60 KB each, and 30 more APP1s."""
    base = encode(photo, "JPEG", quality=85)
    entries = 4000
    ifd = struct.pack("<H", entries)
    for tag in range(entries):
        ifd += struct.pack("<HHII", 0x9000 + tag % 4096, 7, 60_000, 8)  # UNDEFINED, 60 KB, at the IFD itself
    ifd += struct.pack("<I", 8)  # the next IFD is this one again: a loop
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd
    segment = b"Exif\x00\x00" + tiff[: 65533 - 6]
    app1 = b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment
    return base[:2] + app1 * 31 + base[2:]


def many_frame_gif(photo: Image.Image, frames: int = 3000) -> bytes:
    first = photo.convert("P", palette=Image.Palette.ADAPTIVE)
    others = [Image.new("P", first.size, n % 256) for n in range(frames - 1)]
    buffer = io.BytesIO()
    first.save(buffer, "GIF", save_all=True, append_images=others, duration=10, loop=0)
    return buffer.getvalue()


def flat_png(width: int, height: int) -> bytes:
    """A real, valid PNG of width x height pixels of one grey: megapixels in a few kilobytes."""
    row = b"\x00" + b"\x80" * width  # filter byte, then one grey byte per pixel
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


#: Where the face is in obama.jpg, as fractions of its size (found with the dlib detector), with a margin.
OBAMA_FACE = (0.34, 0.05, 0.76, 0.40)


def crowd(photo: Image.Image, columns: int = 16, rows: int = 13, cell: int = 64) -> bytes:
    """One photo of columns x rows faces (208 by default), each big enough for the detector to find."""
    width, height = photo.size
    left, top, right, bottom = OBAMA_FACE
    face = photo.crop((int(left * width), int(top * height), int(right * width), int(bottom * height)))
    face = face.resize((cell, cell))
    sheet = Image.new("RGB", (columns * cell, rows * cell), (200, 200, 200))
    for row in range(rows):
        for column in range(columns):
            sheet.paste(face, (column * cell, row * cell))
    return encode(sheet, "JPEG", quality=85)


def hostile_uploads(max_pixels: int) -> list[FuzzUpload]:
    photo = _photo(FACES / "people" / "obama" / "obama.jpg", 360)
    under = int((max_pixels * 0.98) ** 0.5)
    over = int((max_pixels * 1.02) ** 0.5) + 1
    return [
        FuzzUpload("EXIF bomb: 31 APP1 segments, a looping IFD of 4000 entries", exif_bomb(photo), "image/jpeg"),
        FuzzUpload("GIF of 3000 frames", many_frame_gif(photo), "image/gif"),
        FuzzUpload(f"PNG of {under} x {under} (just under the pixel limit)", flat_png(under, under), "image/png"),
        FuzzUpload(f"PNG of {over} x {over} (just over the pixel limit)", flat_png(over, over), "image/png"),
        FuzzUpload("JPEG of 208 faces", crowd(photo), "image/jpeg"),
    ]
