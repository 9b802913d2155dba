"""The embeddable widget: ``/widget.js``, the ``/widget`` page, and which other sites may call the service.

A platform puts ``<div data-photocheck></div>`` and ``<script src="https://HOST/widget.js" ...>`` on its
own page; widget.js imports check-ui.js from this service into a shadow root there, and the check UI
calls this service's API from the platform's origin. The deployment lists the origins allowed to do
that in ``PHOTOCHECK_WIDGET_ORIGINS`` (comma-separated; ``*`` allows any site).

``init_app`` installs the guard:

- a request to the API from a page on another origin (an ``Origin`` header other than the service's
  own) that is not listed gets 403 ``origin_not_allowed`` at once. Its body is read and thrown away
  unparsed, so a photo sent from a site that may not use the service is never decoded, embedded or
  searched: a multipart POST needs no CORS preflight, so CORS headers alone would not stop the work;
- listed origins get ``Access-Control-Allow-Origin`` (and ``Vary: Origin``) on the API and on the
  files the widget loads across origins: check-ui.js and the modules it imports (module scripts,
  always fetched with CORS) and check-ui.css (the widget's ``<link crossorigin="anonymous">``, so
  that no cookie goes with it), and an empty 204 to a preflight;
- ``/widget.js`` itself may be loaded by any page (``Access-Control-Allow-Origin: *``): it holds
  nothing but the loader, and on a site that is not listed it shows that the check is not offered
  there instead of failing silently.

Requests without an ``Origin`` (curl, the CLI, plain page loads) and from the service's own pages are
unaffected.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, render_template, request, send_from_directory

from .api import error_response
from .uploads import drain_body

log = logging.getLogger("photocheck")

widget = Blueprint("widget", __name__)

#: Files outside the API that listed origins may read across origins: the UI's modules (module scripts
#: are always fetched with CORS) and stylesheet, and (by prefix) the on-device check's runtime and models,
#: which the widget fetches from this service.
CORS_FILES = {
    "/static/check-ui.js",
    "/static/check-ui.css",
    "/static/next-steps.js",
    "/static/letter.js",
    "/static/catalog-view.js",
    "/static/lookup.js",
    "/static/on-device.js",
    "/static/face-pipeline.js",
    "/static/face-align.js",
    "/static/face-quality.js",
}
CORS_PREFIXES = ("/static/ondevice/",)
WIDGET_SCRIPT = "/widget.js"
#: widget.js changes only with a new release; a host page's visitors need not fetch it on every visit.
WIDGET_SCRIPT_MAX_AGE = 3600
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Origins refused so far in this worker, logged once each (a bounded set: Origin is the client's to choose).
_REFUSED_LOGGED: set[str] = set()


def normalise_origin(value: str) -> str:
    """``scheme://host[:port]`` as browsers write it in the Origin header (lower case, no default port)."""
    parts = urlsplit(value.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme.lower() not in DEFAULT_PORTS
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
        or port == -1
    ):
        raise ValueError(
            f"PHOTOCHECK_WIDGET_ORIGINS: {value.strip()!r} is not an origin. Write each site as scheme://host "
            "or scheme://host:port, with no path, e.g. https://www.example.org"
        )
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    try:
        host = host.encode("idna").decode("ascii")  # browsers send internationalised names in punycode
    except UnicodeError:
        pass
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != DEFAULT_PORTS[scheme] else "")


def parse_origins(value: str | Iterable[str] | None) -> frozenset[str]:
    """The WIDGET_ORIGINS setting: a comma-separated string (or a list), ``*`` for any origin."""
    if not value:
        return frozenset()
    items = value.split(",") if isinstance(value, str) else list(value)
    origins = set()
    for item in items:
        item = str(item).strip()
        if item:
            origins.add("*" if item == "*" else normalise_origin(item))
    return frozenset(origins)


def _own_origin(origin: str) -> bool:
    """Whether a request's Origin is this service itself, as the request reached it.

    ``request.host_url`` is what Flask sees (the Host header, or X-Forwarded-Host/-Proto from trusted
    proxies). The host and port alone decide: behind a TLS proxy that is not trusted, the service's own
    https:// page reaches it as http://, and must still count as its own."""
    if origin == request.host_url.rstrip("/"):
        return True
    return urlsplit(origin).netloc.lower() == request.host.lower()


def _listed(origin: str) -> bool:
    origins = current_app.extensions["photocheck_widget_origins"]
    return "*" in origins or origin.lower() in origins


def _guarded() -> bool:
    return request.path.startswith("/api/")


def _shared() -> bool:
    return _guarded() or request.path in CORS_FILES or request.path.startswith(CORS_PREFIXES)


def _cross_origin() -> str | None:
    """The Origin of a request from another site's page, or None."""
    origin = request.headers.get("Origin")
    if origin is None or _own_origin(origin):
        return None
    return origin


def _refuse(origin: str):
    drain_body()  # unread and unparsed: the client still gets the answer rather than a reset connection
    shown = origin[:200]
    if len(_REFUSED_LOGGED) < 100 and shown not in _REFUSED_LOGGED:
        _REFUSED_LOGGED.add(shown)
        log.warning(
            "refused API requests from pages on %r: not in PHOTOCHECK_WIDGET_ORIGINS (this service is at %s). "
            "If that is this service's own address behind a proxy, set PHOTOCHECK_TRUSTED_PROXIES.",
            shown,
            request.host_url,
        )
    return error_response(
        "origin_not_allowed",
        f"This service does not answer pages on {shown}. The site's operator can ask for it to be added "
        "to the service's PHOTOCHECK_WIDGET_ORIGINS.",
        403,
    )


def _preflight() -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]
    response.headers["Access-Control-Allow-Methods"] = "GET, POST"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    response.headers["Access-Control-Max-Age"] = "600"
    return response


def _before():
    origin = _cross_origin()
    if origin is None or not _shared():
        return None
    if not _listed(origin):
        return _refuse(origin) if _guarded() else None
    if request.method == "OPTIONS":
        return _preflight()
    return None


def _after(response: Response) -> Response:
    if request.path == WIDGET_SCRIPT:
        response.headers["Access-Control-Allow-Origin"] = "*"
        if response.status_code == 200:
            response.headers["Cache-Control"] = f"public, max-age={WIDGET_SCRIPT_MAX_AGE}"
        return response
    if not _shared():
        return response
    response.vary.add("Origin")  # a cache must not hand one site's answer to another
    origin = _cross_origin()
    if origin is not None and _listed(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        if _guarded():
            response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    return response


@widget.get(WIDGET_SCRIPT)
def script():
    return send_from_directory(current_app.config["STATIC_DIR"], "widget.js", max_age=WIDGET_SCRIPT_MAX_AGE)


@widget.get("/widget")
def page():
    origins = current_app.extensions["photocheck_widget_origins"]
    return render_template(
        "widget.html",
        service=request.host_url.rstrip("/"),
        any_origin="*" in origins,
        listed=len(origins - {"*"}),
    )


def init_app(app: Flask) -> None:
    """Register the widget's routes and the cross-origin guard. Call it before the rate limiter is
    set up, so that a refused origin is answered before it counts against anyone's limit."""
    app.extensions["photocheck_widget_origins"] = parse_origins(app.config.get("WIDGET_ORIGINS"))
    app.register_blueprint(widget)
    app.before_request(_before)
    app.after_request(_after)
