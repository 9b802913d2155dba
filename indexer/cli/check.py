"""photocheck check: photos against an index, a verdict and a confidence per dataset."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .common import (
    device_option,
    dlib_runtime_option,
    echo_json,
    embedder_options,
    index_option,
    json_option,
    model_root_option,
)


def _format_answer(answer: dict[str, Any]) -> str:
    lines = []
    if answer["error"]:
        head = f"{answer['image']}: {answer['error']['message']} [{answer['error']['code']}]"
        if answer["faces_detected"] > 1:
            head += f" ({answer['faces_detected']} faces found)"
        return head
    face = answer["face"]
    x, y, w, h = face["box"]
    count = answer["faces_detected"]
    lines.append(
        f"{answer['image']}: {count} face{'s' if count != 1 else ''}; face {face['number']} at x={x} y={y} {w}x{h}"
        + (" (pick another with --face N)" if count > 1 else "")
    )
    if face.get("quality") == "low":
        lines.append("  the face is small or blurred: a 'no match' is less certain; a sharper, closer photo says more")
    if not answer["results"]:
        lines.append("  the index holds no datasets")
    width = max((len(r["dataset"]) for r in answer["results"]), default=0)
    for r in answer["results"]:
        verdict = r["verdict"].replace("_", " ")
        lines.append(f"  {r['dataset']:<{width}}  {verdict:<9} {r['confidence']:.2f}  {r['title']}")
    return "\n".join(lines)


@click.command()
@index_option
@click.option("--face", "face_number", type=click.IntRange(0), help="Which face to check (0 = the largest).")
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
    face_number: int | None,
    device: str,
    dlib_runtime: str,
    model_root: str | None,
    max_pixels: int,
    as_json: bool,
    images: tuple[Path, ...],
) -> None:
    """Check photos against the index: per dataset, a verdict and a confidence.

    Faces are numbered from 0 by decreasing size; the largest is checked unless --face says
    otherwise. A bad image gets its error in its own answer; the others still run. Exit status
    1 when any image could not be checked.

    \b
    Examples:
      photocheck check --index ./index selfie.jpg
      photocheck check --index ./index --json group.jpg --face 1
    """
    from ..check import Checker, LoadedIndex, embedder_for_index

    loaded = LoadedIndex(index_dir)
    embedder = embedder_for_index(loaded, **embedder_options(device, model_root, runtime=dlib_runtime))
    checker = Checker(loaded, embedder, max_pixels=max_pixels)
    answers = []
    for path in images:
        try:
            data = path.read_bytes()
        except OSError as exc:
            answer = {"faces_detected": 0, "faces": [], "face": None, "results": [], "error": None}
            answer["error"] = {"code": "unreadable_file", "message": f"{path} cannot be read: {exc.strerror or exc}."}
        else:
            answer = checker.check(data, face_number=face_number)
        answer = {"image": str(path), **answer}
        answers.append(answer)
        if not as_json:
            click.echo(_format_answer(answer))
    if as_json:
        echo_json(answers)
    if any(a["error"] for a in answers):
        sys.exit(1)
