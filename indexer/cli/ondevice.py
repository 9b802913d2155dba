"""photocheck ondevice: the files the browser's on-device check runs."""

from __future__ import annotations

from pathlib import Path

import click

from .common import echo_json, err, json_option


@click.group()
def ondevice() -> None:
    """The on-device check's runtime and models, which the service serves to browsers."""


@ondevice.command("build")
@click.option(
    "--node-modules",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where `npm ci` installed onnxruntime-web and @vladmandic/face-api (default: the checkout's node_modules).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder to write; the service reads PHOTOCHECK_ONDEVICE_DIR (default: the checkout's build/ondevice).",
)
@json_option
def ondevice_build(node_modules: Path | None, out: Path | None, as_json: bool) -> None:
    """Write the on-device folder: onnxruntime-web's files, face-api's detector and landmark net converted to
    ONNX, and dlib's ResNet as an ONNX graph from the same weights the server uses. Nothing is downloaded.

    \b
    Example:
      npm ci && photocheck ondevice build
    """
    from ..ondevice.assets import AssetsError, build_assets, default_assets_dir, default_node_modules

    node_modules = node_modules or default_node_modules()
    out = out or default_assets_dir()
    if node_modules is None or out is None:
        raise click.UsageError("Outside a source checkout, give --node-modules and --out.")
    try:
        manifest = build_assets(node_modules, out, say=err)
    except AssetsError as exc:
        raise click.ClickException(f"{exc.message} [{exc.code}]") from exc
    if as_json:
        echo_json({"folder": str(out), **manifest})
        return
    for name, entry in manifest["files"].items():
        packed = f" ({entry['gzip_bytes'] / 1e6:.1f} MB gzipped)" if "gzip_bytes" in entry else ""
        click.echo(f"  {name:<36} {entry['bytes'] / 1e6:6.1f} MB{packed}")
    click.echo(f"{out}: a first on-device check downloads {manifest['download_bytes'] / 1e6:.1f} MB")
