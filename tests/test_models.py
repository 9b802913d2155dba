"""`photocheck models download`: a pinned SHA-256, an atomic unpack, tested against a local server."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from onnx_pack import build_pack_zip

from indexer.cli import cli
from indexer.errors import ModelDownloadError
from indexer.models import PACKS, download_pack, find_pack


@pytest.fixture
def served_zip(tmp_path: Path):
    """A buffalo_l-shaped zip served over HTTP on localhost."""
    folder = tmp_path / "www"
    folder.mkdir()
    archive = build_pack_zip(folder / "buffalo_l.zip")
    (folder / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield base, hashlib.sha256(archive.read_bytes()).hexdigest(), folder
    server.shutdown()


def test_pinned_hash_is_the_release_archive():
    assert PACKS["buffalo_l"].sha256 == "80ffe37d8a5940d59a7384c201a2a38d4741f2f3c51eef46ebb28218a7b0ca2f"
    assert PACKS["buffalo_l"].url.endswith("/buffalo_l.zip")


def test_download_checks_the_hash_and_installs(served_zip, tmp_path: Path):
    base, digest, _ = served_zip
    root = tmp_path / "models"
    path = download_pack("buffalo_l", root, url=f"{base}/buffalo_l.zip", sha256=digest, progress=False)
    assert path == root / "buffalo_l" and find_pack("buffalo_l", root) == path
    assert sorted(p.name for p in path.iterdir()) == ["det_10g.onnx", "w600k_r50.onnx"]
    assert [p.name for p in root.iterdir()] == ["buffalo_l"]  # nothing left behind


def test_wrong_hash_installs_nothing(served_zip, tmp_path: Path):
    base, _, _ = served_zip
    root = tmp_path / "models"
    with pytest.raises(ModelDownloadError, match="not the pinned"):
        download_pack("buffalo_l", root, url=f"{base}/buffalo_l.zip", progress=False)  # the real pin
    assert list(root.iterdir()) == []


def test_a_broken_archive_or_server_installs_nothing(served_zip, tmp_path: Path):
    base, _, folder = served_zip
    root = tmp_path / "models"
    broken = hashlib.sha256((folder / "broken.zip").read_bytes()).hexdigest()
    with pytest.raises(ModelDownloadError, match="not a valid zip"):
        download_pack("buffalo_l", root, url=f"{base}/broken.zip", sha256=broken, progress=False)
    with pytest.raises(ModelDownloadError, match="Could not download"):
        download_pack("buffalo_l", root, url=f"{base}/missing.zip", sha256=broken, progress=False)
    assert list(root.iterdir()) == []


def test_a_new_download_replaces_an_old_pack_in_one_step(served_zip, tmp_path: Path):
    base, digest, _ = served_zip
    root = tmp_path / "models"
    (root / "buffalo_l").mkdir(parents=True)
    (root / "buffalo_l" / "det_10g.onnx").write_bytes(b"an old, broken copy")
    download_pack("buffalo_l", root, url=f"{base}/buffalo_l.zip", sha256=digest, progress=False)
    assert (root / "buffalo_l" / "det_10g.onnx").read_bytes()[:4] != b"an o"


def test_cli_download_and_list(served_zip, tmp_path: Path):
    base, digest, _ = served_zip
    root = tmp_path / "models"
    runner = CliRunner()
    listed = runner.invoke(cli, ["models", "list", "--model-root", str(root)])
    assert "buffalo_l" in listed.output and "not installed" in listed.output
    result = runner.invoke(
        cli,
        [
            "models",
            "download",
            "buffalo_l",
            "--model-root",
            str(root),
            "--url",
            f"{base}/buffalo_l.zip",
            "--sha256",
            digest,
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(root / "buffalo_l")
    assert "non-commercial research" in result.stderr
    assert "installed" in runner.invoke(cli, ["models", "list", "--model-root", str(root)]).output
