"""photocheck's offline half: read disclosed training sets, embed every face, search the index.

This package never imports Flask; the web service (``service``) builds on it.
"""

__version__ = "0.1.0"
