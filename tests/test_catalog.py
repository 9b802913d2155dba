"""The shipped catalog of face datasets and remedies: complete, well-formed, and its loader strict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.catalog import (
    STATUSES,
    CatalogEntryNotFound,
    CatalogError,
    catalog_path,
    dataset_fields,
    get_entry,
    load_catalog,
    read_catalog,
)
from indexer.errors import PhotocheckError

#: The 18 sets of the research file's section 1, the 3 collections of its section 4, the 5 remedies of section 3.
RESEARCHED = {
    "lfw",
    "megaface",
    "facescrub",
    "vgg-face",
    "vggface2",
    "ms-celeb-1m",
    "casia-webface",
    "umdfaces",
    "ijb",
    "pipa",
    "ibm-dif",
    "ffhq",
    "celeba",
    "laion-face",
    "webface260m",
    "glint360k",
    "youtube-faces",
    "pubfig",
}
UNDISCLOSED = {"okcupid-clarifai", "everalbum", "clearview-ai"}
REMEDIES = {"gdpr-access", "gdpr-erasure", "ccpa-delete", "bipa", "ftc-orders"}


def test_every_researched_set_is_there_with_its_fields_and_sources():
    catalog = load_catalog()
    assert {d["name"] for d in catalog.datasets} >= RESEARCHED
    for entry in catalog.datasets:
        for field in ("title", "year", "photo_source", "distribution", "terms", "status", "status_note"):
            assert entry[field], (entry["name"], field)
        assert entry["maintainer"] and entry["page"].startswith("http")
        assert entry["status"] in STATUSES
        assert isinstance(entry.get("images", entry.get("videos")), int)
        assert entry["removal"]["summary"] and isinstance(entry["removal"]["steps"], list)
        assert entry["sources"] and all(s["title"] and s["url"].startswith("http") for s in entry["sources"])
        assert entry["disclosed"] is True


def test_never_disclosed_collections_say_what_is_known_and_what_to_do():
    catalog = load_catalog()
    assert {e["name"] for e in catalog.undisclosed} == UNDISCLOSED
    for entry in catalog.undisclosed:
        assert entry["disclosed"] is False and entry["known"] and entry["route"] and entry["sources"]
    assert "privacy-requests@clearview.ai" in get_entry("clearview-ai")["route"]


def test_remedies_carry_deadlines_and_sources():
    remedies = {r["name"]: r for r in load_catalog().remedies}
    assert set(remedies) == REMEDIES
    assert "one month" in remedies["gdpr-access"]["deadline"]
    assert "45 calendar days" in remedies["ccpa-delete"]["deadline"]
    assert "10 business days" in remedies["ccpa-delete"]["deadline"]
    assert "5 years" in remedies["bipa"]["deadline"] and remedies["bipa"]["kind"] == "lawsuit"
    assert {o["name"] for o in remedies["ftc-orders"]["orders"]} == {"Everalbum", "Rite Aid", "OkCupid and Match Group"}
    for remedy in remedies.values():
        assert remedy["where"] and remedy["sources"]


def test_names_are_unique_slugs_and_the_catalog_is_json():
    catalog = load_catalog()
    names = catalog.names() + [r["name"] for r in catalog.remedies]
    assert len(names) == len(set(names))
    json.dumps(catalog.as_dict())  # no TOML dates or other types the API could not serve


def test_ffhq_keeps_its_exact_removal_steps():
    ffhq = get_entry("ffhq")
    assert ffhq["search_url"] == "https://nvlabs.github.io/ffhq-dataset/search/"
    assert any("no_cv" in step for step in ffhq["removal"]["steps"])
    assert any("researchinquiries@nvidia.com" in step for step in ffhq["removal"]["steps"])


def test_unknown_names_get_close_suggestions():
    with pytest.raises(CatalogEntryNotFound) as caught:
        get_entry("mega-face")
    assert caught.value.code == "unknown_catalog_entry"
    assert "Did you mean megaface" in caught.value.message
    assert get_entry(" FFHQ ")["name"] == "ffhq"


def test_dataset_fields_come_from_the_entry_and_undisclosed_ones_cannot_be_indexed():
    fields = dataset_fields(get_entry("ffhq"))
    assert fields == {
        "title": "Flickr-Faces-HQ (FFHQ)",
        "description": get_entry("ffhq")["description"],
        "disclosure_url": "https://github.com/NVlabs/ffhq-dataset",
        "removal_url": "https://github.com/NVlabs/ffhq-dataset#privacy",
        "date": "2019",
        "license": get_entry("ffhq")["terms"],
    }
    assert dataset_fields(get_entry("megaface"))["removal_url"] is None
    with pytest.raises(PhotocheckError) as caught:
        dataset_fields(get_entry("clearview-ai"))
    assert caught.value.code == "undisclosed_dataset"


def _edited(tmp_path: Path, old: str, new: str) -> Path:
    text = catalog_path().read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "catalog.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ('status = "withdrawn_circulating"', 'status = "gone"', "'status' must be one of"),
        ('name = "facescrub"', 'name = "lfw"', "used twice"),
        ('name = "facescrub"', 'name = "Face Scrub"', "slug"),
        ('maintainer = "Ng & Winkler"\n', "", "missing maintainer"),
        ("images = 58797", 'images = "many"', "positive whole number"),
        ('url = "https://exposing.ai/face_scrub"', 'url = "exposing.ai"', "http(s) URL"),
        ('date = "2021-05-07"', "date = 2021-05-07", "YYYY-MM-DD"),
        ('kind = "lawsuit"', 'kind = "letter"', "'kind' must be one of"),
        ('known = "Clearview', 'knwon = "Clearview', "missing known"),
        ("[dataset.removal]\nsummary", "[dataset.removal]\nsumary", "removal"),
        ('notice = "', 'notice = "" #', "notice"),
    ],
)
def test_a_malformed_catalog_is_refused_with_the_entry_named(tmp_path: Path, old: str, new: str, complaint: str):
    with pytest.raises(CatalogError) as caught:
        read_catalog(_edited(tmp_path, old, new))
    assert complaint in caught.value.message
    assert caught.value.code == "bad_catalog"


def test_a_catalog_without_sources_is_refused(tmp_path: Path):
    text = catalog_path().read_text(encoding="utf-8")
    start = text.index('[[dataset.sources]]\ntitle = "PubFig')
    end = text.index("# ----", start)
    path = tmp_path / "catalog.toml"
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    with pytest.raises(CatalogError, match=r"pubfig.*missing sources"):
        read_catalog(path)
