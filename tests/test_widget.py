"""The embeddable widget: who may call the service from another site's page, and the widget itself in
headless Chromium on host pages served from other origins than the service."""

from __future__ import annotations

import base64
import io
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser import chromium, screenshot_path
from conftest import FACES, ROOT
from odd_uploads import png_claiming
from playwright.sync_api import Browser, Page, Request, expect
from servers import host_server, serve

from service import create_app
from service.widget import normalise_origin, parse_origins

OBAMA = FACES / "people" / "obama" / "obama4.jpg"  # held out of `politicians`
GROUP = FACES / "groups" / "kit_with_rose.jpg"  # both faces are in `actors`
LISTED = "https://news.example"
UNLISTED = "https://elsewhere.example"

expect.set_options(timeout=15_000)  # a check takes about a second on a small machine


# -- the origin guard, through Flask's test client ---------------------------------------------


@pytest.fixture(scope="module")
def app(faces_index):
    index_dir, _ = faces_index
    return create_app(
        {
            "INDEX": str(index_dir),
            "RATE_LIMIT": "1000/minute",
            "WIDGET_ORIGINS": f"{LISTED}, https://www.example.org:8443/",
        }
    )


@pytest.fixture
def client(app):
    return app.test_client()


def photo_form(path: Path = OBAMA) -> dict:
    return {"image": (io.BytesIO(path.read_bytes()), "photo")}


def test_a_listed_origin_may_read_the_api_and_the_widgets_files(client):
    answer = client.post("/api/v1/check", data=photo_form(), headers={"Origin": LISTED})
    assert answer.status_code == 200
    assert {r["dataset"]: r["verdict"] for r in answer.get_json()["results"]}["politicians"] == "match"
    shared = [
        answer,
        client.get("/api/v1/datasets", headers={"Origin": LISTED}),
        client.post("/api/v1/check", data=b"%PDF-1.5", content_type="image/jpeg", headers={"Origin": LISTED}),
        client.get("/static/check-ui.js", headers={"Origin": LISTED}),
        client.get("/static/check-ui.css", headers={"Origin": LISTED}),
        client.get("/api/v1/datasets", headers={"Origin": "https://www.example.org:8443"}),
    ]
    assert [r.status_code for r in shared] == [200, 200, 415, 200, 200, 200]
    for response in shared:
        assert response.headers["Access-Control-Allow-Origin"] == response.request.headers["Origin"]
        assert "Origin" in response.vary
        assert "Access-Control-Allow-Credentials" not in response.headers
        assert "Set-Cookie" not in response.headers
    # Answers for one site are never cached for another; page assets say so even to requests without Origin.
    assert "Origin" in client.get("/static/check-ui.js").vary
    assert "Access-Control-Allow-Origin" not in client.get("/static/style.css", headers={"Origin": LISTED}).headers

    # widget.js is for any page: a site that is not listed still learns, in its widget, that it is not.
    script = client.get("/widget.js", headers={"Origin": UNLISTED})
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert script.headers["Access-Control-Allow-Origin"] == "*"
    assert script.headers["Cache-Control"] == "public, max-age=3600"
    assert b"data-photocheck" in script.data


def test_every_module_the_ui_imports_may_be_read_by_listed_origins(client):
    """The widget imports check-ui.js across origins, and with it every module it imports: each needs CORS."""
    modules, pending = set(), ["check-ui.js"]
    while pending:
        name = pending.pop()
        modules.add(name)
        source = (ROOT / "static" / name).read_text()
        pending += [m for m in re.findall(r'^import [^;]*? from "\./([\w.-]+\.js)";', source, re.M) if m not in modules]
    assert {"next-steps.js", "letter.js", "catalog-view.js", "lookup.js"} <= modules
    for name in modules:
        response = client.get(f"/static/{name}", headers={"Origin": LISTED})
        assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == LISTED, name


