"""The service's settings: defaults, overridden by ``PHOTOCHECK_*`` environment variables."""

from __future__ import annotations

from indexer.embedders.dlib_resnet import DEFAULT_RUNTIME

DEFAULTS = {
    # The index to serve (PHOTOCHECK_INDEX).
    "INDEX": None,
    # insightface only: where the model pack is.
    "MODEL_ROOT": None,
    # Where the onnxruntime models run (auto: CUDA when onnxruntime-gpu has a GPU, else the CPU).
    "DEVICE": "auto",
    # What runs the dlib embedder's ResNet: onnx (onnxruntime) or dlib (dlib's own code); the same model.
    "DLIB_RUNTIME": DEFAULT_RUNTIME,
    # dlib's HOG detector: the longest side the photo is downscaled to, and how often it is upsampled
    # (unset: the embedder's defaults, chosen with bench/detection.py; see docs/speed.md).
    "DLIB_DETECT_SIZE": None,
    "DLIB_UPSAMPLE": None,
    # CPU threads of each worker's onnxruntime sessions (0: onnxruntime's choice, one per core).
    "MODEL_THREADS": 0,
    # Uploads: bytes on the wire, and pixels once decoded.
    "MAX_UPLOAD_MB": 15,
    # A check of several photos of one person: all its photos together (each within MAX_UPLOAD_MB). Every
    # thread of a worker may hold one request's body while it arrives: this bounds that memory.
    "MAX_CHECK_MB": 40,
    "MAX_PIXELS": 50_000_000,
    # Per-client rate limit of the check API, in flask-limiter's syntax.
    "RATE_LIMIT": "60/minute",
    # Where rate-limit counters live: per worker in memory, or shared, e.g. redis://host:6379.
    "RATELIMIT_STORAGE": "memory://",
    # How many reverse proxies in front to trust for X-Forwarded-For/-Proto (0: trust none).
    "TRUSTED_PROXIES": 0,
    # Whether the access log holds client IP addresses (read by the gunicorn config too).
    "LOG_CLIENT_IP": False,
    # The sites allowed to embed the check (/widget.js) and call the API from their pages: a comma-separated
    # list of origins, e.g. "https://example.org,https://www.example.org"; "*" for any site; "" for none.
    # API requests from other sites' pages get 403 before their upload is read (see service/widget.py).
    "WIDGET_ORIGINS": "",
    # Bulk checks (POST /api/v1/bulk, with an API key): the keys database (default <INDEX>/keys.sqlite),
    # the most images per request, and the most bytes per request (the single check keeps MAX_UPLOAD_MB).
    "KEYS_DB": None,
    "BULK_MAX_IMAGES": 20,
    "BULK_MAX_UPLOAD_MB": 100,
    # Prometheus metrics at /metrics (service/metrics.py): off unless turned on. No person, no result.
    "METRICS": False,
    # The on-device check's files (runtime, models, manifest), as `photocheck ondevice build` writes them;
    # by default build/ondevice in a source checkout. Without them the page offers the upload check only.
    "ONDEVICE_DIR": None,
}


def setting_on(value: object) -> bool:
    """A yes/no setting as the environment gives it ("1", "true", "yes", "on"), as gunicorn_conf reads it."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
