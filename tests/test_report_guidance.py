"""The bulk HTML report's "What members can do": per dataset that holds or may hold a member, its holder,
status and removal route from the catalog, and a link to the service's next-steps page."""

from __future__ import annotations

import re

from indexer import report as reports
from indexer.catalog import get_entry


def member(photo_id: str, verdicts: dict[str, str]) -> dict:
    results = [{"dataset": name, "title": name, "verdict": v, "confidence": 0.9} for name, v in verdicts.items()]
    return {"id": photo_id, "faces_detected": 1, "face": None, "results": results, "error": None}


RECORDS = [
    member("a.jpg", {"ffhq-sample": "match", "megaface-sample": "no_match", "own": "possible", "odd": "possible"}),
    member("b.jpg", {"ffhq-sample": "no_match", "megaface-sample": "no_match", "own": "no_match"}),
]


def test_the_guidance_names_holder_status_removal_and_links_the_next_steps_page():
    about = {
        "checked_with": {"server": "https://photocheck.example.org/"},
        "datasets": [
            # A server's /api/v1/datasets gives the catalog entry; a local index its name.
            {"name": "ffhq-sample", "title": "FFHQ sample", "catalog": get_entry("ffhq")},
            {"name": "megaface-sample", "title": "MegaFace sample", "catalog": "megaface"},
            {"name": "own", "title": "Own <set>", "removal_url": "https://own.example/remove", "catalog": None},
            {"name": "odd", "title": "Odd", "removal_url": "javascript:alert(1)"},
        ],
    }
    page = reports.render_html(RECORDS, about)
    section = page[page.index("<h2>What members can do</h2>") :]
    assert "not legal advice" in section
    items = dict(re.findall(r'<li data-dataset="([^"]+)">(.*?)(?=<li data-dataset=|</ul>)', section, re.S))
    assert list(items) == ["ffhq-sample", "own", "odd"]  # megaface-sample matched no one: no guidance for it
    ffhq, own = items["ffhq-sample"], items["own"]
    assert "Flickr-Faces-HQ (FFHQ)" in ffhq and "Held by NVIDIA (researchinquiries@nvidia.com)" in ffhq
    assert "Still distributed" in ffhq
    assert "<li>On Flickr, do one of these for each photo: tag it no_cv;" in ffhq
    assert "javascript:" not in page and "where to ask for removal" not in items["odd"]  # not a link
    assert 'href="https://github.com/NVlabs/ffhq-dataset#privacy"' in ffhq
    assert 'href="https://photocheck.example.org/next-steps#ffhq-sample"' in ffhq
    # Without a catalog entry: its own removal link, its title escaped, and still the next-steps page.
    assert "Own &lt;set&gt;" in own and "No removal route is known." in own
    assert 'href="https://own.example/remove"' in own
    assert 'href="https://photocheck.example.org/next-steps#own"' in own


def test_a_report_of_a_local_index_has_no_link_to_a_server():
    about = {"checked_with": {"index": "/srv/index"}, "datasets": [{"name": "ffhq-sample", "catalog": "ffhq"}]}
    page = reports.render_html(RECORDS[:1], about)
    assert "NVIDIA" in page and "/next-steps" not in page
    none_found = reports.render_html(RECORDS[1:], about)
    assert "What members can do" not in none_found
