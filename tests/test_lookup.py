"""Search by Flickr account or photo: identifiers from every layout's metadata, indexed in metadata.sqlite,
answered by the CLI, the API (Flask test client) and a real gunicorn; and the catalog on the API."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import jsonschema
import pyarrow as pa
import pytest
import requests
from click.testing import CliRunner
from conftest import LFW
from servers import serve
from test_layouts import PHOTOS, make_celeba, make_ffhq, make_megaface, write_img2dataset_shard

from indexer.cli import cli
from indexer.lookup import (
    BadFlickrQuery,
    FlickrRef,
    base58_decode,
    base58_encode,
    extract,
    parse_query,
)
from indexer.pipeline import build_dataset
from service import create_app

ME = "12345678@N00"
OTHER = "87654321@N05"
STRANGER = "11111111@N02"


# -- what is found in metadata ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (  # FFHQ: a photo page under a path alias, with the author's name
            {"photo_url": "https://www.flickr.com/photos/JeremyFrumkin/1133484654/", "author": "Jeremy  Frumkin"},
            [FlickrRef("1133484654", None, "jeremyfrumkin", "jeremy frumkin")],
        ),
        (  # a photo page under an NSID, nested in the sidecar
            {"flickr": {"page": "http://flickr.com/photos/12345678@n00/2000000001/in/photostream"}},
            [FlickrRef("2000000001", ME, None, None)],
        ),
        (  # an image URL on staticflickr carries the photo id only
            {"url": "https://farm4.static.flickr.com/3123/2341623661_7c99f48bbf_m.jpg"},
            [FlickrRef("2341623661")],
        ),
        ({"url": "https://live.staticflickr.com/65535/49876543210_0123456789_b.jpg"}, [FlickrRef("49876543210")]),
        ({"link": f"https://flic.kr/p/{base58_encode(5123456789)}"}, [FlickrRef("5123456789")]),
        (  # MegaFace's path facts, and YFCC-style columns
            {"flickr_nsid": ME, "flickr_photo_id": "8032652775", "face_index": 0},
            [FlickrRef("8032652775", ME)],
        ),
        ({"photo_id": 424242, "owner": OTHER, "ownername": "Al"}, [FlickrRef("424242", OTHER, None, "al")]),
        ({"user_url": f"https://www.flickr.com/photos/{ME}/"}, [FlickrRef(None, ME)]),  # the account, no photo
        # Generic columns alone do not make an entry a Flickr photo.
        ({"photo_id": "123456", "author": "Someone", "url": "https://example.org/123456.jpg"}, []),
        ({"caption": "my trip to flickr.com/photos/tags/beach"}, []),
        ({}, []),
        (None, []),
    ],
)
def test_identifiers_are_found_wherever_the_metadata_keeps_them(metadata, expected):
    assert extract(metadata) == expected


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("flickr:12345678@n00", "nsid", ME),
        (ME, "nsid", ME),
        ("flickr:jeremyfrumkin", "username", "jeremyfrumkin"),
        ("flickr: Jeremy Frumkin ", "username", "Jeremy Frumkin"),
        ("https://www.flickr.com/photos/jeremyfrumkin/", "username", "jeremyfrumkin"),
        (f"https://www.flickr.com/people/{ME}/", "nsid", ME),
        ("https://www.flickr.com/photos/jeremyfrumkin/1133484654/in/photostream/", "photo", "1133484654"),
        ("flickr:www.flickr.com/photos/12345678@N00/2000000001", "photo", "2000000001"),
        ("https://live.staticflickr.com/65535/49876543210_0123456789_b.jpg", "photo", "49876543210"),
        (f"https://flic.kr/p/{base58_encode(8032652775)}", "photo", "8032652775"),
    ],
)
def test_queries_are_usernames_nsids_or_photos(text, kind, value):
    query = parse_query(text)
    assert (query.kind, query.value) == (kind, value)


@pytest.mark.parametrize("text", ["", "flickr:", "https://example.org/photos/x/123/", "a\x00b", "x" * 301])
def test_bad_queries_say_what_to_give(text):
    with pytest.raises(BadFlickrQuery) as caught:
        parse_query(text)
    assert caught.value.code == "bad_flickr_query" and caught.value.message.endswith(".")


def test_flickr_short_links_round_trip():
    for number in (1, 57, 58, 2785185432, 53123456789):
        assert base58_decode(base58_encode(number)) == number


# -- an index of sample sets in each layout ------------------------------------------------------


@pytest.fixture(scope="module")
def flickr_index(tmp_path_factory, dlib_embedder) -> Path:
    """Four datasets, one per layout: MegaFace-style (NSIDs only), FFHQ (aliases, NSIDs, authors; added
    with --catalog ffhq through the CLI), CelebA (no Flickr ids) and an img2dataset shard (image URLs)."""
    base = tmp_path_factory.mktemp("flickr")
    index = base / "index"
    megaface = make_megaface(
        base / "megaface",
        {
            f"FlickrFinal2/123/{ME}/8032652775_0.jpg": PHOTOS[0],
            f"FlickrFinal2/123/{ME}/8032652775_1.jpg": PHOTOS[1],  # a second face of the same photo
            f"FlickrFinal2/123/{ME}/8032652776_0.jpg": PHOTOS[2],
            f"FlickrFinal2/876/{OTHER}/4811548600_0.jpg": PHOTOS[3],
        },
    )
    build_dataset(index, megaface, dataset="megaface-sample", embedder=dlib_embedder, progress=False)
    ffhq = make_ffhq(
        base / "ffhq",
        [
            ("https://www.flickr.com/photos/jeremyfrumkin/1133484654/", "Jeremy Frumkin", PHOTOS[0]),
            (f"https://www.flickr.com/photos/{ME}/2000000001/", "Me Myself", PHOTOS[4]),
            ("https://www.flickr.com/photos/notdownloaded/3000000001/", "Not Downloaded", None),
        ],
    )
    result = CliRunner().invoke(
        cli,
        [
            *("-q", "index", "add", "--index", str(index), "--catalog", "ffhq", "--dataset", "ffhq-sample"),
            *("--license", "CC BY-NC-SA 4.0 (our copy)", "--no-progress", str(ffhq)),
        ],
    )
    assert result.exit_code == 0, result.output
    celeba = make_celeba(base / "celeba", sorted((LFW / "images" / "Adrien_Brody").iterdir())[:2])
    build_dataset(index, celeba, dataset="celeba-sample", embedder=dlib_embedder, progress=False)
    shard = [
        {"url": "https://live.staticflickr.com/65535/49876543210_0123456789_b.jpg", "caption": "c", "_photo": PHOTOS[1]}
    ]
    write_img2dataset_shard(base / "laion", 0, shard, [("url", pa.string()), ("caption", pa.string())])
    build_dataset(index, base / "laion", dataset="laion-sample", embedder=dlib_embedder, progress=False)
    return index


def lookup_json(index: Path, query: str) -> dict:
    result = CliRunner().invoke(cli, ["lookup", "--index", str(index), "--json", query])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def by_dataset(answer: dict) -> dict[str, dict]:
    return {r["dataset"]: r for r in answer["results"]}


def test_an_nsid_finds_the_accounts_photos_in_megaface_and_ffhq_metadata(flickr_index: Path):
    answer = lookup_json(flickr_index, f"flickr:{ME}")
    assert answer["query"] == {"kind": "nsid", "value": ME} and answer["error"] is None
    results = by_dataset(answer)
    assert results["megaface-sample"] == {
        "dataset": "megaface-sample",
        "title": "megaface-sample",
        "photos": 2,  # two faces of 8032652775 are one photo
        "items": [
            {"photo_id": "8032652775", "url": f"https://www.flickr.com/photos/{ME}/8032652775/"},
            {"photo_id": "8032652776", "url": f"https://www.flickr.com/photos/{ME}/8032652776/"},
        ],
        "searchable": True,
        "username_searchable": False,
    }
    assert results["ffhq-sample"]["photos"] == 1
    assert results["ffhq-sample"]["items"] == [
        {"photo_id": "2000000001", "url": f"https://www.flickr.com/photos/{ME}/2000000001/"}
    ]
    assert results["ffhq-sample"]["username_searchable"] is True
    assert results["celeba-sample"] == {**results["celeba-sample"], "photos": 0, "searchable": False}


def test_a_username_is_found_where_the_metadata_holds_it(flickr_index: Path):
    for query in ("flickr:jeremyfrumkin", "flickr:Jeremy Frumkin", "https://www.flickr.com/photos/JeremyFrumkin/"):
        results = by_dataset(lookup_json(flickr_index, query))
        assert results["ffhq-sample"]["items"] == [
            {"photo_id": "1133484654", "url": "https://www.flickr.com/photos/jeremyfrumkin/1133484654/"}
        ]
        # MegaFace's metadata names accounts by NSID only: it cannot say, rather than saying no.
        assert results["megaface-sample"]["photos"] == 0
        assert results["megaface-sample"]["searchable"] is False
    # An image whose file was not downloaded is still in the set's metadata, so still found.
    assert by_dataset(lookup_json(flickr_index, "flickr:notdownloaded"))["ffhq-sample"]["photos"] == 1


def test_a_photo_url_finds_that_photo_and_only_it(flickr_index: Path):
    results = by_dataset(lookup_json(flickr_index, f"https://www.flickr.com/photos/{ME}/8032652776/"))
    assert results["megaface-sample"]["photos"] == 1
    assert [i["photo_id"] for i in results["megaface-sample"]["items"]] == ["8032652776"]
    assert results["ffhq-sample"]["photos"] == 0 and results["ffhq-sample"]["searchable"] is True
    static = by_dataset(lookup_json(flickr_index, "https://live.staticflickr.com/65535/49876543210_0123456789_b.jpg"))
    assert static["laion-sample"]["items"] == [
        {"photo_id": "49876543210", "url": f"https://flic.kr/p/{base58_encode(49876543210)}"}
    ]


def test_an_account_that_is_not_there_is_not_in_the_dataset(flickr_index: Path):
    results = by_dataset(lookup_json(flickr_index, f"flickr:{STRANGER}"))
    assert {n: (r["photos"], r["items"]) for n, r in results.items()} == {n: (0, []) for n in results}
    assert results["megaface-sample"]["searchable"] is True
    text = CliRunner().invoke(cli, ["lookup", "--index", str(flickr_index), f"flickr:{STRANGER}"]).output
    assert "megaface-sample  not in this dataset\n" in text
    assert "celeba-sample    cannot tell: its metadata names no Flickr owner NSIDs" in text


def test_the_text_answer_lists_the_photo_pages(flickr_index: Path):
    result = CliRunner().invoke(cli, ["lookup", "--index", str(flickr_index), f"flickr:{ME}"])
    assert result.exit_code == 0
    assert result.output.splitlines()[:4] == [
        f"Flickr account (NSID) {ME}:",
        "  celeba-sample    cannot tell: its metadata names no Flickr owner NSIDs",
        "  ffhq-sample      1 photo in this dataset:",
        f"{'':21}https://www.flickr.com/photos/{ME}/2000000001/",
    ]
    assert "megaface-sample  2 photos in this dataset:" in result.output


def test_lookup_errors_are_one_line_with_their_code(flickr_index: Path):
    for query, words in [("jeremyfrumkin", "Say which site"), ("flickr:https://example.org/x/", "not a Flickr")]:
        result = CliRunner().invoke(cli, ["lookup", "--index", str(flickr_index), query])
        assert result.exit_code == 1 and words in result.output and "[bad_flickr_query]" in result.output


def test_lookups_use_the_identifier_indexes_not_a_scan(flickr_index: Path):
    conn = sqlite3.connect(f"file:{flickr_index / 'metadata.sqlite'}?mode=ro", uri=True)
    for column, index in (("nsid", "nsid"), ("photo_id", "photo"), ("alias", "alias"), ("author", "author")):
        plan = " ".join(
            r[-1] for r in conn.execute(f"EXPLAIN QUERY PLAN SELECT * FROM flickr_photos WHERE {column} = ?", ("x",))
        )
        assert f"INDEX flickr_photos_{index}" in plan and "SCAN" not in plan, plan
    conn.close()


def test_catalog_fills_the_dataset_and_the_command_line_wins(flickr_index: Path):
    listed = CliRunner().invoke(cli, ["index", "list", "--index", str(flickr_index), "--json"])
    ffhq = next(d for d in json.loads(listed.output)["datasets"] if d["name"] == "ffhq-sample")
    assert ffhq["catalog"] == "ffhq" and ffhq["title"] == "Flickr-Faces-HQ (FFHQ)"
    assert ffhq["disclosure_url"] == "https://github.com/NVlabs/ffhq-dataset"
    assert ffhq["removal_url"] == "https://github.com/NVlabs/ffhq-dataset#privacy"
    assert ffhq["date"] == "2019" and ffhq["description"].startswith("70,000 high-resolution face crops")
    assert ffhq["license"] == "CC BY-NC-SA 4.0 (our copy)"  # given on the command line
    assert ffhq["source_format"] == "ffhq" and ffhq["images"] == 3 and ffhq["bad"] == 1 and ffhq["faces"] >= 2


def test_index_add_refuses_unknown_and_undisclosed_catalog_names(tmp_path: Path):
    for name, words in [("megafase", "Did you mean megaface"), ("clearview-ai", "never published")]:
        result = CliRunner().invoke(
            cli, ["index", "add", "--index", str(tmp_path / "i"), "--catalog", name, str(tmp_path)]
        )
        assert result.exit_code == 1 and words in result.output, result.output
    assert not (tmp_path / "i").exists()


def test_removing_a_dataset_removes_its_identifiers_and_old_indexes_are_backfilled(flickr_index: Path, tmp_path: Path):
    copy = tmp_path / "index"
    shutil.copytree(flickr_index, copy)
    result = CliRunner().invoke(cli, ["index", "remove", "--index", str(copy), "--dataset", "megaface-sample"])
    assert result.exit_code == 0, result.output
    assert "megaface-sample" not in by_dataset(lookup_json(copy, f"flickr:{ME}"))
    conn = sqlite3.connect(copy / "metadata.sqlite")
    remaining = {r[0] for r in conn.execute("SELECT DISTINCT dataset_id FROM flickr_photos")}
    live = {r[0] for r in conn.execute("SELECT id FROM datasets WHERE status = 'complete'")}
    assert remaining <= live and len(live) == 3
    # An index written before lookups existed: its first writer records the identifiers.
    conn.executescript("DROP TABLE flickr_photos; DROP TABLE flickr_coverage;")
    conn.close()
    assert by_dataset(lookup_json(copy, f"flickr:{ME}"))["ffhq-sample"]["searchable"] is False
    result = CliRunner().invoke(cli, ["index", "set-confidence", "--index", str(copy), "--prior", "0.5"])
    assert result.exit_code == 0, result.output
    assert by_dataset(lookup_json(copy, f"flickr:{ME}"))["ffhq-sample"]["photos"] == 1


# -- the API -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flickr_app(flickr_index: Path):
    return create_app({"INDEX": str(flickr_index), "RATE_LIMIT": "1000/minute"})


def schema(document: dict, name: str) -> dict:
    return {**document["components"]["schemas"][name], "components": document["components"]}


def test_the_lookup_endpoint_answers_like_the_cli(flickr_app, flickr_index: Path):
    client = flickr_app.test_client()
    response = client.get("/api/v1/lookup", query_string={"flickr": ME})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == lookup_json(flickr_index, f"flickr:{ME}")
    photo = client.get(
        "/api/v1/lookup", query_string={"flickr": "https://www.flickr.com/photos/jeremyfrumkin/1133484654/"}
    )
    assert by_dataset(photo.get_json())["ffhq-sample"]["photos"] == 1
    for query in ({}, {"flickr": ""}, {"flickr": "https://example.org/"}):
        refused = client.get("/api/v1/lookup", query_string=query)
        assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "bad_flickr_query"


def test_datasets_carry_their_catalog_facts_and_the_catalog_is_served(flickr_app):
    client = flickr_app.test_client()
    datasets = {d["name"]: d for d in client.get("/api/v1/datasets").get_json()["datasets"]}
    assert datasets["ffhq-sample"]["catalog"]["name"] == "ffhq"
    assert datasets["ffhq-sample"]["catalog"]["removal"]["steps"]
    assert datasets["megaface-sample"]["catalog"] is None
    catalog = client.get("/api/v1/catalog").get_json()
    assert len(catalog["datasets"]) >= 18 and {e["name"] for e in catalog["undisclosed"]} >= {"clearview-ai"}
    assert {r["name"] for r in catalog["remedies"]} == {
        "gdpr-access",
        "gdpr-erasure",
        "ccpa-delete",
        "bipa",
        "ftc-orders",
    }


def test_the_catalog_is_served_without_an_index():
    client = create_app({"INDEX": None}).test_client()
    assert client.get("/api/v1/catalog").status_code == 200
    assert client.get("/api/v1/lookup", query_string={"flickr": ME}).status_code == 503


def test_openapi_describes_lookup_catalog_and_datasets(flickr_app):
    from openapi_spec_validator import validate

    client = flickr_app.test_client()
    document = client.get("/api/v1/openapi.json").get_json()
    validate(document)
    for query in (ME, "jeremyfrumkin", "https://live.staticflickr.com/65535/49876543210_0123456789_b.jpg"):
        jsonschema.validate(
            client.get("/api/v1/lookup", query_string={"flickr": query}).get_json(), schema(document, "Lookup")
        )
    jsonschema.validate(client.get("/api/v1/catalog").get_json(), schema(document, "Catalog"))
    jsonschema.validate(client.get("/api/v1/datasets").get_json(), schema(document, "Datasets"))
    jsonschema.validate(client.get("/api/v1/lookup").get_json(), schema(document, "Error"))
    assert {"200", "400", "429", "503"} <= set(document["paths"]["/api/v1/lookup"]["get"]["responses"])


def test_lookups_are_rate_limited_like_checks(flickr_index: Path):
    limited = create_app({"INDEX": str(flickr_index), "RATE_LIMIT": "2/minute"}).test_client()
    statuses = [limited.get("/api/v1/lookup", query_string={"flickr": ME}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = limited.get("/api/v1/lookup", query_string={"flickr": ME})
    assert refused.get_json()["error"]["code"] == "rate_limited" and int(refused.headers["Retry-After"]) > 0
    assert limited.get("/api/v1/catalog").status_code == 200


def test_a_real_server_answers_lookups_and_logs_no_query(flickr_index: Path, tmp_path: Path):
    log = tmp_path / "server.log"
    with serve(flickr_index, log) as server:
        response = requests.get(f"{server.url}/api/v1/lookup", params={"flickr": f"flickr:{ME}"}, timeout=30)
        assert response.status_code == 200
        assert by_dataset(response.json())["megaface-sample"]["photos"] == 2
        username = requests.get(f"{server.url}/api/v1/lookup", params={"flickr": "Jeremy Frumkin"}, timeout=30)
        assert by_dataset(username.json())["ffhq-sample"]["photos"] == 1
    output = server.output()
    assert '"GET /api/v1/lookup" 200' in output
    for secret in (ME, "Jeremy", "Frumkin", "flickr="):
        assert secret not in output
