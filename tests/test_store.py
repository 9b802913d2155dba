"""The index on disk: per-dataset search, index types, atomic writes, reconciling a dead writer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from indexer import confidence, store
from indexer.check import LoadedIndex
from indexer.errors import DatasetExists, DatasetNotFound, IndexBusy, IndexMismatch
from indexer.store import EntryRecord, FaceRecord, IndexStore, build_faiss_index, choose_index_type

EMBEDDER = {"name": "dlib", "model": "dlib_face_recognition_resnet_model_v1", "dimension": 8}


def unit(rng: np.random.Generator, n: int, d: int = 8) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def new_store(root: Path) -> IndexStore:
    return IndexStore.create_or_open(root, EMBEDDER, confidence.default_config(EMBEDDER))


def add(s: IndexStore, name: str, vectors: np.ndarray, **kwargs) -> store.DatasetInfo:
    with s.writing():
        info, _ = s.begin_dataset(name, source=f"/src/{name}", source_format="folder", **kwargs)
        records = [
            EntryRecord(
                key=f"{name}-{i}.jpg",
                status="indexed",
                metadata={"photo_id": i},
                faces=[FaceRecord(0, (0, 0, 50, 50), 0.9, v)],
            )
            for i, v in enumerate(vectors)
        ]
        s.record_entries(info.id, records)
        return s.finish_dataset(info)


def test_each_dataset_is_searched_on_its_own(tmp_path: Path):
    """A big dataset full of near neighbours must not crowd a small one out of the results."""
    rng = np.random.default_rng(0)
    query = unit(rng, 1)[0]
    crowd = query + 0.05 * unit(rng, 500)
    crowd /= np.linalg.norm(crowd, axis=1, keepdims=True)
    s = new_store(tmp_path)
    add(s, "big", crowd.astype(np.float32))
    add(s, "small", unit(rng, 3))
    hits = {d.info.name: (scores, ids) for d, scores, ids in LoadedIndex(tmp_path).search(query, k=64)}
    assert len(hits["big"][0]) == 64 and len(hits["small"][0]) == 3
    small_ids = {
        r[0]
        for r in s.conn.execute("SELECT f.id FROM faces f JOIN datasets d ON d.id = f.dataset_id WHERE d.name='small'")
    }
    assert set(hits["small"][1].tolist()) == small_ids


def test_faiss_ids_are_sqlite_primary_keys(tmp_path: Path):
    rng = np.random.default_rng(1)
    vectors = unit(rng, 20)
    s = new_store(tmp_path)
    add(s, "set", vectors)
    ((_, scores, ids),) = LoadedIndex(tmp_path).search(vectors[7], k=1)
    assert scores[0] == pytest.approx(1.0, abs=1e-5)
    assert s.entry_metadata(ids.tolist())[int(ids[0])] == {"key": "set-7.jpg", "photo_id": 7}


def test_manifest_describes_the_index(tmp_path: Path):
    s = new_store(tmp_path)
    add(s, "one", unit(np.random.default_rng(2), 4), title="One", disclosure_url="https://e.org/1")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["embedder"] == EMBEDDER and manifest["metric"] == "cosine"
    assert manifest["format_version"] == store.FORMAT_VERSION and manifest["index_version"] == 1
    assert manifest["datasets"] == [{"id": 1, "name": "one", "faces": 4}]
    assert manifest["confidence"]["prior"] == 0.5
    assert s.dataset("one").title == "One"


def test_every_write_changes_the_index_version(tmp_path: Path):
    s = new_store(tmp_path)
    versions = [s.index_version]
    add(s, "a", unit(np.random.default_rng(3), 2))
    versions.append(s.index_version)
    add(s, "b", unit(np.random.default_rng(4), 2))
    versions.append(s.index_version)
    with s.writing():
        s.remove_dataset("a")
    versions.append(s.index_version)
    assert versions == sorted(set(versions))


def test_another_embedder_is_refused(tmp_path: Path):
    new_store(tmp_path)
    other = {"name": "insightface", "model": "buffalo_l/w600k_r50", "dimension": 512}
    with pytest.raises(IndexMismatch) as caught:
        IndexStore.create_or_open(tmp_path, other, confidence.default_config(other))
    assert caught.value.code == "index_mismatch" and "--embedder dlib" in caught.value.message


def test_complete_dataset_needs_replace(tmp_path: Path):
    rng = np.random.default_rng(5)
    s = new_store(tmp_path)
    add(s, "set", unit(rng, 3))
    with pytest.raises(DatasetExists, match="--replace"):
        add(s, "set", unit(rng, 3))
    add(s, "set", unit(rng, 5), replace=True)
    assert s.dataset("set").faces == 5
    assert s.conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0] == 5  # the old rows are gone
    assert len(list((tmp_path / "vectors").glob("*.faiss"))) == 1


def test_remove_reports_and_deletes_everything(tmp_path: Path):
    s = new_store(tmp_path)
    add(s, "keep", unit(np.random.default_rng(6), 2))
    gone = add(s, "gone", unit(np.random.default_rng(7), 3))
    with s.writing():
        assert s.remove_dataset("gone") == {"faces": 3, "images": 3}
    assert not s.vector_path(gone.id).exists()
    assert [d.name for d in s.datasets()] == ["keep"]
    with pytest.raises(DatasetNotFound), s.writing():
        s.remove_dataset("gone")


def test_a_second_writer_is_turned_away(tmp_path: Path):
    first, second = new_store(tmp_path), IndexStore(tmp_path)
    with first.writing(), pytest.raises(IndexBusy), second.writing():
        pass


def test_a_failed_vector_write_leaves_the_index_as_it_was(tmp_path: Path, monkeypatch):
    rng = np.random.default_rng(8)
    s = new_store(tmp_path)
    add(s, "old", unit(rng, 4))
    before = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".sqlite"}
    import faiss

    def broken_write(index, path):
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", broken_write)
    with pytest.raises(OSError):
        add(s, "new", unit(rng, 4))
    after = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".sqlite"}
    assert after == before  # no temporary file left, manifest and vectors untouched
    assert [d.info.name for d in LoadedIndex(tmp_path).datasets] == ["old"]


def test_a_writer_killed_between_commit_steps_is_reconciled(tmp_path: Path, monkeypatch):
    """Dead after the SQLite commit, before the manifest: readers still see the old index; the next
    writer makes the finished dataset live."""
    rng = np.random.default_rng(9)
    s = new_store(tmp_path)
    add(s, "old", unit(rng, 2))

    def die(self, **changes):
        raise KeyboardInterrupt

    monkeypatch.setattr(IndexStore, "_write_manifest", die)
    with pytest.raises(KeyboardInterrupt):
        add(s, "new", unit(rng, 2))
    monkeypatch.undo()
    assert [d.info.name for d in LoadedIndex(tmp_path).datasets] == ["old"]
    fresh = IndexStore(tmp_path)
    with fresh.writing():
        pass
    assert sorted(d.info.name for d in LoadedIndex(tmp_path).datasets) == ["new", "old"]


def test_index_type_follows_the_size():
    assert choose_index_type(10) == "IDMap2,Flat"
    assert choose_index_type(store.EXACT_SEARCH_LIMIT) == "IDMap2,Flat"
    assert choose_index_type(1_000_000) == "IVF4096,SQfp16"


def face_like(rng: np.random.Generator, people: int, per_person: int, d: int = 32, spread: float = 0.5) -> np.ndarray:
    """Clusters of photos around each person, as face embeddings are."""
    centres = unit(rng, people, d)
    photos = np.repeat(centres, per_person, axis=0) + spread * unit(rng, people * per_person, d) / np.sqrt(2)
    return (photos / np.linalg.norm(photos, axis=1, keepdims=True)).astype(np.float32)


def test_approximate_type_finds_the_exact_nearest_neighbour():
    rng = np.random.default_rng(10)
    vectors = face_like(rng, 4000, 5)
    ids = np.arange(100, 20_100)
    exact = build_faiss_index(vectors, ids, "IDMap2,Flat")
    approximate = build_faiss_index(vectors, ids, "IVF256,SQfp16", nprobe=32)
    queries = vectors[rng.choice(len(vectors), 300, replace=False)] + 0.2 * unit(rng, 300, 32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    _, exact_ids = exact.search(queries, 1)
    _, approx_ids = approximate.search(queries, 1)
    assert (exact_ids[:, 0] == approx_ids[:, 0]).mean() >= 0.99
    approximate.remove_ids(np.arange(100, 10_100))
    assert approximate.ntotal == 10_000  # supports removal


def test_a_factory_string_overrides_the_choice(tmp_path: Path):
    rng = np.random.default_rng(11)
    s = new_store(tmp_path)
    with s.writing():
        info, _ = s.begin_dataset("set", source="/src", source_format="folder")
        s.record_entries(
            info.id,
            [
                EntryRecord(key=f"{i}", status="indexed", faces=[FaceRecord(0, (0, 0, 9, 9), 1.0, v)])
                for i, v in enumerate(unit(rng, 2000))
            ],
        )
        done = s.finish_dataset(info, index_type="IVF16,Flat")
    assert done.index_type == "IVF16,Flat"
    loaded = LoadedIndex(tmp_path)
    assert loaded.datasets[0].index.ntotal == 2000
    # An approximate index ranks by L2 distance; the answer still comes back as cosine similarity.
    probe = unit(np.random.default_rng(11), 2000)[5]
    ((_, scores, _),) = loaded.search(probe, k=3)
    assert scores[0] == pytest.approx(1.0, abs=1e-5) and scores[1] < scores[0]


def test_readers_never_write(tmp_path: Path):
    s = new_store(tmp_path)
    add(s, "set", unit(np.random.default_rng(12), 3))
    s.close()
    before = sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    os.chmod(tmp_path / "metadata.sqlite", 0o444)
    try:
        loaded = LoadedIndex(tmp_path)
        loaded.search(unit(np.random.default_rng(13), 1)[0])
    finally:
        os.chmod(tmp_path / "metadata.sqlite", 0o644)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


def test_index_files_take_the_umask_mode(tmp_path: Path):
    """0644 under the usual umask, so that the service's own user (a container's) can read them."""
    root = tmp_path / "index"
    previous = os.umask(0o022)
    try:
        s = new_store(root)
        with s.writing():
            info, _ = s.begin_dataset("set", source="/src/set", source_format="folder")
            vector = unit(np.random.default_rng(14), 1)[0]
            s.record_entries(
                info.id,
                [
                    EntryRecord(key="a.jpg", status="indexed", faces=[FaceRecord(0, (0, 0, 50, 50), 0.9, vector)]),
                    EntryRecord(key="b.jpg", status="bad", error_code="unreadable_image", error_message="Broken."),
                ],
            )
            assert s.write_report(s.finish_dataset(info)) is not None
        s.close()
        os.umask(0o027)
        store.write_atomic(root / "strict.json", b"{}")
    finally:
        os.umask(previous)
    modes = {p.relative_to(root).as_posix(): p.stat().st_mode & 0o777 for p in root.rglob("*") if p.is_file()}
    assert modes.pop("strict.json") == 0o640
    assert {"manifest.json", "metadata.sqlite", "reports/set-bad-images.csv"} <= set(modes)
    assert any(name.startswith("vectors/") for name in modes)
    assert set(modes.values()) == {0o644}, modes
