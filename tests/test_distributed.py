"""Indexing on Ray: a real local cluster (``ray start --head`` on 127.0.0.1), real dlib, real files.

Every Ray build here is compared with a local build of the same source: same entries, statuses,
bad-image reports, faces, boxes and vectors; also after the driver is killed with -9 and after a
Ray worker is killed mid-build.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import LFW

from indexer.check import LoadedIndex
from indexer.distributed import plan_units
from indexer.pipeline import BuildSummary, build_dataset
from indexer.sources import open_source
from indexer.store import IndexStore

PHOTOCHECK = [sys.executable, "-m", "indexer.cli"]
#: The cluster and every driver of these tests (this process included) share a token of their own,
#: whatever ~/.ray holds on this machine.
RAY_TOKEN = secrets.token_hex(32)
PHOTOS = 28  # LFW photos in the shards
#: LFW photos in the folder: three units of work of 16 (with its two bad files), so that a driver
#: killed once the first is committed still has two to do, even when Ray delivers them late.
FOLDER_PHOTOS = 44
#: The whole module takes about 80 CPU seconds; on a machine shared with a dozen other jobs, starting
#: the cluster and the first builds alone can take minutes.
pytestmark = pytest.mark.timeout(900)
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "PYTHONUNBUFFERED": "1",
    "RAY_AUTH_MODE": "token",
    "RAY_AUTH_TOKEN": RAY_TOKEN,
}


# -- the cluster -----------------------------------------------------------------------------


@dataclass
class Cluster:
    address: str
    process: subprocess.Popen  # `ray start --head --block`: its children are this cluster's processes
    temp_dir: Path

    def worker_pids(self) -> list[int]:
        """The processes of this cluster's Ray Data actors (children of its raylet)."""
        raylets = [pid for pid in _children(self.process.pid) if _name(pid) == "raylet"]
        return [
            pid for raylet in raylets for pid in _children(raylet) if "RecordMaker" in _cmdline(pid) and _alive(pid)
        ]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]) not in ("Z", "X")
    except OSError:
        return False


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _start_head(ray: str, temp_dir: Path) -> tuple[subprocess.Popen, int]:
    """`ray start --head --block` in ``temp_dir``; (the process, its port) once it is up."""
    # Ports of its own, so that it meets no other cluster on this machine (Ray's defaults are fixed).
    port, *others = _free_ports(8)
    flags = [
        "--dashboard-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
        "--node-manager-port",
        "--object-manager-port",
    ]
    command = [
        ray, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
        "--temp-dir", str(temp_dir), "--num-cpus", "2", "--object-store-memory", str(300 * 1024 * 1024),
        "--include-dashboard=false", "--include-log-monitor=false", "--disable-usage-stats",
        "--min-worker-port", "0", "--max-worker-port", "0",
        *[str(v) for pair in zip(flags, others, strict=True) for v in pair],
    ]  # fmt: skip
    log = temp_dir / "ray-start.log"
    with open(log, "wb") as out:
        # No drain period on SIGTERM: nothing here needs one, and it would only slow the teardown.
        env = {**os.environ, **RAY_ENV, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 180
    while b"Ray runtime started" not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError(f"ray start failed:\n{log.read_text()}")
        time.sleep(0.2)
    return process, port


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Cluster]:
    """A two-CPU Ray cluster of this machine only, on ports of its own.

    It runs under `ray start --block` and is stopped by ending that command (SIGTERM), which stops
    exactly the processes it started; `ray stop` would stop every Ray process on the machine, other
    people's clusters included."""
    assert "ray" not in sys.modules, "ray read its settings before this fixture set them"
    saved = {name: os.environ.get(name) for name in RAY_ENV}
    os.environ.update(RAY_ENV)  # for the builds that run in this process
    ray = shutil.which("ray", path=str(Path(sys.executable).parent))
    assert ray, "the ray command is missing: install the dev extra (pip install -e '.[dev]')"
    # Short: Ray's Unix socket paths under the temp dir must fit in 107 bytes.
    temp_dir = Path(tempfile.mkdtemp(prefix="pc-ray-", dir="/tmp"))
    process = None
    try:
        # Ray gives its raylet 30 s to register, which a very busy machine can miss: try again then.
        for attempt in range(3):
            (temp_dir / str(attempt)).mkdir()
            try:
                process, port = _start_head(ray, temp_dir / str(attempt))
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        yield Cluster(address=f"127.0.0.1:{port}", process=process, temp_dir=temp_dir)
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(temp_dir, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- the sources and their local builds ------------------------------------------------------


def _lfw_photos(count: int) -> list[Path]:
    return sorted((LFW / "images").glob("A*/*.jpg"))[:count]


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="session")
def sources(tmp_path_factory) -> dict[str, Path]:
    """The same LFW photos as a folder (with two bad files) and as three webdataset shards (with a
    bad image, an entry without one, and a truncated shard)."""
    base = tmp_path_factory.mktemp("ray-sources")
    folder = base / "folder"
    for photo in _lfw_photos(FOLDER_PHOTOS):
        (folder / photo.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, folder / photo.parent.name / photo.name)
    photos = _lfw_photos(PHOTOS)
    (folder / "Aa_cut.jpg").write_bytes(photos[0].read_bytes()[:3000])  # sorts among the first unit
    (folder / "Aa_paper.jpg").write_bytes(b"%PDF-1.4 not a photo")

    shards = base / "shards"
    shards.mkdir()
    third = len(photos) // 3
    for number, group in enumerate((photos[:third], photos[third : 2 * third], photos[2 * third :])):
        with tarfile.open(shards / f"{number:05d}.tar", "w") as tar:
            for index, photo in enumerate(group):
                key = f"{index:09d}"
                _tar_member(tar, f"{key}.jpg", photo.read_bytes())
                _tar_member(tar, f"{key}.json", json.dumps({"url": f"https://e.x/{photo.name}"}).encode())
            _tar_member(tar, "cut.jpg", photos[0].read_bytes()[:3000])
            _tar_member(tar, "nopic.json", b'{"url": "https://e.x/gone"}')
    last = shards / "00002.tar"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    return {"folder": folder, "webdataset": shards}


