"""The API against a fuzzer nobody here wrote: schemathesis, driven by the service's own OpenAPI document.

Every operation the document describes, through real gunicorn (the hardened server), with a bulk key,
bounded (a fixed seed, a few dozen cases per operation), with all of schemathesis' checks: no 5xx,
answers, statuses, content types and headers as documented, schema-violating requests refused with
a 4xx, unsupported methods answered 405 with ``Allow``, and the key's absence refused.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import requests

#: A request can be valid by the document and still not be a photo with a face (the schema cannot say
#: that): its bytes are then answered 400 unreadable, 413 too many pixels, 415 not an image or 422 no face.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "403", "404", "409", "413", "415", "422", "429"]
"""


def test_schemathesis_finds_nothing(hardened_server, tmp_path: Path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(config),
        "run",
        f"{hardened_server.url}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {hardened_server.bulk_key}",
        "--checks",
        "all",
        "--max-examples",
        "25",
        "--seed",
        "0",
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--generation-database",
        "none",
        "--no-color",
    ]
    run = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    document = requests.get(f"{hardened_server.url}/api/v1/openapi.json", timeout=10).json()
    operations = sum(
        1
        for path, methods in document["paths"].items()
        if not path.endswith("/openapi.json")  # schemathesis leaves out the document it reads
        for method in methods
        if method in ("get", "post")
    )
    counted = re.search(r"(\d+) selected / (\d+) total", output)
    assert counted, output[-3000:]
    # Every operation the document describes is tested.
    assert int(counted.group(1)) == int(counted.group(2)) == operations, output[-3000:]
    assert " passed" in output and "failed" not in output