def test_an_unlisted_origin_is_refused_before_its_upload_is_read(app, client, monkeypatch):
    garbage = bytes(range(256)) * (20 * 4096)  # 20 MB: over the 15 MB limit
    bomb = png_claiming(60_000, 60_000)
    pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF"
    uploads = {"garbage": (garbage, 413), "bomb": (bomb, 413), "pdf": (pdf, 415), "photo": (OBAMA.read_bytes(), 200)}
    # Without an Origin (curl, the CLI) each is read and judged.
    for name, (body, status) in uploads.items():
        response = client.post("/api/v1/check", data={"image": (io.BytesIO(body), "x")})
        assert response.status_code == status, name

    checks = []
    checker = app.extensions["photocheck"].checker
    monkeypatch.setattr(checker, "check", lambda *args, **kwargs: checks.append(args) or pytest.fail("checked"))
    for name, (body, _) in uploads.items():
        stream = io.BytesIO(body)
        sends = {
            "multipart": {"data": {"image": (io.BytesIO(body), "x"), "face": "0"}},
            "raw": {"input_stream": stream, "content_type": "image/png", "content_length": len(body)},
        }
        for kind, send in sends.items():
            started = time.monotonic()
            response = client.post("/api/v1/check", headers={"Origin": UNLISTED}, **send)
            elapsed = time.monotonic() - started
            assert response.status_code == 403, (name, kind, response.data[:200])
            assert response.get_json()["error"]["code"] == "origin_not_allowed"
            assert UNLISTED in response.get_json()["error"]["message"]
            assert "Access-Control-Allow-Origin" not in response.headers
            assert elapsed < 1, (name, kind, elapsed)  # a few ms here; a check takes hundreds
        assert stream.tell() == len(body), name  # read to its end, so that a real client gets the answer
    assert checks == []
    for origin in (UNLISTED, "null", "https://news.example.evil.example", "http://news.example"):
        refused = client.get("/api/v1/datasets", headers={"Origin": origin})
        assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "origin_not_allowed"
    # Other sites may not import the UI either; the files are still served (no CORS header, the browser refuses).
    module = client.get("/static/check-ui.js", headers={"Origin": UNLISTED})
    assert module.status_code == 200 and "Access-Control-Allow-Origin" not in module.headers


def test_preflights(client):
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    allowed = client.options("/api/v1/check", headers={"Origin": LISTED, **ask})
    assert allowed.status_code == 204 and allowed.data == b""
    assert allowed.headers["Access-Control-Allow-Origin"] == LISTED
    assert allowed.headers["Access-Control-Allow-Methods"] == "GET, POST"
    assert allowed.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert "Origin" in allowed.vary
    refused = client.options("/api/v1/check", headers={"Origin": UNLISTED, **ask})
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers
    # What the preflight was for: a raw image body, whose Content-Type is not a "simple" one.
    raw = client.post("/api/v1/check", data=OBAMA.read_bytes(), content_type="image/jpeg", headers={"Origin": LISTED})
    assert raw.status_code == 200 and raw.headers["Access-Control-Allow-Origin"] == LISTED


def test_the_services_own_pages_and_requests_without_origin_are_unaffected(client):
    for headers in ({}, {"Origin": "http://localhost"}, {"Origin": "https://localhost"}):
        # The test client's requests go to http://localhost; https://localhost is its own page behind a TLS proxy.
        response = client.post("/api/v1/check", data=photo_form(), headers=headers)
        assert response.status_code == 200, headers
        assert "Access-Control-Allow-Origin" not in response.headers
    assert client.get("/api/v1/datasets", headers={"Origin": "http://localhost"}).status_code == 200
    assert client.get("/", headers={"Origin": UNLISTED}).status_code == 200  # pages are not the API
    assert client.options("/api/v1/check", headers={"Origin": "http://localhost"}).status_code == 200


