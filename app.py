"""WSGI entry for `gunicorn app:app` from a source checkout (`photocheck serve` works from anywhere)."""

from service.wsgi import app

__all__ = ["app"]
