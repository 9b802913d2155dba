"""``python -m indexer.cli``: the same as the ``photocheck`` command."""

from . import main

main()
