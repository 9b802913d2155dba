"""The index on disk: per-dataset search, index types, atomic writes, reconciling a dead writer."""

from __future__ import annotations

import json
import os
import sqlite3
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
    assert scores[0] == pytest.approx(1.0, abs=2**-11)  # the stored vector is the query rounded to float16
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
    # The unfinished build keeps its vectors, as it keeps its SQLite rows, to resume from them.
    building = s.building("new")
    assert set(after) - set(before) == {f"{building.id}.npy", f"{building.id}.ids.npy"}
    assert {name: after[name] for name in before} == before  # no temporary file left, the rest untouched
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
    assert choose_index_type(1_000_000) == f"IVF4096,{store.COMPRESSED_CODES}"


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
    assert scores[0] == pytest.approx(1.0, abs=2**-11) and scores[1] < scores[0]


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


# -- vectors stored once, compressed indexes, migration -------------------------------------------


def test_each_face_vector_is_stored_once_in_the_datasets_array(tmp_path: Path):
    vectors = unit(np.random.default_rng(15), 6)
    s = new_store(tmp_path)
    info = add(s, "set", vectors)
    assert "embedding" not in {r[1] for r in s.conn.execute("PRAGMA table_info(faces)")}
    rows = np.load(tmp_path / "vectors" / f"{info.id}.npy")  # a plain NumPy file
    keys = np.load(tmp_path / "vectors" / f"{info.id}.ids.npy")
    assert rows.dtype == np.float16 and rows.shape == (6, 8)
    np.testing.assert_array_equal(rows, vectors.astype(np.float16))
    assert keys.tolist() == [r[0] for r in s.conn.execute("SELECT id FROM faces ORDER BY id")]


def test_a_chunk_whose_commit_failed_leaves_no_vectors_behind(tmp_path: Path, monkeypatch):
    """Rows appended for a chunk that SQLite did not commit are cut off (at once, or when a build
    that was killed between the two resumes), so that row n stays the dataset's n-th face."""
    rng = np.random.default_rng(16)
    s = new_store(tmp_path)
    with s.writing():
        info, _ = s.begin_dataset("set", source="/src/set", source_format="folder")
        first = [EntryRecord(key="a", status="indexed", faces=[FaceRecord(0, (0, 0, 9, 9), 1.0, unit(rng, 1)[0])])]
        s.record_entries(info.id, first)

        def fail(*args, **kwargs):
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(store.lookup, "record_identifiers", fail)
        second = [EntryRecord(key="b", status="indexed", faces=[FaceRecord(0, (0, 0, 9, 9), 1.0, unit(rng, 1)[0])])]
        with pytest.raises(sqlite3.OperationalError):
            s.record_entries(info.id, second)
        monkeypatch.undo()
        s.record_entries(info.id, [])  # the next writer opens the array, and counts SQLite's faces
    array = tmp_path / "vectors" / f"{info.id}.npy"
    assert array.stat().st_size == 128 + 8 * 2  # the header and the one committed row
    # A writer killed after appending, before committing: the rows are there, SQLite knows nothing.
    with open(array, "ab") as f:
        f.write(unit(rng, 3).astype(np.float16).tobytes())
    resumed = new_store(tmp_path)
    with resumed.writing():
        info, was_resumed = resumed.begin_dataset("set", source="/src/set", source_format="folder")
        resumed.record_entries(info.id, second)
        done = resumed.finish_dataset(info)
    assert was_resumed and done.faces == 2
    _, stored = resumed.embeddings(done.id)
    expected = np.vstack([first[0].faces[0].embedding, second[0].faces[0].embedding]).astype(np.float16)
    np.testing.assert_array_equal(stored, expected)


