"""The command line as a user sees it: output on stdout, messages on stderr, errors with codes."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import FACES, copy_photos, person_photos

from indexer.cli import cli

runner = CliRunner()


def run(*args: str, ok: bool = True):
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("cli")
    source = copy_photos(person_photos("obama")[:3] + person_photos("biden")[:1], base / "pol")
    (source / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    result = run(
        "index",
        "add",
        "--index",
        str(base / "index"),
        "--dataset",
        "politicians",
        "--title",
        "Politicians",
        "--disclosure-url",
        "https://example.org/disclosed",
        "--license",
        "CC-BY-2.0",
        "--date",
        "2016-06",
        "--no-progress",
        str(source),
    )
    out = result.stdout
    assert "dataset politicians: 5 images read" in out
    assert "faces indexed:             4" in out and "bad images:                1" in out
    assert "broken.jpg: unreadable_image" in out
    assert "embedder: dlib (dlib_face_recognition_resnet_model_v1, 128-d)" in result.stderr
    return base / "index"


def test_index_list_text_and_json(cli_index: Path):
    text = run("index", "list", "--index", str(cli_index)).stdout
    assert "politicians" in text and "4 faces" in text and "Politicians" in text
    assert "match at confidence >= 0.95" in text
    listing = json.loads(run("index", "list", "--index", str(cli_index), "--json").stdout)
    assert listing["embedder"]["name"] == "dlib"
    assert listing["confidence"]["match"] == 0.95 and listing["confidence"]["possible"] == 0.5
    (dataset,) = listing["datasets"]
    assert dataset["name"] == "politicians" and dataset["faces"] == 4 and dataset["bad"] == 1
    assert dataset["license"] == "CC-BY-2.0" and dataset["date"] == "2016-06"


def test_check_json_is_the_shared_answer_shape(cli_index: Path, tmp_path: Path):
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("hello")
    result = run(
        "check",
        "--index",
        str(cli_index),
        "--json",
        str(person_photos("obama")[3]),
        str(FACES / "groups" / "obama_and_biden.jpg"),
        str(not_a_photo),
        ok=False,
    )
    assert result.exit_code == 1  # one image could not be checked
    answers = json.loads(result.stdout)
    assert [a["image"] for a in answers][-1] == str(not_a_photo)
    good, group, bad = answers
    assert set(good) == {"image", "faces_detected", "faces", "face", "results", "error"}
    assert good["error"] is None and good["faces_detected"] == 1
    assert good["face"]["number"] == 0 and len(good["face"]["box"]) == 4
    assert good["results"] == [
        {
            "dataset": "politicians",
            "title": "Politicians",
            "verdict": "match",
            "confidence": good["results"][0]["confidence"],
        }
    ]
    assert good["results"][0]["confidence"] >= 0.95
    assert group["faces_detected"] == 3 and group["faces"][0]["box"] == group["face"]["box"]
    assert bad["error"]["code"] == "unsupported_format" and bad["results"] == []


def test_check_text_output(cli_index: Path):
    out = run("check", "--index", str(cli_index), str(person_photos("kit_harington")[0])).stdout
    lines = out.splitlines()
    assert lines[0].endswith("1 face; face 0 at x=684 y=104 123x122")
    assert lines[1].split()[:2] == ["politicians", "no"]
    group = run("check", "--index", str(cli_index), "--face", "1", str(FACES / "groups" / "kit_with_rose.jpg")).stdout
    assert "2 faces; face 1" in group and "pick another with --face N" in group


def test_dlib_runtime_option_gives_the_same_answer(cli_index: Path):
    photo = str(person_photos("obama")[3])
    default = run("check", "--index", str(cli_index), photo)
    own = run("check", "--index", str(cli_index), "--dlib-runtime", "dlib", photo)
    assert own.stdout == default.stdout and "politicians  match" in own.stdout
    assert "onnxruntime: dlib_face_recognition_resnet_model_v1 runs on CPU" in default.stderr
    assert "onnxruntime" not in own.stderr


def test_same_person_checks_several_photos_as_one(cli_index: Path, tmp_path: Path):
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("hello")
    obama = [str(person_photos("obama")[3]), str(FACES / "edge" / "obama-240p.jpg")]
    result = run("check", "--index", str(cli_index), "--same-person", "--json", *obama, str(not_a_photo))
    answer = json.loads(result.stdout)  # one answer, exit 0: the photo that could not be used is left out
    assert set(answer) == {"faces_detected", "faces", "face", "quality", "photos", "results", "error"}
    assert [p["image"] for p in answer["photos"]] == [*obama, str(not_a_photo)]
    assert [p["error"] and p["error"]["code"] for p in answer["photos"]] == [None, None, "unsupported_format"]
    assert answer["photos"][0]["face"] == answer["face"] and answer["quality"] == "good"
    assert [(r["dataset"], r["verdict"]) for r in answer["results"]] == [("politicians", "match")]

    # A face per photo: Obama, and the second face of Kit Harington and Rose Leslie's photo: refused.
    group = str(FACES / "groups" / "kit_with_rose.jpg")
    refused = run("check", "--index", str(cli_index), "--same-person", obama[0], group, "--face", "0,1", ok=False)
    assert refused.exit_code == 1
    lines = refused.stdout.splitlines()
    assert lines[1] == f"{group}: 2 faces; face 1 at x=85 y=133 73x73 (pick another with --face N)"
    assert lines[2].startswith(
        f"These photos do not seem to show one person: {obama[0]} and {group} (face 1) do not look like the same "
    )
    assert lines[2].endswith("[not_same_person]") and len(lines) == 3  # and no results

    mismatch = run("check", "--index", str(cli_index), "--face", "0,1", obama[0], ok=False)
    assert mismatch.exit_code == 2 and "2 face numbers for 1 photo:" in mismatch.stderr
    six = run("check", "--index", str(cli_index), "--same-person", *obama * 3, ok=False)
    assert six.exit_code == 2 and "1 to 5 photos" in six.stderr


def test_errors_are_one_line_with_a_code(tmp_path: Path):
    result = run("check", "--index", str(tmp_path / "nowhere"), str(person_photos("obama")[0]), ok=False)
    assert result.exit_code == 1
    assert "There is no index at" in result.stderr and "[index_not_found]" in result.stderr
    assert "Traceback" not in result.output
    bad_date = run(
        "index", "add", "--index", str(tmp_path / "i"), "--dataset", "x", "--date", "June", str(tmp_path), ok=False
    )
    assert bad_date.exit_code == 2 and "YYYY" in bad_date.stderr


def test_remove_reports_counts(cli_index: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "index"
    shutil.copytree(cli_index, copy)
    out = run("index", "remove", "--index", str(copy), "--dataset", "politicians").stdout
    assert out.strip() == "removed politicians: 4 faces from 5 images"
    assert "no datasets yet" in run("index", "list", "--index", str(copy)).stdout
    missing = run("index", "remove", "--index", str(copy), "--dataset", "politicians", ok=False)
    assert "[dataset_not_found]" in missing.stderr


def _commands(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")


@pytest.mark.parametrize(("name", "command"), list(_commands(cli)))
def test_every_command_is_documented(name, command):
    assert command.help and len(command.help) > 30, f"`photocheck {name}` has no help"
    if not isinstance(command, click.Group) and name not in ("models list",):
        assert "Example" in command.help, f"`photocheck {name}` shows no example"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"`photocheck {name}` option {param.opts} is not documented"


def test_quiet_leaves_only_the_results(tmp_path: Path):
    source = copy_photos(person_photos("rose_leslie")[:1], tmp_path / "one")
    result = run("--quiet", "index", "add", "--index", str(tmp_path / "index"), "--dataset", "one", str(source))
    assert result.stderr == ""  # no embedder line, no progress bar
    assert result.stdout.splitlines()[-1].endswith(": one holds 1 face from 1 image (IDMap2,Flat)")
    listed = run("index", "list", "--index", str(tmp_path / "index")).stdout
    assert "  1 face " in listed and " 1 image " in listed and "index version" in listed