def test_the_origins_setting():
    assert parse_origins("") == frozenset()
    assert parse_origins(None) == frozenset()
    assert parse_origins(" https://A.Example/ ,http://b.example:80, https://c.example:8443,,") == {
        "https://a.example",
        "http://b.example",
        "https://c.example:8443",
    }
    assert parse_origins(["https://a.example", "*"]) == {"https://a.example", "*"}  # from a JSON list in the env
    assert normalise_origin("https://bücher.example") == "https://xn--bcher-kva.example"
    assert normalise_origin("http://[::1]:8000") == "http://[::1]:8000"
    for wrong in ("example.org", "https://example.org/page", "ftp://example.org", "https://example.org:99999"):
        with pytest.raises(ValueError, match="is not an origin"):
            parse_origins(wrong)
    with pytest.raises(ValueError, match="PHOTOCHECK_WIDGET_ORIGINS"):
        create_app({"WIDGET_ORIGINS": "www.example.org"})

    # No index needed here: 503 "not loaded" means the request got past the guard.
    anyone = create_app({"WIDGET_ORIGINS": "*"}).test_client()
    answer = anyone.get("/api/v1/datasets", headers={"Origin": UNLISTED})
    assert answer.status_code == 503 and answer.headers["Access-Control-Allow-Origin"] == UNLISTED
    nobody = create_app({}).test_client()
    assert nobody.get("/api/v1/datasets", headers={"Origin": LISTED}).status_code == 403

    # Behind a trusted proxy, the service's own origin is the one the proxy was asked for.
    proxied = create_app({"TRUSTED_PROXIES": 1}).test_client()
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "photo.example.org"}
    own = proxied.get("/api/v1/datasets", headers={"Origin": "https://photo.example.org", **forwarded})
    assert own.status_code == 503
    other = proxied.get("/api/v1/datasets", headers={"Origin": "https://localhost", **forwarded})
    assert other.status_code == 403


def test_the_widget_page(client):
    page = client.get("/widget")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    html = page.get_data(as_text=True)
    assert 'src="http://localhost/widget.js" defer crossorigin="anonymous" referrerpolicy="no-referrer"' in html
    assert 'data-origins="listed"' in html and "the 2 sites its operator listed" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and " style=" not in html  # the page's CSP allows neither
    assert 'data-origins="none"' in create_app({}).test_client().get("/widget").get_data(as_text=True)


# -- the widget in Chromium, on pages of other origins -----------------------------------------

SNIPPET = """<div data-photocheck {attributes}><a href="{service}/">Check your photos on photocheck</a></div>
<script src="{service}/widget.js" defer crossorigin="anonymous" referrerpolicy="no-referrer"></script>"""

# A page whose own styles would wreck a widget that shared them, and that has elements with the
# widget's class names, which the widget's styles must leave alone.
CLASHING_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A page with styles of its own</title>
<link rel="icon" href="data:,">
<style>
body {{ margin: 2rem; color: rgb(255, 0, 0); font: 22px/1.1 "DejaVu Serif", serif; letter-spacing: 3px;
  text-transform: uppercase; text-align: center }}
button {{ font-size: 40px; color: red; background: yellow }}
p {{ display: none }}
.pc-check, .pc-result {{ display: none }}
[data-photocheck] {{ --pc-accent: rgb(139, 26, 91); margin-top: 1rem }}
</style></head>
<body>
<a href="#top" id="host-link">The host's own link</a>
<div class="pc-drop" id="host-drop">The host's element called pc-drop</div>
<button class="pc-button pc-button-primary" id="host-button">The host's button</button>
{snippet}
</body></html>"""

# A plausible host page, for the screenshot.
NICE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your privacy: Pinecone Photos</title>
<link rel="icon" href="data:,">
<style>
body {{ margin: 0; background: #f3f1ec; color: #2b2a28; font: 17px/1.6 Georgia, "DejaVu Serif", serif }}
header {{ padding: 0.9rem 2rem; background: #23423a; color: #fff; font: 700 1.2rem/1.2 sans-serif;
  letter-spacing: 0.04em }}
main {{ max-width: 50rem; margin: 0 auto; padding: 1.5rem 2rem 2.5rem }}
h1 {{ margin: 0.5rem 0; font-size: 1.9rem }}
.intro {{ margin: 0 0 1.25rem; color: #55524c }}
</style></head>
<body>
<header>Pinecone Photos</header>
<main>
<h1>Your photos and AI training sets</h1>
<p class="intro">Some AI training sets were built from photos taken from sites like ours. Check whether
a photo of your face is in one of the disclosed sets. The check is run by photocheck; your photo is not kept,
by them or by us.</p>
{snippet}
</main>
</body></html>"""


