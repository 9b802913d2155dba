"""Bytes -> RGB pixels: format sniffing, decompression-bomb limits, EXIF orientation.

The format is read from the bytes themselves, never from a file name or a declared type.
Decoding happens in memory: nothing here touches the disk.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageTooLarge, UnreadableImage, UnsupportedFormat

#: Pillow format names that photocheck reads (MPO is the multi-picture JPEG some cameras write).
ACCEPTED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF")
ACCEPTED_HUMAN = "JPEG, PNG, WebP, HEIC/HEIF, AVIF, GIF, BMP or TIFF"

#: Default limit on decoded pixels (width x height), checked before any pixel is decoded.
DEFAULT_MAX_PIXELS = 50_000_000

_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis")

# Things people upload that are not photos, to name them in the error.
_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"<svg", "an SVG drawing"),
    (b"<?xml", "an XML or SVG document"),
    (b"<!DOCTYPE", "an HTML page"),
    (b"<html", "an HTML page"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"8BPS", "a Photoshop document"),
    (b"\x00\x00\x01\x00", "a Windows icon"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (b"\xff\x4f\xff\x51", "a JPEG 2000 image"),
    (b"\x1aE\xdf\xa3", "a video (WebM/Matroska)"),
    (b"OggS", "an Ogg audio or video file"),
    (b"ID3", "an MP3 audio file"),
)


@dataclass(frozen=True)
class ImageInfo:
    """What the bytes are, read from their header."""

    format: str
    width: int
    height: int


def sniff_format(data: bytes) -> str | None:
    """Name the accepted format these bytes start with, or None."""
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM":
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[4:8] == b"ftyp" and any(brand in head[8:32] for brand in _HEIF_BRANDS):
        return "AVIF" if b"avi" in head[8:12] else "HEIF"
    return None


def _describe_other(data: bytes) -> str | None:
    head = data[:64].lstrip()
    for signature, description in _OTHER_SIGNATURES:
        if head.startswith(signature) or data[:16].startswith(signature):
            return description
    if head[4:8] == b"ftyp":
        return "a video or other ISO media file"
    return None


def _register_heif() -> None:
    # pillow-heif adds HEIC/HEIF (and AVIF where Pillow lacks it); registering twice is harmless.
    import pillow_heif

    pillow_heif.register_heif_opener()


def _open(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise UnreadableImage("The file is empty. Choose a photo and upload it again.")
    sniffed = sniff_format(data)
    if sniffed is None:
        what = _describe_other(data)
        prefix = f"This is {what}, not a photo." if what else "This is not an image in a format photocheck reads."
        raise UnsupportedFormat(f"{prefix} Use a {ACCEPTED_HUMAN} photo.")
    if sniffed in ("HEIF", "AVIF"):
        _register_heif()
    Image.init()
    formats = [f for f in ACCEPTED_FORMATS if f in Image.OPEN]  # MPO is part of JPEG in newer Pillow
    try:
        with warnings.catch_warnings():
            # Pillow warns about odd files (a bomb, broken EXIF tags...): errors say what matters, and
            # a warning per tag of a hostile file would flood the service's log.
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(
            f"The image has too many pixels to decode safely (over {max_pixels:,}). "
            "Resize it to a few megapixels and try again."
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnreadableImage(
            f"The file starts like a {sniffed} image but could not be read; it may be truncated or corrupt. "
            "Export the photo again and retry."
        ) from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise UnreadableImage(f"The {sniffed} image says it is {width} x {height} pixels; it cannot be used.")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"The image is {width:,} x {height:,} pixels ({width * height / 1e6:.0f} megapixels); "
            f"the limit is {max_pixels / 1e6:.0f} megapixels. Resize it and try again."
        )
    return image


def prepare_decoders() -> None:
    """Import every decoder now, so that the first upload of each format does no import work
    (a service that must not touch the disk while answering must not write bytecode caches either)."""
    Image.init()
    _register_heif()
    import cv2  # noqa: F401 - used by fit_within


def read_image_info(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Read the format and size from the header, without decoding pixels."""
    image = _open(data, max_pixels)
    return ImageInfo(format=image.format or "", width=image.size[0], height=image.size[1])


def _to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        pixels = np.asarray(image)
        if mode == "F":
            top = float(pixels.max()) if pixels.size else 1.0
            scaled = pixels / (top if top > 1.0 else 1.0) * 255.0
        else:
            scaled = pixels / 257.0 if mode.startswith("I;16") or pixels.max() > 255 else pixels
        gray = np.clip(scaled, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([gray, gray, gray], axis=-1))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        # Transparent areas become white: a face cut out on a transparent background stays visible.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def load_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode image bytes into an upright HxWx3 uint8 RGB array.

    Raises ``UnreadableImage``, ``UnsupportedFormat`` or ``ImageTooLarge`` with a message a person
    can act on. The first frame of an animated image is used.
    """
    image = _open(data, max_pixels)
    try:
        with warnings.catch_warnings():
            # Pillow warns about odd files (a bomb, broken EXIF tags...): errors say what matters, and
            # a warning per tag of a hostile file would flood the service's log.
            warnings.simplefilter("ignore")
            image.load()
            try:
                image = ImageOps.exif_transpose(image)
            except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the photo
                pass
            return _to_rgb(image)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnreadableImage(
            f"The {image.format or 'image'} file could not be decoded; it may be truncated or corrupt. "
            "Export the photo again and retry."
        ) from exc
    except MemoryError as exc:  # pragma: no cover - depends on the host
        raise ImageTooLarge("The image is too large to decode in memory. Resize it and try again.") from exc


def fit_within(pixels: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale so the longer side is at most ``max_side``; return the image and the scale used.

    Coordinates found on the small image map back to the original by dividing by the scale.
    """
    import cv2

    height, width = pixels.shape[:2]
    longest = max(height, width)
    if max_side <= 0 or longest <= max_side:
        return pixels, 1.0
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), scale
