"""Readers of disclosed sets: folder trees, CSV/JSONL manifests, webdataset tar shards."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FACES

from indexer.errors import ImageError, SourceError
from indexer.sources import detect_format, open_source

OBAMA = FACES / "people" / "obama" / "obama.jpg"
BIDEN = FACES / "people" / "biden" / "biden.jpg"


def test_folder_is_recursive_keyed_by_relative_path_with_sidecars(tmp_path: Path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "one.jpg").write_bytes(OBAMA.read_bytes())
    (tmp_path / "a" / "b" / "one.jpg.json").write_text(json.dumps({"photo_id": "p1", "license": "CC-BY"}))
    (tmp_path / "two").write_bytes(BIDEN.read_bytes())  # no extension: still tried, the bytes decide
    (tmp_path / "two.json").write_text(json.dumps({"uploader": "someone"}))
    (tmp_path / "README.md").write_text("not an image")
    (tmp_path / ".hidden.jpg").write_bytes(b"x")
    source = open_source(tmp_path)
    assert source.format == "folder" and source.count() == 2
    entries = list(source)
    assert [e.key for e in entries] == ["a/b/one.jpg", "two"]
    assert entries[0].metadata == {"photo_id": "p1", "license": "CC-BY"}
    assert entries[1].metadata == {"uploader": "someone"}
    assert entries[0].read() == OBAMA.read_bytes()


def test_csv_manifest_keeps_metadata_per_entry(tmp_path: Path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "o.jpg").write_bytes(OBAMA.read_bytes())
    manifest = tmp_path / "set.csv"
    manifest.write_text(
        "photo_id,file,source_url,license\n"
        "123,img/o.jpg,https://flickr.example/123,CC-BY-2.0\n"
        "124,img/missing.jpg,https://flickr.example/124,CC-BY-2.0\n"
        "125,https://flickr.example/125.jpg,https://flickr.example/125,CC-BY-2.0\n"
    )
    source = open_source(manifest)
    assert source.format == "manifest" and source.count() == 3
    first, missing, remote = list(source)
    assert first.key == "123"
    assert first.metadata == {"photo_id": "123", "source_url": "https://flickr.example/123", "license": "CC-BY-2.0"}
    assert first.read() == OBAMA.read_bytes()
    with pytest.raises(ImageError) as caught:
        missing.read()
    assert caught.value.code == "missing_file"
    with pytest.raises(ImageError, match="URL"):
        remote.read()


def test_jsonl_manifest_and_path_column(tmp_path: Path):
    (tmp_path / "o.jpg").write_bytes(OBAMA.read_bytes())
    manifest = tmp_path / "set.jsonl"
    manifest.write_text(json.dumps({"where": "o.jpg", "uploader": "u1", "tags": ["a", "b"]}) + "\n\n")
    with pytest.raises(SourceError, match="--path-column"):
        list(open_source(manifest))
    (entry,) = list(open_source(manifest, path_column="where"))
    assert entry.key == "o.jpg" and entry.metadata == {"uploader": "u1", "tags": ["a", "b"]}


def test_bad_jsonl_line_is_a_clear_error(tmp_path: Path):
    manifest = tmp_path / "set.jsonl"
    manifest.write_text('{"path": "a.jpg"}\n{oops\n')
    with pytest.raises(SourceError, match="line 2"):
        list(open_source(manifest))


def write_shard(path: Path, samples: list[tuple[str, bytes, dict]], *, parquet: bool = True) -> Path:
    """A webdataset shard the way img2dataset writes one: {key}.jpg, {key}.txt, {key}.json."""
    with tarfile.open(path, "w") as tar:
        for key, image, meta in samples:
            for name, data in (
                (f"{key}.jpg", image),
                (f"{key}.txt", meta.get("caption", "").encode()),
                (f"{key}.json", json.dumps(meta).encode()),
            ):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    if parquet:
        rows = [{"key": k, "url": m.get("url"), "status": "success"} for k, _, m in samples]
        rows.append({"key": "000009999", "url": "https://gone.example/x.jpg", "status": "failed_to_download"})
        pq.write_table(pa.Table.from_pylist(rows), path.with_suffix(".parquet"))
    return path


def test_webdataset_shards_stream_with_metadata(tmp_path: Path):
    shards = tmp_path / "shards"
    shards.mkdir()
    write_shard(
        shards / "00000.tar", [("000000000", OBAMA.read_bytes(), {"url": "https://e.x/0.jpg", "caption": "a man"})]
    )
    write_shard(shards / "00001.tar", [("000010000", BIDEN.read_bytes(), {"url": "https://e.x/1.jpg"})], parquet=False)
    assert detect_format(shards) == "webdataset"
    source = open_source(shards)
    assert source.count() is None  # one shard has no parquet beside it
    first, second = list(source)
    assert first.key == "00000/000000000"
    assert first.metadata["url"] == "https://e.x/0.jpg" and first.metadata["caption"] == "a man"
    assert first.metadata["status"] == "success"  # from the parquet
    assert first.read() == OBAMA.read_bytes()
    assert second.read() == BIDEN.read_bytes()
    assert open_source(shards / "00000.tar").count() == 1


def test_truncated_shard_reports_and_keeps_what_came_before(tmp_path: Path):
    shard = write_shard(
        tmp_path / "00000.tar",
        [("a", OBAMA.read_bytes(), {}), ("b", BIDEN.read_bytes(), {})],
        parquet=False,
    )
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) - 150_000])  # cut in the middle of b's image
    entries = list(open_source(shard))
    assert entries[0].key == "00000/a" and entries[0].read() == OBAMA.read_bytes()
    codes = []
    for entry in entries[1:]:
        with pytest.raises(ImageError) as caught:
            entry.read()
        codes.append(caught.value.code)
    assert "bad_shard" in codes


def test_format_detection(tmp_path: Path):
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "x.jpg").write_bytes(b"")
    assert detect_format(tmp_path / "pics") == "folder"
    assert detect_format(tmp_path / "set.csv") == "manifest"
    assert detect_format(tmp_path / "set.jsonl") == "manifest"
    assert detect_format(tmp_path / "00001.tar") == "webdataset"
    with pytest.raises(SourceError, match="does not exist"):
        detect_format(tmp_path / "nothing-here")