def origin_of(url: str) -> str:
    if url.startswith("blob:"):
        url = url[len("blob:") :]
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Sites:
    service: str
    allowed: str  # the host pages' origin that the service lists
    refused: str  # the same pages under another name: an origin it does not list
    log: Path


@pytest.fixture(scope="module")
def sites(faces_index, tmp_path_factory) -> Iterator[Sites]:
    index_dir, _ = faces_index
    pages: dict[str, str] = {}
    log = tmp_path_factory.mktemp("widget-server") / "server.log"
    with host_server(pages) as port:
        allowed, refused = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
        with serve(index_dir, log, env={"PHOTOCHECK_WIDGET_ORIGINS": allowed}) as service:
            theme = 'data-color-scheme="light" data-theme-accent="#23623f" data-heading-level="2"'
            wording = 'data-string-datasets-heading="Datasets checked"'
            snippet = SNIPPET.format(service=service.url, attributes=wording)
            pages["/clashing.html"] = CLASHING_PAGE.format(snippet=snippet)
            pages["/nice.html"] = NICE_PAGE.format(snippet=SNIPPET.format(service=service.url, attributes=theme))
            yield Sites(service.url, allowed, refused, log)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@dataclass
class Visit:
    page: Page
    requests: list[Request] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def visit(browser: Browser, sites: Sites) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    # A cookie the service's host has (for any port): the widget must never send it.
    context.add_cookies([{"name": "seen", "value": "yes", "url": sites.service}])
    page = context.new_page()
    visit = Visit(page)
    page.on("request", lambda request: visit.requests.append(request))
    page.on("console", lambda message: visit.console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: visit.errors.append(str(error)))
    yield visit
    context.close()


def test_the_widget_checks_a_photo_on_a_listed_site_and_keeps_to_itself(visit: Visit, sites: Sites):
    page = visit.page
    page.goto(f"{sites.allowed}/clashing.html")
    widget = page.locator("[data-photocheck]")
    expect(widget.locator(".pc-dataset")).to_have_count(2)
    expect(widget.get_by_role("heading", name="Datasets checked")).to_be_visible()  # data-string-datasets-heading
    expect(widget.get_by_role("link", name="Check your photos on photocheck")).to_be_hidden()  # the fallback

    # The keyboard reaches the widget's controls in page order.
    page.locator("#host-link").focus()
    page.keyboard.press("Tab")
    expect(page.locator("#host-button")).to_be_focused()
    page.keyboard.press("Tab")
    expect(widget.get_by_role("tab", name="Check a photo")).to_be_focused()  # one tab stop for the tabs
    page.keyboard.press("Tab")
    expect(widget.get_by_label("Choose a photo")).to_be_focused()
    page.keyboard.press("Tab")
    expect(widget.get_by_role("button", name="Take a selfie")).to_be_focused()
    page.keyboard.press("Tab")
    expect(widget.get_by_role("link", name="What happens to your photo")).to_be_focused()

    with page.expect_response(lambda r: r.url == f"{sites.service}/api/v1/check") as answer:
        widget.locator("input[type=file]").set_input_files(OBAMA)
    assert answer.value.status == 200
    politicians = widget.locator(".pc-result[data-dataset='politicians']")
    expect(politicians.locator(".pc-verdict")).to_have_text("Likely in this dataset")
    expect(politicians.get_by_role("heading", name="Politicians")).to_be_visible()
    expect(widget.locator(".pc-result[data-dataset='actors'] .pc-verdict")).to_have_text("Not found")
    expect(widget.get_by_role("status")).to_contain_text("Done")
    expect(widget.locator(".pc-box")).to_have_count(1)

    # The host's styles do not reach in: not its colour, font, letter spacing, hidden paragraphs or buttons.
    style = """(element, names) => { const s = getComputedStyle(element); return names.map((n) => s[n]); }"""
    inside = widget.locator(".pc-check").evaluate(style, ["color", "fontFamily", "letterSpacing", "textTransform"])
    assert inside[0] != "rgb(255, 0, 0)" and "Serif" not in inside[1]
    assert inside[2:] == ["normal", "none"]
    selfie = widget.get_by_role("button", name="Take a selfie")
    assert selfie.evaluate(style, ["fontSize", "backgroundColor"]) == ["16px", "rgba(0, 0, 0, 0)"]
    expect(widget.locator(".pc-privacy-note")).to_be_visible()
    expect(widget.locator(".pc-result")).to_have_count(2)
    expect(widget.locator(".pc-result").first).to_be_visible()
    # What the host does choose to pass in, the theme's custom property, does.
    primary = widget.locator(".pc-button-primary").first.evaluate(style, ["backgroundColor"])
    assert primary == ["rgb(139, 26, 91)"]
    # And the widget's styles do not reach out: the host's pc-* elements keep the host's look.
    assert page.locator("#host-drop").evaluate(style, ["borderTopStyle", "color"]) == ["none", "rgb(255, 0, 0)"]
    assert page.locator("#host-button").evaluate(style, ["fontSize", "backgroundColor"]) == [
        "40px",
        "rgb(255, 255, 0)",
    ]
    assert page.evaluate("document.styleSheets.length") == 1  # the widget's sheet lives in its shadow root

    # Requests: the host page and the service only; no cookie and no Referer to the service.
    assert {origin_of(r.url) for r in visit.requests} == {sites.allowed, sites.service}
    to_service = [r for r in visit.requests if origin_of(r.url) == sites.service]
    assert {urlsplit(r.url).path for r in to_service} == {
        "/widget.js",
        "/static/check-ui.js",
        "/static/next-steps.js",
        "/static/letter.js",
        "/static/catalog-view.js",
        "/static/lookup.js",
        "/static/on-device.js",  # the mode chooser; the on-device pipeline itself loads only when used
        "/static/check-ui.css",
        "/api/v1/datasets",
        "/api/v1/catalog",
        "/api/v1/check",
    }
    for request in to_service:
        headers = request.all_headers()
        assert "cookie" not in headers, request.url
        assert not headers.get("referer"), request.url
    assert [c["name"] for c in page.context.cookies()] == ["seen"]  # nothing set by the widget
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert not visit.errors and not [line for line in visit.console if line.startswith("error")], visit.console


