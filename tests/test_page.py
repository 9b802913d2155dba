"""The web page in headless Chromium against a real server: photos in, faces and verdicts out,
errors in words, the camera's absence explained, and nothing sent, kept or logged that should not be."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import jinja2
import pytest
import requests
from browser import chromium, screenshot_path
from conftest import FACES, ROOT
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, expect

pytestmark = pytest.mark.browser

expect.set_options(timeout=15_000)  # a check takes about a second on a small machine

DESKTOP = {"width": 1100, "height": 900}
PHONE = {"width": 360, "height": 740}

OBAMA = FACES / "people" / "obama" / "obama4.jpg"  # held out of `politicians`
STRANGER = FACES / "people" / "alex_lacamoire" / "img1.jpg"  # in no dataset
GROUP = FACES / "groups" / "kit_with_rose.jpg"  # both faces are in `actors`
OBAMA_SMALL = FACES / "edge" / "obama-240p.jpg"  # another photo of Obama, in no dataset

# Every file a test here uploads; none of these names may reach the server's log.
UPLOADED = {OBAMA.name, STRANGER.name, GROUP.name, OBAMA_SMALL.name, "statement.pdf", "blank.png"}

# Reports each CSP violation as a console error, which the visit records as a problem.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline code"}`);
}, true);
"""

# Whether an object URL was revoked: it no longer loads (as an image: the page's CSP allows no fetch of blob:).
REVOKED = """
url => new Promise((resolve) => {
  const image = new Image();
  image.onload = () => resolve(false);
  image.onerror = () => resolve(true);
  image.src = url;
})
"""


def origin(url: str) -> str:
    if url.startswith("blob:"):  # a blob: URL belongs to the origin that made it
        url = url[len("blob:") :]
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Visit:
    """One page in a fresh browser context, with what it requested and what went wrong."""

    page: Page
    url: str
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def open(self, path: str = "/"):
        response = self.page.goto(self.url + path)
        assert response is not None and response.ok, f"{path}: {response and response.status}"
        return response

    def upload(self, photo: Path) -> dict:
        """Choose ``photo`` in the file input; the check API's answer."""
        with self.page.expect_response(lambda r: r.url.endswith("/api/v1/check")) as answer:
            self.page.set_input_files("input[type=file]", photo)
        return answer.value.json()

    def result(self, dataset: str):
        return self.page.locator(f".pc-result[data-dataset='{dataset}']")

    def expect_verdicts(self, **verdicts: str) -> None:
        words = {"match": "Likely in this dataset", "possible": "Possibly in this dataset", "no_match": "Not found"}
        for dataset, verdict in verdicts.items():
            expect(self.result(dataset)).to_have_attribute("data-verdict", verdict)
            expect(self.result(dataset).locator(".pc-verdict")).to_have_text(words[verdict])

    def assert_clean(self) -> None:
        """Only this server was asked for anything; no cookie, no storage, no CSP violation, no error."""
        foreign = [url for url in self.requests if origin(url) != self.url]
        assert not foreign, f"requests to other origins: {foreign}"
        assert not self.problems, self.problems
        assert self.page.context.cookies() == []
        assert self.page.evaluate("localStorage.length + sessionStorage.length") == 0


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def new_visit(browser: Browser, faces_server):
    contexts = []

    def start(viewport: dict[str, int] = DESKTOP, init_script: str | None = None) -> Visit:
        context = browser.new_context(viewport=viewport)
        contexts.append(context)
        page = context.new_page()
        page.add_init_script(CSP_LISTENER)
        if init_script:
            page.add_init_script(init_script)
        visit = Visit(page, faces_server.url)
        page.on("request", lambda request: visit.requests.append(request.url))
        page.on("pageerror", lambda error: visit.problems.append(f"page error: {error}"))
        page.on("console", lambda message: note_console(visit, message))
        page.on("response", lambda response: note_response(visit, response))
        return visit

    yield start
    for context in contexts:
        context.close()


def note_console(visit: Visit, message: ConsoleMessage) -> None:
    # The check API answers 4xx for photos it cannot take, and the browser logs each; the tests send some.
    expected = re.match(r"Failed to load resource: the server responded with a status of 4\d\d", message.text)
    if message.type == "error" and not expected:
        visit.problems.append(f"console: {message.text}")


def note_response(visit: Visit, response: Response) -> None:
    if response.status >= 400 and not response.url.endswith("/api/v1/check"):
        visit.problems.append(f"{response.status} for {response.url}")


@pytest.fixture
def visit(new_visit) -> Visit:
    return new_visit()


