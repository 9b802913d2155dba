"""The on-device check: /api/v1/check-embedding, the files the browser runs, and the pipeline itself in
headless Chromium (on the page, and in the widget on another origin), against the server's own answers."""

from __future__ import annotations

import gzip
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import numpy as np
import pytest
import requests
from browser import chromium
from conftest import FACES, LFW, ROOT, person_photos
from ondevice_page import BrowserPipeline
from playwright.sync_api import Browser, Page, Request, expect
from servers import file_writes, serve, traced

from indexer.images import load_image
from indexer.ondevice.assets import default_assets_dir, load_manifest
from indexer.quality import assess
from service import create_app

OBAMA = person_photos("obama")[-1]  # held out of `politicians`
HELD_OUT = [person_photos(name)[-1] for name in ("biden", "kit_harington", "rose_leslie")]
STRANGERS = person_photos("alex_lacamoire")
LISTED = "https://news.example"
SLOW = 180_000  # ms: the first on-device check loads 30 MB of models on a busy 2-core machine


@pytest.fixture(scope="module")
def assets() -> tuple[Path, dict]:
    folder = default_assets_dir()
    manifest = load_manifest(folder)
    if manifest is None:
        pytest.fail(
            f"The on-device files are missing from {folder}: `make install` builds them (npm ci, then "
            "`photocheck ondevice build`)."
        )
    return folder, manifest


@pytest.fixture(scope="module")
def app(faces_index, assets):
    index_dir, _ = faces_index
    return create_app({"INDEX": str(index_dir), "RATE_LIMIT": "1000/minute", "WIDGET_ORIGINS": LISTED})


@pytest.fixture
def client(app):
    return app.test_client()


def _schema(document: dict, name: str) -> dict:
    return {**document["components"]["schemas"][name], "components": document["components"]}


def _server_side(embedder, path: Path, number: int = 0) -> dict:
    """What the on-device check would send for this photo, computed by the server's own pipeline."""
    pixels = load_image(path.read_bytes())
    face = embedder.detect(pixels)[number]
    quality = assess(pixels, face)
    vector = embedder.embed(pixels, [face])[0]
    return {"embedding": vector.tolist(), "face": {"size": quality.size, "sharpness": quality.sharpness}}


# -- the endpoint, through Flask's test client --------------------------------------------------


def test_an_embedding_gets_the_answer_its_photo_gets(client, dlib_embedder):
    document = client.get("/api/v1/openapi.json").get_json()
    for path in [OBAMA, *HELD_OUT, *STRANGERS]:
        upload = client.post("/api/v1/check", data={"image": (io.BytesIO(path.read_bytes()), "photo")}).get_json()
        answer = client.post("/api/v1/check-embedding", json=_server_side(dlib_embedder, path))
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        jsonschema.validate(body, _schema(document, "EmbeddingAnswer"))
        assert body["results"] == upload["results"], path.name
        assert body["face"] == {"quality": upload["face"]["quality"]}
        assert body["index"] == upload["index"]
    # A blurred face gets the answer a blurred photo gets: the 'low' quality and its score model.
    sent = _server_side(dlib_embedder, STRANGERS[0])
    blurred = client.post("/api/v1/check-embedding", json={**sent, "face": {**sent["face"], "sharpness": 3.0}})
    checker = client.application.extensions["photocheck"].checker
    expected = checker.results_for(np.asarray(sent["embedding"], np.float32), low_quality=True)
    assert blurred.get_json()["face"] == {"quality": "low"} and blurred.get_json()["results"] == expected


