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


def session_options(threads: int = 0):
    """onnxruntime session options: ``threads`` intra-op threads (0: onnxruntime's choice, one per core).

    With more than one thread, the idle threads do not spin waiting for work: on a busy host (other
    processes, or several indexer or gunicorn workers) spinning threads take cores from the ones with
    work to do, and two spinning threads on a loaded 2-core machine were slower than one.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: provider fallbacks are reported below, in plain words
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if threads != 1:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def create_session(model: str | Path | bytes, device: str = "auto", threads: int = 0, *, name: str | None = None):
    """An InferenceSession on the best provider for ``device``; says in the log which one runs.

    ``model`` is an .onnx file or a serialised model (``name`` then says what it is in messages).
    ``threads`` caps the CPU threads of one session (0: onnxruntime decides), so that several
    indexer workers do not oversubscribe the cores.
    """
    import onnxruntime as ort

    if isinstance(model, bytes):
        label = name or "the model"
        source: str | bytes = model
    else:
        label = name or Path(model).name
        source = os.fspath(model)
    providers = choose_providers(device)
    options = session_options(threads)
    with warnings.catch_warnings():
        # Said below in plain words, with what happens instead.
        warnings.filterwarnings("ignore", message="Specified provider", category=UserWarning)
        session = ort.InferenceSession(source, sess_options=options, providers=providers)
    active = session.get_providers()
    if providers[0] == CUDA and (not active or active[0] != CUDA):
        if device == "cuda":
            raise DeviceUnavailable(
                f"--device cuda was asked for, but CUDA could not start for {label} "
                "(no GPU, or CUDA/cuDNN libraries missing). Check `nvidia-smi` and the onnxruntime-gpu "
                "requirements, or use --device cpu."
            )
        log.warning("CUDA provider did not start for %s; running on the CPU", label)
    log.info("onnxruntime: %s runs on %s", label, "CUDA" if active and active[0] == CUDA else "CPU")
    return session


def active_device(session) -> str:
    providers = session.get_providers()
    return "cuda" if providers and providers[0] == CUDA else "cpu"