def expect_box_on(page: Page, box: list[int]) -> None:
    """The outline of the checked face sits on ``box`` (photo pixels) as the photo is shown now."""
    natural = page.eval_on_selector(".pc-img", "img => [img.naturalWidth, img.naturalHeight]")
    shown = page.locator(".pc-img").bounding_box()
    outline = page.locator(".pc-box-chosen").bounding_box()
    assert shown and outline
    scale_x, scale_y = shown["width"] / natural[0], shown["height"] / natural[1]
    assert outline["x"] == pytest.approx(shown["x"] + box[0] * scale_x, abs=1.5)
    assert outline["y"] == pytest.approx(shown["y"] + box[1] * scale_y, abs=1.5)
    assert outline["width"] == pytest.approx(box[2] * scale_x, abs=1.5)
    assert outline["height"] == pytest.approx(box[3] * scale_y, abs=1.5)


def test_a_photo_gets_its_face_outlined_and_a_verdict_per_dataset(visit: Visit):
    page = visit.page
    visit.open()
    # The datasets checked are listed before any upload.
    for name in ("politicians", "actors"):
        expect(page.locator(f".pc-dataset[data-dataset='{name}']")).to_be_visible()

    answer = visit.upload(OBAMA)
    visit.expect_verdicts(politicians="match", actors="no_match")
    expect(page.locator(".pc-box")).to_have_count(1)
    expect(page.locator(".pc-faces")).to_be_hidden()
    expect_box_on(page, answer["face"]["box"])
    page.set_viewport_size({"width": 700, "height": 900})
    expect_box_on(page, answer["face"]["box"])
    page.set_viewport_size(DESKTOP)

    match = visit.result("politicians")
    expect(match.locator(".pc-percent")).to_have_text(re.compile(r"^(over 99%|\d{1,2}%)$"))
    expect(match.locator(".pc-confidence")).to_contain_text("chance that this dataset holds a photo of you")
    disclosure = match.get_by_role("link", name="About this dataset")
    expect(disclosure).to_have_attribute("href", "https://example.org/politicians")
    expect(disclosure).to_have_attribute("rel", "noopener noreferrer")
    expect(page.locator(".pc-results-explained")).to_contain_text("50%")
    expect(page.locator(".pc-status")).to_contain_text("Done")

    first_photo = page.get_attribute(".pc-img", "src")
    visit.upload(STRANGER)
    visit.expect_verdicts(politicians="no_match", actors="no_match")
    visit.assert_clean()
    # The first photo's object URL was revoked when it was replaced (probing it logs a load error: so, last).
    assert page.get_attribute(".pc-img", "src") != first_photo
    assert page.evaluate(REVOKED, first_photo)


def test_a_second_face_is_picked_by_keyboard_and_checked(visit: Visit, tmp_path):
    page = visit.page
    visit.open()
    answer = visit.upload(GROUP)
    assert answer["faces_detected"] == 2
    faces = page.locator(".pc-face")
    expect(faces).to_have_text(["Face 0 (largest)", "Face 1"])  # from 0, as the API and the CLI
    expect(faces.nth(0)).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".pc-box")).to_have_count(2)
    visit.expect_verdicts(actors="match")

    faces.nth(0).focus()
    page.keyboard.press("Tab")
    expect(faces.nth(1)).to_be_focused()
    with page.expect_response(lambda r: r.url.endswith("/api/v1/check")) as second:
        page.keyboard.press("Enter")
    assert second.value.json()["face"]["number"] == 1
    expect(page.locator(".pc-status")).to_contain_text("this is face 1")
    visit.expect_verdicts(actors="match", politicians="no_match")
    expect(faces.nth(1)).to_have_attribute("aria-pressed", "true")
    expect(faces.nth(1)).to_be_focused()  # the buttons were updated, not rebuilt under the person's focus
    expect(page.locator(".pc-box-chosen")).to_have_attribute("data-face", "1")
    expect_box_on(page, second.value.json()["face"]["box"])
    visit.assert_clean()

    # The picture for the README: the results of a group photo. The photo itself is blurred: the
    # test photos are not to be copied into the repository, not even inside a screenshot.
    page.evaluate("document.activeElement.blur()")
    page.locator(".pc-photo img").evaluate("image => { image.style.filter = 'blur(14px)'; }")
    page.screenshot(path=screenshot_path("page.png", tmp_path), full_page=True)


