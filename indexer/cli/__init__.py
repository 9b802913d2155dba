"""The ``photocheck`` command line: a thin layer over the library, one module per command group.

Messages and progress go to stderr; stdout carries only results, and ``--json`` prints JSON alone.
Library errors become one line on stderr with their stable code, and exit status 1.
"""

from __future__ import annotations

import click

from .bulk import bulk
from .catalog import catalog
from .check import check
from .common import PhotocheckGroup, setup_logging
from .evaluate import eval_command
from .index import index
from .keys import keys
from .lookup import lookup
from .models import models
from .ondevice import ondevice
from .serve import serve


@click.group(cls=PhotocheckGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Say more about what happens.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.version_option(package_name="photocheck")
def cli(verbose: int, quiet: bool) -> None:
    """photocheck: was a photo of my face used in a disclosed AI training set?

    Build an index of the faces in disclosed training sets, then check photos against it,
    from the command line or through the web service.

    \b
    Examples:
      photocheck index add --index ./index --dataset faces-demo ./photos
      photocheck check --index ./index selfie.jpg
      photocheck lookup --index ./index flickr:12345678@N00
      photocheck catalog list
      photocheck serve --index ./index
    """
    setup_logging(verbose, quiet)


for command in (index, check, lookup, catalog, eval_command, serve, keys, bulk, models, ondevice):
    cli.add_command(command)


def main() -> None:  # pragma: no cover - console script entry
    cli(prog_name="photocheck")
