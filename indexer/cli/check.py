"""photocheck check: photos against an index, a verdict and a confidence per dataset."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ..errors import PhotocheckError
from .common import (
    device_option,
    dlib_runtime_option,
    echo_json,
    embedder_options,
    index_option,
    json_option,
    model_root_option,
)

LOW_QUALITY = "the face is small or blurred: a 'no match' is less certain; a sharper, closer photo says more"


class FaceNumbers(click.ParamType):
    """``--face``: one face number for every photo (``1``), or one per photo in order (``1,0,2``)."""

    name = "N[,N...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[int]:
        if isinstance(value, list):
            return value
        numbers = []
        for part in str(value).split(","):
            part = part.strip()
            if not part.isdigit():
                self.fail(
                    f"{value!r} is not a face number (0, 1, ...) or one per photo, separated by commas (1,0,2).",
                    param,
                    ctx,
                )
            numbers.append(int(part))
        return numbers


def face_per_photo(numbers: list[int] | None, photos: int) -> list[int | None]:
    """The face to check in each of ``photos`` photos (None: the largest)."""
    if numbers is None:
        return [None] * photos
    if len(numbers) == 1:
        return numbers * photos
    if len(numbers) != photos:
        raise click.UsageError(
            f"--face {','.join(map(str, numbers))} gives {len(numbers)} face numbers for {photos} "
            f"photo{'s' if photos != 1 else ''}: give one "
            "number for every photo, or one per photo in their order (e.g. --face 1,0,2)."
        )
    return list(numbers)


def _face_line(name: str, record: dict[str, Any], *, several: bool = False) -> str:
    """``name: 2 faces; face 1 at x=.. y=.. WxH``, or the photo's error."""
    if record["error"]:
        head = f"{name}: {record['error']['message']} [{record['error']['code']}]"
        if record["faces_detected"] > 1:
            head += f" ({record['faces_detected']} faces found)"
        return head + ("; not used" if several else "")
    face = record["face"]
    x, y, w, h = face["box"]
    count = record["faces_detected"]
    return f"{name}: {count} face{'s' if count != 1 else ''}; face {face['number']} at x={x} y={y} {w}x{h}" + (
        " (pick another with --face N)" if count > 1 else ""
    )


def _result_lines(results: list[dict[str, Any]]) -> list[str]:
    if not results:
        return ["  the index holds no datasets"]
    width = max(len(r["dataset"]) for r in results)
    lines = []
    for r in results:
        verdict = r["verdict"].replace("_", " ")
        lines.append(f"  {r['dataset']:<{width}}  {verdict:<9} {r['confidence']:.2f}  {r['title']}")
    return lines


def _format_answer(answer: dict[str, Any]) -> str:
    line = _face_line(answer["image"], answer)
    if answer["error"]:
        return line
    lines = [line]
    if answer["face"].get("quality") == "low":
        lines.append(f"  {LOW_QUALITY}")
    return "\n".join(lines + _result_lines(answer["results"]))


def _format_same_person(answer: dict[str, Any]) -> str:
    photos = answer["photos"]
    lines = [_face_line(p["image"], p, several=len(photos) > 1) for p in photos]
    error = answer["error"]
    if error:
        # One photo's error is on its own line already; so is each photo's when none could be used.
        if error["code"] == "no_usable_photo":
            lines.append(f"None of the photos could be used. [{error['code']}]")
        elif len(photos) > 1:
            lines.append(f"{error['message']} [{error['code']}]")
        return "\n".join(lines)
    used = sum(1 for p in photos if not p["error"])
    if used == len(photos) > 1:
        lines.append(f"{used} photos of one person, checked together:")
    elif len(photos) > 1:
        lines.append(f"{used} of {len(photos)} photos used, checked together:")
    if answer["quality"] == "low":
        lines.append("  the faces are small or blurred: a 'no match' is less certain; sharper, closer photos say more")
    return "\n".join(lines + _result_lines(answer["results"]))


@click.command()
@index_option
@click.option(
    "--face",
    "face_numbers",
    type=FaceNumbers(),
    help="Which face to check, numbered from 0 (the largest): one number for every photo, or one per photo in "
    "their order, separated by commas (--face 1,0,2).",
)
@click.option(
    "--same-person",
    is_flag=True,
    help="The photos (1 to 5) are all of one person: check them together, for one surer answer.",
)
@device_option
@dlib_runtime_option
@model_root_option
@click.option(
    "--max-pixels", type=click.IntRange(1), default=50_000_000, show_default=True, help="Refuse larger images."
)
@json_option
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def check(
    index_dir: Path,
    face_numbers: list[int] | None,
    same_person: bool,
    device: str,
    dlib_runtime: str,
    model_root: str | None,
    max_pixels: int,
    as_json: bool,
    images: tuple[Path, ...],
) -> None:
    """Check photos against the index: per dataset, a verdict and a confidence.

    Faces are numbered from 0 by decreasing size; the largest is checked unless --face says
    otherwise, for every photo (--face 1) or per photo, in their order (--face 1,0,2). A bad image
    gets its error in its own answer; the others still run. Exit status 1 when any image could
    not be checked.

    With --same-person, the photos (1 to 5) are of one person, you: they are checked together and
    get one answer, surer than any one photo gives. A photo that cannot be used (no face, not an
    image) is left out and says why; photos that do not look like one person are refused
    (not_same_person) rather than mixed. With --json, one object: the answer, and in "photos"
    each photo's faces, the face used and its quality, or its error.

    \b
    Examples:
      photocheck check --index ./index selfie.jpg
      photocheck check --index ./index --json group.jpg --face 1
      photocheck check --index ./index --same-person selfie.jpg holiday.jpg group.jpg --face 0,0,2
    """
    from ..check import Checker, LoadedIndex, embedder_for_index
    from ..template import MAX_PHOTOS

    faces = face_per_photo(face_numbers, len(images))
    if same_person and len(images) > MAX_PHOTOS:
        raise click.UsageError(f"--same-person checks 1 to {MAX_PHOTOS} photos together, not {len(images)}.")
    loaded = LoadedIndex(index_dir)
    embedder = embedder_for_index(loaded, **embedder_options(device, model_root, runtime=dlib_runtime))
    checker = Checker(loaded, embedder, max_pixels=max_pixels)
    if same_person:
        _check_together(checker, images, faces, as_json)
        return
    answers = []
    for path, face_number in zip(images, faces, strict=True):
        data = _read(path)
        if isinstance(data, bytes):
            answer = checker.check(data, face_number=face_number)
        else:
            answer = {"faces_detected": 0, "faces": [], "face": None, "results": [], "error": data.as_dict()}
        answer = {"image": str(path), **answer}
        answers.append(answer)
        if not as_json:
            click.echo(_format_answer(answer))
    if as_json:
        echo_json(answers)
    if any(a["error"] for a in answers):
        sys.exit(1)


def _read(path: Path) -> bytes | PhotocheckError:
    from ..errors import ImageError

    try:
        return path.read_bytes()
    except OSError as exc:
        return ImageError(f"{path} cannot be read: {exc.strerror or exc}.", code="unreadable_file")


def _check_together(checker: Any, images: tuple[Path, ...], faces: list[int | None], as_json: bool) -> None:
    answer = checker.check_photos([_read(p) for p in images], face_numbers=faces, labels=[str(p) for p in images])
    answer["photos"] = [{"image": str(path), **record} for path, record in zip(images, answer["photos"], strict=True)]
    if as_json:
        echo_json(answer)
    else:
        click.echo(_format_same_person(answer))
    if answer["error"]:
        sys.exit(1)