def test_more_photos_of_one_person_get_one_answer_and_a_stranger_is_refused(visit: Visit):
    page = visit.page
    visit.open()
    visit.upload(OBAMA)
    visit.expect_verdicts(politicians="match", actors="no_match")
    expect(page.locator(".pc-add-hint")).to_contain_text("more photos of you give a surer answer")

    def add(photo: Path) -> Response:
        with page.expect_response(lambda r: r.url.endswith("/api/v1/check")) as answer:
            with page.expect_file_chooser() as chooser:
                page.get_by_role("button", name="Add another photo of yourself (up to 5)").click()
            chooser.value.set_files(photo)
        return answer.value

    second = add(OBAMA_SMALL)
    # Both photos, in one request, one answer.
    assert second.status == 200 and [p["error"] for p in second.json()["photos"]] == [None, None]
    expect(page.locator(".pc-photo-card")).to_have_count(2)
    expect(page.locator(".pc-photo-title")).to_have_text(["Photo 1", "Photo 2"])
    expect(page.locator(".pc-result")).to_have_count(2)  # one answer for both photos
    visit.expect_verdicts(politicians="match", actors="no_match")
    expect(page.locator(".pc-status")).to_contain_text("2 photos of you were checked together")

    third = add(STRANGER)
    assert third.status == 422 and third.json()["error"]["code"] == "not_same_person"
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("photo 3 does not look like the same person as photo 1 and photo 2")
    expect(page.locator(".pc-photo-card").nth(2).locator(".pc-photo-note")).to_have_text(
        "This does not look like the person in photo 1, photo 2."
    )
    expect(page.locator(".pc-results")).to_be_hidden()
    with page.expect_response(lambda r: r.url.endswith("/api/v1/check")) as fixed:
        page.get_by_role("button", name="Remove photo 3").click()
    assert fixed.value.status == 200
    expect(page.locator(".pc-photo-card")).to_have_count(2)
    visit.expect_verdicts(politicians="match", actors="no_match")
    expect(alert).to_be_hidden()
    visit.assert_clean()


def test_the_apis_error_message_is_shown(visit: Visit, tmp_path: Path, faces_server):
    page = visit.page
    pdf = tmp_path / "statement.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
    with pdf.open("rb") as f:
        expected = requests.post(f"{faces_server.url}/api/v1/check", files={"image": f}, timeout=30).json()
    assert expected["error"]["code"] == "unsupported_format"

    visit.open()
    visit.upload(pdf)
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert.locator(".pc-alert-message")).to_have_text(expected["error"]["message"])
    expect(page.locator(".pc-results")).to_be_hidden()
    expect(page.locator(".pc-photo")).to_be_hidden()  # the browser cannot show it either

    # No face at all: the API's words, which say what to do, and no second hint saying it again.
    blank = tmp_path / "blank.png"
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 180, 160)).save(buffer, "PNG")
    blank.write_bytes(buffer.getvalue())
    assert visit.upload(blank)["error"]["code"] == "no_face"
    expect(alert).to_contain_text("face")
    expect(alert.locator(".pc-alert-message")).to_contain_text("Use a photo where your face is clearly visible")
    expect(alert.locator(".pc-alert-hint")).to_be_hidden()
    visit.assert_clean()


def test_a_phone_screen_has_no_sideways_scroll_and_nothing_leaves_the_origin(new_visit):
    visit = new_visit(PHONE)
    page = visit.page
    response = visit.open()
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    no_sideways_scroll = "document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(no_sideways_scroll)

    visit.upload(GROUP)
    visit.expect_verdicts(actors="match")
    expect(page.locator(".pc-face")).to_have_count(2)
    assert page.evaluate(no_sideways_scroll)
    visit.open("/privacy")
    assert page.evaluate(no_sideways_scroll)
    assert visit.requests, "the page made no requests at all"
    visit.assert_clean()


def test_without_a_camera_the_page_says_so_and_uploads_still_work(new_visit):
    # Headless Chromium has no camera: getUserMedia is refused or finds none.
    visit = new_visit()
    page = visit.page
    visit.open()
    page.get_by_role("button", name="Take a selfie").click()
    expect(page.get_by_role("alert")).to_contain_text("You can still choose a photo instead.")
    expect(page.locator(".pc-camera")).to_be_hidden()
    visit.upload(OBAMA)
    visit.expect_verdicts(politicians="match")
    expect(page.get_by_role("alert")).to_be_hidden()
    visit.assert_clean()

    # An http:// page that is not localhost has no navigator.mediaDevices at all.
    visit = new_visit(init_script="Object.defineProperty(Navigator.prototype, 'mediaDevices', {get: () => undefined});")
    visit.open()
    visit.page.get_by_role("button", name="Take a selfie").click()
    expect(visit.page.get_by_role("alert")).to_contain_text("You can still choose a photo instead.")
    expect(visit.page.get_by_label("Choose a photo")).to_be_enabled()
    visit.assert_clean()


