"""photocheck keys: API keys for bulk checks."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (
    echo_json,
    err,
    json_option,
)

keys_index_option = click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PHOTOCHECK_INDEX",
    help="Index directory whose keys.sqlite holds the keys (or $PHOTOCHECK_INDEX).",
)
keys_db_option = click.option(
    "--keys-db",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PHOTOCHECK_KEYS_DB",
    help="The keys database, where keys live apart from the index (or $PHOTOCHECK_KEYS_DB).",
)


def _open_keys(index_dir: Path | None, keys_db: Path | None, *, create: bool = False):
    from ..keys import ApiKeyError, KeyStore, keys_path
    from ..store import read_manifest

    if keys_db is None and index_dir is not None:
        read_manifest(index_dir)  # a mistyped --index is an error, not a new folder of keys
    path = keys_path(index_dir, keys_db)
    if not create and not path.exists():
        raise ApiKeyError(f"There is no keys database at {path} yet; `photocheck keys create` makes one.")
    return KeyStore(path)


@click.group()
def keys() -> None:
    """API keys for bulk checks (POST /api/v1/bulk): create, list, revoke.

    Keys live in <index>/keys.sqlite unless --keys-db says otherwise; the service reads them
    there (PHOTOCHECK_KEYS_DB). Only a hash of each key is stored.
    """


@keys.command("create")
@keys_index_option
@keys_db_option
@click.option("--name", required=True, help="Who the key is for, e.g. the organisation's name.")
@click.option(
    "--rate",
    default="120/minute",
    show_default=True,
    help="Bulk requests this key may make: N/second, N/min, N/hour or N/day (each request holds many photos).",
)
@json_option
def keys_create(index_dir: Path | None, keys_db: Path | None, name: str, rate: str, as_json: bool) -> None:
    """Create an API key and print it, alone on stdout. It is shown this once: only its hash is kept.

    \b
    Examples:
      photocheck keys create --index ./index --name "Privacy Advocates e.V."
      photocheck keys create --keys-db /etc/photocheck/keys.sqlite --name advocates --rate 30/min
    """
    with _open_keys(index_dir, keys_db, create=True) as store:
        key, secret = store.create(name, rate)
    if as_json:
        echo_json({**key.as_dict(), "key": secret})
    else:
        click.echo(secret)
    err(f"key {key.id} for {key.name} ({key.rate}) in {store.path}: store it now, it is not shown again")


@keys.command("list")
@keys_index_option
@keys_db_option
@json_option
def keys_list(index_dir: Path | None, keys_db: Path | None, as_json: bool) -> None:
    """List the keys: id, name, rate, when created or revoked, and the key's first characters.

    \b
    Example:
      photocheck keys list --index ./index
    """
    with _open_keys(index_dir, keys_db) as store:
        rows = store.list_keys()
    if as_json:
        echo_json([k.as_dict() for k in rows])
        return
    if not rows:
        click.echo("no keys yet")
    for k in rows:
        state = f"revoked {k.revoked_at}" if k.revoked else "active"
        click.echo(f"{k.id:>4}  {k.hint}...  {k.name:<24} {k.rate:<14} created {k.created_at}  {state}")


@keys.command("revoke")
@keys_index_option
@keys_db_option
@json_option
@click.argument("key_id", metavar="ID", type=click.IntRange(1))
def keys_revoke(index_dir: Path | None, keys_db: Path | None, as_json: bool, key_id: int) -> None:
    """Revoke a key by its id (see `keys list`); a running service refuses it from the next request.

    \b
    Example:
      photocheck keys revoke --index ./index 3
    """
    with _open_keys(index_dir, keys_db) as store:
        key, now = store.revoke(key_id)
    if as_json:
        echo_json({**key.as_dict(), "revoked_now": now})
    else:
        click.echo(f"{'revoked' if now else 'already revoked:'} key {key.id} ({key.name}) at {key.revoked_at}")
