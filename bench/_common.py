"""Helpers the benchmark scripts share: machine facts, percentiles, plain-text tables, JSON output.

Not a benchmark itself. The scripts import it as ``_common`` (running ``python bench/X.py`` puts
bench/ on the import path).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FACES = SHARED / "faces"
LFW = SHARED / "lfw" / "images"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts(**extra: Any) -> dict[str, Any]:
    """What decides the figures on another machine. The load average is there because a busy
    machine slows every timing: figures taken at a load near the core count are not comparable."""
    facts: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu_model(),
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
    for module in ("numpy", "faiss", "dlib"):
        try:
            facts[module] = __import__(module).__version__
        except (ImportError, AttributeError):
            facts[module] = None
    try:
        import dlib

        # dlib's ResNet runs on its own matrix code unless built with BLAS: several times slower.
        facts["dlib_blas"] = bool(dlib.DLIB_USE_BLAS)
        facts["dlib_avx"] = bool(dlib.USE_AVX_INSTRUCTIONS)
    except (ImportError, AttributeError):
        pass
    facts.update(extra)
    return facts


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_of(pid: int | str = "self") -> dict[str, float]:
    """Resident memory in MiB from /proc/<pid>/smaps_rollup: RSS, PSS, and their anonymous and
    file-backed parts (the memory-mapped index files are file-backed, shared by every process)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    return {
        "rss_mb": fields.get("Rss", 0.0),
        "pss_mb": fields.get("Pss", 0.0),
        "anonymous_mb": fields.get("Anonymous", 0.0),
        "pss_file_mb": fields.get("Pss_File", 0.0),
        "pss_anon_mb": fields.get("Pss_Anon", 0.0),
    }


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have been waited for (build workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Mean, p50, p95 and max of latencies, in milliseconds."""
    if not seconds:
        return {"mean_ms": float("nan"), "p50_ms": float("nan"), "p95_ms": float("nan"), "max_ms": float("nan")}
    ms = np.asarray(seconds, dtype=np.float64) * 1000
    return {
        "mean_ms": float(ms.mean()),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
    }


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int | Sequence[int] = 1) -> str:
    """A plain-text table: text left-aligned, numbers right-aligned; ``digits`` after the point for
    floats, for every column or per column."""
    places = [digits] * len(headers) if isinstance(digits, int) else list(digits)
    cells = [[_cell(v, d) for v, d in zip(row, places, strict=True)] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int | float) or row[i] is None for row in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def print_facts(facts: dict[str, Any]) -> None:
    print("machine:")
    for key, value in facts.items():
        print(f"  {key}: {value}")


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=_json_default)
    sys.stdout.write("\n")


def emit(result: Any, as_json: bool, report: Callable[[Any], None]) -> None:
    """A benchmark's result: as JSON with --json, otherwise as its printed report."""
    if as_json:
        print_json(result)
    else:
        report(result)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def say(message: str, *, quiet: bool = False) -> None:
    """Progress goes to stderr, so that stdout holds only the figures (and ``--json`` only JSON)."""
    if not quiet:
        print(message, file=sys.stderr, flush=True)