MOUNT_IN_SHADOW = """
async (apiBase) => {
  const { mountCheck } = await import("/static/check-ui.js");
  const host = document.createElement("div");
  host.id = "widget";
  document.body.append(host);
  const shadow = host.attachShadow({ mode: "open" });
  window.widget = mountCheck(shadow, {
    apiBase,
    stylesheet: "/static/check-ui.css",
    strings: { chooseLabel: "Pick a picture" },
  });
}
"""


def test_the_ui_mounts_in_a_shadow_root_on_its_own(visit: Visit, faces_server):
    """What an embedding widget will do: everything stays inside the shadow root, with its own styles."""
    page = visit.page
    visit.open()
    expect(page.locator(".pc-dataset")).to_have_count(2)
    page.evaluate(MOUNT_IN_SHADOW, faces_server.url + "/")
    widget = page.locator("#widget")
    expect(widget.locator(".pc-dataset")).to_have_count(2)
    expect(widget.get_by_label("Pick a picture")).to_be_attached()
    border = widget.locator(".pc-drop").evaluate("element => getComputedStyle(element).borderTopStyle")
    assert border == "dashed"

    with page.expect_response(lambda r: r.url.endswith("/api/v1/check")):
        widget.locator("input[type=file]").set_input_files(OBAMA)
    expect(widget.locator(".pc-result[data-dataset='politicians']")).to_have_attribute("data-verdict", "match")
    expect(page.locator("[data-photocheck] .pc-result")).to_have_count(0)  # the page's own UI is untouched
    page.evaluate("window.widget.destroy()")
    expect(widget.locator(".pc-check")).to_have_count(0)
    visit.assert_clean()


@pytest.mark.parametrize("logs_client_ip", [False, True])
@pytest.mark.parametrize("shared_rate_limits", [False, True])
def test_the_privacy_page_says_what_the_settings_do(logs_client_ip: bool, shared_rate_limits: bool):
    """Each setting the page depends on picks one claim and drops the other (the live page shows the defaults)."""
    templates = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT / "static"), autoescape=True)
    html = templates.get_template("privacy.html").render(
        logs_client_ip=logs_client_ip,
        rate_limit="10/minute;100/day",
        max_upload_mb=7.5,
        shared_rate_limits=shared_rate_limits,
    )
    assert ('data-claim="ip-log"' in html) is logs_client_ip
    assert ('data-claim="no-ip-log"' in html) is not logs_client_ip
    assert ('data-claim="rate-limit-shared"' in html) is shared_rate_limits
    assert ('data-claim="rate-limit-memory"' in html) is not shared_rate_limits
    assert "(10 per minute, 100 per day; a check of several photos counts each photo)" in html
    assert "limited to 7.5 MB" in html


def test_the_privacy_page_matches_this_server_and_its_log(visit: Visit, tmp_path: Path, faces_server):
    page = visit.page
    visit.open()
    # One upload of its own, so the log holds a check whatever ran before.
    pdf = tmp_path / "statement.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    visit.upload(pdf)
    expect(page.get_by_role("alert")).to_be_visible()

    page.get_by_role("link", name="What happens to your photo").first.click()
    expect(page).to_have_url(f"{faces_server.url}/privacy")
    expect(page.get_by_role("heading", level=1)).to_have_text("What happens to your photo")
    # The test server runs with the defaults: no IP addresses in the log, counters in memory.
    expect(page.locator("[data-claim='no-ip-log']")).to_contain_text("does not record your IP address")
    expect(page.locator("[data-claim='ip-log']")).to_have_count(0)
    expect(page.locator("[data-claim='rate-limit-memory']")).to_contain_text("60 per minute")
    expect(page.locator("[data-claim='rate-limit-shared']")).to_have_count(0)
    expect(page.locator("[data-claim='upload-limit']")).to_contain_text("15 MB")
    for claim in ("in-memory", "dropped", "no-disk", "no-content-log", "no-cookies", "no-third-party", "proxy"):
        expect(page.locator(f"[data-claim='{claim}']")).to_be_visible()
    visit.assert_clean()

    log = faces_server.output()
    access = [line for line in log.splitlines() if re.match(r'\[[^]]+\] "(GET|POST|HEAD) ', line)]
    assert any('"POST /api/v1/check" 415' in line for line in access), log
    assert not [line for line in access if "127.0.0.1" in line]
    for name in UPLOADED:
        assert name not in log
