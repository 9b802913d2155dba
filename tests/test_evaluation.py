"""`photocheck eval`: LFW pairs files, the metrics, open-set identification and the plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import LFW

from indexer.cli import cli
from indexer.evaluation import (
    expected_calibration_error,
    identities_protocol,
    read_pairs,
    roc_auc,
    tar_at_far,
    ten_fold_accuracy,
)


def test_view_two_file_gives_ten_folds(tmp_path: Path):
    lines = ["2 2"]
    for fold in range(2):
        lines += [f"Al_{fold} 1 2", f"Bo_{fold} 1 3", f"Al_{fold} 1 Bo_{fold} 2", f"Cy_{fold} 4 Dee_{fold} 1"]
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(lines) + "\n")
    pairs = read_pairs(path)
    assert [p.fold for p in pairs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [p.same for p in pairs] == [True, True, False, False] * 2
    assert pairs[0].first == "Al_0/Al_0_0001.jpg" and pairs[3].second == "Dee_0/Dee_0_0001.jpg"
    path.write_text("3 2\nAl 1 2\n")
    with pytest.raises(Exception, match="says 3 folds"):
        read_pairs(path)


def test_headerless_file_with_comments_is_split_in_order():
    pairs = read_pairs(LFW / "pairs-dev.txt")
    assert len(pairs) > 1000 and sorted({p.fold for p in pairs}) == list(range(10))
    folds = [p.fold for p in pairs]
    assert folds == sorted(folds)
    assert any(p.same for p in pairs) and any(not p.same for p in pairs)


def test_metrics_on_known_scores():
    labels = np.array([True] * 5 + [False] * 10)
    genuine, impostors = [0.9, 0.8, 0.7, 0.6, 0.35], [0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.04, 0.03, 0.02, 0.01]
    scores = np.array([*genuine, *impostors])
    assert roc_auc(scores, labels) == pytest.approx(48 / 50)  # 0.35 loses to 0.5 and 0.4
    # At a false-accept rate of 1 in 10, the threshold is the best impostor (0.5): 4 of 5 pass.
    assert tar_at_far(scores, labels) == {"1e-01": pytest.approx(0.8)}
    accuracy, _, thresholds = ten_fold_accuracy(scores, labels, np.arange(15) % 10)
    # Held out, 0.35 is missed (fold 4), and so are 0.5 and 0.4 when the threshold learnt without
    # them falls below them (folds 5 and 6): (7 + 0.5) / 10.
    assert accuracy == pytest.approx(0.75) and len(thresholds) == 10
    ece, table = expected_calibration_error(np.array([0.9, 0.9, 0.1, 0.1]), np.array([True, True, False, False]))
    assert ece == pytest.approx(0.1) and len(table) == 2


def test_identities_protocol_holds_out_and_is_seeded(tmp_path: Path):
    for person, count in (("a", 3), ("b", 2), ("c", 2), ("d", 4), ("e", 1), ("f", 1)):
        (tmp_path / person).mkdir()
        for n in range(count):
            (tmp_path / person / f"{n}.jpg").write_bytes(b"")
    first = identities_protocol(tmp_path, seed=3)
    again = identities_protocol(tmp_path, seed=3)
    assert (again.gallery, again.probes) == (first.gallery, first.probes)
    assert first.present.sum() == 2 and (~first.present).sum() == 2  # half of the four with 2+ photos
    enrolled = {p for p, here in zip(first.probe_people, first.present, strict=True) if here}
    assert set(first.gallery_people) == enrolled | {"e", "f"}
    for probe, person, here in zip(first.probes, first.probe_people, first.present, strict=True):
        assert probe not in first.gallery and (person in first.gallery_people) == here
    capped = identities_protocol(tmp_path, seed=3, max_photos=1, distractors=1)
    assert len(capped.gallery) == 3


def test_protocol_with_several_query_photos(tmp_path: Path):
    counts = {"a": 5, "b": 4, "c": 4, "d": 6, "e": 3, "f": 2, "g": 1, "Barbara_Boxer": 4}
    for person, count in counts.items():
        (tmp_path / person).mkdir()
        for n in range(1, count + 1):
            (tmp_path / person / f"{person}_{n:04d}.jpg").write_bytes(b"")
    protocol = identities_protocol(tmp_path, seed=2, query_photos=3, max_photos=1)
    # Barbara_Boxer_0001 shows Gray Davis: left out, which leaves her three photos, too few to search.
    assert [p.name for p in protocol.left_out] == ["Barbara_Boxer_0001.jpg"]
    assert sorted(protocol.probe_people) == ["a", "b", "c", "d"] and protocol.query_photos == 3
    assert protocol.present.sum() == 2
    for photos, person, here in zip(protocol.query_sets, protocol.probe_people, protocol.present, strict=True):
        assert len(photos) == 3 and {p.parent.name for p in photos} == {person}
        assert not set(photos) & set(protocol.gallery) and (person in protocol.gallery_people) == here
    assert protocol.probes == [q[0] for q in protocol.query_sets]
    # One photo each of the people with fewer than four, as distractors; one of each present person.
    assert sorted(protocol.gallery_people) == sorted(
        [
            "Barbara_Boxer",
            "e",
            "f",
            "g",
            *[n for n, h in zip(protocol.probe_people, protocol.present, strict=True) if h],
        ]
    )
    # One query photo: the protocol of before, for the same seed.
    single = identities_protocol(tmp_path, seed=2)
    assert single.query_photos == 1 and "g" not in single.probe_people and "f" in single.probe_people


@pytest.fixture(scope="module")
def lfw_identities(tmp_path_factory) -> Path:
    """A folder per person: 30 LFW people A-D (links, not copies)."""
    root = tmp_path_factory.mktemp("identities")
    people = sorted(p for p in (LFW / "images").glob("[A-D]*") if len(list(p.iterdir())) >= 2)[:20]
    people += sorted(p for p in (LFW / "images").glob("[A-D]*") if len(list(p.iterdir())) == 1)[:10]
    for person in people:
        (root / person.name).symlink_to(person)
    return root


def test_eval_pairs_with_json_and_plots(tmp_path: Path):
    lines = [line for line in (LFW / "pairs-dev.txt").read_text().splitlines() if not line.startswith("#")]
    same = [line for line in lines if len(line.split()) == 3][:15]
    different = [line for line in lines if len(line.split()) == 4][:15]
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join(x for pair in zip(same, different, strict=True) for x in pair) + "\n")
    result = CliRunner().invoke(
        cli,
        ["eval", "--pairs", str(pairs), "--images", str(LFW / "images"), "--json", "--plots", str(tmp_path / "plots")],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"accuracy", "auc", "tar_at_far", "ece"} <= set(report)
    assert report["pairs"] == 30 and report["auc"] > 0.9 and report["accuracy"] > 0.8
    for plot in report["plots"]:
        assert Path(plot).stat().st_size > 10_000 and Path(plot).read_bytes()[:4] == b"\x89PNG"


def test_eval_identities(lfw_identities: Path, tmp_path: Path):
    result = CliRunner().invoke(
        cli,
        ["eval", "--identities", str(lfw_identities), "--seed", "1", "--max-photos", "2", "--plots", str(tmp_path)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "20 people searched (10 present, 10 absent)" in result.stdout
    assert "'match' (confidence >= 0.95)" in result.stdout and "ECE" in result.stdout
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "open-set-best-scores.png",
        "open-set-fnir-fpir.png",
        "open-set-reliability.png",
    ]


def test_eval_identities_with_several_query_photos(tmp_path: Path):
    """People with 3+ photos searched with 1 and with 2 of them; the plots put both curves together."""
    root = tmp_path / "people"
    root.mkdir()
    people = sorted(p for p in (LFW / "images").glob("[A-D]*") if len(list(p.iterdir())) in (3, 4))[:10]
    people += sorted(p for p in (LFW / "images").glob("[A-D]*") if len(list(p.iterdir())) == 1)[:6]
    for person in people:
        (root / person.name).symlink_to(person)
    plots = tmp_path / "plots"
    args = ["eval", "--identities", str(root), "--query-photos", "2", "--max-photos", "1", "--seed", "3"]
    result = CliRunner().invoke(cli, [*args, "--plots", str(plots)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "gallery of 11 faces; 10 people searched (5 present, 5 absent), 2 query photos each" in result.stdout
    assert "with 1 photo:" in result.stdout and "with 2 photos:" in result.stdout
    assert result.stdout.count("'match' (confidence >= 0.95)") == 2
    assert all(
        (plots / f"open-set-{n}.png").stat().st_size > 10_000 for n in ("fnir-fpir", "best-scores", "reliability")
    )