def test_what_the_endpoint_refuses(client, dlib_embedder):
    document = client.get("/api/v1/openapi.json").get_json()
    good = _server_side(dlib_embedder, OBAMA)
    vector = good["embedding"]
    text = json.dumps(good)
    cases = {
        "not json": ("{embedding: 1}", "application/json", 400, "malformed_request"),
        "text/plain": (text, "text/plain", 400, "malformed_request"),
        "a list": (json.dumps([vector]), "application/json", 400, "malformed_request"),
        "127 numbers": (json.dumps({**good, "embedding": vector[:-1]}), "application/json", 400, "malformed_request"),
        "129 numbers": (
            json.dumps({**good, "embedding": [*vector, 0.0]}),
            "application/json",
            400,
            "malformed_request",
        ),
        "NaN": (text.replace(str(vector[0]), "NaN", 1), "application/json", 400, "malformed_request"),
        "Infinity": (text.replace(str(vector[0]), "-Infinity", 1), "application/json", 400, "malformed_request"),
        "a string": (
            json.dumps({**good, "embedding": ["0.1", *vector[1:]]}),
            "application/json",
            400,
            "malformed_request",
        ),
        "a boolean": (
            json.dumps({**good, "embedding": [True, *vector[1:]]}),
            "application/json",
            400,
            "malformed_request",
        ),
        "not normalised": (
            json.dumps({**good, "embedding": [2 * v for v in vector]}),
            "application/json",
            400,
            "malformed_request",
        ),
        "zeros": (json.dumps({**good, "embedding": [0.0] * 128}), "application/json", 400, "malformed_request"),
        "more fields": (json.dumps({**good, "photo_id": "x"}), "application/json", 400, "malformed_request"),
        "no sharpness": (json.dumps({**good, "face": {"size": 100}}), "application/json", 400, "malformed_request"),
        "size zero": (
            json.dumps({**good, "face": {"size": 0, "sharpness": 50}}),
            "application/json",
            400,
            "malformed_request",
        ),
        "negative sharpness": (
            json.dumps({**good, "face": {"size": 99, "sharpness": -1}}),
            "application/json",
            400,
            "malformed_request",
        ),
        "over 4 KB": (json.dumps({**good, "pad": " " * 4096}), "application/json", 413, "upload_too_large"),
        "a small face": (
            json.dumps({**good, "face": {"size": 20, "sharpness": 50}}),
            "application/json",
            422,
            "face_too_small",
        ),
    }
    for name, (body, content_type, status, code) in cases.items():
        response = client.post("/api/v1/check-embedding", data=body, content_type=content_type)
        assert response.status_code == status, (name, response.get_json())
        assert response.get_json()["error"]["code"] == code, name
        jsonschema.validate(response.get_json(), _schema(document, "Error"))
    operation = document["paths"]["/api/v1/check-embedding"]["post"]
    assert {"200", "400", "403", "409", "413", "422", "429", "503"} <= set(operation["responses"])


def test_photos_and_embeddings_share_one_rate_limit(faces_index, dlib_embedder):
    index_dir, _ = faces_index
    limited = create_app({"INDEX": str(index_dir), "RATE_LIMIT": "3/minute"}).test_client()
    sent = _server_side(dlib_embedder, OBAMA)
    photo = lambda: {"image": (io.BytesIO(OBAMA.read_bytes()), "photo")}  # noqa: E731
    statuses = [
        limited.post("/api/v1/check", data=photo()).status_code,
        limited.post("/api/v1/check-embedding", json=sent).status_code,
        limited.post("/api/v1/check-embedding", json=sent).status_code,
    ]
    refused = [limited.post("/api/v1/check-embedding", json=sent), limited.post("/api/v1/check", data=photo())]
    assert statuses == [200, 200, 200]
    assert [r.status_code for r in refused] == [429, 429]
    assert refused[0].get_json()["error"]["code"] == "rate_limited" and "Retry-After" in refused[0].headers


