"""The web service: the API's answers and errors, headers, limits, and privacy, through real gunicorn."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import jsonschema
import pytest
import requests
from conftest import FACES, person_photos
from odd_uploads import cases, judge, send
from PIL import Image
from servers import file_writes, serve, traced

from service import create_app

OBAMA_HELD_OUT = person_photos("obama")[-1]
OBAMA_OTHER = FACES / "edge" / "obama-240p.jpg"  # a copy of obama.jpg, made smaller: in `politicians`


# -- the application, through Flask's test client ---------------------------------------------


@pytest.fixture(scope="module")
def app(faces_index):
    index_dir, _ = faces_index
    return create_app({"INDEX": str(index_dir), "RATE_LIMIT": "1000/minute"})


@pytest.fixture
def client(app):
    return app.test_client()


def test_check_answers_with_the_cli_shape_plus_the_index(client, faces_index):
    response = client.post("/api/v1/check", data={"image": (io.BytesIO(OBAMA_HELD_OUT.read_bytes()), "me.jpg")})
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"faces_detected", "faces", "face", "quality", "photos", "results", "error", "index"}
    assert body["photos"] == [{k: body[k] for k in ("faces_detected", "faces", "face", "error")}]
    assert body["index"] == {
        "embedder": "dlib",
        "model": "dlib_face_recognition_resnet_model_v1",
        "version": 2,
        "datasets": 2,
        "faces": body["index"]["faces"],
    }
    verdicts = {r["dataset"]: r["verdict"] for r in body["results"]}
    assert verdicts == {"politicians": "match", "actors": "no_match"}


def test_the_public_answer_holds_dataset_level_facts_only(client):
    body = client.post("/api/v1/check", data={"image": (io.BytesIO(OBAMA_HELD_OUT.read_bytes()), "me.jpg")}).get_json()
    text = json.dumps(body)
    for leak in ("obama.jpg", "obama2", "example.org", "key", "similarity", 'score": 0.9', "embedding", "url"):
        assert leak not in text
    for result in body["results"]:
        assert set(result) == {"dataset", "title", "verdict", "confidence"}
        assert result["confidence"] == round(result["confidence"], 2)


def test_raw_body_and_face_choice(client):
    group = (FACES / "groups" / "kit_with_rose.jpg").read_bytes()
    raw = client.post("/api/v1/check?face=1", data=group, content_type="image/jpeg").get_json()
    assert raw["face"]["number"] == 1 and raw["faces_detected"] == 2
    form = client.post("/api/v1/check", data={"image": (io.BytesIO(group), "g.jpg"), "face": "1"}).get_json()
    assert form["face"] == raw["face"]


def test_errors_are_json_with_codes(client):
    cases_ = [
        (client.post("/api/v1/check", data=b"", content_type="image/png"), 400, "unreadable_image"),
        (client.post("/api/v1/check", data=b"%PDF-1.5", content_type="image/jpeg"), 415, "unsupported_format"),
        (client.post("/api/v1/check", json={"image": "x"}), 400, "malformed_request"),
        (client.get("/api/v1/check"), 405, "method_not_allowed"),
        (client.get("/api/v1/nowhere"), 404, "not_found"),
    ]
    for response, status, code in cases_:
        assert response.status_code == status and response.is_json
        assert response.get_json()["error"]["code"] == code
        assert response.get_json()["error"]["message"].endswith(".")


def test_no_face_carries_what_was_found(client):
    wall = io.BytesIO()
    Image.new("RGB", (300, 200), (120, 110, 100)).save(wall, "JPEG")
    response = client.post("/api/v1/check", data={"image": (io.BytesIO(wall.getvalue()), "wall.jpg")})
    assert response.status_code == 422
    error = {"code": "no_face", "message": response.get_json()["error"]["message"]}
    assert response.get_json() == {
        "error": error,
        "faces_detected": 0,
        "faces": [],
        "photos": [{"faces_detected": 0, "faces": [], "face": None, "error": error}],
    }


def test_privacy_headers(client):
    for path in ("/", "/privacy"):
        page = client.get(path)
        assert page.status_code == 200 and page.mimetype == "text/html"
        assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert page.headers["Cache-Control"] == "no-store"
    answer = client.post("/api/v1/check", data={"image": (io.BytesIO(OBAMA_HELD_OUT.read_bytes()), "me.jpg")})
    for response in (answer, client.get("/api/v1/datasets"), client.get("/healthz"), client.get("/")):
        assert response.headers["Cache-Control"] == "no-store"
        assert "Set-Cookie" not in response.headers


def test_datasets_endpoint(client):
    body = client.get("/api/v1/datasets").get_json()
    assert body["thresholds"]["match"] == 0.95 and body["thresholds"]["prior"] == 0.5
    names = {d["name"]: d for d in body["datasets"]}
    assert names["politicians"]["disclosure_url"] == "https://example.org/politicians"
    assert names["politicians"]["faces"] == 4 and names["actors"]["faces"] == 3


def _schema(document: dict, name: str) -> dict:
    """A component schema with the document's other components, for $ref resolution."""
    return {**document["components"]["schemas"][name], "components": document["components"]}


