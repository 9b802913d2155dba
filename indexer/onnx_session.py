"""ONNX Runtime sessions: provider choice (CUDA, then CPU) and thread settings.

``onnxruntime-gpu`` and ``onnxruntime`` cannot be installed side by side; whichever is installed
decides which providers exist. ``device=auto`` uses CUDA when it is there and works, else the CPU.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from .errors import DeviceUnavailable

log = logging.getLogger("photocheck")

DEVICES = ("auto", "cpu", "cuda")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def choose_providers(device: str, available: list[str] | None = None) -> list[str]:
    """Providers to ask for, in order of preference, for ``device``."""
    import onnxruntime as ort

    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    available = list(ort.get_available_providers() if available is None else available)
    if device == "cpu":
        return [CPU]
    if CUDA in available:
        return [CUDA, CPU]
    if device == "cuda":
        raise DeviceUnavailable(
            "--device cuda was asked for, but this onnxruntime has no CUDA provider "
            f"(it offers: {', '.join(available) or 'none'}). Install onnxruntime-gpu in place of "
            "onnxruntime (see the README's GPU section), or use --device cpu."
        )
    return [CPU]


def create_session(model_path: str | Path, device: str = "auto", threads: int = 0):
    """An InferenceSession on the best provider for ``device``; says in the log which one runs.

    ``threads`` caps the CPU threads of one session (0: onnxruntime decides), so that several
    indexer workers do not oversubscribe the cores.
    """
    import onnxruntime as ort

    providers = choose_providers(device)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: provider fallbacks are reported below, in plain words
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    with warnings.catch_warnings():
        # Said below in plain words, with what happens instead.
        warnings.filterwarnings("ignore", message="Specified provider", category=UserWarning)
        session = ort.InferenceSession(os.fspath(model_path), sess_options=options, providers=providers)
    active = session.get_providers()
    if providers[0] == CUDA and (not active or active[0] != CUDA):
        if device == "cuda":
            raise DeviceUnavailable(
                f"--device cuda was asked for, but CUDA could not start for {Path(model_path).name} "
                "(no GPU, or CUDA/cuDNN libraries missing). Check `nvidia-smi` and the onnxruntime-gpu "
                "requirements, or use --device cpu."
            )
        log.warning("CUDA provider did not start for %s; running on the CPU", Path(model_path).name)
    log.info("onnxruntime: %s runs on %s", Path(model_path).name, "CUDA" if active and active[0] == CUDA else "CPU")
    return session


def active_device(session) -> str:
    providers = session.get_providers()
    return "cuda" if providers and providers[0] == CUDA else "cpu"
