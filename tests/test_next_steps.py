"""After a match, in headless Chromium against a real server: what a person can do next (holder, status,
removal route, rights where they live), the request letter drafted in the browser without a single
request, the same in the widget on another site, the never-disclosed collections, the catalog facts,
the search by Flickr account, and the /next-steps page the bulk report links to."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser import chromium, screenshot_path
from conftest import FACES
from PIL import Image
from playwright.sync_api import Browser, Locator, Page, expect
from servers import Server, host_server, serve

from indexer.catalog import dataset_fields, get_entry

pytestmark = pytest.mark.browser

expect.set_options(timeout=15_000)  # a check takes about a second on a small machine

OBAMA = FACES / "people" / "obama" / "obama4.jpg"  # held out of ffhq-sample
KIT = FACES / "people" / "kit_harington" / "john3.jpg"  # held out of megaface-sample
ACCOUNT = "12345678@N00"  # Obama's photos in ffhq-sample were "posted" by this Flickr account...
USERNAME = "pc_tester"  # ...whose username the FFHQ-style metadata names
OTHER_ACCOUNT = "87654321@N05"  # Biden's photo's account
MEGAFACE_ACCOUNT = "99999999@N01"  # MegaFace-style metadata: photo id and owner NSID, no username
PHOTOS = {"obama.jpg": "5012345601", "obama2.jpg": "5012345602", "obama3.jpg": "5012345603", "biden.jpg": "6012345604"}
PHONE = {"width": 360, "height": 740}

CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline code"}`);
}, true);
"""


def ffhq_record(number: int, photo: Path) -> dict:
    """What FFHQ's ffhq-dataset-v2.json holds for an image: its Flickr page, author and licence, and files."""
    owner, author = (OTHER_ACCOUNT, "someone_else") if photo.name == "biden.jpg" else (ACCOUNT, USERNAME)
    return {
        "category": "training",
        "metadata": {
            "photo_url": f"https://www.flickr.com/photos/{owner}/{PHOTOS[photo.name]}/",
            "photo_title": "untitled",
            "author": author,
            "country": "",
            "license": "Attribution License",
            "license_url": "https://creativecommons.org/licenses/by/2.0/",
            "date_uploaded": "2009-06-07",
            "date_crawled": "2018-10-10",
        },
        "image": {"file_path": f"images1024x1024/00000/{number:05d}.png"},
        "in_the_wild": {"file_path": f"in-the-wild-images/00000/{number:05d}.png", "face_rect": [0, 0, 10, 10]},
    }


