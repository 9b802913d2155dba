"""Prometheus metrics at ``GET /metrics``, off unless ``PHOTOCHECK_METRICS`` is on.

What is counted is about the service, never about a person or a result: requests by endpoint and
status, how long requests and each stage of a check take (queue, decode, detect, embed, search),
rate-limit refusals, requests closed for arriving too slowly, and the index's size and version.
There is no verdict count, no dataset name, no client address: every label value comes from a small
fixed set (the application's endpoints, HTTP statuses, stage names), never from the request.

Under gunicorn every worker is its own process: prometheus-client's multiprocess mode keeps each
process's values in memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR``, which the gunicorn config
puts on tmpfs (``/dev/shm``), empties when the server starts and removes when it stops; a dead
worker's live gauges are dropped by the config's ``child_exit``. A scrape adds up every process.
Each process creates its files when the application starts (``init_app``), so that answering a
request creates no file.
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask, Response, g, request

#: Which endpoints get their own label value; anything else (a 404, an unrouted method) is "other".
ENDPOINTS = {
    "api.check": "check",
    "ondevice.check_embedding": "check_embedding",
    "api.lookup": "lookup",
    "api.catalog": "catalog",
    "bulk.check_many": "bulk",
    "api.datasets": "datasets",
    "api.openapi": "openapi",
    "pages.home": "page",
    "pages.privacy": "page",
    "widget.page": "page",
    "widget.script": "asset",
    "pages.asset": "asset",
    "pages.healthz": "health",
    "pages.readyz": "health",
    "metrics": "metrics",
}
STATUSES = {200, 204, 304, 400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 429, 500, 503}
STAGES = ("queue", "decode", "detect", "embed", "search")
#: Seconds: a check takes about a tenth of a second on one core (docs/speed.md), a bulk request up to a minute.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0)
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The service's metrics, registered once per process."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        # In multiprocess mode values live in the shared files and a scrape builds its own registry;
        # otherwise (one process, e.g. `flask run` or the test client) this registry is scraped.
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "photocheck_requests",
            "HTTP requests answered, by endpoint and status.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "photocheck_request_duration_seconds",
            "Time to answer a request, by endpoint.",
            ["endpoint"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.stages = Histogram(
            "photocheck_check_stage_seconds",
            "Time per stage of a check: waiting for this process's turn, decoding, finding faces, "
            "embedding the face, searching the datasets.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "photocheck_rate_limited",
            "Requests refused by a rate limit (per client address, or per bulk key), by endpoint.",
            ["endpoint"],
            registry=self.registry,
        )
        self.receive_timeouts = Counter(
            "photocheck_receive_timeouts",
            "Requests closed with 408 because their headers or body did not arrive in time.",
            ["phase"],
            registry=self.registry,
        )
        gauge = {"registry": self.registry, "multiprocess_mode": "livemax"}
        self.index_faces = Gauge("photocheck_index_faces", "Faces in the served index.", **gauge)
        self.index_datasets = Gauge("photocheck_index_datasets", "Datasets in the served index.", **gauge)
        self.index_version = Gauge("photocheck_index_version", "Version of the served index.", **gauge)
        self.index_loaded = Gauge("photocheck_index_loaded", "1 when this worker has its index loaded.", **gauge)

    def touch(self) -> None:
        """Create this process's files now (one per metric type: later series go into them), so that
        answering creates no file, and give the series worth watching at 0 their first value."""
        for endpoint in ("check", "check_embedding", "lookup", "bulk"):
            self.rate_limited.labels(endpoint)
        for stage in STAGES:
            self.stages.labels(stage)
        for phase in ("headers", "body"):
            self.receive_timeouts.labels(phase)

    def describe_index(self, described: dict[str, Any] | None) -> None:
        self.index_loaded.set(1 if described else 0)
        if described:
            self.index_faces.set(described["faces"])
            self.index_datasets.set(described["datasets"])
            self.index_version.set(described["version"])

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if multiprocess_dir():
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


_metrics: Metrics | None = None


def metrics() -> Metrics | None:
    """This process's metrics, or None when they are off."""
    return _metrics


def enable() -> Metrics:
    global _metrics
    if _metrics is None:
        _metrics = Metrics()
        _metrics.touch()
    return _metrics


def observe_stages(seconds: dict[str, float]) -> None:
    if _metrics is not None:
        for name, value in seconds.items():
            if name in STAGES:
                _metrics.stages.labels(name).observe(value)


def receive_timeout(phase: str) -> None:
    if _metrics is not None:
        _metrics.receive_timeouts.labels(phase).inc()


def _endpoint() -> str:
    rule = request.url_rule
    return ENDPOINTS.get(rule.endpoint, "other") if rule is not None else "other"


def init_app(app: Flask, described_index: dict[str, Any] | None) -> None:
    """Serve /metrics and count every request, when PHOTOCHECK_METRICS is on."""
    if not app.config.get("METRICS"):
        return
    collected = enable()
    collected.describe_index(described_index)

    def started() -> None:
        g.photocheck_started = time.perf_counter()

    # First of all, so that a request answered early (a refused origin) is timed too.
    app.before_request_funcs.setdefault(None, []).insert(0, started)

    @app.after_request
    def counted(response: Response) -> Response:
        endpoint = _endpoint()
        status = response.status_code if response.status_code in STATUSES else 0
        collected.requests.labels(endpoint, str(status) if status else "other").inc()
        began = g.get("photocheck_started")
        if began is not None:
            collected.duration.labels(endpoint).observe(time.perf_counter() - began)
        if response.status_code == 429:
            collected.rate_limited.labels(endpoint).inc()
        return response

    def scrape() -> Response:
        body, content_type = collected.exposition()
        return Response(body, content_type=content_type)

    app.add_url_rule("/metrics", "metrics", scrape, methods=["GET"])