@pytest.fixture(scope="session")
def local_builds(sources, dlib_embedder, tmp_path_factory) -> dict[str, Path]:
    """Each source built here, on one machine, without Ray: what every Ray build must equal."""
    built = {}
    for name, source in sources.items():
        index = tmp_path_factory.mktemp(f"local-{name}")
        build_dataset(index, source, dataset="set", embedder=dlib_embedder, progress=False)
        built[name] = index
    return built


# -- comparing two indexes -------------------------------------------------------------------


def contents(index: Path) -> tuple[dict[str, tuple], dict[tuple[str, int], tuple]]:
    """(entries by key, faces by (key, face number) with their box, score and vector) of dataset 'set'."""
    store = IndexStore(index, readonly=True)
    try:
        info = store.dataset("set")
        entries = {
            r["key"]: (r["status"], r["faces"], r["small_faces"], r["error_code"], r["error_message"], r["metadata"])
            for r in store.conn.execute("SELECT * FROM entries WHERE dataset_id = ?", (info.id,))
        }
        ids, vectors = store.embeddings(info.id)
        by_id = dict(zip(ids.tolist(), vectors, strict=True))
        faces = {
            (r["key"], r["face_number"]): ((r["x"], r["y"], r["w"], r["h"]), r["score"], by_id[r["id"]])
            for r in store.conn.execute(
                "SELECT f.id, e.key, f.face_number, f.x, f.y, f.w, f.h, f.score FROM faces f "
                "JOIN entries e ON e.id = f.entry_id WHERE f.dataset_id = ?",
                (info.id,),
            )
        }
    finally:
        store.close()
    return entries, faces


def assert_same_index(built: Path, reference: Path) -> None:
    entries, faces = contents(built)
    expected_entries, expected_faces = contents(reference)
    assert entries == expected_entries
    assert faces.keys() == expected_faces.keys()
    for key, (box, score, vector) in faces.items():
        expected_box, expected_score, expected_vector = expected_faces[key]
        np.testing.assert_allclose(box, expected_box, atol=1e-6)
        assert score == pytest.approx(expected_score, abs=1e-6)
        np.testing.assert_allclose(vector, expected_vector, atol=1e-5)
    assert LoadedIndex(built).datasets[0].size == LoadedIndex(reference).datasets[0].size == len(faces)
    reports = [(index / "reports" / "set-bad-images.csv").read_text() for index in (built, reference)]
    assert reports[0] == reports[1]


def _entries(index: Path) -> int:
    try:
        with sqlite3.connect(f"file:{index / 'metadata.sqlite'}?mode=ro", uri=True, timeout=0.1) as conn:
            return conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    except sqlite3.Error:
        return 0


def _add(index: Path, source: Path, cluster: Cluster, *extra: str) -> list[str]:
    return [
        *PHOTOCHECK, "index", "add", "--index", str(index), "--dataset", "set", "--no-progress",
        "--ray", cluster.address, *extra, str(source),
    ]  # fmt: skip


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _busy_worker(process: subprocess.Popen, cluster: Cluster) -> int:
    """The pid of an actor that has been working on a unit (Ray titles it ``....submit`` then) for
    half a second of CPU, past loading its embedder."""
    first_seen: dict[int, int] = {}
    deadline = time.monotonic() + 180
    while process.poll() is None and time.monotonic() < deadline:
        for pid in cluster.worker_pids():
            if _cmdline(pid).strip().endswith(".submit"):
                ticks = _cpu_ticks(pid)
                if ticks - first_seen.setdefault(pid, ticks) >= os.sysconf("SC_CLK_TCK") // 2:
                    return pid
        time.sleep(0.05)
    raise AssertionError("no actor was seen at work before the build ended")