def test_a_photo_with_two_faces_on_a_themed_host_page(visit: Visit, sites: Sites, tmp_path):
    page = visit.page
    page.goto(f"{sites.allowed}/nice.html")
    widget = page.locator("[data-photocheck]")
    expect(widget.locator(".pc-dataset")).to_have_count(2)
    accent = widget.locator(".pc-button-primary").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert accent == "rgb(35, 98, 63)"  # data-theme-accent="#23623f"
    assert widget.locator(".pc-check").get_attribute("lang") == "en"

    with page.expect_response(lambda r: r.url.endswith("/api/v1/check")):
        widget.locator("input[type=file]").set_input_files(GROUP)
    faces = widget.locator(".pc-face")
    expect(faces).to_have_text(["Face 0 (largest)", "Face 1"])  # from 0, as the API and the CLI
    faces.nth(0).focus()
    page.keyboard.press("Tab")
    expect(faces.nth(1)).to_be_focused()
    with page.expect_response(lambda r: r.url.endswith("/api/v1/check")) as second:
        page.keyboard.press("Enter")
    assert second.value.json()["face"]["number"] == 1
    expect(widget.get_by_role("status")).to_contain_text("this is face 1")
    expect(widget.locator(".pc-result[data-dataset='actors'] .pc-verdict")).to_have_text("Likely in this dataset")
    expect(faces.nth(1)).to_have_attribute("aria-pressed", "true")
    assert not visit.errors and not [line for line in visit.console if line.startswith("error")], visit.console

    # The picture for the README, with the test photo blurred (it is not to be copied into the repository).
    page.evaluate("document.activeElement.blur()")
    widget.locator(".pc-photo img").evaluate("image => { image.style.filter = 'blur(14px)'; }")
    page.screenshot(path=screenshot_path("widget.png", tmp_path), full_page=True)


