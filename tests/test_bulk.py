"""Bulk checks: API keys, POST /api/v1/bulk, the `photocheck bulk` client and its reports.

The members are 198 LFW photos of people A-D (plus a photo with a hostile name and a file that is
not a photo), linked, never copied, into a temporary folder. The index holds other photos of a third
of those people in ``press`` and of another third in ``scraped`` (a manifest with source URLs, photo
ids and licences, added with --evidence); the last third is in neither.
"""

from __future__ import annotations

import csv
import http.server
import io
import json
import math
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest
import requests
from click.testing import CliRunner
from conftest import FACES, LFW, person_photos
from PIL import Image
from servers import file_writes, serve, traced

from indexer import report as reports
from indexer.bulk import KeyRefused, ServerChecker, run_bulk
from indexer.cli import cli
from indexer.keys import KeyStore, hash_key
from service import create_app

MEMBERS = 200
HOSTILE = "<img src=x onerror=alert(1)>.jpg"
BAD = "not-a-photo.jpg"
runner = CliRunner()


# -- the data: LFW members, an index of two datasets, a key ----------------------------------------


def _people() -> list[tuple[str, list[Path]]]:
    people = []
    for folder in sorted((LFW / "images").iterdir()):
        if folder.name[0] in "ABCD":
            photos = sorted(folder.iterdir())
            if len(photos) >= 2:
                people.append((folder.name, photos))
    return people


@pytest.fixture(scope="module")
def lfw(tmp_path_factory, dlib_embedder):
    """Members (symlinks), an index of ``press`` and ``scraped`` (evidence), and which person is where."""
    from indexer.pipeline import build_dataset

    base = tmp_path_factory.mktemp("bulk")
    members = base / "members"
    press = base / "press"
    rows = []
    where: dict[str, str | None] = {}
    count = 0
    for number, (name, photos) in enumerate(_people()):
        if count >= MEMBERS - 2:
            break
        dataset = ("press", "scraped", None)[number % 3]
        where[name] = dataset
        if dataset == "press":
            (press / name).mkdir(parents=True)
            (press / name / photos[0].name).symlink_to(photos[0])
        elif dataset == "scraped":
            photo_id = f"lfw-{number:05d}"
            rows.append(
                {
                    "path": str(photos[0]),
                    "photo_id": photo_id,
                    "source_url": f"https://photos.example.org/p/{photo_id}",
                    "license": "CC BY-NC 2.0",
                    "uploader": f"uploader-{number}",
                }
            )
        for photo in photos[1:4][: MEMBERS - 2 - count]:
            (members / name).mkdir(parents=True, exist_ok=True)
            (members / name / photo.name).symlink_to(photo)
            count += 1
    # An LFW photo whose name a browser would run if it were not escaped, and a file that is no photo.
    (members / HOSTILE).symlink_to(_people()[0][1][1])
    (members / BAD).write_bytes(b"this is not a photo\n")
    manifest = base / "scraped.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    index = base / "index"
    common = {"embedder": dlib_embedder, "progress": False}
    build_dataset(index, press, dataset="press", fields={"title": "Press photos 2007"}, **common)
    build_dataset(
        index,
        manifest,
        dataset="scraped",
        fields={
            "title": "Scraped faces",
            "evidence": True,
            "disclosure_url": "https://example.org/scraped",
            "removal_url": "https://example.org/scraped/opt-out",
        },
        **common,
    )
    with KeyStore(index / "keys.sqlite") as store:
        _, key = store.create("Members' Union")
    ids = sorted(p.relative_to(members).as_posix() for p in members.rglob("*") if not p.is_dir())
    assert len(ids) == MEMBERS
    return {"base": base, "members": members, "index": index, "key": key, "where": where, "ids": ids}


def person_of(photo_id: str) -> str:
    return photo_id.split("/")[0]


@pytest.fixture(scope="module")
def server(lfw, tmp_path_factory):
    """`photocheck serve` with 2 workers over the LFW index, keys in the index folder."""
    log = tmp_path_factory.mktemp("bulk-server") / "server.log"
    with serve(lfw["index"], log, workers=2) as running:
        deadline = time.monotonic() + 90  # /readyz answers when one worker is up; wait for both
        while running.output().count("serving ") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        yield running


def new_key(lfw, rate: str = "600/minute", name: str = "test") -> tuple[int, str]:
    with KeyStore(lfw["index"] / "keys.sqlite") as store:
        key, secret = store.create(name, rate)
    return key.id, secret


def bulk_requests(log: str, status: int | None = None) -> int:
    pattern = r'"POST /api/v1/bulk" ' + (str(status) if status else r"\d{3}")
    return len(re.findall(pattern, log))


# -- keys -----------------------------------------------------------------------------------------