def test_openapi_describes_the_real_answers(client):
    from openapi_spec_validator import validate

    document = client.get("/api/v1/openapi.json").get_json()
    validate(document)
    photo = {"image": (io.BytesIO(OBAMA_HELD_OUT.read_bytes()), "me.jpg")}
    jsonschema.validate(client.post("/api/v1/check", data=photo).get_json(), _schema(document, "CheckAnswer"))
    jsonschema.validate(client.get("/api/v1/datasets").get_json(), _schema(document, "Datasets"))
    error = client.post("/api/v1/check", data=b"<svg/>", content_type="image/png")
    jsonschema.validate(error.get_json(), _schema(document, "Error"))
    operation = document["paths"]["/api/v1/check"]["post"]
    assert {"200", "400", "413", "415", "422", "429", "503"} <= set(operation["responses"])


def test_rate_limit_answers_429_json(faces_index):
    index_dir, _ = faces_index
    limited = create_app({"INDEX": str(index_dir), "RATE_LIMIT": "2/minute"}).test_client()
    statuses = [limited.post("/api/v1/check", data=b"", content_type="image/png").status_code for _ in range(3)]
    assert statuses == [400, 400, 429]
    refused = limited.post("/api/v1/check", data=b"", content_type="image/png")
    assert refused.get_json()["error"]["code"] == "rate_limited" and int(refused.headers["Retry-After"]) > 0
    assert limited.get("/api/v1/datasets").status_code == 200  # only checks are limited


def test_proxy_headers_are_trusted_only_when_configured(faces_index):
    index_dir, _ = faces_index
    direct = create_app({"INDEX": str(index_dir), "RATE_LIMIT": "1/minute"}).test_client()
    behind = create_app({"INDEX": str(index_dir), "RATE_LIMIT": "1/minute", "TRUSTED_PROXIES": 1}).test_client()
    for client_, expected in ((direct, [400, 429]), (behind, [400, 400])):
        statuses = [
            client_.post(
                "/api/v1/check", data=b"", content_type="image/png", headers={"X-Forwarded-For": f"203.0.113.{n}"}
            ).status_code
            for n in (1, 2)
        ]
        assert statuses == expected


