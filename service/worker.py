"""The gunicorn worker `photocheck serve` runs: gunicorn's threaded worker, with a deadline for
receiving each request.

Why threads: a check is CPU-bound (about a tenth of a second of one core), but receiving an upload is not,
and a sync worker spends the whole upload waiting on one client: two clients trickling a body one
byte every few seconds took both sync workers, and nobody else got an answer. Here each worker
process receives requests on ``threads`` threads (``PHOTOCHECK_THREADS``) and runs at most one check
at a time (``ServiceState.checking``), so slow uploads cost a waiting thread each, not a process.
``bench/slow_clients.py`` measures this against the sync worker and an asynchronous (gevent) one.

Why a deadline: a thread that waits forever is still lost. Each request must arrive, headers and
body, within ``PHOTOCHECK_RECEIVE_TIMEOUT`` seconds, extended by one second for every
``PHOTOCHECK_RECEIVE_MIN_RATE`` bytes received (so a large photo on a slow but working link gets
through, and a client that sends one byte every five seconds does not). Past it, the request is
answered 408 ``request_timeout`` and its connection closed: by the worker itself while the headers
are still arriving, by the application (``service/__init__.py``) once it is reading the body.
Nothing is spooled to disk on the way: the body is read from the socket into memory, as before.

Why ``mallopt``: with many threads, glibc gives threads their own malloc arenas, and keeps in each
the memory a decoded photo used; a check running on one thread, then another, grows the worker's
RSS arena by arena (bench/sustained_load.py saw +30% over 10 minutes). Two arenas, and large
blocks (decoded pixels) always mapped and unmapped on their own, keep it flat.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import socket
import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from . import metrics
from .uploads import ReceiveTimeout

DEFAULT_RECEIVE_TIMEOUT = 20.0
DEFAULT_RECEIVE_MIN_RATE = 8192  # bytes per second: 64 kbit/s, far below any working mobile link
#: How long a timed-out connection may take to read its 408 before it is closed.
CLOSE_LINGER = 1.0


#: glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MALLOC_ARENAS = 2
MMAP_THRESHOLD = 1024 * 1024


def limit_malloc_arenas() -> bool:
    """Tune glibc's malloc for a threaded worker (see above); False where there is no glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_ARENA_MAX, MALLOC_ARENAS)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def _setting(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def timeout_answer() -> bytes:
    """The 408 a connection gets when its headers did not arrive in time (the application never saw it)."""
    body = json.dumps(
        {
            "error": {
                "code": "request_timeout",
                "message": "The request did not arrive in time; check the connection and send it again.",
            }
        },
        separators=(",", ":"),
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Cache-Control: no-store\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class DeadlineSocket:
    """A client socket whose reads share one budget per request.

    Everything but ``recv``/``recv_into`` goes to the socket itself (gunicorn polls, writes and
    closes through this object)."""

    def __init__(self, sock: socket.socket, timeout: float, min_rate: float) -> None:
        self._sock = sock
        self.timeout = timeout
        self.min_rate = min_rate
        self.closed = False  # by close_after_timeout: what gunicorn does with it afterwards is a no-op
        self.restart()

    def restart(self) -> None:
        """A new request on this connection: a fresh budget, counted from its first read."""
        self.started: float | None = None
        self.received = 0
        self.expired: str | None = None  # "headers" or "body", once the budget is spent
        self.request: Any = None  # gunicorn's request, once its headers are in
        self.answered = False  # the application is done: what gunicorn reads now is its own drain

    def remaining(self) -> float:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        allowed = self.timeout + (self.received / self.min_rate if self.min_rate > 0 else 0.0)
        return self.started + allowed - now

    def _expire(self) -> bytes:
        if self.request is None:
            self.expired = "headers"
            try:
                self._sock.settimeout(CLOSE_LINGER)
                self._sock.sendall(timeout_answer())
            except OSError:
                pass
            return b""  # to gunicorn's parser, the client went away: it closes quietly
        self.expired = "body"
        self.request.must_close = True  # the application's 408 then says "Connection: close"
        raise ReceiveTimeout(f"the request was not received within {self.timeout:.0f}s")

    def _read(self, call, *args):
        if self.closed:
            return b"" if call == self._sock.recv else 0
        if self.expired or self.answered:  # gunicorn's own drain before closing or keeping alive
            return call(*args)
        remaining = self.remaining()
        if remaining <= 0:
            return self._expire()
        previous = self._sock.gettimeout()
        limit = remaining if previous is None else min(previous, remaining)
        self._sock.settimeout(limit)
        try:
            result = call(*args)
        except TimeoutError:
            if previous is not None and previous <= remaining:
                raise  # gunicorn's own, shorter timeout
            return self._expire()
        finally:
            if not self.expired or self.expired == "body":
                self._sock.settimeout(previous)
        self.received += result if isinstance(result, int) else len(result)
        return result

    def recv(self, size: int, flags: int = 0) -> bytes:
        return self._read(self._sock.recv, size, flags)

    def recv_into(self, buffer, size: int = 0, flags: int = 0) -> int:
        return self._read(self._sock.recv_into, buffer, size, flags)

    def close_after_timeout(self) -> None:
        """Send FIN, give the client a moment to read the 408, then close; in the request's thread,
        so that gunicorn's main loop never waits on a stalled client."""
        try:
            self._sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + CLOSE_LINGER
            while (left := deadline - time.monotonic()) > 0:
                self._sock.settimeout(left)
                if not self._sock.recv(65536):
                    break
        except OSError:
            pass
        self._sock.close()
        self.closed = True

    def setblocking(self, flag: bool) -> None:
        if not self.closed:
            self._sock.setblocking(flag)

    def settimeout(self, value: float | None) -> None:
        if not self.closed:
            self._sock.settimeout(value)

    def shutdown(self, how: int) -> None:
        if not self.closed:
            self._sock.shutdown(how)

    def close(self) -> None:
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class PhotocheckWorker(ThreadWorker):
    """gunicorn's gthread worker, each request with a deadline for receiving it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.receive_timeout = _setting("PHOTOCHECK_RECEIVE_TIMEOUT", DEFAULT_RECEIVE_TIMEOUT)
        self.receive_min_rate = _setting("PHOTOCHECK_RECEIVE_MIN_RATE", DEFAULT_RECEIVE_MIN_RATE)

    def init_process(self) -> None:
        limit_malloc_arenas()  # before the application allocates anything in this process
        super().init_process()

    def handle(self, conn):
        if not self.cfg.is_ssl:  # TLS is the reverse proxy's job; gunicorn wraps the socket itself there
            if not isinstance(conn.sock, DeadlineSocket):
                conn.sock = DeadlineSocket(conn.sock, self.receive_timeout, self.receive_min_rate)
            conn.sock.restart()
        result = super().handle(conn)
        sock = conn.sock
        if isinstance(sock, DeadlineSocket) and sock.expired:
            self.log.info("closed a connection whose request %s did not arrive in time", sock.expired)
            metrics.receive_timeout(sock.expired)
            sock.close_after_timeout()
            return False
        return result

    def handle_request(self, req, conn):
        sock = conn.sock if isinstance(conn.sock, DeadlineSocket) else None
        if sock is not None:
            sock.request = req  # the headers are in: a timeout from here on is the application's 408
        try:
            return super().handle_request(req, conn)
        finally:
            if sock is not None:
                sock.answered = True
