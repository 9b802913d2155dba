"""photocheck serve: gunicorn with the shipped configuration."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import (
    device_option,
    dlib_runtime_option,
    err,
    index_option,
    model_root_option,
)


@click.command()
@index_option
@click.option("--host", default="127.0.0.1", show_default=True, envvar="PHOTOCHECK_HOST", help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    envvar="PHOTOCHECK_PORT",
    help="Port to listen on.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    envvar="PHOTOCHECK_WORKERS",
    help="Worker processes; each loads the index and the model once.",
)
@device_option
@dlib_runtime_option
@model_root_option
def serve(
    index_dir: Path, host: str, port: int, workers: int, device: str, dlib_runtime: str, model_root: str | None
) -> None:
    """Serve the web page and the API with gunicorn, using the shipped configuration.

    Works from any directory. Other settings come from PHOTOCHECK_* environment variables (see
    the README). After the index changes, `kill -HUP` on the master process reloads it without
    dropping a request.

    \b
    Example:
      photocheck serve --index ./index --host 0.0.0.0 --port 8080 --workers 4
    """
    import os

    from ..store import read_manifest

    read_manifest(index_dir)  # a missing or broken index is an error here, not a 503 later
    env = {
        **os.environ,
        "PHOTOCHECK_INDEX": str(index_dir.resolve()),
        "PHOTOCHECK_BIND": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "PHOTOCHECK_WORKERS": str(workers),
        "PHOTOCHECK_DEVICE": device,
        "PHOTOCHECK_DLIB_RUNTIME": dlib_runtime,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if model_root:
        env["PHOTOCHECK_MODEL_ROOT"] = str(Path(model_root).resolve())
    err(f"serving {index_dir} on http://{host}:{port} with {workers} worker{'s' if workers > 1 else ''}")
    # This interpreter runs gunicorn (not the script's shebang): the same environment, whichever user runs it.
    args = [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn_conf", "service.wsgi:app"]
    os.execve(sys.executable, args, env)