def test_keys_cli_prints_the_key_alone_and_stores_only_its_hash(tmp_path):
    db = tmp_path / "keys.sqlite"
    created = runner.invoke(cli, ["keys", "create", "--keys-db", str(db), "--name", "Advocates", "--rate", "30/min"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert created.stdout == key + "\n" and re.fullmatch(r"pck_[A-Za-z0-9_-]{43}", key)
    assert "key 1 for Advocates (30/minute)" in created.stderr and "not shown again" in created.stderr
    stored = db.read_bytes()
    assert key.encode() not in stored and key[4:].encode() not in stored
    assert hash_key(key).encode() in stored

    second = runner.invoke(cli, ["keys", "create", "--keys-db", str(db), "--name", "Other"]).stdout.strip()
    assert second != key
    listing = runner.invoke(cli, ["keys", "list", "--keys-db", str(db)]).stdout
    assert re.search(r"^\s+1  pck_\S{4}\.\.\.  Advocates\s+30/minute\s+created \S+  active$", listing, re.M)
    assert re.search(r"^\s+2  .*Other\s+120/minute", listing, re.M)

    revoked = runner.invoke(cli, ["keys", "revoke", "--keys-db", str(db), "1"])
    assert revoked.exit_code == 0 and revoked.stdout.startswith("revoked key 1 (Advocates) at ")
    assert runner.invoke(cli, ["keys", "revoke", "--keys-db", str(db), "1"]).stdout.startswith("already revoked")
    rows = json.loads(runner.invoke(cli, ["keys", "list", "--keys-db", str(db), "--json"]).stdout)
    assert [(r["id"], r["revoked_at"] is not None) for r in rows] == [(1, True), (2, False)]
    assert "key" not in rows[0] and all(r["hint"] == k[:8] for r, k in zip(rows, (key, second), strict=True))

    for args, code in (
        (["keys", "revoke", "--keys-db", str(db), "9"], "[key_not_found]"),
        (["keys", "create", "--keys-db", str(db), "--name", "x", "--rate", "lots"], "[bad_rate]"),
        (["keys", "list", "--keys-db", str(tmp_path / "none.sqlite")], "[key_error]"),
        (["keys", "create", "--index", str(tmp_path / "no-index"), "--name", "x"], "[index_not_found]"),
    ):
        failed = runner.invoke(cli, args)
        assert failed.exit_code == 1 and code in failed.stderr and failed.stdout == ""


# -- the endpoint, through Flask's test client ---------------------------------------------------


@pytest.fixture(scope="module")
def app(lfw):
    return create_app({"INDEX": str(lfw["index"]), "RATE_LIMIT": "1000/minute", "BULK_MAX_IMAGES": 4})


def photo_of(lfw, dataset: str | None) -> Path:
    """A member photo of someone in ``dataset`` (None: in no dataset)."""
    name = next(n for n, d in lfw["where"].items() if d == dataset)
    return next((lfw["members"] / name).iterdir())


def parts(*items: tuple[str, bytes]) -> dict:
    return {"image": [(io.BytesIO(data), name) for name, data in items]}


def test_keys_are_required_and_checked_on_every_request(app, lfw):
    client = app.test_client()
    key_id, secret = new_key(lfw, name="to revoke")
    photo = ("me.jpg", b"not read before the key is")
    for headers, code in (
        ({}, "missing_key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing_key"),
        ({"Authorization": "Bearer pck_wrong"}, "bad_key"),
        ({"Authorization": f"Bearer {secret}x"}, "bad_key"),
    ):
        response = client.post("/api/v1/bulk", headers=headers, data=parts(photo))
        assert response.status_code == 401 and response.get_json()["error"]["code"] == code
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    good = client.post("/api/v1/bulk", headers={"Authorization": f"Bearer {secret}"}, data=parts(photo))
    assert good.status_code == 200
    with KeyStore(lfw["index"] / "keys.sqlite") as store:
        store.revoke(key_id)
    refused = client.post("/api/v1/bulk", headers={"Authorization": f"Bearer {secret}"}, data=parts(photo))
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "revoked_key"


def test_each_photo_gets_its_own_answer_and_errors_stay_its_own(app, lfw):
    client = app.test_client()
    headers = {"Authorization": f"Bearer {lfw['key']}"}
    press, scraped, nobody = (photo_of(lfw, d) for d in ("press", "scraped", None))
    response = client.post(
        "/api/v1/bulk",
        headers=headers,
        data=parts(
            ("a/press.jpg", press.read_bytes()),
            ("junk.pdf", b"%PDF-1.5 not a photo"),
            ("empty.jpg", b""),
            ("b/scraped.jpg", scraped.read_bytes()),
        ),
    )
    assert response.status_code == 200
    body = response.get_json()
    assert [r["id"] for r in body["results"]] == ["a/press.jpg", "junk.pdf", "empty.jpg", "b/scraped.jpg"]
    first, junk, empty, last = body["results"]
    assert junk["error"]["code"] == "unsupported_format" and junk["results"] == []
    assert empty["error"]["code"] == "unreadable_image"
    assert {r["dataset"]: r["verdict"] for r in first["results"]}["press"] == "match"
    assert {r["dataset"]: r["verdict"] for r in last["results"]}["scraped"] == "match"
    assert body["index"]["datasets"] == 2

    too_many = client.post("/api/v1/bulk", headers=headers, data=parts(*[(f"{n}.jpg", b"x") for n in range(5)]))
    assert too_many.status_code == 400  # outside the schema's maxItems, like the other malformed requests
    assert too_many.get_json()["error"]["code"] == "too_many_images" and too_many.get_json()["max_images"] == 4
    none = client.post("/api/v1/bulk", headers=headers, data={"face": "0"})
    assert none.status_code == 400 and none.get_json()["error"]["code"] == "malformed_request"
    unnamed = client.post("/api/v1/bulk", headers=headers, data={"image": "no filename"})
    assert unnamed.status_code == 400 and "filename" in unnamed.get_json()["error"]["message"]
    nobody_answer = client.post("/api/v1/bulk", headers=headers, data=parts(("n.jpg", nobody.read_bytes())))
    assert {r["verdict"] for r in nobody_answer.get_json()["results"][0]["results"]} <= {"no_match", "possible"}


def test_evidence_only_for_keyed_callers_and_evidence_datasets(app, lfw):
    client = app.test_client()
    scraped = photo_of(lfw, "scraped")
    answer = client.post(
        "/api/v1/bulk", headers={"Authorization": f"Bearer {lfw['key']}"}, data=parts(("m.jpg", scraped.read_bytes()))
    ).get_json()["results"][0]
    results = {r["dataset"]: r for r in answer["results"]}
    assert "evidence" not in results["press"]  # not added with --evidence
    evidence = results["scraped"]["evidence"]
    assert evidence and len(evidence) <= 10
    top = evidence[0]
    assert set(top) == {"key", "source_url", "photo_id", "license", "confidence"}
    assert top["key"] == top["photo_id"] and top["source_url"] == f"https://photos.example.org/p/{top['photo_id']}"
    assert top["license"] == "CC BY-NC 2.0" and top["confidence"] >= 0.5
    assert "uploader" not in json.dumps(evidence)  # only the references a removal request needs

    public = client.post("/api/v1/check", data={"image": (io.BytesIO(scraped.read_bytes()), "m.jpg")})
    assert public.status_code == 200
    text = public.get_data(as_text=True)
    assert "evidence" not in text and "photos.example.org" not in text and "lfw-" not in text
    assert {r["dataset"]: r["verdict"] for r in public.get_json()["results"]}["scraped"] == "match"


def test_the_default_check_is_unchanged(lfw, dlib_embedder):
    from indexer.check import Checker, LoadedIndex

    checker = Checker(LoadedIndex(lfw["index"]), dlib_embedder)
    data = photo_of(lfw, "scraped").read_bytes()
    plain, with_evidence = checker.check(data), checker.check(data, evidence=True)
    assert all(set(r) == {"dataset", "title", "verdict", "confidence"} for r in plain["results"])
    assert [{k: r[k] for k in plain["results"][0]} for r in with_evidence["results"]] == plain["results"]


def test_each_key_has_its_own_rate_limit(app, lfw):
    client = app.test_client()
    _, slow = new_key(lfw, "2/minute", name="slow")
    _, other = new_key(lfw, "2/minute", name="other")
    photo = parts(("x.jpg", b"x"))
    statuses = [
        client.post("/api/v1/bulk", headers={"Authorization": f"Bearer {slow}"}, data=parts(("x.jpg", b"x")))
        for _ in range(3)
    ]
    assert [s.status_code for s in statuses] == [200, 200, 429]
    refused = statuses[-1]
    assert refused.get_json()["error"]["code"] == "rate_limited" and int(refused.headers["Retry-After"]) > 0
    assert "2/minute" in refused.get_json()["error"]["message"]
    assert client.post("/api/v1/bulk", headers={"Authorization": f"Bearer {other}"}, data=photo).status_code == 200


def test_bulk_uploads_have_their_own_size_limit(lfw):
    app_ = create_app({"INDEX": str(lfw["index"]), "BULK_MAX_UPLOAD_MB": 1, "RATE_LIMIT": "1000/minute"})
    client = app_.test_client()
    headers = {"Authorization": f"Bearer {lfw['key']}"}
    big = client.post("/api/v1/bulk", headers=headers, data=parts(("a.jpg", b"\xff\xd8\xff" + b"0" * 1_500_000)))
    assert big.status_code == 413 and big.get_json()["error"]["code"] == "upload_too_large"
    assert "1 MB" in big.get_json()["error"]["message"]
    # The single check keeps its own limit (15 MB); 20 MB of photos fit the bulk default (100 MB).
    default = create_app({"INDEX": str(lfw["index"]), "RATE_LIMIT": "1000/minute"})
    assert default.config["MAX_CONTENT_LENGTH"] == 15 * 1024 * 1024
    blob = b"\xff\xd8\xff" + b"0" * 10_000_000
    many = default.test_client().post("/api/v1/bulk", headers=headers, data=parts(("a", blob), ("b", blob)))
    assert (
        many.status_code == 200 and [r["error"]["code"] for r in many.get_json()["results"]] == ["unreadable_image"] * 2
    )
    single = default.test_client().post(
        "/api/v1/check", data=b"\xff\xd8\xff" + b"0" * 16_000_000, content_type="image/jpeg"
    )
    assert single.status_code == 413


def _schema(document: dict, name: str) -> dict:
    return {**document["components"]["schemas"][name], "components": document["components"]}


def test_openapi_describes_the_real_bulk_answers(app, lfw):
    from openapi_spec_validator import validate

    client = app.test_client()
    document = client.get("/api/v1/openapi.json").get_json()
    validate(document)
    operation = document["paths"]["/api/v1/bulk"]["post"]
    assert operation["security"] == [{"apiKey": []}]
    scheme = document["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert {"200", "400", "401", "413", "429", "503"} <= set(operation["responses"])
    headers = {"Authorization": f"Bearer {lfw['key']}"}
    answer = client.post(
        "/api/v1/bulk",
        headers=headers,
        data=parts(("s.jpg", photo_of(lfw, "scraped").read_bytes()), ("bad.jpg", b"<svg/>")),
    )
    jsonschema.validate(answer.get_json(), _schema(document, "BulkAnswer"))
    assert any("evidence" in r for r in answer.get_json()["results"][0]["results"])
    for refused in (
        client.post("/api/v1/bulk", data=parts(("x", b"x"))),
        client.post("/api/v1/bulk", headers=headers, data=parts(*[(str(n), b"x") for n in range(5)])),
    ):
        jsonschema.validate(refused.get_json(), _schema(document, "Error"))


# -- reports ---------------------------------------------------------------------------------------

HOSTILE_RECORDS = [
    {
        "id": '=HYPERLINK("http://evil.example")',
        "faces_detected": 1,
        "face": {"number": 0, "box": [1, 2, 3, 4], "quality": "good"},
        "results": [
            {
                "dataset": "scraped",
                "title": "<b>Scraped</b>",
                "verdict": "match",
                "confidence": 0.97,
                "evidence": [
                    {
                        "key": "k<1>",
                        "source_url": "javascript:alert(1)",
                        "photo_id": "<script>alert(1)</script>",
                        "license": "CC",
                        "confidence": 0.97,
                    },
                    {
                        "key": "k2",
                        "source_url": 'https://ok.example/p?a=1&b="2"',
                        "photo_id": "p2",
                        "license": None,
                        "confidence": 0.6,
                    },
                ],
            },
            {"dataset": "press", "title": "Press", "verdict": "no_match", "confidence": 0.01},
        ],
        "error": None,
    },
    {
        "id": '\'quoted, "and" multi\nline',
        "faces_detected": 0,
        "face": None,
        "results": [],
        "error": {"code": "no_face", "message": "No face, =1+1."},
    },
    {
        "id": "-plain.jpg",
        "faces_detected": 2,
        "face": {"number": 0, "box": [5, 6, 7, 8], "quality": "low"},
        "results": [{"dataset": "press", "title": "Press", "verdict": "possible", "confidence": 0.5}],
        "error": None,
    },
]


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_reports_read_back_what_they_hold(tmp_path, suffix):
    path = tmp_path / f"report{suffix}"
    about = {"checked_with": {"server": "http://x"}, "index": None, "datasets": [{"name": "press", "title": "Press"}]}
    reports.write_report(path, HOSTILE_RECORDS, about)
    assert reports.load_report(path) == {r["id"]: r for r in HOSTILE_RECORDS}
    if suffix == ".csv":
        rows = list(csv.reader(io.StringIO(path.read_text(), newline="")))
        assert rows[0] == list(reports.CSV_COLUMNS)
        # Nothing a spreadsheet would run as a formula: leading = + - @ ' are quoted.
        assert {row[0] for row in rows[1:]} == {
            '\'=HYPERLINK("http://evil.example")',
            "''quoted, \"and\" multi\nline",
            "'-plain.jpg",
        }
    else:
        document = json.loads(path.read_text())
        assert document["format"] == "photocheck-bulk-report" and document["summary"]["errors"] == 1
        assert document["summary"]["datasets"]["press"] == {"match": 0, "possible": 1, "no_match": 1, "errors": 1}


def test_a_file_that_is_not_a_report_is_never_overwritten(tmp_path):
    other = tmp_path / "members.csv"
    other.write_text("name,email\nA,a@example.org\n")
    with pytest.raises(reports.ReportError, match="not a photocheck bulk report"):
        reports.load_report(other)
    (tmp_path / "x.json").write_text('{"some": "thing"}')
    with pytest.raises(reports.ReportError):
        reports.load_report(tmp_path / "x.json")
    with pytest.raises(reports.ReportError, match=r"\.csv or \.json"):
        reports.load_report(tmp_path / "report.xlsx")


def test_the_html_summary_escapes_what_it_shows():
    page = reports.render_html(
        HOSTILE_RECORDS, {"datasets": [{"name": "scraped", "title": "<b>Scraped</b>", "removal_url": "javascript:x"}]}
    )
    assert "<script" not in page and "<b>" not in page and "javascript:" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown as text, and not linked
    assert 'href="https://ok.example/p?a=1&amp;b=&#34;2&#34;"' in page
    assert "<svg" in page and "<img" not in page and 'http-equiv="Content-Security-Policy"' in page
    assert re.search(r"<td class=\"n\">1</td>", page)
    # A member whose photo held several faces is told which was checked; a small face is marked.
    assert "2 faces in this photo: the largest was checked" in page
    assert page.count("the face is small or blurred") == 1


# -- the client against a flaky fake server (no faces involved) -------------------------------------


class FlakyServer(http.server.ThreadingHTTPServer):
    """Drops the first connection, answers 503, then 429, then takes at most 2 photos per request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FlakyHandler)
        self.script: list = ["drop", 503, 429]
        self.requests: list[list[str]] = []
        self.lock = threading.Lock()

    def handle_error(self, request, client_address) -> None:
        pass  # the dropped connection, on purpose

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FlakyHandler(http.server.BaseHTTPRequestHandler):
    server: FlakyServer

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send(200, {"index": {"version": 1}, "datasets": [{"name": "d", "title": "D"}]})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ids = re.findall(rb'filename="([^"]*)"', body)
        with self.server.lock:
            step = self.server.script.pop(0) if self.server.script else None
            self.server.requests.append([i.decode() for i in ids])
        if self.headers.get("Authorization") != "Bearer good":
            return self._send(401, {"error": {"code": "bad_key", "message": "Unknown key."}})
        if step == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        if step == 503:
            return self._send(503, {"error": {"code": "index_not_loaded", "message": "Loading."}})
        if step == 429:
            return self._send(429, {"error": {"code": "rate_limited", "message": "Wait."}}, {"Retry-After": "0"})
        if len(ids) > 2:
            return self._send(400, {"error": {"code": "too_many_images", "message": "Fewer."}, "max_images": 2})
        results = [
            {
                "id": i.decode(),
                "faces_detected": 1,
                "faces": [],
                "face": {"number": 0, "box": [0, 0, 1, 1], "quality": "good"},
                "results": [{"dataset": "d", "title": "D", "verdict": "no_match", "confidence": 0.0}],
                "error": None,
            }
            for i in ids
        ]
        return self._send(200, {"index": {"version": 1}, "results": results})


@pytest.fixture
def flaky():
    server_ = FlakyServer()
    thread = threading.Thread(target=server_.serve_forever, daemon=True)
    thread.start()
    yield server_
    server_.shutdown()
    server_.server_close()


def test_the_client_retries_backs_off_and_learns_the_batch_limit(flaky, tmp_path):
    source = tmp_path / "photos"
    source.mkdir()
    for n in range(7):
        (source / f"p{n}.jpg").write_bytes(b"x")
    waits: list[float] = []
    checker = ServerChecker(flaky.url, "good", retries=3, sleep=waits.append)
    summary = run_bulk(source, tmp_path / "r.json", checker, batch_size=5, concurrency=1, progress=False)
    assert summary.checked == 7 and summary.members == 7 and summary.errors == 0
    assert summary.retries == 2 and summary.rate_limited == 1  # the dropped connection and the 503; the 429
    sent = [ids for ids in flaky.requests if ids]
    assert sent[:4] == [["p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg", "p4.jpg"]] * 4  # drop, 503, 429, too_many_images
    assert all(len(ids) <= 2 for ids in sent[4:]) and sorted(i for ids in sent[4:] for i in ids) == [
        f"p{n}.jpg" for n in range(7)
    ]
    assert len(waits) >= 2 and all(w <= 30 for w in waits)
    document = json.loads((tmp_path / "r.json").read_text())
    assert [m["id"] for m in document["members"]] == [f"p{n}.jpg" for n in range(7)]
    assert (tmp_path / "r.html").is_file()

    again = run_bulk(source, tmp_path / "r.json", checker, progress=False)
    assert again.checked == 0 and again.skipped == 7


def test_a_refused_key_stops_the_run_and_leaves_no_report(flaky, tmp_path):
    source = tmp_path / "photos"
    source.mkdir()
    (source / "a.jpg").write_bytes(b"x")
    flaky.script = []
    with pytest.raises(KeyRefused) as refused:
        run_bulk(source, tmp_path / "r.csv", ServerChecker(flaky.url, "bad"), progress=False)
    assert refused.value.code == "bad_key"
    assert not (tmp_path / "r.csv").exists() and not (tmp_path / "r.html").exists()


# -- the real thing: gunicorn, the CLI client, a kill, a resume -------------------------------------


def bulk_command(server_url: str, key: str, source: Path, report: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "indexer.cli",
        "bulk",
        "--server",
        server_url,
        "--key",
        key,
        str(source),
        "-o",
        str(report),
        "--no-progress",
        *extra,
    ]


@pytest.fixture(scope="module")
def finished_run(lfw, server, tmp_path_factory):
    """200 photos against the 2-worker server: killed once the report holds half of them, then resumed."""
    out = tmp_path_factory.mktemp("bulk-run")
    report = out / "members.csv"
    command = bulk_command(server.url, lfw["key"], lfw["members"], report, "--concurrency", "4", "--batch", "10")
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and first.poll() is None:
        if report.exists() and len(reports.load_report(report)) >= MEMBERS // 2:
            break
        time.sleep(0.1)
    assert first.poll() is None, f"the first run ended before it was killed: {first.communicate()}"
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_before = reports.load_report(report)  # a valid report, whatever the moment of the kill
    assert MEMBERS // 2 <= len(done_before) < MEMBERS
    assert not (out / "members.html").exists()

    started = time.perf_counter()
    second = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    assert second.returncode == 0, second.stderr
    return {
        "report": report,
        "done_before": done_before,
        "summary": json.loads(second.stdout),
        "seconds": seconds,
    }


def test_a_killed_run_resumes_without_redoing_done_photos(finished_run, lfw, server):
    summary = finished_run["summary"]
    done_before = finished_run["done_before"]
    assert summary["skipped"] == len(done_before)
    assert summary["checked"] == MEMBERS - len(done_before) and summary["members"] == MEMBERS
    final = reports.load_report(finished_run["report"])
    assert sorted(final) == lfw["ids"]
    for photo_id, record in done_before.items():
        assert final[photo_id] == record  # kept as it was, not checked again
    # Requests the server answered in both runs: the first run's batches, then only the rest, in batches
    # of 10. When the first run was killed, up to 5 of its batches could be answered but not yet in its
    # report: the client keeps one batch more than its 4 threads pending (indexer/bulk.py).
    answered = bulk_requests(server.output(), 200)
    assert answered <= math.ceil(len(done_before) / 10) + 5 + math.ceil((MEMBERS - len(done_before)) / 10)
    assert summary["requests"] == math.ceil((MEMBERS - len(done_before)) / 10)
    assert "pck_" not in server.output() and "Aaron" not in server.output() and "scraped" not in server.output()


def test_the_report_equals_single_checks(finished_run, lfw, dlib_embedder):
    from indexer.check import Checker, LoadedIndex

    checker = Checker(LoadedIndex(lfw["index"]), dlib_embedder)
    final = reports.load_report(finished_run["report"])
    matched = {"press": 0, "scraped": 0}
    for photo_id in lfw["ids"]:
        single = checker.check((lfw["members"] / photo_id).read_bytes())
        record = final[photo_id]
        if single["error"]:
            assert record["error"]["code"] == single["error"]["code"], photo_id
            continue
        assert record["error"] is None
        assert [(r["dataset"], r["verdict"], r["confidence"]) for r in record["results"]] == [
            (r["dataset"], r["verdict"], r["confidence"]) for r in single["results"]
        ], photo_id
        by_name = {r["dataset"]: r for r in record["results"]}
        assert "evidence" not in by_name["press"] and "evidence" in by_name["scraped"]
        for name in matched:
            if by_name[name]["verdict"] == "match":
                matched[name] += 1
        if by_name["scraped"]["verdict"] != "no_match":
            assert by_name["scraped"]["evidence"], photo_id
    assert final[BAD]["error"]["code"] == "unsupported_format"
    # Most members of a dataset's people are found there: the report is worth acting on.
    people = {name: sum(1 for i in lfw["ids"] if lfw["where"].get(person_of(i)) == name) for name in matched}
    assert all(matched[name] >= 0.7 * people[name] for name in matched), (matched, people)


def test_a_rate_limited_client_backs_off_and_finishes(lfw, server, tmp_path):
    _, key = new_key(lfw, "1/second", name="slow organisation")
    source = tmp_path / "few"
    source.mkdir()
    for photo_id in lfw["ids"][:8]:
        (source / photo_id.replace("/", "_")).symlink_to(lfw["members"] / photo_id)
    before = server.output()
    report = tmp_path / "few.json"
    result = subprocess.run(
        bulk_command(server.url, key, source, report, "--batch", "1", "--concurrency", "4", "--json"),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["checked"] == summary["members"] == 8 and summary["rate_limited"] > 0
    time.sleep(0.5)  # the access log line follows the answer
    log = server.output()[len(before) :]
    assert bulk_requests(log, 429) == summary["rate_limited"] and bulk_requests(log, 200) == 8
    assert len(json.loads(report.read_text())["members"]) == 8


def test_a_revoked_key_is_refused_by_the_running_server(lfw, server, tmp_path):
    key_id, key = new_key(lfw, name="revoked while serving")
    one = ("a.jpg", b"x", "image/jpeg")
    assert (
        requests.post(
            f"{server.url}/api/v1/bulk", files=[("image", one)], headers={"Authorization": f"Bearer {key}"}, timeout=30
        ).status_code
        == 200
    )
    revoked = runner.invoke(cli, ["keys", "revoke", "--index", str(lfw["index"]), str(key_id)])
    assert revoked.exit_code == 0
    for _ in range(4):  # every worker, at once
        response = requests.post(
            f"{server.url}/api/v1/bulk", files=[("image", one)], headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        assert response.status_code == 401 and response.json()["error"]["code"] == "revoked_key"
    result = subprocess.run(
        bulk_command(server.url, key, lfw["members"], tmp_path / "r.csv"), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and "[revoked_key]" in result.stderr and not (tmp_path / "r.csv").exists()


def test_a_local_run_needs_no_server(lfw, tmp_path):
    source = tmp_path / "few"
    source.mkdir()
    picks = [photo_of(lfw, "scraped"), photo_of(lfw, "press"), photo_of(lfw, None)]
    for photo in picks:
        (source / photo.name).symlink_to(photo)
    result = runner.invoke(
        cli, ["bulk", "--index", str(lfw["index"]), str(source), "-o", str(tmp_path / "local.json"), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"^3 photos checked in [\d.]+s \([\d.]+ photos/s\)$", result.stdout, re.M)
    assert re.search(r"^  scraped\s+1\s+\d\s+\d\s+0$", result.stdout, re.M)
    document = json.loads((tmp_path / "local.json").read_text())
    assert document["checked_with"] == {"index": str(lfw["index"])}
    members = {m["id"]: m for m in document["members"]}
    scraped = {r["dataset"]: r for r in members[picks[0].name]["results"]}["scraped"]
    assert scraped["verdict"] == "match" and scraped["evidence"][0]["source_url"].startswith("https://photos.")
    assert (tmp_path / "local.html").is_file()
    both = runner.invoke(
        cli, ["bulk", "--index", str(lfw["index"]), "--server", "http://x", str(source), "-o", "r.csv"]
    )
    assert both.exit_code == 2 and "either --server" in both.output


# -- several photos per member ----------------------------------------------------------------------


def test_members_with_several_photos_get_one_answer_each(faces_index, hardened_server, tmp_path):
    """A folder per member against the server, the same members as manifest rows locally: one answer per
    member from their photos together, the photo that is no photo left out, two people refused."""
    index_dir, held_out = faces_index
    members = {
        "obama": [held_out["obama"][0], FACES / "edge" / "obama-240p.jpg"],
        "mixed": [held_out["obama"][0], held_out["biden"][0]],
        "rose": [held_out["rose_leslie"][0], tmp_path / "notes.jpg"],
    }
    (tmp_path / "notes.jpg").write_text("not a photo")
    folder = tmp_path / "members"
    rows = []
    for member, photos in members.items():
        (folder / member).mkdir(parents=True)
        for photo in photos:
            (folder / member / photo.name).symlink_to(photo)
            rows.append({"path": str(photo), "member": member})
    (folder / "alex.jpg").symlink_to(held_out["alex_lacamoire"][0])  # a member with one photo
    rows.append({"path": str(held_out["alex_lacamoire"][0]), "member": "alex.jpg"})
    manifest = tmp_path / "members.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "member"])
        writer.writeheader()
        writer.writerows(rows)

    checker = ServerChecker(hardened_server.url, hardened_server.bulk_key)
    served = run_bulk(folder, tmp_path / "served.csv", checker, several_photos=True, batch_size=3, progress=False)
    assert served.checked == served.members == 4 and served.errors == 1
    command = ["bulk", "--index", str(index_dir), "--several-photos", str(manifest), "-o", str(tmp_path / "local.json")]
    local = runner.invoke(cli, [*command, "--no-progress"])
    assert local.exit_code == 0, local.output
    assert re.search(r"^4 members checked in ", local.stdout, re.M)

    for report in (tmp_path / "served.csv", tmp_path / "local.json"):
        records = reports.load_report(report)
        assert sorted(records) == ["alex.jpg", "mixed", "obama", "rose"]
        verdicts = {m: {r["dataset"]: r["verdict"] for r in records[m]["results"]} for m in records}
        assert verdicts["obama"] == {"politicians": "match", "actors": "no_match"}
        assert verdicts["rose"] == {"politicians": "no_match", "actors": "match"}
        assert verdicts["alex.jpg"] == {"politicians": "no_match", "actors": "no_match"}
        mixed = records["mixed"]["error"]
        assert mixed["code"] == "not_same_person" and verdicts["mixed"] == {}
        # The member's own photos are named (their ids: paths in the folder, or the manifest's paths).
        named = re.search(r"one person: (\S+) and (\S+) do not look like the same person", mixed["message"])
        assert named and sorted(Path(n).name.split("#")[0] for n in named.groups()) == ["biden2.jpg", "obama4.jpg"]
        rose = records["rose"]["photos"]
        assert [p["error"] and p["error"]["code"] for p in rose] == [None, "unsupported_format"]
        assert [p["differs_from"] for p in records["mixed"]["photos"]] == [[1], [0]]
        assert len(records["alex.jpg"]["photos"]) == 1
    html = (tmp_path / "served.html").read_text()
    assert "1 of 2 photos checked together" in html and "2 photos checked together" in html


# -- privacy: nothing written while answering -------------------------------------------------------


def test_no_file_is_touched_while_answering_bulk_checks(lfw, server, tmp_path):
    photo = Image.open(person_photos("biden")[0]).convert("RGB")
    big = io.BytesIO()
    photo.resize((photo.width * 2, photo.height * 2)).save(big, "PNG")
    assert len(big.getvalue()) > 5_000_000
    headers = {"Authorization": f"Bearer {lfw['key']}"}
    files = [
        ("image", ("member/big.png", big.getvalue())),
        ("image", ("member/scraped.jpg", photo_of(lfw, "scraped").read_bytes())),
        ("image", ("member/junk.jpg", b"junk")),
    ]
    with traced([server.process.pid, *server.worker_pids()], tmp_path / "trace.txt") as trace_file:
        for _ in range(2):  # both workers, most likely
            response = requests.post(f"{server.url}/api/v1/bulk", files=files, headers=headers, timeout=120)
            assert response.status_code == 200
            results = response.json()["results"][1]["results"]
            assert next(r for r in results if r["dataset"] == "scraped")["evidence"]
        refused = requests.post(
            f"{server.url}/api/v1/bulk", files=files[2:], headers={"Authorization": "Bearer x"}, timeout=30
        )
        assert refused.status_code == 401
    trace = trace_file.read_text(errors="replace")
    assert "keys.sqlite" in trace  # the keys were read on every request...
    assert file_writes(trace) == []  # ...and nothing was written


# -- the HTML summary in a browser -----------------------------------------------------------------


@pytest.mark.browser
def test_the_html_summary_renders_offline_in_chromium(finished_run, lfw, tmp_path):
    from browser import chromium, screenshot_path
    from playwright.sync_api import expect

    html_file = finished_run["report"].with_suffix(".html")
    assert html_file.is_file()
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1100, "height": 1000}, offline=True)
        page = context.new_page()
        requested, problems = [], []
        page.on("request", lambda r: requested.append(r.url))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("dialog", lambda d: problems.append(f"dialog: {d.message}"))
        page.goto(html_file.as_uri())
        expect(page.locator("h1")).to_have_text("Bulk check report")
        expect(page.locator("svg rect").first).to_be_visible()
        expect(page.locator("td.id", has_text=HOSTILE)).to_have_count(1)  # shown as text, not run
        assert page.locator("img").count() == 0 and page.locator("script").count() == 0
        evidence = page.locator("ul.evidence a").first
        expect(evidence).to_have_attribute("href", re.compile(r"^https://photos\.example\.org/p/lfw-\d{5}$"))
        expect(evidence).to_have_attribute("rel", "noreferrer noopener")
        counts = page.locator("table").first.locator("tbody tr")
        expect(counts).to_have_count(2)
        page.screenshot(path=screenshot_path("bulk-report.png", tmp_path))
    assert all(url.startswith("file://") for url in requested), requested
    assert problems == []
