"""Shared fixtures: the real face photos in ../shared, a dlib embedder, a buffalo_l-shaped test pack."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FACES = SHARED / "faces"
LFW = SHARED / "lfw"

sys.path.insert(0, str(Path(__file__).parent))

if not (FACES / "people").is_dir():  # pragma: no cover - a broken checkout, not a reason to skip
    raise RuntimeError(f"The real face photos are missing: expected them in {FACES} (see the README).")

PEOPLE = sorted(p.name for p in (FACES / "people").iterdir() if p.is_dir())


def person_photos(name: str) -> list[Path]:
    return sorted((FACES / "people" / name).iterdir())


@pytest.fixture(autouse=True, scope="session")
def _isolated_model_root(tmp_path_factory: pytest.TempPathFactory):
    """Point the model root at an empty folder, so a real pack on this host never changes a test's
    embedder choice, and nothing a test builds lands in the real model root."""
    empty = tmp_path_factory.mktemp("no-models")
    previous = os.environ.get("PHOTOCHECK_MODEL_ROOT")
    os.environ["PHOTOCHECK_MODEL_ROOT"] = str(empty)
    yield empty
    if previous is None:
        os.environ.pop("PHOTOCHECK_MODEL_ROOT", None)
    else:
        os.environ["PHOTOCHECK_MODEL_ROOT"] = previous


@pytest.fixture(scope="session")
def dlib_embedder():
    from indexer.embedders import create_embedder

    embedder = create_embedder("dlib")
    embedder.load()
    return embedder


@pytest.fixture(scope="session")
def test_pack_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model root holding a buffalo_l-shaped pack of small test models."""
    from onnx_pack import build_pack

    root = tmp_path_factory.mktemp("test-models")
    build_pack(root)
    return root


@pytest.fixture(scope="session")
def insightface_embedder(test_pack_root: Path):
    from indexer.embedders import create_embedder

    embedder = create_embedder("insightface", model_root=str(test_pack_root), device="cpu")
    embedder.load()
    return embedder


def copy_photos(photos: list[Path], into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    for photo in photos:
        target = into / photo.parent.name / photo.name
        target.parent.mkdir(exist_ok=True)
        shutil.copy(photo, target)
    return into


@pytest.fixture(scope="session")
def faces_index(tmp_path_factory: pytest.TempPathFactory, dlib_embedder) -> tuple[Path, dict[str, list[Path]]]:
    """A dlib index of two datasets built from ../shared/faces, and the photos held out of it.

    ``politicians`` holds Obama and Biden, ``actors`` holds Kit Harington and Rose Leslie (all
    but their last photo each); Alex Lacamoire is in neither.
    """
    from indexer.pipeline import build_dataset

    base = tmp_path_factory.mktemp("faces-index")
    held_out: dict[str, list[Path]] = {}
    groups = {"politicians": ["obama", "biden"], "actors": ["kit_harington", "rose_leslie"]}
    for dataset, people in groups.items():
        photos = []
        for person in people:
            mine = person_photos(person)
            photos += mine[:-1]
            held_out[person] = mine[-1:]
        copy_photos(photos, base / "sources" / dataset)
        build_dataset(
            base / "index",
            base / "sources" / dataset,
            dataset=dataset,
            embedder=dlib_embedder,
            progress=False,
            fields={"title": dataset.title(), "disclosure_url": f"https://example.org/{dataset}"},
        )
    held_out["alex_lacamoire"] = person_photos("alex_lacamoire")
    return base / "index", held_out


@pytest.fixture(scope="session")
def faces_server(faces_index, tmp_path_factory):
    """`photocheck serve` (real gunicorn, one worker) over the faces index."""
    from servers import serve

    index_dir, _ = faces_index
    log = tmp_path_factory.mktemp("server") / "server.log"
    with serve(index_dir, log) as server:
        yield server


#: The deadline for receiving a request on the hardened server: short, so that slow-client tests are too.
RECEIVE_TIMEOUT = 8


@pytest.fixture(scope="session")
def hardened_server(faces_index, tmp_path_factory):
    """`photocheck serve` as an exposed deployment runs it: 2 workers, metrics on, a bulk key; a short
    receive deadline, and a rate limit high enough for the fuzzers (all their requests come from one
    address). ``server.bulk_key`` is a key for POST /api/v1/bulk."""
    from servers import serve

    from indexer.keys import KeyStore

    index_dir, _ = faces_index
    base = tmp_path_factory.mktemp("hardened")
    with KeyStore(base / "keys.sqlite") as store:
        _, key = store.create("Fuzzers", "100000/minute")
    env = {
        "PHOTOCHECK_METRICS": "1",
        "PHOTOCHECK_RECEIVE_TIMEOUT": str(RECEIVE_TIMEOUT),
        "PHOTOCHECK_RATE_LIMIT": "100000/minute",
        "PHOTOCHECK_KEYS_DB": str(base / "keys.sqlite"),
    }
    with serve(index_dir, base / "server.log", workers=2, env=env) as server:
        server.bulk_key = key
        yield server