@pytest.fixture(scope="module")
def catalog_index(tmp_path_factory, dlib_embedder) -> Path:
    """Two datasets added with catalog names, in their sets' own layouts: ``ffhq-sample`` (ffhq) holds
    Obama (3 photos) and Biden in FFHQ's (ffhq-dataset-v2.json and its in-the-wild images);
    ``megaface-sample`` (megaface) holds Kit Harington and Rose Leslie in MegaFace's (a folder per
    owner NSID, files named by photo id: no usernames)."""
    from indexer.pipeline import build_dataset

    base = tmp_path_factory.mktemp("catalog-index")
    ffhq = base / "sources" / "ffhq"
    obama = sorted((FACES / "people" / "obama").iterdir())[:-1]
    records = {}
    for number, photo in enumerate([*obama, FACES / "people" / "biden" / "biden.jpg"]):
        records[str(number)] = ffhq_record(number, photo)
        target = ffhq / records[str(number)]["in_the_wild"]["file_path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.open(photo).save(target, "PNG")
    (ffhq / "ffhq-dataset-v2.json").write_text(json.dumps(records))
    megaface = base / "sources" / "megaface" / "FlickrFinal2" / "999" / MEGAFACE_ACCOUNT
    megaface.mkdir(parents=True)
    kit = sorted((FACES / "people" / "kit_harington").iterdir())[:-1]
    for number, photo in enumerate([*kit, FACES / "people" / "rose_leslie" / "img1.jpg"]):
        shutil.copy(photo, megaface / f"70000000{number}_0.jpg")
    for name, source in (("ffhq-sample", ffhq), ("megaface-sample", base / "sources" / "megaface")):
        catalog = name.removesuffix("-sample")
        build_dataset(
            base / "index",
            source,
            dataset=name,
            embedder=dlib_embedder,
            progress=False,
            source_format=catalog,
            fields={**dataset_fields(get_entry(catalog)), "catalog": catalog},
        )
    return base / "index"


@pytest.fixture(scope="module")
def server(catalog_index, tmp_path_factory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("next-steps-server") / "server.log"
    with serve(catalog_index, log) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


def origin(url: str) -> str:
    parts = urlsplit(url[len("blob:") :] if url.startswith("blob:") else url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Visit:
    page: Page
    url: str
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def open(self, path: str = "/") -> None:
        response = self.page.goto(self.url + path)
        assert response is not None and response.ok, path

    def check(self, photo: Path, within: Page | Locator | None = None) -> dict:
        scope = within or self.page
        with self.page.expect_response(lambda r: r.url.endswith("/api/v1/check")) as answer:
            scope.locator("input[type=file]").set_input_files(photo)
        return answer.value.json()

    def assert_clean(self) -> None:
        assert not [url for url in self.requests if origin(url) != self.url], self.requests
        assert not self.problems, self.problems
        assert self.page.context.cookies() == []
        assert self.page.evaluate("localStorage.length + sessionStorage.length") == 0


@pytest.fixture
def new_visit(browser: Browser, server: Server):
    contexts = []

    def start(viewport: dict[str, int] | None = None, locale: str = "de-DE", clipboard: bool = False) -> Visit:
        # de-DE: a German visitor, so the region starts at "EU or EEA" (from navigator.language alone).
        context = browser.new_context(viewport=viewport or {"width": 1100, "height": 900}, locale=locale)
        if clipboard:
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
        contexts.append(context)
        page = context.new_page()
        page.add_init_script(CSP_LISTENER)
        visit = Visit(page, server.url)
        page.on("request", lambda request: visit.requests.append(request.url))
        page.on("pageerror", lambda error: visit.problems.append(f"page error: {error}"))
        page.on("console", lambda m: m.type == "error" and visit.problems.append(f"console: {m.text}"))
        return visit

    yield start
    for context in contexts:
        context.close()


def checked_today(region: str = "eu") -> str:
    """The date as the letter writes it: 1 December 2026 (en-GB), December 1, 2026 (US states)."""
    today = date.today()
    month = today.strftime("%B")
    return (
        f"{month} {today.day}, {today.year}"
        if region in ("california", "illinois")
        else f"{today.day} {month} {today.year}"
    )


# -- a match on the page ---------------------------------------------------------------------------


def test_a_match_shows_who_holds_the_set_how_to_ask_for_removal_and_the_rights_and_drafts_a_letter(new_visit, tmp_path):
    visit = new_visit()
    page = visit.page
    visit.open()
    answer = visit.check(OBAMA)
    verdicts = {r["dataset"]: r for r in answer["results"]}
    assert verdicts["ffhq-sample"]["verdict"] == "match" and verdicts["megaface-sample"]["verdict"] == "no_match"

    steps = page.locator(".pc-check-panel .pc-next-steps")
    expect(steps.get_by_role("heading", level=2, name="What you can do next")).to_be_visible()
    expect(steps.get_by_role("note")).to_contain_text("not legal advice")
    expect(steps.locator(".pc-next")).to_have_count(1)  # only the matched dataset
    ffhq = steps.locator(".pc-next[data-dataset='ffhq-sample']")
    expect(ffhq.get_by_role("heading", level=3)).to_have_text("Flickr-Faces-HQ (FFHQ)")
    expect(ffhq.locator("dd").nth(0)).to_have_text("NVIDIA")
    expect(ffhq.locator("dd").nth(1)).to_contain_text("Still distributed")
    expect(ffhq.get_by_role("link", name="researchinquiries@nvidia.com")).to_have_attribute(
        "href", "mailto:researchinquiries@nvidia.com"
    )
    removal_steps = ffhq.locator(".pc-removal-steps li")
    expect(removal_steps).to_have_count(len(get_entry("ffhq")["removal"]["steps"]))
    expect(removal_steps.nth(1)).to_contain_text("tag it no_cv")
    expect(ffhq.get_by_role("link", name="Where to ask for removal")).to_have_attribute(
        "href", "https://github.com/NVlabs/ffhq-dataset#privacy"
    )
    expect(ffhq.get_by_role("link", name="Look yourself up in this dataset")).to_have_attribute(
        "href", "https://nvlabs.github.io/ffhq-dataset/search/"
    )

    # The rights where a visitor with a German browser lives: GDPR access and erasure, with deadlines.
    region = steps.get_by_label("Where do you live?")
    expect(region).to_have_value("eu")
    remedies = steps.locator(".pc-remedy")
    expect(remedies).to_have_count(2)
    expect(remedies.nth(0)).to_have_attribute("data-remedy", "gdpr-access")
    expect(remedies.nth(0)).to_contain_text("within one month")
    expect(remedies.nth(1)).to_have_attribute("data-remedy", "gdpr-erasure")

    # The letter: addressed to the holder, naming the set, the day, the verdict and its confidence.
    ffhq.get_by_text("Draft a request letter").click()
    letter = ffhq.get_by_label("Your letter (you can edit it)")
    expect(letter).to_be_visible()
    text = letter.input_value()
    shown = page.locator(".pc-result[data-dataset='ffhq-sample'] .pc-percent").inner_text()
    assert text.startswith("To: NVIDIA (researchinquiries@nvidia.com)\n")
    for words in (
        "Articles 15 and 17 GDPR",
        "the Flickr-Faces-HQ (FFHQ) dataset (2019)",
        f"On {checked_today()} I checked a photo of my face",
        f'"Likely in this dataset", with an estimated chance of {shown}',
        "Article 15(1)(g)",
        "within one month of receiving this request",
        "[Your name]",
    ):
        assert words in text, words
    # Nothing of the photo, its file, or any other dataset or person.
    for absent in ("obama", "jpg", "MegaFace", "Kit", "blob:"):
        assert absent.lower() not in text.lower(), absent
    expect(ffhq.get_by_text("Send it to:")).to_contain_text("researchinquiries@nvidia.com")
    # The picture for the README: the section alone, which holds no photo.
    steps.screenshot(path=screenshot_path("next-steps.png", tmp_path))

    # A stranger's photo clears the next steps.
    visit.check(FACES / "people" / "alex_lacamoire" / "img1.jpg")
    expect(page.locator(".pc-result")).to_have_count(2)
    expect(steps).to_be_hidden()
    visit.assert_clean()


def test_drafting_choosing_a_region_editing_copying_and_saving_send_no_request(new_visit, server: Server, tmp_path):
    visit = new_visit(clipboard=True)
    page = visit.page
    visit.open()
    visit.check(OBAMA)
    steps = page.locator(".pc-check-panel .pc-next-steps")
    ffhq = steps.locator(".pc-next[data-dataset='ffhq-sample']")
    expect(steps.locator(".pc-remedy")).to_have_count(2)  # the catalog has arrived too
    # From here on, every request the page makes is recorded: there must be none.
    visit.requests.clear()
    log_before = server.output()

    region = steps.get_by_label("Where do you live?")
    region.select_option("california")
    expect(steps.locator(".pc-remedy")).to_have_count(1)
    expect(steps.locator(".pc-remedy")).to_have_attribute("data-remedy", "ccpa-delete")
    expect(steps.locator(".pc-remedy")).to_contain_text("45 calendar days")
    expect(steps.locator(".pc-region-status")).to_have_text("The rights and letters below are now for: In California.")
    ffhq.get_by_text("Draft a request letter").click()
    letter = ffhq.get_by_label("Your letter (you can edit it)")
    text = letter.input_value()
    assert "CCPA (Cal. Civ. Code § 1798.105)" in text and "I am a California resident." in text
    assert "within 10 business days" in text and "45" in text and "GDPR" not in text
    assert f"On {checked_today('california')} I checked" in text

    # An edited letter is kept when the region changes, until the person asks for a new draft.
    letter.fill(text.replace("[Your name]", "Ada Example"))
    region.select_option("illinois")
    expect(ffhq.locator(".pc-letter-kept")).to_be_visible()
    assert "Ada Example" in letter.input_value() and "1798.105" in letter.input_value()
    expect(steps.locator(".pc-remedy")).to_have_attribute("data-remedy", "bipa")
    ffhq.get_by_role("button", name="Draft it again for where you live now").click()
    expect(letter).to_be_focused()
    redrafted = letter.input_value()
    assert "740 ILCS 14/15(a)" in redrafted and "Ada Example" not in redrafted
    region.select_option("elsewhere")
    expect(steps.locator(".pc-rights-none")).to_contain_text("similar rights")
    assert "Please answer within one month" in letter.input_value()  # not edited since: redrafted
    region.select_option("uk")
    assert "UK GDPR" in letter.input_value() and "Information Commissioner's Office" in letter.input_value()

    letter.press("End")
    letter.press_sequentially("\nPS: sent by Ada.")
    final = letter.input_value()
    assert final.endswith("PS: sent by Ada.")
    ffhq.get_by_role("button", name="Copy the letter").click()
    expect(ffhq.locator(".pc-letter-status")).to_have_text("The letter was copied. Paste it into an email or a form.")
    assert page.evaluate("navigator.clipboard.readText()") == final

    with page.expect_download() as download:
        ffhq.get_by_role("button", name="Download it as a text file").click()
    saved = tmp_path / "letter.txt"
    download.value.save_as(saved)
    assert download.value.suggested_filename == f"request-ffhq-sample-{date.today().isoformat()}.txt"
    assert saved.read_text(encoding="utf-8") == final
    expect(ffhq.locator(".pc-letter-status")).to_contain_text("request-ffhq-sample-")

    # Only the letter's own blob: URL was "requested" (a local download, on this page's origin).
    network = [url for url in visit.requests if not url.startswith(f"blob:{server.url}/")]
    assert network == [], network
    assert server.output() == log_before  # and the server heard nothing
    visit.assert_clean()


def test_the_next_steps_fit_a_phone_screen(new_visit):
    visit = new_visit(viewport=PHONE, locale="en-GB")
    page = visit.page
    visit.open()
    visit.check(OBAMA)
    expect(page.locator(".pc-check-panel").get_by_label("Where do you live?")).to_have_value("uk")
    page.locator(".pc-check-panel .pc-letter summary").click()
    expect(page.locator(".pc-check-panel .pc-letter-text")).to_be_visible()
    page.locator(".pc-catalog-facts summary").first.click()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_role("tab", name="Search by Flickr account").click()
    page.get_by_label("Your Flickr username, account id").fill(USERNAME)
    page.get_by_label("Your Flickr username, account id").press("Enter")
    expect(page.locator(".pc-lookup-result")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    visit.open("/next-steps#ffhq-sample")
    expect(page.locator(".pc-next[data-dataset='ffhq-sample']")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    visit.assert_clean()


# -- the catalog and what cannot be checked --------------------------------------------------------


def test_the_page_shows_each_datasets_catalog_facts_and_the_collections_that_cannot_be_checked(new_visit):
    visit = new_visit(locale="en-US")
    page = visit.page
    visit.open()
    ffhq = page.locator(".pc-dataset[data-dataset='ffhq-sample']")
    facts = ffhq.locator(".pc-catalog-facts")
    facts.get_by_text("What is known about this dataset").click()
    expect(facts).to_contain_text("70,000")
    expect(facts).to_contain_text("CC BY-NC-SA 4.0")
    expect(facts.get_by_role("link", name="NVlabs/ffhq-dataset README")).to_have_attribute(
        "href", "https://github.com/NVlabs/ffhq-dataset"
    )
    megaface = page.locator(".pc-dataset[data-dataset='megaface-sample'] .pc-catalog-facts")
    megaface.locator("summary").click()
    expect(megaface).to_contain_text("Withdrawn, but copies still circulate")

    collections = page.locator(".pc-collection")
    expect(collections).to_have_count(3)
    clearview = page.locator(".pc-collection[data-collection='clearview-ai']")
    expect(clearview.get_by_role("heading", level=3)).to_have_text("Clearview AI")
    expect(clearview.locator(".pc-collection-route")).to_contain_text("privacy-requests@clearview.ai")
    # A visitor from the news finds them from the top of the check.
    pointer = page.locator(".pc-undisclosed-pointer")
    expect(pointer).to_contain_text("Clearview AI? They were never disclosed, so they cannot be checked.")
    pointer.get_by_role("button", name="Read what is known").click()
    expect(page.get_by_role("heading", name="Collections that cannot be checked")).to_be_focused()
    expect(page.locator(".pc-next-steps")).to_have_count(2)  # the check's and the lookup's...
    for steps in page.locator(".pc-next-steps").all():
        expect(steps).to_be_hidden()  # ...hidden without a check or a search
    visit.assert_clean()


# -- the search by Flickr account ------------------------------------------------------------------


def test_the_lookup_tab_shows_an_accounts_photos_per_dataset(new_visit, server: Server, tmp_path):
    visit = new_visit()
    page = visit.page
    visit.open()
    check_tab = page.get_by_role("tab", name="Check a photo")
    lookup_tab = page.get_by_role("tab", name="Search by Flickr account")
    expect(check_tab).to_have_attribute("aria-selected", "true")
    check_tab.focus()
    page.keyboard.press("ArrowRight")  # the tabs pattern: arrows move between tabs
    expect(lookup_tab).to_be_focused()
    expect(lookup_tab).to_have_attribute("aria-selected", "true")
    expect(page.get_by_label("Choose a photo")).to_be_hidden()
    panel = page.locator(".pc-lookup")
    expect(page.get_by_role("tabpanel")).to_have_id(panel.get_attribute("id"))  # the visible one
    expect(panel).to_contain_text("answered in memory and then forgotten")

    query = panel.get_by_label("Your Flickr username, account id")
    query.fill(ACCOUNT)
    with page.expect_response(lambda r: "/api/v1/lookup?" in r.url) as answer:
        query.press("Enter")
    assert answer.value.json()["query"] == {"kind": "nsid", "value": ACCOUNT}
    expect(panel.locator(".pc-lookup-status")).to_contain_text("Done")
    ffhq = panel.locator(".pc-lookup-result[data-dataset='ffhq-sample']")
    expect(ffhq.locator(".pc-lookup-verdict")).to_have_text("3 photos from this account")
    links = ffhq.locator(".pc-photo-link")
    expect(links).to_have_count(3)
    hrefs = sorted(links.evaluate_all("links => links.map((a) => a.href)"))
    assert hrefs == [
        f"https://www.flickr.com/photos/{ACCOUNT}/{PHOTOS[n]}/" for n in ("obama.jpg", "obama2.jpg", "obama3.jpg")
    ]
    expect(links.first).to_have_attribute("rel", "noopener noreferrer")
    expect(panel.locator(".pc-lookup-result[data-dataset='megaface-sample'] .pc-lookup-verdict")).to_have_text(
        "Not in this dataset"
    )
    # What to do about it, with a letter listing the account's photos.
    next_steps = panel.locator(".pc-next[data-dataset='ffhq-sample']")
    expect(next_steps.locator("dd").first).to_have_text("NVIDIA")
    next_steps.get_by_text("Draft a request letter").click()
    text = next_steps.get_by_label("Your letter (you can edit it)").input_value()
    assert f"for my Flickr account ({ACCOUNT}). It found 3 photos from my account" in text
    assert f"https://www.flickr.com/photos/{ACCOUNT}/{PHOTOS['obama2.jpg']}/" in text
    assert PHOTOS["biden.jpg"] not in text  # another account's photo
    panel.locator(".pc-lookup-results").screenshot(path=screenshot_path("lookup.png", tmp_path))

    # A username: found where the metadata names authors; MegaFace-style metadata cannot be searched so.
    query.fill(USERNAME)
    with page.expect_response(lambda r: "/api/v1/lookup?" in r.url):
        panel.get_by_role("button", name="Search").click()
    expect(panel.locator(".pc-lookup-query")).to_have_text(f"For the Flickr username {USERNAME}")
    expect(ffhq.locator(".pc-lookup-verdict")).to_have_text("3 photos from this account")
    megaface = panel.locator(".pc-lookup-result[data-dataset='megaface-sample']")
    expect(megaface.locator(".pc-lookup-verdict")).to_have_text("Cannot be searched by username")
    expect(megaface.locator(".pc-lookup-cannot")).to_contain_text("Search with your account id")

    # A photo's link finds that photo; the MegaFace account is found by its NSID.
    query.fill(f"https://www.flickr.com/photos/{OTHER_ACCOUNT}/{PHOTOS['biden.jpg']}/in/dateposted/")
    with page.expect_response(lambda r: "/api/v1/lookup?" in r.url):
        query.press("Enter")
    expect(panel.locator(".pc-lookup-query")).to_have_text(f"For the Flickr photo {PHOTOS['biden.jpg']}")
    expect(ffhq.locator(".pc-lookup-verdict")).to_have_text("This photo is in this dataset")
    expect(ffhq.locator(".pc-photo-link")).to_have_attribute(
        "href", f"https://www.flickr.com/photos/{OTHER_ACCOUNT}/{PHOTOS['biden.jpg']}/"
    )
    query.fill(MEGAFACE_ACCOUNT)
    with page.expect_response(lambda r: "/api/v1/lookup?" in r.url):
        query.press("Enter")
    expect(megaface.locator(".pc-lookup-verdict")).to_have_text("3 photos from this account")
    expect(ffhq.locator(".pc-lookup-verdict")).to_have_text("Not in this dataset")

    # Nothing typed, or something that is no Flickr account: said in words.
    query.fill("")
    panel.get_by_role("button", name="Search").click()
    expect(panel.get_by_role("alert")).to_have_text("Type a Flickr username, an account id or a link to a photo first.")
    query.fill("https://example.org/not/flickr")
    with page.expect_response(lambda r: "/api/v1/lookup?" in r.url) as refused:
        query.press("Enter")
    assert refused.value.status == 400
    expect(panel.get_by_role("alert")).to_have_text(refused.value.json()["error"]["message"])
    expect(panel.locator(".pc-lookup-results")).to_be_hidden()

    check_tab.click()
    expect(page.get_by_label("Choose a photo")).to_be_attached()
    expect(panel).to_be_hidden()
    visit.problems = [p for p in visit.problems if "status of 400" not in p]  # the refused lookup, on purpose
    visit.assert_clean()
    for value in (ACCOUNT, USERNAME, MEGAFACE_ACCOUNT):
        assert value not in server.output()  # the access log never holds the query


# -- the letter's wording, in the browser's own JavaScript -----------------------------------------

LETTERS = """
async () => {
  const letters = await import("/static/letter.js");
  const entry = {
    title: "Flickr-Faces-HQ (FFHQ)", year: 2019, maintainer: "NVIDIA", contact: "researchinquiries@nvidia.com",
  };
  const finding = { kind: "face", verdict: "possible", percent: "62%" };
  const checkedAt = new Date(2026, 11, 1);
  const dataset = { name: "ffhq-sample" };
  const draft = (region) => letters.draftLetter({ dataset, entry, finding, region, checkedAt, today: checkedAt });
  const odd = { name: "../../Odd name!" };
  return {
    regions: ["de-AT", "en-GB", "nb-NO", "fr", "en-US", "de-CH", "", "not a tag"].map(letters.regionFromLanguage),
    letters: Object.fromEntries(letters.REGIONS.map((region) => [region, draft(region)])),
    unknown: letters.draftLetter({ dataset: odd, entry: null, finding, region: "eu", checkedAt }),
    email: [letters.contactEmail("mailto:a@b.org"), letters.contactEmail("https://example.org/form")],
  };
}
"""


def test_each_regions_letter_cites_its_law_and_deadlines(new_visit):
    visit = new_visit()
    visit.open()
    out = visit.page.evaluate(LETTERS)
    assert out["regions"] == ["eu", "uk", "eu", "elsewhere", "elsewhere", "elsewhere", "elsewhere", "elsewhere"]
    letters = out["letters"]
    assert (
        "Date: 1 December 2026" in letters["eu"]["text"] and "Date: December 1, 2026" in letters["california"]["text"]
    )
    assert "the General Data Protection Regulation (GDPR)" in letters["eu"]["text"]
    assert "two further months" in letters["eu"]["text"] and "UK GDPR" not in letters["eu"]["text"]
    assert "the UK General Data Protection Regulation (UK GDPR)" in letters["uk"]["text"]
    assert "§ 1798.140(v)(2)" in letters["california"]["text"] and "§ 7021" in letters["california"]["text"]
    assert "740 ILCS 14/15(a)" in letters["illinois"]["text"] and "GDPR" not in letters["illinois"]["text"]
    assert "ILCS" not in letters["elsewhere"]["text"] and "CCPA" not in letters["elsewhere"]["text"]
    for letter in letters.values():
        assert '"Possibly in this dataset", with an estimated chance of 62%' in letter["text"]
        assert "may therefore hold one or more photos of me; I ask you to check" in letter["text"]
        assert letter["fileName"] == "request-ffhq-sample-2026-12-01.txt"
        assert letter["email"] == "researchinquiries@nvidia.com"
    # A dataset the catalog does not know: a blank for the holder, and a safe file name.
    assert out["unknown"]["text"].startswith("To: [the dataset's holder]\n")
    assert re.fullmatch(r"request-odd-name-\d{4}-\d{2}-\d{2}\.txt", out["unknown"]["fileName"])
    assert out["email"] == ["a@b.org", None]
    visit.assert_clean()


# -- the page the bulk report links to ---------------------------------------------------------------


def test_the_next_steps_page_for_a_dataset_named_in_the_fragment(new_visit, server: Server):
    visit = new_visit(locale="fr-FR")
    page = visit.page
    visit.open("/next-steps#megaface-sample")
    dataset = page.get_by_label("Which dataset?")
    expect(dataset).to_have_value("megaface-sample")
    item = page.locator(".pc-next[data-dataset='megaface-sample']")
    expect(item.get_by_role("heading", level=3)).to_have_text("MegaFace and MegaFace 2 (MF2)")
    expect(item.locator("dd").nth(1)).to_contain_text("Withdrawn, but copies still circulate")
    expect(item.locator(".pc-removal-summary")).to_contain_text("No removal route was found")
    item.get_by_text("Draft a request letter").click()
    text = item.get_by_label("Your letter (you can edit it)").input_value()
    assert "GDPR" in text and "[Say when the check was made and what it found.]" in text
    # Any catalog dataset can be chosen, and the fragment follows (it never reaches the server).
    dataset.select_option("celeba")
    expect(page).to_have_url(f"{server.url}/next-steps#celeba")
    expect(page.locator(".pc-next[data-dataset='celeba']")).to_be_visible()
    expect(page.locator(".pc-collection")).to_have_count(3)
    assert '"GET /next-steps" 200' in server.output() and "celeba" not in server.output()
    visit.open("/privacy")
    expect(page.locator("[data-claim='letter']")).to_contain_text("sends nothing to this server")
    expect(page.locator("[data-claim='lookup']")).to_contain_text("not logged")
    visit.assert_clean()


# -- the widget on another site --------------------------------------------------------------------


def test_the_widget_on_another_site_shows_the_next_steps_and_drafts_the_letter(
    browser: Browser, catalog_index, tmp_path
):
    pages: dict[str, str] = {}
    with host_server(pages) as port:
        host = f"http://127.0.0.1:{port}"
        with serve(catalog_index, tmp_path / "widget.log", env={"PHOTOCHECK_WIDGET_ORIGINS": host}) as service:
            pages["/news.html"] = (
                '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>News</title>'
                '<link rel="icon" href="data:,"></head><body><h1>A news site</h1><h2>Check yourself</h2>'
                '<div data-photocheck data-heading-level="3" data-lookup="off"></div>'
                f'<script src="{service.url}/widget.js" defer crossorigin="anonymous" '
                'referrerpolicy="no-referrer"></script></body></html>'
            )
            context = browser.new_context(viewport={"width": 1000, "height": 900}, locale="en-GB")
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=host)
            page = context.new_page()
            requests: list[str] = []
            errors: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda error: errors.append(str(error)))
            try:
                page.goto(f"{host}/news.html")
                widget = page.locator("[data-photocheck]")
                expect(widget.locator(".pc-collection")).to_have_count(3)
                expect(widget.get_by_role("tab")).to_have_count(0)  # data-lookup="off": the photo check only
                with page.expect_response(lambda r: r.url == f"{service.url}/api/v1/check"):
                    widget.locator("input[type=file]").set_input_files(OBAMA)
                steps = widget.locator(".pc-next-steps")
                # Headings at the widget's level: the section at 3, the dataset at 4.
                expect(steps.get_by_role("heading", level=3, name="What you can do next")).to_be_visible()
                ffhq = steps.locator(".pc-next[data-dataset='ffhq-sample']")
                expect(ffhq.get_by_role("heading", level=4, name="Flickr-Faces-HQ (FFHQ)")).to_be_visible()
                expect(ffhq.locator("dd").first).to_have_text("NVIDIA")
                expect(ffhq.locator(".pc-removal-steps li").nth(1)).to_contain_text("no_cv")
                expect(steps.get_by_label("Where do you live?")).to_have_value("uk")
                expect(steps.locator(".pc-remedy")).to_have_count(2)
                requests.clear()
                ffhq.get_by_text("Draft a request letter").click()
                letter = ffhq.get_by_label("Your letter (you can edit it)")
                assert "UK GDPR" in letter.input_value()
                letter.press("End")
                letter.press_sequentially("Ada")
                ffhq.get_by_role("button", name="Copy the letter").click()
                expect(ffhq.locator(".pc-letter-status")).to_contain_text("copied")
                assert page.evaluate("navigator.clipboard.readText()").endswith("Ada")
                with page.expect_download() as download:
                    ffhq.get_by_role("button", name="Download it as a text file").click()
                assert download.value.suggested_filename.startswith("request-ffhq-sample-")
                assert [url for url in requests if not url.startswith("blob:")] == []
                assert not errors, errors
            finally:
                context.close()