def _wait_for_commits(process: subprocess.Popen, index: Path, at_least: int) -> int:
    deadline = time.monotonic() + 180
    while _entries(index) < at_least and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the build finished before it could be interrupted"
    return _entries(index)


# -- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["folder", "webdataset"])
def test_a_ray_build_equals_a_local_build(kind, ray_cluster, sources, local_builds, dlib_embedder, tmp_path):
    summary = build_dataset(
        tmp_path / "index",
        sources[kind],
        dataset="set",
        embedder=dlib_embedder,
        progress=False,
        workers=2,
        ray_address=ray_cluster.address,
    )
    assert_same_index(tmp_path / "index", local_builds[kind])
    entries, _ = contents(local_builds[kind])
    assert summary.images == len(entries) and not summary.resumed and summary.skipped == 0
    bad = sorted((k, c) for k, c, _ in summary.bad)
    if kind == "folder":
        assert bad == [("Aa_cut.jpg", "unreadable_image"), ("Aa_paper.jpg", "unsupported_format")]
    else:
        assert ("00000/cut", "unreadable_image") in bad and ("00001/nopic", "missing_file") in bad
        assert ("00002/<shard>", "bad_shard") in bad


def test_a_driver_killed_mid_build_resumes_to_the_local_result(ray_cluster, sources, local_builds, tmp_path):
    index = tmp_path / "index"
    command = _add(index, sources["folder"], ray_cluster, "--workers", "1")
    env = {**os.environ, **RAY_ENV}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_commits(process, index, 16)  # the first unit is in, the second is not
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = _entries(index)
    assert 16 <= partial < FOLDER_PHOTOS + 2

    resumed = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["resumed"] and summary["skipped"] == partial and summary["images"] == FOLDER_PHOTOS + 2 - partial
    assert_same_index(index, local_builds["folder"])


def test_a_ray_worker_killed_mid_build_is_replaced_and_the_result_is_the_same(
    ray_cluster, sources, local_builds, tmp_path
):
    index = tmp_path / "index"
    env = {**os.environ, **RAY_ENV}
    process = subprocess.Popen(
        [*_add(index, sources["webdataset"], ray_cluster, "--workers", "1"), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    busy = _busy_worker(process, ray_cluster)  # in the middle of a shard
    os.kill(busy, signal.SIGKILL)
    killed = {busy}
    replacement = None
    while replacement is None and process.poll() is None:
        replacement = next((pid for pid in ray_cluster.worker_pids() if pid not in killed), None)
        time.sleep(0.05)
    out, err = process.communicate(timeout=300)
    assert replacement is not None, f"the build ended without Ray starting another actor: {err}"
    assert process.returncode == 0, err
    summary = json.loads(out)
    assert not summary["resumed"]
    assert_same_index(index, local_builds["webdataset"])


def test_finished_shards_are_not_read_again(sources):
    """Commits follow source order, so only the last shard with committed entries can be partial."""
    source = open_source(sources["webdataset"])
    keys = [entry.key for entry in source]
    first, second = (
        [k for k in keys if k.startswith("00000/")],
        [k for k in keys if k.startswith("00001/")],
    )
    done = set(first) | set(second[:3])
    summary = BuildSummary(dataset=None, resumed=True)  # type: ignore[arg-type]
    units = plan_units(source, done, summary, chunk_size=16)
    assert [Path(u.shard).name for u in units] == ["00001.tar", "00002.tar"]
    assert units[0].skip == frozenset(second[:3]) and not units[1].skip
    assert summary.skipped == len(done)


def test_without_ray_the_flag_says_what_to_install(sources, tmp_path):
    index = tmp_path / "index"
    hide_ray = "import sys; sys.modules['ray'] = None; from indexer.cli import main; sys.exit(main())"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            hide_ray,
            *("index", "add", "--index", str(index), "--dataset", "set"),
            *("--ray", "auto", str(sources["folder"])),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "pip install 'photocheck[ray]'" in result.stderr and "[ray_not_installed]" in result.stderr
    assert not index.exists()


def test_the_service_and_the_local_pipeline_do_not_import_ray():
    probe = "import sys, service, indexer.pipeline, indexer.cli; service.create_app; print('ray' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
