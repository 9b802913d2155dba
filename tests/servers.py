"""Real servers for integration tests: `photocheck serve` (gunicorn) on a free localhost port."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path
    bulk_key: str | None = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the server at {url} was not ready in {timeout:.0f}s")


@contextlib.contextmanager
def serve(
    index: Path,
    log: Path,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    as_user: int | None = None,
    ready_timeout: float = 90.0,
) -> Iterator[Server]:
    """Run `photocheck serve` until the block ends; its stdout and stderr go to ``log``.

    ``as_user``: the uid (and gid) to run it as, through setpriv (the tests run as root in CI), with the
    Dockerfile's command (gunicorn and the shipped config) rather than `photocheck serve`."""
    port = free_port()
    env = {**os.environ, **(env or {})}
    if as_user is None:
        command = [sys.executable, "-m", "indexer.cli", "serve", "--index", str(index), "--port", str(port)]
        command += ["--workers", str(workers)]
    else:
        command = ["setpriv", f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups"]
        command += [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn_conf", "service.wsgi:app"]
        env.update(
            PHOTOCHECK_INDEX=str(index),
            PHOTOCHECK_BIND=f"127.0.0.1:{port}",
            PHOTOCHECK_WORKERS=str(workers),
            PYTHONDONTWRITEBYTECODE="1",
        )
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd="/")
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(url, process, ready_timeout)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; its output:\n{log.read_text(errors='replace')[-4000:]}") from None
        yield Server(url, process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def host_server(pages: dict[str, str]) -> Iterator[int]:
    """A second web server on 127.0.0.1 serving ``pages``; its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path)
            if body is None:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


# -- privacy: nothing written while answering -------------------------------------------------------

OPENS = ("open", "openat", "openat2")
WRITES = ("write", "pwrite64", "writev", "pwritev", "pwritev2", "ftruncate")
MUTATING = ("creat", "rename", "renameat", "renameat2", "unlink", "unlinkat", "mkdir", "mkdirat", "rmdir", "truncate")
MUTATING += ("link", "linkat", "symlink", "symlinkat")
STRACE_CALLS = ",".join(OPENS + WRITES + MUTATING)


@contextlib.contextmanager
def traced(pids: list[int], trace_file: Path) -> Iterator[Path]:
    """`strace -f -y` of the processes (and their threads and children) while the block runs, written to
    ``trace_file``: the calls that open, write, create, rename or remove files."""
    if shutil.which("strace") is None:
        pytest.fail("strace is needed for this test: apt-get install strace (.ci/run installs it)")
    command = ["strace", "-f", "-y", "-qq", "-o", str(trace_file), "-e", f"trace={STRACE_CALLS}"]
    tracer = subprocess.Popen(command + [arg for p in pids for arg in ("-p", str(p))], stderr=subprocess.PIPE)
    time.sleep(1.5)  # let strace attach to every process
    try:
        yield trace_file
    finally:
        time.sleep(0.5)
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=30)


def file_writes(trace: str) -> list[str]:
    """The lines of an `strace -f -y` trace in which a process creates, changes or removes a file.

    Writes to sockets, pipes and /dev/* are the conversation with clients, and memory: the metrics'
    memory-mapped files live on tmpfs (/dev/shm), and grow there with ftruncate; writes to fds 1 and 2
    are the access and error log on the standard streams (a file only because this test points them at one).
    """
    found = []
    for line in trace.splitlines():
        call = re.search(r"\b(\w+)\((.*)", line)
        if not call:
            continue
        name, args = call.groups()
        if name in MUTATING:
            found.append(line)
        elif name in OPENS:
            if re.search(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC", args):
                found.append(line)
        elif name in WRITES:
            target = re.match(r"(\d+)<([^>]*)>", args)
            path = target.group(2) if target else ""
            if target and target.group(1) not in ("1", "2") and path.startswith("/") and not path.startswith("/dev/"):
                found.append(line)
    return found
