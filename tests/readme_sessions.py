"""The README's `$` sessions: read them, run them, and compare what they print with what the README shows.

A session is an indented block of README.md whose first line starts with ``$ ``; each ``$`` line (with
its ``\\`` continuations) is a command, and the lines after it, up to the next ``$`` line, are what it
prints (stdout and stderr together, as a terminal shows them). ``...`` stands for any lines.

Every command runs in one working folder, in README order, with this environment's ``photocheck`` first
on PATH. The folder holds what the README's narrative says it holds (``prepare``): ``./photos`` (the
photos of four people of ../shared/faces, Obama's obama4.jpg held back, and notes.jpg, which is text),
the photos the checks name, and paper.pdf. Some commands are run as what they stand for: ``make demo``
as what it runs after installing (``python -m indexer.demo ... --serve``, on a free port, stopped once it
serves), ``. .venv/bin/activate`` as nothing (this environment is first on PATH), and ``photocheck serve
... &`` starts the server on a free port, which the later ``curl`` commands are pointed at. Commands that need
what the suite does not have the time or the data for are skipped, with the reason (``SKIPPED``).

What must vary is normalised on both sides before comparing: durations and rates, progress bars,
timestamps, process ids, keys, absolute paths and the model root. JSON is compared as JSON, so the
README may wrap it as it likes.

To refresh the README after a change, print the real output of every session and paste it::

    .venv/bin/python tests/readme_sessions.py            # every session, as run now
    .venv/bin/python tests/readme_sessions.py --check    # what the test checks, with the differences
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FACES = ROOT.parent / "shared" / "faces"
LFW = ROOT.parent / "shared" / "lfw" / "images"
BIN = Path(sys.executable).parent

#: Commands not run, by how they start, and why (the suite covers what they do elsewhere).
SKIPPED = {
    "photocheck eval": "minutes of LFW embedding; tests/test_evaluation.py runs the same code on a subset",
    "export PHOTOCHECK_KEY": "the bulk sessions need the 200-member LFW set and its index (tests/test_bulk.py)",
    "photocheck bulk": "the 200-member LFW set and a 2-dataset index (tests/test_bulk.py runs it, Ctrl-C included)",
    'curl -s -H "Authorization: Bearer $KEY"': "needs the bulk sessions' LFW index (tests/test_bulk.py)",
    "python bench/": "a benchmark: it prints figures measured on a machine, which are reported, not compared",
    ".venv/bin/python bench/": "a benchmark: it prints figures measured on a machine, which are reported, not compared",
}
#: Seconds any one command may take.
COMMAND_TIMEOUT = 300


@dataclass
class Command:
    line: int  # in README.md, 1-based
    text: str
    expected: list[str]

    @property
    def skipped(self) -> str | None:
        return next((why for start, why in SKIPPED.items() if self.text.startswith(start)), None)


@dataclass
class Session:
    line: int
    commands: list[Command] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"README.md:{self.line} {self.commands[0].text[:60]}"


def read_sessions(readme: Path = README) -> list[Session]:
    lines = readme.read_text(encoding="utf-8").splitlines()
    sessions: list[Session] = []
    number = 0
    while number < len(lines):
        line = lines[number]
        previous_blank = number == 0 or not lines[number - 1].strip()
        if previous_blank and line.startswith("    $ "):
            session = Session(number + 1)
            while number < len(lines) and (lines[number].startswith("    ") or not lines[number].strip()):
                text = lines[number][4:]
                if text.startswith("$ "):
                    command, start = text[2:], number
                    while command.endswith("\\"):
                        number += 1
                        command = command[:-1].rstrip() + " " + lines[number].strip()
                    session.commands.append(Command(start + 1, command, []))
                elif session.commands:
                    session.commands[-1].expected.append(text)
                number += 1
            for command in session.commands:
                while command.expected and not command.expected[-1].strip():
                    command.expected.pop()
            sessions.append(session)
            continue
        number += 1
    return sessions


# -- normalising ------------------------------------------------------------------------------------

PROGRESS_BAR = re.compile(r"^\s*[\w.-]+:\s+\d+%\|")
SUBSTITUTIONS = [
    (re.compile(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\]"), "[<TIME>] [<PID>]"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"), "<TIME>"),
    (re.compile(r"pck_[A-Za-z0-9_-]{20,}"), "pck_<KEY>"),
    (re.compile(r"pck_[A-Za-z0-9_-]{4}\.\.\."), "pck_<K>..."),
    (re.compile(r"\b\d+(\.\d+)?s\b"), "<T>s"),
    (re.compile(r"\d+(\.\d+)? (images|photos)/s"), r"<R> \2/s"),
    (re.compile(r"pack in \S+\)"), "pack in <MODEL ROOT>)"),
    (re.compile(r"(?<![\w.])/[^\s:]*/(demo/index|index)\b"), r"<DIR>/\1"),
    (re.compile(r"http://127\.0\.0\.1:\d+"), "http://127.0.0.1:<PORT>"),
]


def normalise(text: str) -> str:
    for pattern, replacement in SUBSTITUTIONS:
        text = pattern.sub(replacement, text)
    return text


def _split_json(lines: list[str]) -> tuple[object, list[str]]:
    """A JSON value at the start of the lines (however wrapped), and the lines after it."""
    text = "\n".join(lines).lstrip()
    if text[:1] not in ("{", "["):
        return None, lines
    try:
        value, end = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None, lines
    return value, text[end:].strip("\n").splitlines()


def _lines_match(expected: list[str], actual: list[str]) -> bool:
    """Line by line; an expected "..." matches any number of lines."""
    if not expected:
        return not actual
    if expected[0].strip() == "...":
        return any(_lines_match(expected[1:], actual[start:]) for start in range(len(actual) + 1))
    return bool(actual) and expected[0].rstrip() == actual[0].rstrip() and _lines_match(expected[1:], actual[1:])


def _normalised_lines(text: str) -> list[str]:
    # A line rewritten with carriage returns (a progress bar) shows its last state, as on a terminal.
    shown = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n")]
    # tqdm starts its bar on a fresh line when the output is not a terminal: that blank line goes too.
    kept = [
        line
        for number, line in enumerate(shown)
        if not PROGRESS_BAR.match(line)
        and not (not line.strip() and number + 1 < len(shown) and PROGRESS_BAR.match(shown[number + 1]))
    ]
    lines = [normalise(line) for line in kept]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def differences(expected: list[str], actual: str, *, subsequence: bool = False) -> str | None:
    """None when the output matches the README's, else both, normalised, for the failure message."""
    want = _normalised_lines("\n".join(expected))
    got = _normalised_lines(actual)
    want_json, want_rest = _split_json(want)
    got_json, got_rest = _split_json(got)
    if want_json is not None:
        if got_json != want_json:
            return f"JSON differs:\nREADME: {json.dumps(want_json)}\nactual: {json.dumps(got_json)}"
        want, got = want_rest, got_rest
    if subsequence:  # a background server: the README shows some of its lines, in order
        position = 0
        for line in want:
            while position < len(got) and got[position].rstrip() != line.rstrip():
                position += 1
            if position == len(got):
                break
            position += 1
        else:
            return None
    elif _lines_match(want, got):
        return None
    return "README:\n" + "\n".join(want) + "\n\nactual:\n" + "\n".join(got)


