"""PNG plots of an evaluation that a person can read at a glance (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .evaluation import IdentitiesReport, PairsReport

COLOURS = {"genuine": "#1b7f3b", "impostor": "#b3261e", "match": "#0b57d0", "possible": "#e37400"}


def _figure(width: float = 6.4, height: float = 4.4):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(width, height), dpi=110)
    axes.grid(True, alpha=0.3)
    return plt, figure, axes


def _save(plt, figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def _two_histograms(
    axes, scores: np.ndarray, positive: np.ndarray, labels: tuple[str, str], *, low: float, bins: int, density: bool
) -> None:
    """Impostor-like scores in red, genuine-like in green, on shared bins."""
    edges = np.linspace(min(scores.min(), low), 1.0, bins)
    axes.hist(scores[~positive], bins=edges, alpha=0.6, color=COLOURS["impostor"], label=labels[0], density=density)
    axes.hist(scores[positive], bins=edges, alpha=0.6, color=COLOURS["genuine"], label=labels[1], density=density)


def reliability_diagram(table: list[dict], ece: float, title: str, path: Path) -> Path:
    plt, figure, axes = _figure(5.2, 5.0)
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    centres = [row["mean_confidence"] for row in table]
    shares = [row["share_true"] for row in table]
    sizes = [max(20, 400 * row["answers"] / max(r["answers"] for r in table)) for row in table]
    axes.plot(centres, shares, color=COLOURS["match"], marker=None)
    axes.scatter(centres, shares, s=sizes, color=COLOURS["match"], alpha=0.7, label="answers (area = how many)")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("confidence given")
    axes.set_ylabel("share that were true matches")
    axes.set_title(f"{title}\nexpected calibration error {ece:.3f}")
    axes.legend(loc="upper left")
    return _save(plt, figure, path)


def pairs_plots(report: PairsReport, directory: Path, name: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    scores, labels = report.scores, report.labels
    paths = []

    plt, figure, axes = _figure()
    thresholds = np.unique(scores)[::-1]
    impostors, genuine = np.sort(scores[~labels]), np.sort(scores[labels])
    far = 1 - np.searchsorted(impostors, thresholds, side="right") / len(impostors)
    tar = 1 - np.searchsorted(genuine, thresholds, side="right") / len(genuine)
    keep = far > 0
    axes.plot(far[keep], tar[keep], color=COLOURS["match"])
    axes.set_xscale("log")
    axes.set_xlabel("false accept rate (different people accepted)")
    axes.set_ylabel("true accept rate (same person accepted)")
    axes.set_title(f"ROC on {report.pairs} pairs: AUC {report.auc:.4f}, 10-fold accuracy {report.accuracy:.2%}")
    paths.append(_save(plt, figure, directory / f"{name}-roc.png"))

    plt, figure, axes = _figure()
    frr = 1 - tar
    axes.plot(far[keep], np.maximum(frr[keep], 1 / (2 * len(genuine))), color=COLOURS["impostor"])
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("false accept rate")
    axes.set_ylabel("false reject rate")
    axes.set_title("DET: the two errors traded against each other (lower left is better)")
    paths.append(_save(plt, figure, directory / f"{name}-det.png"))

    plt, figure, axes = _figure()
    _two_histograms(axes, scores, labels, ("different people", "same person"), low=0.6, bins=80, density=True)
    for verdict in ("match", "possible"):
        axes.axvline(
            report.score_thresholds[verdict],
            color=COLOURS[verdict],
            linestyle="--",
            label=f"'{verdict}' from here (one face)",
        )
    axes.set_xlabel("cosine similarity of the two photos")
    axes.set_ylabel("density")
    axes.set_title("Scores of same-person and different-person pairs")
    axes.legend(loc="upper left")
    paths.append(_save(plt, figure, directory / f"{name}-scores.png"))

    paths.append(
        reliability_diagram(
            report.reliability, report.ece, "Confidence on pairs", directory / f"{name}-reliability.png"
        )
    )
    return paths


def identities_plots(report: IdentitiesReport, directory: Path, name: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    plt, figure, axes = _figure()
    curve = report.curve()
    fpir = np.array([p["fpir"] for p in curve])
    fnir = np.array([p["fnir"] for p in curve])
    floor = 1 / (2 * max(1, int((~report.present).sum())))
    axes.plot(np.maximum(fpir, floor), fnir, color=COLOURS["match"], drawstyle="steps-post")
    for verdict in ("match", "possible"):
        rates = report.rates(report.thresholds[verdict])
        axes.scatter(
            [max(rates["fpir"], floor)],
            [rates["fnir"]],
            color=COLOURS[verdict],
            zorder=3,
            s=60,
            label=f"'{verdict}' at confidence {report.thresholds[verdict]}: "
            f"FPIR {rates['fpir']:.1%}, FNIR {rates['fnir']:.1%}",
        )
    axes.set_xscale("log")
    axes.set_xlim(floor * 0.8, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("FPIR: absent people told they are in the set")
    axes.set_ylabel("FNIR: present people not found")
    axes.set_title(f"Open-set search of {report.gallery_faces} faces, {report.probes} people searched")
    axes.legend(loc="upper right", fontsize=8)
    paths.append(_save(plt, figure, directory / f"{name}-fnir-fpir.png"))

    plt, figure, axes = _figure()
    _two_histograms(
        axes,
        report.best,
        report.present,
        ("absent: best stranger", "present: best face"),
        low=0.8,
        bins=60,
        density=False,
    )
    axes.set_xlabel("best cosine similarity in the gallery")
    axes.set_ylabel("people searched")
    axes.set_title("Best scores of present and absent people")
    axes.legend(loc="upper left")
    paths.append(_save(plt, figure, directory / f"{name}-best-scores.png"))

    paths.append(
        reliability_diagram(
            report.reliability, report.ece, "Confidence in open-set search", directory / f"{name}-reliability.png"
        )
    )
    return paths
