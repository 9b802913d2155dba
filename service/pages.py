"""The pages people see, the health probes, and the page assets."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, jsonify, render_template, send_from_directory

pages = Blueprint("pages", __name__)

#: Only page assets are served from static/; the HTML there is rendered through Jinja.
ASSET_SUFFIXES = {".js", ".css", ".svg", ".png", ".ico", ".webmanifest", ".woff2"}


@pages.get("/")
def home():
    return render_template("index.html")


@pages.get("/next-steps")
def next_steps():
    """What a person can do about a dataset (the bulk report links here, /next-steps#NAME)."""
    return render_template("next-steps.html")


@pages.get("/privacy")
def privacy():
    config = current_app.config
    return render_template(
        "privacy.html",
        logs_client_ip=bool(config["LOG_CLIENT_IP"]),
        rate_limit=config["RATE_LIMIT"],
        max_upload_mb=config["MAX_UPLOAD_MB"],
        shared_rate_limits=not str(config["RATELIMIT_STORAGE"]).startswith("memory"),
        metrics=bool(config["METRICS"]),
        **_on_device_facts(),
    )


def _on_device_facts() -> dict:
    """What the privacy page says about the on-device check: whether it is offered, and its download."""
    from .ondevice import page_facts

    return page_facts()


@pages.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@pages.get("/readyz")
def readyz():
    state = current_app.extensions["photocheck"]
    if not state.ready:
        return jsonify({"ready": False, "error": state.error}), 503
    return jsonify({"ready": True, "index": state.checker.index.describe()})


@pages.get("/static/<path:name>")
def asset(name: str):
    if Path(name).suffix.lower() not in ASSET_SUFFIXES:
        abort(404)
    return send_from_directory(current_app.config["STATIC_DIR"], name, max_age=3600)