# -- running ----------------------------------------------------------------------------------------


def prepare(workdir: Path) -> None:
    """The files the README's sessions name, as its narrative describes them."""
    photos = workdir / "photos"
    for person in ("obama", "biden", "kit_harington", "rose_leslie"):
        for photo in sorted((FACES / "people" / person).iterdir()):
            if photo.name != "obama4.jpg":  # held back: the check finds Obama with it
                (photos / person).mkdir(parents=True, exist_ok=True)
                shutil.copy(photo, photos / person / photo.name)
    (photos / "notes.jpg").write_text("Meeting notes, not a photo.\n")
    shutil.copy(FACES / "people" / "obama" / "obama4.jpg", workdir / "obama4.jpg")
    shutil.copy(FACES / "people" / "alex_lacamoire" / "img1.jpg", workdir / "alex_lacamoire.jpg")
    shutil.copy(FACES / "groups" / "kit_with_rose.jpg", workdir / "kit_with_rose.jpg")
    shutil.copy(FACES / "groups" / "obama_and_biden.jpg", workdir / "obama_and_biden.jpg")
    (workdir / "paper.pdf").write_bytes(b"%PDF-1.5\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n")
    _sample_sets(workdir)


def _sample_sets(workdir: Path) -> None:
    """Small samples laid out as FFHQ, MegaFace and CelebA ship, of LFW photos, with made-up Flickr ids."""
    from test_layouts import make_celeba, make_ffhq, make_megaface

    def lfw(name: str, number: int) -> Path:
        return LFW / name / f"{name}_{number:04d}.jpg"

    make_ffhq(
        workdir / "ffhq",
        [
            ("https://www.flickr.com/photos/jeremyfrumkin/1133484654/", "Jeremy Frumkin", lfw("Aaron_Peirsol", 1)),
            ("https://www.flickr.com/photos/12345678@N00/2000000001/", "Me Myself", lfw("Al_Gore", 1)),
            ("https://www.flickr.com/photos/99999999@N01/3000000001/", "Someone Else", lfw("Bill_Gates", 1)),
        ],
    )
    make_megaface(
        workdir / "megaface",
        {
            "FlickrFinal2/123/12345678@N00/8032652775_0.jpg": lfw("Aaron_Peirsol", 2),
            "FlickrFinal2/123/12345678@N00/8032652776_0.jpg": lfw("Aaron_Peirsol", 3),
            "FlickrFinal2/876/87654321@N05/4811548600_0.jpg": lfw("Al_Gore", 2),
        },
    )
    make_celeba(workdir / "celeba", [lfw("Adrien_Brody", 1), lfw("Adrien_Brody", 2)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runner:
    """Runs a README's commands in order in one folder; a background server lives until ``close``."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.env = {
            **os.environ,
            **(env or {}),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "100",
        }
        #: README port -> (free port here, server); a server is started by `photocheck serve ... &`
        self.servers: dict[int, tuple[int, subprocess.Popen]] = {}

    def command_line(self, text: str) -> str:
        if text == ". .venv/bin/activate":  # this environment's bin is first on PATH already
            return "true"
        for shown, (port, _) in self.servers.items():
            text = text.replace(f"127.0.0.1:{shown}", f"127.0.0.1:{port}")
        return text

    def run(self, command: Command) -> tuple[str, bool]:
        """What the command printed, and whether it is a background command (compared as a subsequence)."""
        text = command.text
        if text.endswith("&"):
            return self._start_server(text[:-1].strip()), True
        if text == "make demo":
            return self._make_demo(), False
        if "@embedding.json" in text and not (self.workdir / "embedding.json").exists():
            self._write_embedding()
        result = subprocess.run(
            ["bash", "-c", self.command_line(text)],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        return result.stdout, False

    def _make_demo(self) -> str:
        """What `make demo` does after installing: build the demo index, then serve it (here on a free
        port, stopped once it says it is serving)."""
        port = _free_port()
        demo = subprocess.Popen(
            [sys.executable, "-m", "indexer.demo", "--index", "demo/index", "--port", str(port), "--serve"],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines = []
        try:
            assert demo.stdout is not None
            for line in demo.stdout:
                lines.append(line)
                if line.startswith("Serving it now"):
                    break
        finally:
            demo.send_signal(signal.SIGTERM)
            try:
                demo.wait(timeout=30)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
        return "".join(lines)

    def _start_server(self, text: str) -> str:
        if not text.startswith("photocheck serve"):
            raise ValueError(f"only `photocheck serve ... &` runs in the background, not {text!r}")
        given = re.search(r"\s--port[ =](\d+)", text)
        shown = int(given.group(1)) if given else 8000
        if given:
            text = text[: given.start()] + text[given.end() :]
        self._stop(shown)
        port = _free_port()
        log = self.workdir / f"server-{shown}.log"
        with open(log, "wb") as out:
            server = subprocess.Popen(
                ["bash", "-c", f"exec {text} --port {port}"],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.servers[shown] = (port, server)
        deadline = time.monotonic() + 180
        import requests

        while time.monotonic() < deadline:
            if server.poll() is not None:
                break
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        # The README shows the first worker's "serving ..." line: wait until every worker has logged it.
        workers = 2
        while time.monotonic() < deadline and log.read_text(errors="replace").count("] serving ") < workers:
            time.sleep(0.3)
        return log.read_text(errors="replace")

    def _write_embedding(self) -> None:
        """embedding.json, as the README describes it: the demo's Grace Hopper photo as the on-device check
        sends it (the embedding of its face and that face's size and sharpness)."""
        from indexer.embedders import create_embedder
        from indexer.images import load_image
        from indexer.quality import assess

        pixels = load_image((self.workdir / "demo" / "try" / "grace_hopper_mirrored.jpg").read_bytes())
        embedder = create_embedder("dlib")
        face = embedder.detect(pixels)[0]
        quality = assess(pixels, face)
        body = {
            "embedding": [round(float(v), 6) for v in embedder.embed(pixels, [face])[0]],
            "face": {"size": round(quality.size, 1), "sharpness": round(quality.sharpness, 1)},
        }
        (self.workdir / "embedding.json").write_text(json.dumps(body))

    def _stop(self, shown: int) -> None:
        _, server = self.servers.pop(shown, (None, None))
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    def close(self) -> None:
        for shown in list(self.servers):
            self._stop(shown)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the README and show what differs")
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="photocheck-readme-") as tmp:
        workdir = Path(tmp)
        prepare(workdir)
        runner = Runner(workdir, {"PHOTOCHECK_MODEL_ROOT": str(workdir / "no-models")})
        try:
            for session in read_sessions():
                print(f"== {session.name}")
                for command in session.commands:
                    if command.skipped:
                        print(f"$ {command.text}\n   (skipped: {command.skipped})")
                        continue
                    output, background = runner.run(command)
                    print(f"$ {command.text}\n{output.rstrip()}")
                    if args.check:
                        problem = differences(command.expected, output, subsequence=background)
                        if problem:
                            failures += 1
                            print(f"!! differs from README.md:{command.line}:\n{problem}")
        finally:
            runner.close()
    if args.check:
        print(f"{failures} command(s) differ from the README")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