def test_settings_come_from_the_environment(monkeypatch, faces_index):
    index_dir, _ = faces_index
    monkeypatch.setenv("PHOTOCHECK_INDEX", str(index_dir))
    monkeypatch.setenv("PHOTOCHECK_MAX_UPLOAD_MB", "1")
    monkeypatch.setenv("PHOTOCHECK_RATE_LIMIT", "5/second")
    monkeypatch.setenv("PHOTOCHECK_DLIB_RUNTIME", "dlib")
    monkeypatch.setenv("PHOTOCHECK_MODEL_THREADS", "1")
    monkeypatch.setenv("PHOTOCHECK_DLIB_DETECT_SIZE", "800")
    monkeypatch.setenv("PHOTOCHECK_DLIB_UPSAMPLE", "2")
    app = create_app()
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024 and app.config["RATE_LIMIT"] == "5/second"
    embedder = app.extensions["photocheck"].checker.embedder
    assert (embedder.runtime, embedder.threads, embedder.detect_size, embedder.upsample) == ("dlib", 1, 800, 2)
    big = app.test_client().post("/api/v1/check", data=b"\xff\xd8\xff" + b"0" * 2_000_000, content_type="image/jpeg")
    assert big.status_code == 413 and big.get_json()["error"]["code"] == "upload_too_large"
    # Several photos: each within its limit, but not all of them together.
    monkeypatch.setenv("PHOTOCHECK_MAX_CHECK_MB", "2")
    photo = b"\xff\xd8\xff" + b"0" * 900_000
    client_ = create_app().test_client()
    several = client_.post("/api/v1/check", data={"image": [(io.BytesIO(photo), f"{n}.jpg") for n in range(3)]})
    assert several.status_code == 413 and "2 MB together" in several.get_json()["error"]["message"]
    # A total set below one photo's limit still lets one photo of that size through.
    monkeypatch.setenv("PHOTOCHECK_MAX_CHECK_MB", "0.5")
    one = create_app().test_client().post("/api/v1/check", data={"image": (io.BytesIO(photo), "one.jpg")})
    assert one.status_code == 400 and one.get_json()["error"]["code"] == "unreadable_image"


def test_without_an_index_the_service_says_503(tmp_path):
    app = create_app({"INDEX": str(tmp_path / "missing")})
    client_ = app.test_client()
    assert client_.get("/healthz").status_code == 200
    assert client_.get("/readyz").status_code == 503
    response = client_.post("/api/v1/check", data=b"x", content_type="image/jpeg")
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "index_not_loaded"


# -- through real gunicorn ---------------------------------------------------------------------


def test_served_check_matches_and_logs_nothing_personal(faces_server):
    with open(OBAMA_HELD_OUT, "rb") as f:
        answer = requests.post(f"{faces_server.url}/api/v1/check", files={"image": ("secret-name.jpg", f)}, timeout=60)
    assert answer.status_code == 200
    assert {r["dataset"]: r["verdict"] for r in answer.json()["results"]}["politicians"] == "match"
    log = faces_server.output()
    assert '"POST /api/v1/check" 200' in log
    assert "127.0.0.1 " not in log.replace("http://127.0.0.1", "") and "secret-name" not in log
    assert "politicians" not in log.split("Booting worker")[-1]  # no result in the log


