"""Decoding uploads and dataset images from bytes: formats, orientation, limits, clear errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from odd_uploads import png_claiming
from PIL import Image

from indexer.errors import ImageTooLarge, UnreadableImage, UnsupportedFormat
from indexer.images import fit_within, load_image, read_image_info, sniff_format

RED, BLUE = (220, 20, 20), (20, 20, 220)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def halves(width: int = 40, height: int = 20) -> Image.Image:
    """Left half red, right half blue: shows where the pixels went."""
    image = Image.new("RGB", (width, height), RED)
    image.paste(BLUE, (width // 2, 0, width, height))
    return image


def close(pixel, colour, tolerance=40) -> bool:
    return all(abs(int(a) - int(b)) <= tolerance for a, b in zip(pixel, colour, strict=True))


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("JPEG", {"quality": 95}),
        ("JPEG", {"quality": 95, "progressive": True}),
        ("PNG", {}),
        ("WEBP", {"quality": 95}),
        ("BMP", {}),
        ("TIFF", {}),
        ("GIF", {}),
    ],
)
def test_common_formats_decode_to_rgb(fmt, params):
    pixels = load_image(encode(halves(), fmt, **params))
    assert pixels.shape == (20, 40, 3) and pixels.dtype == np.uint8
    assert close(pixels[10, 5], RED) and close(pixels[10, 35], BLUE)


def test_heic_decodes():
    import pillow_heif

    buffer = io.BytesIO()
    pillow_heif.from_pillow(halves(64, 32)).save(buffer, quality=95)
    data = buffer.getvalue()
    assert sniff_format(data) == "HEIF"
    pixels = load_image(data)
    assert pixels.shape == (32, 64, 3)
    assert close(pixels[16, 8], RED, 60) and close(pixels[16, 56], BLUE, 60)


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    pixels = load_image(encode(cmyk, "JPEG", quality=95))
    assert pixels.shape == (16, 16, 3)
    assert close(pixels[8, 8], (255, 0, 0), 60)


def test_sixteen_bit_grey_png_keeps_its_brightness():
    values = np.full((8, 8), 65535, dtype=np.uint16)
    values[:, :4] = 32768
    pixels = load_image(encode(Image.fromarray(values), "PNG"))
    assert pixels.dtype == np.uint8
    assert pixels[0, 7].tolist() == [255, 255, 255]
    assert abs(int(pixels[0, 0, 0]) - 127) <= 1


def test_palette_and_alpha_composite_on_white():
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    rgba.paste((200, 0, 0, 255), (0, 0, 5, 10))
    pixels = load_image(encode(rgba, "PNG"))
    assert pixels[5, 8].tolist() == [255, 255, 255]
    assert close(pixels[5, 1], (200, 0, 0), 2)
    palette = halves().convert("P")
    palette.info["transparency"] = 0
    assert load_image(encode(palette, "PNG")).shape == (20, 40, 3)


def test_animated_gif_uses_the_first_frame():
    frames = [Image.new("RGB", (12, 12), RED), Image.new("RGB", (12, 12), BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert close(load_image(data)[6, 6], RED)


def test_exif_orientation_is_applied():
    image = halves(40, 20)
    exif = image.getexif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    pixels = load_image(encode(image, "JPEG", quality=95, exif=exif.tobytes()))
    assert pixels.shape == (40, 20, 3)  # width and height swapped
    assert close(pixels[5, 10], RED) and close(pixels[35, 10], BLUE)


def test_format_comes_from_the_bytes_not_a_name():
    png = encode(halves(), "PNG")
    assert sniff_format(png) == "PNG"
    assert read_image_info(png).format == "PNG"


def test_decompression_bomb_is_refused_before_decoding():
    bomb = png_claiming(60_000, 60_000)  # 3.6 gigapixels in a few dozen bytes
    assert len(bomb) < 200
    with pytest.raises(ImageTooLarge) as caught:
        load_image(bomb)
    assert caught.value.code == "image_too_large"
    assert "megapixels" in caught.value.message


def test_pixel_limit_is_configurable():
    data = encode(halves(400, 300), "PNG")
    assert load_image(data, max_pixels=120_000).shape == (300, 400, 3)
    with pytest.raises(ImageTooLarge):
        load_image(data, max_pixels=119_999)


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"", UnreadableImage, "empty"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", UnsupportedFormat, "PDF"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', UnsupportedFormat, "SVG"),
        (b"just some text, not a picture", UnsupportedFormat, "JPEG, PNG"),
    ],
)
def test_non_images_get_clear_errors(data, error, words):
    with pytest.raises(error) as caught:
        load_image(data)
    assert words in caught.value.message


def test_truncated_jpeg_is_unreadable():
    data = encode(halves(200, 200), "JPEG", quality=90)
    with pytest.raises(UnreadableImage) as caught:
        load_image(data[: len(data) // 3])
    assert caught.value.code == "unreadable_image"


def test_fit_within_scales_and_reports_the_scale():
    pixels = np.zeros((1000, 2000, 3), dtype=np.uint8)
    small, scale = fit_within(pixels, 500)
    assert small.shape == (250, 500, 3) and scale == pytest.approx(0.25)
    same, one = fit_within(pixels, 4000)
    assert same is pixels and one == 1.0
