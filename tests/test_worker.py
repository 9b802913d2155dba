"""The worker `photocheck serve` runs (service/worker.py): slow clients cannot stop it answering others.

Real gunicorn (the hardened server: 2 workers, an 8 s receive deadline) and raw sockets.
"""

from __future__ import annotations

import io
import json
import select
import socket
import time

import requests
from conftest import RECEIVE_TIMEOUT, person_photos
from PIL import Image

PHOTO = person_photos("obama")[-1]


def open_slow_upload(port: int, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head)
    return sock


def trickle(
    socks: list[socket.socket], opened: float, until: float, interval: float = 5.0
) -> dict[socket.socket, tuple[float, bytes]]:
    """Send one byte every ``interval`` seconds on each socket until the server closes it (or ``until``);
    what each got back, and when it was closed in seconds after ``opened``."""
    started = opened
    answers: dict[socket.socket, bytes] = {s: b"" for s in socks}
    closed: dict[socket.socket, tuple[float, bytes]] = {}
    next_byte = started + interval
    while len(closed) < len(socks) and time.monotonic() < until:
        open_ = [s for s in socks if s not in closed]
        readable, _, _ = select.select(open_, [], [], 0.2)
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            answers[sock] += data
            if not data:
                closed[sock] = (time.monotonic() - started, answers[sock])
        if time.monotonic() >= next_byte:
            next_byte += interval
            for sock in open_:
                if sock not in closed:
                    try:
                        sock.sendall(b"\xff")
                    except OSError:
                        closed[sock] = (time.monotonic() - started, answers[sock])
    return closed


def status_and_body(answer: bytes) -> tuple[str, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0].decode(), json.loads(body) if body else {}


def test_sixteen_slow_uploads_do_not_stop_an_ordinary_check(hardened_server):
    """The issue's attack: 16 uploads send their headers, then one byte every 5 s. An ordinary check
    is answered meanwhile, and every slow upload gets its 408 by the deadline and is closed."""
    head = (
        b"POST /api/v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nContent-Length: 500000\r\n\r\n"
    )
    slow = [open_slow_upload(hardened_server.port, head + b"\xff\xd8") for _ in range(16)]
    opened = time.monotonic()
    try:
        time.sleep(1)
        with open(PHOTO, "rb") as f:
            began = time.monotonic()
            answer = requests.post(f"{hardened_server.url}/api/v1/check", files={"image": ("me.jpg", f)}, timeout=15)
            answered_in = time.monotonic() - began
        assert answer.status_code == 200 and answer.json()["faces_detected"] == 1
        assert answered_in < 15
        closed = trickle(slow, opened, until=opened + RECEIVE_TIMEOUT + 20)
    finally:
        for sock in slow:
            sock.close()
    assert len(closed) == 16, f"{16 - len(closed)} slow uploads were still open {RECEIVE_TIMEOUT + 20}s later"
    for after, answer in closed.values():
        status, body = status_and_body(answer)
        assert status == "HTTP/1.1 408 REQUEST TIMEOUT", status
        assert body["error"]["code"] == "request_timeout"
        assert b"Connection: close" in answer
        # Closed by the deadline: not before it (the budget grows only with bytes received), not long after.
        assert RECEIVE_TIMEOUT - 1 <= after <= RECEIVE_TIMEOUT + 8
    assert requests.get(f"{hardened_server.url}/readyz", timeout=10).status_code == 200


def test_headers_that_stall_get_a_408_too(hardened_server):
    """Slowloris: a request whose headers never end is answered and closed by the worker itself."""
    sock = open_slow_upload(hardened_server.port, b"POST /api/v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    opened = time.monotonic()
    try:
        ((after, answer),) = trickle([sock], opened, until=opened + RECEIVE_TIMEOUT + 15).values()
    finally:
        sock.close()
    status, body = status_and_body(answer)
    assert status == "HTTP/1.1 408 Request Timeout" and body["error"]["code"] == "request_timeout"
    assert RECEIVE_TIMEOUT - 1 <= after <= RECEIVE_TIMEOUT + 8


def test_a_slow_but_steady_upload_gets_through(hardened_server):
    """The deadline grows with every byte received: a photo sent at a slow mobile rate is answered.

    The photo goes in pieces over more than the base deadline, at twice the minimum rate (8 KiB/s)."""
    rate = 16 * 1024
    photo = Image.open(PHOTO).convert("RGB")
    photo.thumbnail((1000, 1000))
    encoded = io.BytesIO()
    photo.save(encoded, "JPEG", quality=95)
    body = encoded.getvalue()
    assert len(body) > rate * RECEIVE_TIMEOUT * 1.2
    head = (
        "POST /api/v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    piece = rate // 4
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", hardened_server.port), timeout=30) as sock:
        sock.sendall(head)
        for start in range(0, len(body), piece):
            sock.sendall(body[start : start + piece])
            time.sleep(0.25)
        sent_in = time.monotonic() - began
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status, result = status_and_body(answer)
    assert status == "HTTP/1.1 200 OK", (status, result)
    assert result["faces_detected"] == 1
    assert sent_in > len(body) / rate * 0.9
