"""Helpers the service benchmarks share: a gunicorn server with chosen options, slow uploads, RSS.

Not a benchmark itself (bench/slow_clients.py, bench/sustained_load.py and bench/fuzz_uploads.py
use it). The server runs the command the Dockerfile runs, ``gunicorn -c python:service.gunicorn_conf
service.wsgi:app``, with extra gunicorn arguments (a worker class, say) taking precedence over the
shipped configuration.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
from _common import say


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float | None:
    """A process's resident memory, in MiB, from /proc (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Server:
    """gunicorn with the shipped config on a free localhost port, its output in a log file."""

    def __init__(
        self,
        index: Path,
        log: Path,
        *,
        workers: int = 2,
        gunicorn_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.index = index.resolve()
        self.workers = workers
        self.log = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            "PHOTOCHECK_INDEX": str(self.index),
            "PHOTOCHECK_BIND": f"127.0.0.1:{self.port}",
            "PHOTOCHECK_WORKERS": str(workers),
            # Every benchmark client comes from 127.0.0.1: the per-address limit would answer with 429.
            "PHOTOCHECK_RATE_LIMIT": "1000000/minute",
            "PYTHONDONTWRITEBYTECODE": "1",
            **(env or {}),
        }
        command = [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn_conf", *gunicorn_args]
        command.append("service.wsgi:app")
        with open(log, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=environment, cwd="/")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(p) for p in children.read_text().split()]
        except OSError:
            return []

    def wait_ready(self, timeout: float = 180) -> None:
        """Until every worker has loaded the index (each logs "serving <index>: ...")."""
        deadline = time.monotonic() + timeout
        marker = f"serving {self.index}: "
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.output()[-3000:]}")
            if self.output().count(marker) >= self.workers:
                try:
                    if requests.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                        return
                except requests.RequestException:
                    pass
            time.sleep(0.3)
        raise RuntimeError(f"the server at {self.url} was not ready in {timeout:.0f}s:\n{self.output()[-3000:]}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                say("warning: the server did not stop in 30s after SIGTERM; killing it")
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class SlowUpload:
    sock: socket.socket
    opened: float
    answer: bytes = b""
    closed_after: float | None = None  # seconds from opening until the server closed the connection


@dataclass
class SlowUploads:
    """``count`` uploads that send their headers, then one byte of body every ``interval`` seconds.

    One thread drives them all; the server's answers are collected as they come. Stops by itself
    after ``limit`` seconds (bounded traffic, to this machine only)."""

    port: int
    count: int
    interval: float = 5.0
    limit: float = 120.0
    declared: int = 200_000
    uploads: list[SlowUpload] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        head = (
            "POST /api/v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {self.declared}\r\n\r\n"
        ).encode()
        for _ in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            sock.sendall(head + b"\xff")
            self.uploads.append(SlowUpload(sock, time.monotonic()))
        self._thread = threading.Thread(target=self._drive, daemon=True)
        self._thread.start()

    def _drive(self) -> None:
        started = time.monotonic()
        next_byte = started + self.interval
        while not self._stop.is_set() and time.monotonic() - started < self.limit:
            open_ = [u for u in self.uploads if u.closed_after is None]
            if not open_:
                return
            wait = max(0.0, min(0.5, next_byte - time.monotonic()))
            readable, _, _ = select.select([u.sock for u in open_], [], [], wait)
            for upload in open_:
                if upload.sock in readable:
                    try:
                        data = upload.sock.recv(65536)
                    except OSError:
                        data = b""
                    upload.answer += data
                    if not data:
                        upload.closed_after = time.monotonic() - upload.opened
            if time.monotonic() >= next_byte:
                next_byte += self.interval
                for upload in open_:
                    if upload.closed_after is None:
                        try:
                            upload.sock.sendall(b"\xff")
                        except OSError:
                            upload.closed_after = time.monotonic() - upload.opened

    def wait_closed(self, timeout: float) -> None:
        self._thread.join(timeout)

    def statuses(self) -> list[str]:
        return [u.answer.split(b"\r\n", 1)[0].decode(errors="replace") if u.answer else "" for u in self.uploads]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for upload in self.uploads:
            upload.sock.close()
