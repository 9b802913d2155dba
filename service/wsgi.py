"""The WSGI entry point gunicorn loads in each worker: ``gunicorn service.wsgi:app``."""

from . import create_app

app = create_app()