def test_other_sites_are_refused_before_their_embedding_is_read(app, client, dlib_embedder, monkeypatch):
    sent = _server_side(dlib_embedder, OBAMA)
    listed = client.post("/api/v1/check-embedding", json=sent, headers={"Origin": LISTED})
    assert listed.status_code == 200 and listed.headers["Access-Control-Allow-Origin"] == LISTED
    preflight = client.options(
        "/api/v1/check-embedding",
        headers={
            "Origin": LISTED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == LISTED
    checker = app.extensions["photocheck"].checker
    monkeypatch.setattr(
        checker, "check_embedding", lambda *a, **k: pytest.fail("an unlisted site's embedding was checked")
    )
    refused = client.post("/api/v1/check-embedding", json=sent, headers={"Origin": "https://elsewhere.example"})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_the_service_serves_the_runtime_and_models_itself(client, assets):
    folder, manifest = assets
    offer = client.get("/api/v1/datasets").get_json()["on_device"]
    assert offer == {"available": True, "reason": None, "download_bytes": manifest["download_bytes"]}
    listed = client.get("/static/ondevice/manifest.json")
    assert listed.status_code == 200 and listed.headers["Cache-Control"] == "no-cache"
    assert listed.get_json()["files"] == manifest["files"]
    assert set(manifest["files"]) >= {
        "ort/ort.wasm.min.mjs",
        "ort/ort-wasm-simd-threaded.mjs",
        "ort/ort-wasm-simd-threaded.wasm",
        "models/face-detector.onnx",
        "models/face-landmarks.onnx",
        "models/face-embedder.onnx",
    }
    wasm, entry = "ort/ort-wasm-simd-threaded.wasm", manifest["files"]["ort/ort-wasm-simd-threaded.wasm"]
    version = entry["sha256"][:16]
    packed = client.get(f"/static/ondevice/{wasm}?v={version}", headers={"Accept-Encoding": "gzip, br"})
    assert packed.status_code == 200 and packed.headers["Content-Encoding"] == "gzip"
    assert packed.mimetype == "application/wasm" and "Accept-Encoding" in packed.vary
    assert packed.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert gzip.decompress(packed.data) == (folder / wasm).read_bytes()
    plain = client.get(f"/static/ondevice/{wasm}?v=stale")
    assert "Content-Encoding" not in plain.headers and plain.data == (folder / wasm).read_bytes()
    assert plain.headers["Cache-Control"] == "no-cache"  # an old page's URL is not cached for good
    module = client.get("/static/ondevice/ort/ort.wasm.min.mjs", headers={"Origin": LISTED})
    assert module.mimetype == "text/javascript" and module.headers["Access-Control-Allow-Origin"] == LISTED
    for missing in ("models/other.onnx", "../manifest.json", "ort/ort.min.mjs", "models/face-detector.onnx.gz"):
        assert client.get(f"/static/ondevice/{missing}").status_code == 404, missing
    privacy = client.get("/privacy").get_data(as_text=True)
    assert 'data-claim="mode-on-device"' in privacy and f"({manifest['download_bytes'] / 1e6:.0f} MB)" in privacy
    assert "Only those 128 numbers and two numbers about the face" in privacy
    for name in ("on-device.js", "face-pipeline.js", "face-align.js", "face-quality.js"):
        response = client.get(f"/static/{name}", headers={"Origin": LISTED})
        assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == LISTED, name


def test_without_its_files_the_service_offers_the_upload_check_only(faces_index, tmp_path, dlib_embedder):
    index_dir, _ = faces_index
    bare = create_app({"INDEX": str(index_dir), "ONDEVICE_DIR": str(tmp_path)}).test_client()
    assert bare.get("/api/v1/datasets").get_json()["on_device"] == {
        "available": False,
        "reason": "no_assets",
        "download_bytes": None,
    }
    assert bare.get("/static/ondevice/manifest.json").status_code == 404
    privacy = bare.get("/privacy").get_data(as_text=True)
    assert 'data-claim="mode-on-device-off"' in privacy and 'data-claim="mode-on-device"' not in privacy
    assert bare.get("/static/check-ui.js").status_code == 200


def test_no_file_is_touched_while_answering_embeddings(faces_index, tmp_path, dlib_embedder):
    """strace the service's processes while it answers embeddings, as for uploads (test_service)."""
    index_dir, _ = faces_index
    sent = [_server_side(dlib_embedder, path) for path in (OBAMA, STRANGERS[0])]
    with serve(index_dir, tmp_path / "server.log") as server:
        with traced([server.process.pid, *server.worker_pids()], tmp_path / "trace.txt") as trace_file:
            for body in sent * 2:
                response = requests.post(f"{server.url}/api/v1/check-embedding", json=body, timeout=60)
                assert response.status_code == 200 and response.json()["results"]
        log = server.output()
    trace = trace_file.read_text(errors="replace")
    assert "sendto(" in trace or "write(" in trace or "writev(" in trace
    assert file_writes(trace) == []
    assert str(sent[0]["embedding"][0])[:8] not in log  # the access log has the path and status, not the body


# -- in Chromium ----------------------------------------------------------------------------------


@dataclass
class Sites:
    service: str
    host: str
    log: Path


@pytest.fixture(scope="module")
def sites(faces_index, assets, tmp_path_factory) -> Iterator[Sites]:
    from test_widget import SNIPPET, host_server

    index_dir, _ = faces_index
    pages: dict[str, str] = {}
    log = tmp_path_factory.mktemp("ondevice-server") / "server.log"
    with host_server(pages) as port:
        host = f"http://127.0.0.1:{port}"
        env = {"PHOTOCHECK_WIDGET_ORIGINS": host, "PHOTOCHECK_RATE_LIMIT": "1000/minute"}
        with serve(index_dir, log, env=env) as service:
            snippet = SNIPPET.format(service=service.url, attributes='data-mode="on-device"')
            pages["/widget.html"] = (
                '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>A host page</title>'
                f'<link rel="icon" href="data:,"></head><body><h1>A host page</h1>{snippet}</body></html>'
            )
            yield Sites(service.url, host, log)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def pipeline(browser: Browser, sites: Sites) -> Iterator[BrowserPipeline]:
    """The pipeline's modules in a page of the service (its CSP applies), the models loaded once."""
    context = browser.new_context()
    yield BrowserPipeline(context.new_page(), sites.service)
    context.close()


def test_the_browser_cuts_dlibs_chip_and_measures_the_face_as_the_server(pipeline, dlib_embedder):
    import dlib

    from indexer.embedders.dlib_onnx import chips_to_tensor

    faces = [(FACES / "people" / "obama" / "obama.jpg", 0), (FACES / "groups" / "kit_with_rose.jpg", 1)]
    faces.append((LFW / "images" / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg", 0))
    for path, number in faces:
        pixels = load_image(path.read_bytes())
        face = dlib_embedder.detect(pixels)[number]
        detection = dlib_embedder._full_object_detection(face)
        points = [[detection.part(i).x, detection.part(i).y] for i in range(5)]
        expected = dlib.get_face_chip(pixels, detection, size=150, padding=0.25)
        chip = pipeline.chip(pixels, points, template="TEMPLATE_5")
        assert np.array_equal(chip, expected), (path.name, np.abs(chip.astype(int) - expected).max())
        # The ResNet's input, from the server's constants: the very same floats.
        assert np.array_equal(pipeline.tensor(chip), chips_to_tensor([expected]))
        # Sharpness of the server's face box, measured in JavaScript.
        measured = pipeline.quality(pixels, list(face.box))
        quality = assess(pixels, face)
        assert measured["size"] == pytest.approx(quality.size)
        assert measured["sharpness"] == pytest.approx(quality.sharpness, rel=0.03), path.name


@dataclass
class Visit:
    page: Page
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _visit(browser: Browser) -> Visit:
    page = browser.new_context(viewport={"width": 1000, "height": 900}).new_page()
    visit = Visit(page)
    page.on("request", lambda request: visit.requests.append(request))
    page.on("pageerror", lambda error: visit.errors.append(str(error)))
    page.on("console", lambda m: m.type == "error" and visit.errors.append(m.text))
    return visit


def _verdicts(root) -> dict[str, str]:
    results = root.locator(".pc-result")
    return {item.get_attribute("data-dataset"): item.get_attribute("data-verdict") for item in results.all()}


def _check(page: Page, root, photo: Path, endpoint: str) -> dict[str, str]:
    with page.expect_response(lambda r: r.url.endswith(endpoint), timeout=SLOW) as answer:
        root.locator("input[type=file]").set_input_files(photo)
    assert answer.value.status == 200, answer.value.text()
    expect(root.get_by_role("status")).to_contain_text("Done", timeout=30_000)
    return _verdicts(root)


def _assert_photo_stayed(visit: Visit, photo: Path) -> None:
    sent = [r for r in visit.requests if r.post_data_buffer]
    assert sent, "nothing was posted"
    head = photo.read_bytes()[:4096]
    for request in sent:
        body = request.post_data_buffer
        assert len(body) < 4096, (request.url, len(body))
        assert head[-512:] not in body
    assert not [r for r in visit.requests if urlsplit(r.url).path == "/api/v1/check"]


def test_on_the_page_the_photo_never_leaves_and_the_verdicts_are_the_uploads(browser, sites):
    visit = _visit(browser)
    page = visit.page
    page.goto(f"{sites.service}/")
    page.get_by_label("On this device").check()
    expect(page.locator(".pc-mode-size")).to_contain_text("MB of face models")
    verdicts = _check(page, page, OBAMA, "/api/v1/check-embedding")
    assert verdicts == {"politicians": "match", "actors": "no_match"}
    expect(page.locator(".pc-result[data-dataset='politicians'] .pc-verdict")).to_have_text("Likely in this dataset")
    expect(page.locator(".pc-box")).to_have_count(1)
    _assert_photo_stayed(visit, OBAMA)
    assert [urlsplit(r.url).path for r in visit.requests if r.method == "POST"] == ["/api/v1/check-embedding"]

    # The other shared photos, on this device (models already loaded) and then by upload: the same verdicts.
    photos = [*HELD_OUT, *STRANGERS]
    on_device = [_check(page, page, photo, "/api/v1/check-embedding") for photo in photos]
    _assert_photo_stayed(visit, photos[0])
    page.get_by_label("On this service").check()
    uploaded = [_check(page, page, photo, "/api/v1/check") for photo in photos]
    assert on_device == uploaded
    assert [v["actors"] for v in uploaded] == ["no_match", "match", "match", "no_match", "no_match"]
    assert not visit.errors, visit.errors
    page.context.close()


def test_in_the_widget_on_another_site_the_photo_never_leaves(browser, sites):
    visit = _visit(browser)
    page = visit.page
    page.goto(f"{sites.host}/widget.html")
    widget = page.locator("[data-photocheck]")
    expect(widget.get_by_label("On this device")).to_be_checked()  # data-mode="on-device"
    verdicts = _check(page, widget, OBAMA, "/api/v1/check-embedding")
    assert verdicts == {"politicians": "match", "actors": "no_match"}
    expect(widget.locator(".pc-result[data-dataset='politicians'] .pc-verdict")).to_have_text("Likely in this dataset")
    _assert_photo_stayed(visit, OBAMA)
    origins = {
        f"{urlsplit(r.url).scheme}://{urlsplit(r.url).netloc}"
        for r in visit.requests
        if not r.url.startswith(("blob:", "data:"))
    }
    assert origins == {sites.host, sites.service}
    for request in visit.requests:
        if request.url.startswith(sites.service):
            assert "cookie" not in request.all_headers() and not request.all_headers().get("referer"), request.url
    assert not visit.errors, visit.errors
    page.context.close()


def test_face_apis_landmark_net_converts_faithfully(browser, assets):
    """The ONNX landmark net against face-api.js's own (TF.js, in Chromium) on the same inputs."""
    import onnxruntime as ort
    from PIL import Image

    folder, _ = assets
    package = ROOT / "node_modules" / "@vladmandic" / "face-api"
    face = load_image((FACES / "people" / "biden" / "biden.jpg").read_bytes())[250:650, 280:680]
    crop = np.asarray(Image.fromarray(face).resize((112, 112)), dtype=np.float32)
    inputs = [crop, np.random.default_rng(0).uniform(0, 255, (112, 112, 3)).astype(np.float32)]

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(package)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/")  # the folder's listing: a page of that origin
        reference = page.evaluate(
            """async (inputs) => {
              const faceapi = await import('/dist/face-api.esm.js');
              const tf = faceapi.tf;
              await tf.setBackend('cpu');
              const manifest = await (await fetch('/model/face_landmark_68_model-weights_manifest.json')).json();
              const weights = await (await fetch('/model/face_landmark_68_model.bin')).arrayBuffer();
              const net = faceapi.nets.faceLandmark68Net;
              net.loadFromWeightMap(tf.io.decodeWeights(weights, manifest.flatMap((g) => g.weights)));
              const out = [];
              for (const values of inputs) {
                const input = await faceapi.toNetInput(tf.tensor4d(values, [1, 112, 112, 3]));
                out.push(Array.from(net.forwardInput(input).dataSync()));
              }
              return out;
            }""",
            [x.ravel().tolist() for x in inputs],
        )
    finally:
        page.close()
        server.shutdown()
    session = ort.InferenceSession(str(folder / "models" / "face-landmarks.onnx"))
    for values, expected in zip(inputs, reference, strict=True):
        (landmarks,) = session.run(None, {"face": values[None]})
        assert np.abs(landmarks[0] - np.asarray(expected)).max() < 1e-5