def test_several_photos_of_one_person_get_one_answer_and_two_people_are_refused(faces_server):
    """Through real gunicorn: the template of two photos answers once; two people are refused; the rate
    limit counts photos; the answers are the ones the OpenAPI document describes."""
    document = requests.get(f"{faces_server.url}/api/v1/openapi.json", timeout=10).json()
    obama = [("image", ("a.jpg", OBAMA_HELD_OUT.read_bytes())), ("image", ("b.jpg", OBAMA_OTHER.read_bytes()))]
    answer = requests.post(f"{faces_server.url}/api/v1/check", files=obama, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    jsonschema.validate(body, _schema(document, "CheckAnswer"))
    assert [p["error"] for p in body["photos"]] == [None, None] and body["quality"] == "good"
    assert {r["dataset"]: r["verdict"] for r in body["results"]} == {"politicians": "match", "actors": "no_match"}
    # A 2-photo check costs 2 of the 60 a minute: the next one-photo check finds 1 fewer left again.
    single = requests.post(f"{faces_server.url}/api/v1/check", files=obama[:1], timeout=60)
    assert int(answer.headers["X-RateLimit-Remaining"]) - int(single.headers["X-RateLimit-Remaining"]) == 1
    double = requests.post(f"{faces_server.url}/api/v1/check", files=obama, timeout=60)
    assert int(single.headers["X-RateLimit-Remaining"]) - int(double.headers["X-RateLimit-Remaining"]) == 2

    # Obama, then Biden with the face of the group photo chosen as the second photo's: refused, not averaged.
    group = (FACES / "groups" / "obama_and_biden.jpg").read_bytes()
    mixed = [obama[0], ("image", ("g.jpg", group)), ("face", (None, "0,1"))]
    refused = requests.post(f"{faces_server.url}/api/v1/check", files=mixed, timeout=60)
    assert refused.status_code == 422
    body = refused.json()
    jsonschema.validate(body, _schema(document, "Error"))
    assert body["error"]["code"] == "not_same_person"
    assert "photo 1 and photo 2 (face 1) do not look like the same person" in body["error"]["message"]
    assert [p["differs_from"] for p in body["photos"]] == [[1], [0]] and body["photos"][1]["face"]["number"] == 1
    assert "results" not in body
    too_many = requests.post(f"{faces_server.url}/api/v1/check", files=obama * 3, timeout=60)
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "too_many_photos"


def test_an_oversized_upload_still_gets_its_413(faces_server):
    """The client is still sending when the server decides: it must read the answer, not a reset."""
    body = os.urandom(24 * 1024 * 1024)
    head = (
        "POST /api/v1/check HTTP/1.1\r\nHost: test\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    port = int(faces_server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head)
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413")
    assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "upload_too_large"


def test_odd_uploads_get_clear_answers_and_the_service_stays_healthy(faces_server):
    session = requests.Session()
    pids = faces_server.worker_pids()
    problems = []
    count = 0
    for upload in cases(OBAMA_HELD_OUT):
        count += 1
        problem = judge(upload, send(faces_server.url, upload, session))
        if problem:
            problems.append(f"{upload.name}: {problem}")
    assert count >= 25
    assert problems == []
    assert session.get(f"{faces_server.url}/readyz", timeout=10).status_code == 200
    assert faces_server.worker_pids() == pids  # no worker died on the way


def test_no_file_is_touched_while_answering(faces_index, tmp_path):
    """strace every process of the service during checks of multi-megabyte uploads."""
    index_dir, _ = faces_index
    photo = Image.open(person_photos("biden")[0]).convert("RGB")
    big = io.BytesIO()
    photo.resize((photo.width * 2, photo.height * 2)).save(big, "PNG")
    assert len(big.getvalue()) > 5_000_000
    with serve(index_dir, tmp_path / "server.log", workers=2, env={"PHOTOCHECK_METRICS": "1"}) as server:
        # Both workers loaded (each creates its metric files then, in memory): only answering is traced.
        deadline = time.monotonic() + 120
        while server.output().count("] serving ") < 2 and time.monotonic() < deadline:
            time.sleep(0.3)
        biden = person_photos("biden")[1].read_bytes()
        several = [("image", ("big.png", big.getvalue())), ("image", ("me.jpg", biden))]
        with traced([server.process.pid, *server.worker_pids()], tmp_path / "trace.txt") as trace_file:
            for body, name in ((big.getvalue(), "big.png"), (OBAMA_HELD_OUT.read_bytes(), "me.jpg")):
                for _ in range(2):
                    response = requests.post(f"{server.url}/api/v1/check", files={"image": (name, body)}, timeout=120)
                    assert response.status_code == 200 and response.json()["faces_detected"] >= 1
                    assert "photocheck_check_stage_seconds" in requests.get(f"{server.url}/metrics", timeout=30).text
            # Several photos of one person in one request: both held in memory, searched together, dropped.
            response = requests.post(f"{server.url}/api/v1/check", files=several, timeout=120)
            assert response.status_code == 200 and len(response.json()["photos"]) == 2
    trace = trace_file.read_text(errors="replace")
    assert "write(" in trace or "sendto(" in trace or "writev(" in trace  # strace did see the traffic
    assert file_writes(trace) == []


def test_hup_reloads_a_changed_index_without_dropping_a_request(faces_index, dlib_embedder, tmp_path):
    from indexer.pipeline import build_dataset

    index_dir, _ = faces_index
    copy = tmp_path / "index"
    shutil.copytree(index_dir, copy)
    with serve(copy, tmp_path / "server.log", workers=2) as server:
        failures, answers = [], []
        stop = threading.Event()

        def hammer():
            session = requests.Session()
            while not stop.is_set():
                try:
                    response = session.get(f"{server.url}/api/v1/datasets", timeout=30)
                    if response.status_code != 200:
                        failures.append(response.status_code)
                    else:
                        answers.append(len(response.json()["datasets"]))
                except requests.RequestException as exc:
                    failures.append(repr(exc))

        threads = [threading.Thread(target=hammer) for _ in range(2)]
        for thread in threads:
            thread.start()
        build_dataset(
            copy, FACES / "people" / "alex_lacamoire", dataset="musicians", embedder=dlib_embedder, progress=False
        )
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (not answers or answers[-1] != 3):
            time.sleep(0.2)
        time.sleep(1)
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert answers[0] == 2 and answers[-1] == 3
    assert len(answers) > 20


#: The Dockerfile's user.
CONTAINER_UID = 10001


def test_an_index_built_by_one_user_is_served_by_the_containers_user(faces_index, tmp_path):
    """The index as its builder (root here) left it, mode bits and all, served by uid 10001."""
    if os.geteuid() != 0:
        pytest.skip("switching to the container's user needs root (CI runs as root)")
    index_dir, held_out = faces_index
    shared = Path(tempfile.mkdtemp(prefix="photocheck-shared-"))  # pytest's own folders are 0700
    try:
        shared.chmod(0o755)
        shutil.copytree(index_dir, shared / "index")  # copy2: the files keep the modes the build gave them
        assert (shared / "index" / "manifest.json").stat().st_mode & 0o777 == 0o644
        env = {"HOME": "/nonexistent"}
        with serve(shared / "index", tmp_path / "server.log", env=env, as_user=CONTAINER_UID) as server:
            assert {p.stat().st_uid for p in map(lambda pid: Path(f"/proc/{pid}"), server.worker_pids())} == {
                CONTAINER_UID
            }
            with open(held_out["obama"][0], "rb") as f:
                answer = requests.post(f"{server.url}/api/v1/check", files={"image": ("me.jpg", f)}, timeout=60)
            assert answer.status_code == 200, answer.text
            assert {r["dataset"]: r["verdict"] for r in answer.json()["results"]}["politicians"] == "match"
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_the_access_log_gives_the_size_of_static_files(faces_server):
    script = requests.get(f"{faces_server.url}/static/check-ui.js", timeout=10)
    assert script.status_code == 200
    time.sleep(0.3)
    assert f'"GET /static/check-ui.js" 200 {len(script.content)} ' in faces_server.output()


def test_a_405_says_which_methods_are_allowed(client):
    response = client.delete("/api/v1/check")
    assert response.status_code == 405 and response.get_json()["error"]["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"POST", "OPTIONS"}


def test_client_ips_are_logged_only_when_turned_on(faces_index, tmp_path):
    index_dir, _ = faces_index
    with serve(index_dir, tmp_path / "server.log", env={"PHOTOCHECK_LOG_CLIENT_IP": "1"}) as server:
        requests.get(f"{server.url}/healthz", timeout=10)
        time.sleep(0.3)
        assert re.search(r"^127\.0\.0\.1 .*\"GET /healthz\" 200", server.output(), re.MULTILINE)


def test_the_trace_reader_sees_file_writes():
    trace = "\n".join(
        [
            '101 openat(AT_FDCWD</>, "/tmp/upload-x", O_RDWR|O_CREAT|O_EXCL, 0600) = 7</tmp/upload-x>',
            '101 write(7</tmp/upload-x>, "\\377\\330"..., 65536) = 65536',
            '101 rename("/srv/a", "/srv/b") = 0',
            '101 write(5<socket:[4242]>, "HTTP/1.1 200 OK"..., 17) = 17',
            '101 write(2</var/log/x.log>, "access line", 11) = 11',
            '101 openat(AT_FDCWD</>, "/srv/index/vectors/1.faiss", O_RDONLY|O_CLOEXEC) = 8</srv/index/vectors/1.faiss>',
        ]
    )
    assert [line.split()[1].split("(")[0] for line in file_writes(trace)] == ["openat", "write", "rename"]
