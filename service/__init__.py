"""photocheck's web service: a selfie check over HTTP that keeps nothing.

``create_app`` builds the Flask application: defaults, then ``PHOTOCHECK_*`` environment variables,
then the test config. The index and its embedder load here, once per worker, before the worker
takes requests. Serve it with ``photocheck serve`` (gunicorn with the shipped config).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import HTTPException, InternalServerError, RequestTimeout
from werkzeug.middleware.proxy_fix import ProxyFix

from indexer.errors import PhotocheckError

from . import ondevice, widget
from .api import STATUS, api, error_response
from .config import DEFAULTS, setting_on
from .pages import pages
from .state import ServiceState
from .uploads import InMemoryRequest, ReceiveTimeout, drain_body, photos_sent

log = logging.getLogger("photocheck")

HTTP_CODES = {
    400: "malformed_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "upload_too_large",
    429: "rate_limited",
}

# 'wasm-unsafe-eval' lets the on-device check compile onnxruntime-web's WebAssembly (served from 'self');
# it allows no JavaScript eval, and without it WebAssembly.instantiate is refused under any script-src.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; "
    "script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)


def static_dir() -> Path:
    """static/ ships inside the package in a wheel; in a source checkout it sits beside it."""
    packaged = Path(__file__).parent / "static"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "static"


def _setup_logging() -> None:
    """Our messages go where gunicorn's go; without gunicorn, to stderr."""
    logger = logging.getLogger("photocheck")
    if logger.handlers:
        return
    handlers = logging.getLogger("gunicorn.error").handlers or [logging.StreamHandler()]
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    _setup_logging()
    app = Flask(__name__, static_folder=None, template_folder=str(static_dir()))
    app.request_class = InMemoryRequest
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("PHOTOCHECK")
    if test_config:
        app.config.from_mapping(test_config)
    app.config["STATIC_DIR"] = str(static_dir())
    for flag in ("METRICS", "LOG_CLIENT_IP"):  # "off" in the environment means off, as gunicorn_conf reads it
        app.config[flag] = setting_on(app.config[flag])
    app.config["MAX_CONTENT_LENGTH"] = int(float(app.config["MAX_UPLOAD_MB"]) * 1024 * 1024)
    app.config["MAX_FORM_MEMORY_SIZE"] = 1024 * 1024  # text fields (face) are tiny; the parser buffers up to this
    app.config["RATELIMIT_STORAGE_URI"] = app.config["RATELIMIT_STORAGE"]
    app.config["RATELIMIT_HEADERS_ENABLED"] = True

    proxies = int(app.config["TRUSTED_PROXIES"] or 0)
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)

    app.register_blueprint(api)
    app.register_blueprint(pages)
    widget.init_app(app)  # before the limiter and the headers: see service/widget.py
    ondevice.init_app(app)
    limiter = Limiter(get_remote_address, app=app)
    # A photo and an on-device embedding draw on one budget per client: two endpoints, not two limits.
    # A check of several photos of one person costs one per photo.
    checks = limiter.shared_limit(lambda: app.config["RATE_LIMIT"], scope="checks", cost=photos_sent)
    for view in ("api.check", "ondevice.check_embedding"):
        app.view_functions[view] = checks(app.view_functions[view])
    # Lookups are answered from the same worker budget, so they get the checks' per-client limit.
    app.view_functions["api.lookup"] = limiter.limit(lambda: app.config["RATE_LIMIT"])(app.view_functions["api.lookup"])
    from .bulk import register_bulk  # POST /api/v1/bulk: keyed, limited per key (service/bulk.py)

    register_bulk(app, limiter)

    _register_errors(app)
    _register_headers(app)
    state = ServiceState.load(app.config)
    app.extensions["photocheck"] = state
    from . import metrics

    metrics.init_app(app, state.checker.index.describe() if state.ready else None)
    return app


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _register_errors(app: Flask) -> None:
    @app.errorhandler(PhotocheckError)
    def library_error(exc: PhotocheckError):
        drain_body()
        return error_response(exc.code, exc.message, STATUS.get(exc.code, 400))

    @app.errorhandler(ReceiveTimeout)
    def receive_timeout(exc: ReceiveTimeout):
        # The worker closes the connection after this answer (service/worker.py).
        message = "The upload did not arrive in time; check the connection and send it again."
        if not _is_api():
            return RequestTimeout(message)
        return error_response("request_timeout", message, 408)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 413:
            drain_body()
        if not _is_api():
            return exc
        code = HTTP_CODES.get(exc.code or 500, "error")
        message = {
            "upload_too_large": (
                f"The upload is too large: each photo may have up to {app.config['MAX_UPLOAD_MB']} MB, and the "
                f"photos of one check {app.config['MAX_CHECK_MB']} MB together. Use smaller copies of the photos."
            ),
            "rate_limited": "Too many requests from this address; wait a minute and try again.",
            "not_found": "There is no such API endpoint; see /api/v1/openapi.json.",
            "method_not_allowed": f"{request.method} is not allowed here; see /api/v1/openapi.json.",
        }.get(code, exc.description or "The request could not be handled.")
        response = error_response(code, message, exc.code)
        if exc.code == 405 and getattr(exc, "valid_methods", None):  # RFC 9110: a 405 says what is allowed
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        if exc.code == 429 and exc.response is not None:  # flask-limiter's Retry-After and limit headers
            for header, value in exc.response.headers.items():
                if header.lower().startswith(("retry-after", "x-ratelimit")):
                    response.headers[header] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        # The type only: the exception's text could hold something of the request.
        log.error("unexpected %s while answering %s %s", type(exc).__name__, request.method, request.path)
        if not _is_api():
            return InternalServerError()
        return error_response("internal_error", "Something went wrong on our side; nothing was kept. Try again.", 500)


def _register_headers(app: Flask) -> None:
    @app.after_request
    def headers(response):
        if not request.path.startswith("/static/"):  # page assets may be cached; answers and pages never
            response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        if not _is_api() and response.mimetype == "text/html":
            response.headers["Content-Security-Policy"] = PAGE_POLICY
            response.headers["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=()"
        response.headers.pop("Set-Cookie", None)
        return response
