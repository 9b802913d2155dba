"""PNG plots of an evaluation that a person can read at a glance (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .evaluation import IdentitiesReport, PairsReport

COLOURS = {"genuine": "#1b7f3b", "impostor": "#b3261e", "match": "#0b57d0", "possible": "#e37400"}
#: One colour per number of query photos (1, 2, 3, ...).
PHOTO_COLOURS = ("#0b57d0", "#e37400", "#1b7f3b", "#8e24aa", "#5f6368")


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


def reliability_diagram(
    table: list[dict],
    ece: float,
    title: str,
    path: Path,
    *,
    label: str = "answers (area = how many)",
    more: list[tuple[str, list[dict], float]] = (),
) -> Path:
    """Confidence given against the share of true matches; ``more`` adds other runs' curves
    (label, table, ECE) to the same axes."""
    plt, figure, axes = _figure(5.2, 5.0)
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    runs = [(label, table, ece), *more]
    largest = max(row["answers"] for _, rows, _ in runs for row in rows)
    for number, (name, rows, error) in enumerate(runs):
        colour = PHOTO_COLOURS[number % len(PHOTO_COLOURS)] if more else COLOURS["match"]
        centres = [row["mean_confidence"] for row in rows]
        shares = [row["share_true"] for row in rows]
        sizes = [max(20, 400 * row["answers"] / largest) for row in rows]
        axes.plot(centres, shares, color=colour, marker=None)
        legend = f"{name}: ECE {error:.3f} (area = how many)" if more else name
        axes.scatter(centres, shares, s=sizes, color=colour, alpha=0.7, label=legend)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("confidence given")
    axes.set_ylabel("share that were true matches")
    axes.set_title(title if more else f"{title}\nexpected calibration error {ece:.3f}")
    axes.legend(loc="upper left", fontsize=8 if more else None)
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


def _photos(count: int) -> str:
    return f"{count} photo{'s' if count > 1 else ''}"


def identities_plots(reports: IdentitiesReport | list[IdentitiesReport], directory: Path, name: str) -> list[Path]:
    """The FNIR-against-FPIR curves (one per number of query photos, on the same axes), the best
    scores of present and absent people, and the reliability diagram."""
    reports = [reports] if isinstance(reports, IdentitiesReport) else list(reports)
    several = len(reports) > 1
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    plt, figure, axes = _figure()
    floor = 1 / (2 * max(1, int((~reports[0].present).sum())))
    for number, report in enumerate(reports):
        curve = report.curve()
        fpir = np.array([p["fpir"] for p in curve])
        fnir = np.array([p["fnir"] for p in curve])
        colour = PHOTO_COLOURS[number % len(PHOTO_COLOURS)]
        axes.plot(
            np.maximum(fpir, floor),
            fnir,
            color=colour if several else COLOURS["match"],
            drawstyle="steps-post",
            label=f"{_photos(report.query_photos)} of each person" if several else None,
        )
        for verdict in ("match", "possible") if not several else ("match",):
            rates = report.rates(report.thresholds[verdict])
            label = (
                f"'{verdict}' at confidence {report.thresholds[verdict]}: "
                f"FPIR {rates['fpir']:.1%}, FNIR {rates['fnir']:.1%}"
            )
            axes.scatter(
                [max(rates["fpir"], floor)],
                [rates["fnir"]],
                color=colour if several else COLOURS[verdict],
                edgecolors="black" if several else None,
                zorder=3,
                s=60,
                label=f"{_photos(report.query_photos)}, {label}" if several else label,
            )
    axes.set_xscale("log")
    axes.set_xlim(floor * 0.8, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("FPIR: absent people told they are in the set")
    axes.set_ylabel("FNIR: present people not found")
    axes.set_title(f"Open-set search of {reports[0].gallery_faces} faces, {reports[0].probes} people searched")
    axes.legend(loc="upper right", fontsize=7 if several else 8)
    paths.append(_save(plt, figure, directory / f"{name}-fnir-fpir.png"))

    plt, figure, axes = _figure(6.4 if not several else 3.6 * len(reports), 4.4)
    figure.clf()
    panels = figure.subplots(1, len(reports), sharey=True, squeeze=False)[0]
    for axes, report in zip(panels, reports, strict=True):
        axes.grid(True, alpha=0.3)
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
        axes.set_title(f"searched with {_photos(report.query_photos)}" if several else "")
    panels[0].set_ylabel("people searched")
    panels[0].legend(loc="upper left")
    figure.suptitle("Best scores of present and absent people")
    paths.append(_save(plt, figure, directory / f"{name}-best-scores.png"))

    first, rest = reports[0], reports[1:]
    paths.append(
        reliability_diagram(
            first.reliability,
            first.ece,
            "Confidence in open-set search",
            directory / f"{name}-reliability.png",
            label=_photos(first.query_photos) if rest else "answers (area = how many)",
            more=[(_photos(r.query_photos), r.reliability, r.ece) for r in rest],
        )
    )
    return paths
