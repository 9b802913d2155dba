"""The README's `$` sessions run as shown and print what it shows (tests/readme_sessions.py says how,
and how to refresh them: `.venv/bin/python tests/readme_sessions.py` prints every session as run now)."""

from __future__ import annotations

from pathlib import Path

import pytest
from readme_sessions import Runner, Session, differences, prepare, read_sessions

SESSIONS = read_sessions()


@pytest.fixture(scope="module")
def runner(tmp_path_factory, _isolated_model_root: Path):
    workdir = tmp_path_factory.mktemp("readme")
    prepare(workdir)
    running = Runner(workdir, {"PHOTOCHECK_MODEL_ROOT": str(_isolated_model_root)})
    yield running
    running.close()


def test_the_readme_has_sessions_and_most_run():
    commands = [c for s in SESSIONS for c in s.commands]
    assert len(SESSIONS) >= 6
    assert sum(1 for c in commands if not c.skipped) >= 10
    assert {"make demo", "photocheck index list --index ./index"} <= {c.text for c in commands}


@pytest.mark.parametrize("session", SESSIONS, ids=[s.name for s in SESSIONS])
def test_a_readme_session_prints_what_the_readme_shows(runner: Runner, session: Session):
    ran = 0
    for command in session.commands:
        if command.skipped:
            continue
        output, background = runner.run(command)
        problem = differences(command.expected, output, subsequence=background)
        assert problem is None, f"README.md:{command.line} `$ {command.text}`\n{problem}"
        ran += 1
    if not ran:
        pytest.skip("; ".join(sorted({c.skipped for c in session.commands if c.skipped})))
