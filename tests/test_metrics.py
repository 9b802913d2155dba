"""Prometheus metrics (service/metrics.py): off by default; on, about the service and never a person.

Through real gunicorn: the hardened server runs 2 workers with PHOTOCHECK_METRICS on, so each scrape
adds up two processes' values (prometheus-client's multiprocess mode, its files on tmpfs).
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import requests
from conftest import person_photos
from prometheus_client.parser import text_string_to_metric_families

from service import create_app
from service.metrics import ENDPOINTS, STAGES

PHOTO = person_photos("obama")[-1]


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_and_stages_across_workers(hardened_server, faces_index):
    before = scrape(hardened_server.url)
    session = requests.Session()
    for _ in range(6):
        with open(PHOTO, "rb") as f:
            answer = session.post(f"{hardened_server.url}/api/v1/check", files={"image": ("a.jpg", f)}, timeout=60)
        assert answer.status_code == 200
    assert session.post(f"{hardened_server.url}/api/v1/check", data=b"%PDF-1.4", timeout=30).status_code == 400
    after = scrape(hardened_server.url)

    ok = ("photocheck_requests_total", {"endpoint": "check", "status": "200"})
    assert value(after, ok[0], **ok[1]) - value(before, ok[0], **ok[1]) == 6  # both workers, added up
    assert value(after, "photocheck_requests_total", endpoint="check", status="400") >= 1
    for stage in STAGES:
        counted = value(after, "photocheck_check_stage_seconds_count", stage=stage)
        assert counted - value(before, "photocheck_check_stage_seconds_count", stage=stage) >= 6, stage
    assert value(after, "photocheck_request_duration_seconds_count", endpoint="check") >= 7
    described = answer.json()["index"]
    assert value(after, "photocheck_index_faces") == described["faces"]
    assert value(after, "photocheck_index_version") == described["version"]
    assert value(after, "photocheck_index_datasets") == described["datasets"]
    assert value(after, "photocheck_index_loaded") == 1


def test_metrics_hold_nothing_about_a_person_or_a_result(hardened_server):
    with open(PHOTO, "rb") as f:
        requests.post(f"{hardened_server.url}/api/v1/check", files={"image": ("secret-name.jpg", f)}, timeout=60)
    text = requests.get(f"{hardened_server.url}/metrics", timeout=30).text
    for leak in ("secret-name", "politicians", "actors", "match", "verdict", "127.0.0.1", "confidence"):
        assert leak not in text
    allowed = {
        "endpoint": {*ENDPOINTS.values(), "other"},
        "stage": set(STAGES),
        "phase": {"headers", "body"},
        "status": {str(s) for s in range(100, 600)} | {"other"},
        "le": None,  # histogram bucket bounds
    }
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("photocheck_"):
            continue
        for sample in family.samples:
            for label, given in sample.labels.items():
                assert label in allowed, (sample.name, label)
                assert allowed[label] is None or given in allowed[label], (sample.name, label, given)


def test_the_privacy_page_says_when_metrics_are_on(hardened_server, faces_server):
    assert 'data-claim="metrics"' in requests.get(f"{hardened_server.url}/privacy", timeout=10).text
    assert 'data-claim="metrics"' not in requests.get(f"{faces_server.url}/privacy", timeout=10).text
    assert requests.get(f"{faces_server.url}/metrics", timeout=10).status_code == 404  # off unless turned on


def test_rate_limit_refusals_are_counted(faces_index):
    index_dir, _ = faces_index
    client = create_app({"INDEX": str(index_dir), "RATE_LIMIT": "1/minute", "METRICS": "on"}).test_client()
    statuses = [client.post("/api/v1/check", data=b"", content_type="image/png").status_code for _ in range(3)]
    assert statuses == [400, 429, 429]
    text = client.get("/metrics").get_data(as_text=True)
    assert re.search(r'photocheck_rate_limited_total\{endpoint="check"\} ([0-9.]+)', text)
    counted = float(re.search(r'photocheck_rate_limited_total\{endpoint="check"\} ([0-9.]+)', text).group(1))
    assert counted >= 2
    assert create_app({"INDEX": str(index_dir), "METRICS": "off"}).test_client().get("/metrics").status_code == 404


def test_metrics_live_in_memory_and_a_dead_workers_gauges_go(hardened_server):
    folder = Path(f"/dev/shm/photocheck-metrics-{hardened_server.process.pid}")
    assert folder.is_dir() and os.statvfs(folder).f_bsize > 0
    mounts = Path("/proc/mounts").read_text().split("\n")
    assert any(line.split()[1:3] == ["/dev/shm", "tmpfs"] for line in mounts if line)
    workers = hardened_server.worker_pids()
    assert {f"gauge_livemax_{pid}.db" for pid in workers} <= {p.name for p in folder.iterdir()}
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        current = hardened_server.worker_pids()
        if victim not in current and len(current) == 2 and requests.get(f"{hardened_server.url}/readyz").ok:
            break
        time.sleep(0.5)
    names = {p.name for p in folder.iterdir()}
    assert f"gauge_livemax_{victim}.db" not in names  # child_exit marked it dead
    assert f"counter_{victim}.db" in names  # its counts stay: totals do not go backwards
