"""What every command shares: the error-to-message group, logging, JSON output and the common options."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import click

from ..embedders.dlib_resnet import DEFAULT_RUNTIME, RUNTIMES
from ..errors import PhotocheckError
from ..sources import FORMATS

log = logging.getLogger("photocheck")

DATE_PATTERN = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


class PhotocheckGroup(click.Group):
    """Turns library errors into one actionable line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PhotocheckError as exc:
            raise click.ClickException(f"{exc.message} [{exc.code}]") from exc


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("photocheck")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def quiet() -> bool:
    """Whether `photocheck --quiet` asked for warnings and errors only."""
    context = click.get_current_context(silent=True)
    return bool(context and context.find_root().params.get("quiet"))


def err(message: str) -> None:
    """A message for the person at the terminal, on stderr (none under --quiet)."""
    if not quiet():
        click.echo(message, err=True)


def counted(number: int, noun: str) -> str:
    """'1 face', '2 faces'."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


# -- shared options --------------------------------------------------------------------------

index_option = click.option(
    "--index",
    "index_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PHOTOCHECK_INDEX",
    help="Index directory (or $PHOTOCHECK_INDEX).",
)
device_option = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    envvar="PHOTOCHECK_DEVICE",
    help="Where the onnxruntime models run (insightface's, dlib's ResNet): CUDA when onnxruntime-gpu and a GPU "
    "are there (auto), or the CPU.",
)
dlib_runtime_option = click.option(
    "--dlib-runtime",
    type=click.Choice(RUNTIMES),
    default=DEFAULT_RUNTIME,
    show_default=True,
    envvar="PHOTOCHECK_DLIB_RUNTIME",
    help="What runs the dlib embedder's ResNet: onnxruntime (the same descriptors, ~20x faster, GPU-capable) "
    "or dlib's own code. The model is the same either way: indexes built with one work with the other.",
)
model_root_option = click.option(
    "--model-root",
    type=click.Path(file_okay=False),
    envvar="PHOTOCHECK_MODEL_ROOT",
    help="Folder holding insightface model packs (default: $PHOTOCHECK_MODEL_ROOT, else ~/.insightface/models).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON only, on stdout.")


source_format_option = click.option(
    "--format",
    "source_format",
    type=click.Choice(list(FORMATS)),
    default="auto",
    show_default=True,
    help="How SOURCE is laid out: generic (folder, manifest, webdataset) or a set's own (ffhq, celeba, megaface).",
)
path_column_option = click.option(
    "--path-column", help="Manifest column holding image paths (default: path, file, filename, image...)."
)


def embedder_option(help_text: str):
    return click.option(
        "--embedder",
        type=click.Choice(["auto", "dlib", "insightface"]),
        default="auto",
        show_default=True,
        help=help_text,
    )


def workers_option(help_text: str):
    return click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help=help_text)


def embedder_options(device: str, model_root: str | None, **extra: Any) -> dict[str, Any]:
    return {"device": device, "model_root": model_root, **{k: v for k, v in extra.items() if v is not None}}