def test_an_interrupt_after_a_chunks_commit_keeps_its_vectors(tmp_path: Path, monkeypatch):
    """Ctrl-C after SQLite committed a chunk, before ``record_entries`` returned: the chunk's rows
    stay, and the build resumes and finishes with every face's vector."""
    rng = np.random.default_rng(22)
    vectors = unit(rng, 3)
    records = [
        EntryRecord(key=f"{i}", status="indexed", faces=[FaceRecord(0, (0, 0, 9, 9), 1.0, v)])
        for i, v in enumerate(vectors)
    ]
    s = new_store(tmp_path)
    committed = IndexStore._record_rows

    def commit_then_interrupt(self, dataset_id, batch):
        committed(self, dataset_id, batch)
        raise KeyboardInterrupt

    with s.writing():
        info, _ = s.begin_dataset("set", source="/src/set", source_format="folder")
        s.record_entries(info.id, records[:1])
        monkeypatch.setattr(IndexStore, "_record_rows", commit_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            s.record_entries(info.id, records[1:2])
        monkeypatch.undo()
    array = tmp_path / "vectors" / f"{info.id}.npy"
    assert array.stat().st_size == 128 + 2 * 8 * 2  # both committed rows
    resumed = new_store(tmp_path)
    with resumed.writing():
        info, was_resumed = resumed.begin_dataset("set", source="/src/set", source_format="folder")
        assert resumed.done_keys(info.id) == {"0", "1"}
        resumed.record_entries(info.id, records[2:])
        done = resumed.finish_dataset(info)
    assert was_resumed and done.faces == 3
    _, stored = resumed.embeddings(done.id)
    np.testing.assert_array_equal(stored, vectors.astype(np.float16))


def test_large_datasets_get_compressed_codes_reranked_exactly(tmp_path: Path, monkeypatch):
    """Above the size limit (lowered here, so that a few thousand faces are enough) the index holds
    compressed codes; its best candidates are scored again from the stored vectors, so the best
    score is exact search's whenever exact search's best face is among them."""
    monkeypatch.setattr(store, "EXACT_SEARCH_LIMIT", 1000)
    rng = np.random.default_rng(17)
    vectors = face_like(rng, 1000, 4, d=8, spread=0.6)
    s = new_store(tmp_path)
    info = add(s, "set", vectors)
    assert info.index_type == store.choose_index_type(4000) and info.index_type != "IDMap2,Flat"
    assert info.search_params["rerank"] == store.RERANK
    face_index = LoadedIndex(tmp_path).datasets[0].index
    ids, stored = s.embeddings(info.id)
    queries = vectors[rng.choice(len(vectors), 200, replace=False)] + 0.3 * unit(rng, 200)
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    hits = 0
    for query in queries:
        exact = stored.astype(np.float64) @ query.astype(np.float64)
        best = int(np.argmax(exact))
        scores, found = face_index.search(query, 64)
        _, candidates = face_index.index.search(query.reshape(1, -1), store.RERANK)
        if ids[best] in candidates[0]:
            assert found[0] == ids[best] and scores[0] == np.float32(exact[best])
            hits += 1
        assert list(scores) == sorted(scores, reverse=True) and len(found) == 64
    assert hits >= 190


def test_index_files_are_memory_mapped_read_only(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(store, "EXACT_SEARCH_LIMIT", 1000)
    s = new_store(tmp_path)
    small = add(s, "small", unit(np.random.default_rng(18), 10))
    large = add(s, "large", face_like(np.random.default_rng(19), 500, 4, d=8))
    loaded = LoadedIndex(tmp_path)
    assert loaded.datasets
    maps = {}
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[5].startswith(str(tmp_path)):
            maps.setdefault(Path(parts[5]).name, set()).add(parts[1])
    expected = {f"{small.id}.faiss", f"{large.id}.faiss", f"{large.id}.npy", f"{large.id}.ids.npy"}
    assert expected <= set(maps)
    assert all(not mode.startswith("rw") and "w" not in mode for modes in maps.values() for mode in modes)


def format_1(root: Path) -> None:
    """Turn a fresh index into what photocheck wrote before the vectors left SQLite (format 1): each
    face's float32 vector in a BLOB of its row, no arrays, the same FAISS files."""
    s = IndexStore(root)
    conn = s.conn
    conn.execute("ALTER TABLE faces ADD COLUMN embedding BLOB")
    for info in s.datasets():
        ids, vectors = s.embeddings(info.id)
        conn.executemany(
            "UPDATE faces SET embedding = ? WHERE id = ?",
            [(v.astype(np.float32).tobytes(), int(i)) for i, v in zip(ids, vectors, strict=True)],
        )
    s.close()
    for path in (root / "vectors").glob("*.npy"):
        path.unlink()
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["format_version"] = 1
    (root / "manifest.json").write_text(json.dumps(manifest))


def test_an_index_of_format_1_is_served_as_it_is_and_migrated_before_a_write(tmp_path: Path):
    from click.testing import CliRunner

    from indexer.cli import cli
    from indexer.errors import IndexOutdated

    rng = np.random.default_rng(20)
    vectors = unit(rng, 30)
    original = new_store(tmp_path)
    face_ids = original.face_ids(add(original, "old", vectors).id)
    original.close()
    format_1(tmp_path)
    before = LoadedIndex(tmp_path).search(vectors[3], k=5)[0]
    assert before[2][0] == face_ids[3] and len(before[1]) == 5  # still served
    with pytest.raises(IndexOutdated, match=f"photocheck index migrate --index {tmp_path}"):
        add(IndexStore(tmp_path), "new", unit(rng, 3))
    result = CliRunner().invoke(cli, ["index", "migrate", "--index", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{tmp_path}/: format 1 -> 2: 30 face vectors of 1 dataset moved to vectors/"
    migrated = IndexStore(tmp_path)
    assert migrated.manifest["format_version"] == store.FORMAT_VERSION
    assert "embedding" not in {r[1] for r in migrated.conn.execute("PRAGMA table_info(faces)")}
    after = LoadedIndex(tmp_path).search(vectors[3], k=5)[0]
    assert after[2].tolist() == before[2].tolist()
    np.testing.assert_allclose(after[1], before[1], atol=2**-11)
    add(migrated, "new", unit(rng, 3))
    assert sorted(d.info.name for d in LoadedIndex(tmp_path).datasets) == ["new", "old"]
    again = CliRunner().invoke(cli, ["index", "migrate", "--index", str(tmp_path)], catch_exceptions=False)
    assert again.stdout.strip() == f"{tmp_path}/: already format 2, nothing to do"


def test_rebuild_gives_a_dataset_another_type_from_its_stored_vectors(tmp_path: Path):
    rng = np.random.default_rng(21)
    vectors = face_like(rng, 500, 4, d=8)
    s = new_store(tmp_path)
    info = add(s, "set", vectors)
    exact = LoadedIndex(tmp_path).search(vectors[10], k=10)[0]
    with s.writing():
        rebuilt = s.rebuild_dataset("set", index_type="IVF8,Flat", nprobe=8, rerank=100)
    assert rebuilt.index_type == "IVF8,Flat" and rebuilt.search_params == {"nprobe": 8, "rerank": 100}
    assert sorted(p.name for p in (tmp_path / "vectors").glob("*.faiss")) == [rebuilt.index_file]
    assert rebuilt.index_file != f"{info.id}.faiss" and rebuilt.faces == info.faces
    approximate = LoadedIndex(tmp_path).search(vectors[10], k=10)[0]
    assert approximate[2].tolist() == exact[2].tolist()  # every list probed: the same ten faces
    np.testing.assert_allclose(approximate[1], exact[1], atol=1e-6)  # float32 sums in another order
    with s.writing():
        version = s.index_version
        tuned = s.tune_dataset("set", nprobe=4, rerank=20)
    assert tuned.search_params == {"nprobe": 4, "rerank": 20} and s.index_version == version + 1
    assert LoadedIndex(tmp_path).datasets[0].index.rerank == 20


def test_a_rebuild_never_writes_over_the_file_a_killed_rebuild_named(tmp_path: Path, monkeypatch):
    """A rebuild that died after its SQLite commit, before the manifest, leaves the index version
    where it was and SQLite naming its new file: the next rebuild must write another file, not that
    one, which a reader may be pairing with the settings SQLite holds."""
    rng = np.random.default_rng(23)
    vectors = face_like(rng, 100, 4, d=8)
    s = new_store(tmp_path)
    info = add(s, "set", vectors)

    def die(self, **changes):
        raise KeyboardInterrupt

    monkeypatch.setattr(IndexStore, "_write_manifest", die)
    with pytest.raises(KeyboardInterrupt), s.writing():
        s.rebuild_dataset("set", index_type="IVF4,Flat", nprobe=4)
    monkeypatch.undo()
    fresh = IndexStore(tmp_path)
    killed = fresh.dataset("set")
    assert killed.index_file and killed.index_file != f"{info.id}.faiss"  # named in SQLite, not yet live
    named = tmp_path / "vectors" / killed.index_file
    named_bytes = named.read_bytes()
    stray = tmp_path / "vectors" / f"{info.id}-v{fresh.index_version + 2}.faiss"
    stray.write_bytes(b"not this one either")
    written = []
    real_atomic_path = store.atomic_path

    def recording_atomic_path(target, **kwargs):
        written.append(Path(target).name)
        if Path(target).name == killed.index_file:
            assert named.read_bytes() == named_bytes
        return real_atomic_path(target, **kwargs)

    monkeypatch.setattr(store, "atomic_path", recording_atomic_path)
    with fresh.writing():
        rebuilt = fresh.rebuild_dataset("set", index_type="IVF8,Flat", nprobe=8)
    assert written and not {killed.index_file, stray.name} & set(written)
    assert rebuilt.index_file == written[0] and rebuilt.index_type == "IVF8,Flat"
    assert sorted(p.name for p in (tmp_path / "vectors").glob("*.faiss")) == [rebuilt.index_file]
    ((_, scores, found),) = LoadedIndex(tmp_path).search(vectors[10], k=3)
    assert found[0] == fresh.face_ids(info.id)[10] and scores[0] == pytest.approx(1.0, abs=2**-11)