def test_a_site_that_is_not_listed_gets_no_answer(visit: Visit, sites: Sites):
    page = visit.page
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    statuses: dict[str, int] = {}
    failures: dict[str, dict] = {}
    urls: dict[str, str] = {}
    cdp.on("Network.requestWillBeSent", lambda e: urls.__setitem__(e["requestId"], e["request"]["url"]))
    cdp.on("Network.responseReceivedExtraInfo", lambda e: statuses.__setitem__(e["requestId"], e["statusCode"]))
    cdp.on("Network.loadingFailed", lambda e: failures.__setitem__(e["requestId"], e))

    page.goto(f"{sites.refused}/clashing.html")
    widget = page.locator("[data-photocheck]")
    # The widget says the check is not offered here, and where it is.
    expect(widget.locator(".pc-load-failed")).to_contain_text("could not be loaded here")
    expect(widget.get_by_role("link", name=urlsplit(sites.service).netloc)).to_have_attribute(
        "href", f"{sites.service}/"
    )
    expect(widget.locator(".pc-check")).to_have_count(0)
    blocked = f"Access to script at '{sites.service}/static/check-ui.js' from origin '{sites.refused}' has been blocked"
    assert any(blocked in line for line in visit.console), visit.console

    # What the widget would have sent, sent from this page anyway: the service refuses it (403, unread),
    # and without CORS headers the browser tells the page nothing but a network error.
    outcome = page.evaluate(
        """async ([url, base64]) => {
          const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
          const body = new FormData();
          body.append("image", new Blob([bytes], { type: "image/jpeg" }), "photo");
          try {
            const response = await fetch(url, { method: "POST", body, credentials: "omit" });
            return `answered ${response.status}`;
          } catch (error) {
            return `${error.name}: ${error.message}`;
          }
        }""",
        [f"{sites.service}/api/v1/check", base64.b64encode(OBAMA.read_bytes()).decode()],
    )
    assert outcome == "TypeError: Failed to fetch"
    check = f"Access to fetch at '{sites.service}/api/v1/check' from origin '{sites.refused}' has been blocked by CORS"
    assert any(check in line for line in visit.console), visit.console
    refused_checks = [i for i, url in urls.items() if url == f"{sites.service}/api/v1/check"]
    assert len(refused_checks) == 1
    request_id = refused_checks[0]
    deadline = time.monotonic() + 5
    while request_id not in failures and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert statuses[request_id] == 403
    assert failures[request_id]["corsErrorStatus"]["corsError"] == "MissingAllowOriginHeader"
    log = Path(sites.log).read_text()
    assert re.search(r'"POST /api/v1/check" 403 ', log), log
    assert f"refused API requests from pages on '{sites.refused}'" in log


def test_the_widget_page_shows_the_snippet_and_a_live_preview(visit: Visit, sites: Sites):
    page = visit.page
    page.add_init_script(
        """document.addEventListener("securitypolicyviolation", (event) => {
          console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline code"}`);
        }, true);"""
    )
    page.goto(f"{sites.service}/widget")
    snippet = page.locator("#snippet")
    expect(snippet).to_contain_text(f'<script src="{sites.service}/widget.js" defer')
    preview = page.locator(".preview[data-photocheck]")
    expect(preview.locator(".pc-dataset")).to_have_count(2)
    expect(preview.get_by_role("heading", level=3, name="Datasets this service checks")).to_be_visible()
    expect(page.get_by_role("button", name="Copy the snippet")).to_be_visible()

    # The settings change the preview and the snippet to copy.
    page.get_by_label("Colour scheme").select_option("dark")
    expect(snippet).to_contain_text('<div data-photocheck data-color-scheme="dark"></div>')
    background = preview.locator(".pc-check").evaluate("e => getComputedStyle(e).backgroundColor")
    red, green, blue = (int(n) for n in re.findall(r"\d+", background)[:3])
    assert red + green + blue < 3 * 80, background
    page.get_by_label("Accent colour").fill("#8b1a5b")
    expect(snippet).to_contain_text('data-theme-accent="#8b1a5b"')
    button = preview.locator(".pc-button-primary").first
    expect(button).to_have_css("background-color", "rgb(139, 26, 91)")
    assert not visit.errors and not [line for line in visit.console if line.startswith("error")], visit.console
