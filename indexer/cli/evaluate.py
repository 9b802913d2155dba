"""photocheck eval: an embedder and its confidence measured on labelled faces."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import (
    device_option,
    dlib_runtime_option,
    echo_json,
    embedder_option,
    embedder_options,
    err,
    json_option,
    model_root_option,
    quiet,
    workers_option,
)


@click.command("eval")
@click.option(
    "--pairs",
    "pairs_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="LFW-format pairs: View 2 (with its '10 300' header) or a headerless file with # comments.",
)
@click.option(
    "--images",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Folder of the pairs' photos: Name/Name_0001.jpg.",
)
@click.option(
    "--identities",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A folder per person, for open-set identification (or for --fit-calibration).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Which half of the people is enrolled.")
@click.option("--max-photos", type=click.IntRange(1), help="Enrol at most this many photos per person.")
@click.option("--distractors", type=click.IntRange(0), help="Enrol at most this many one-photo people (default: all).")
@click.option(
    "--query-photos",
    type=click.IntRange(1, 5),
    default=1,
    show_default=True,
    help="Search each person with K photos of them (their template): K = 1 to this, on one protocol.",
)
@embedder_option("The embedder to measure.")
@device_option
@dlib_runtime_option
@model_root_option
@workers_option("Processes embedding photos.")
@click.option("--prior", type=click.FloatRange(0.001, 0.999), help="Prior for the confidence (default 0.5).")
@click.option(
    "--score-model",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A fitted score model (JSON) to use instead of the one shipped for the embedder.",
)
@click.option(
    "--fit-calibration",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --identities: fit the embedder's score model on every photo there and write it here.",
)
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path), help="Write PNG plots into this folder.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@json_option
def eval_command(
    pairs_file: Path | None,
    images: Path | None,
    identities: Path | None,
    seed: int,
    max_photos: int | None,
    distractors: int | None,
    query_photos: int,
    embedder: str,
    device: str,
    dlib_runtime: str,
    model_root: str | None,
    workers: int,
    prior: float | None,
    score_model: Path | None,
    fit_calibration: Path | None,
    plots: Path | None,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Measure an embedder and the confidence on labelled faces.

    Verification (--pairs with --images): LFW's 10-fold accuracy, ROC AUC, true-accept rate
    at false-accept rates down to what the data supports, and the expected calibration error
    of the confidence. Open-set identification (--identities): a seeded half of the people with
    two or more photos is enrolled in a temporary index with the one-photo people as
    distractors; the held-out photos and the people not enrolled are searched; it reports the
    false negative and false positive identification rates at the verdict thresholds. With
    --query-photos K, the people with K + 1 photos or more are searched, each with 1, 2, ... K
    of their photos (the mean of their embeddings), and the rates are reported for each. LFW's two
    mislabelled photos (Elena_de_Chavez_0001, Barbara_Boxer_0001) are left out.

    \b
    Examples:
      photocheck eval --pairs lfw/pairs.txt --images lfw/images --plots plots/
      photocheck eval --identities lfw/images --seed 1 --max-photos 4 --json
      photocheck eval --identities lfw/images --query-photos 3 --max-photos 2 --plots plots/
      photocheck eval --identities labelled/ --fit-calibration my-model.json
    """
    from .. import confidence, evaluation
    from ..embedders import create_embedder

    if (pairs_file is None) == (identities is None):
        raise click.UsageError("Give either --pairs (with --images) or --identities.")
    if pairs_file is not None and images is None:
        raise click.UsageError("--pairs needs --images, the folder holding the photos.")
    chosen = create_embedder(
        embedder, **embedder_options(device, model_root, runtime=dlib_runtime, threads=0 if workers == 1 else 1)
    )
    chosen.load()
    described = chosen.describe()
    err(f"embedder: {described['name']} ({described['model']}, {described['dimension']}-d)")
    progress = not no_progress and not as_json and not quiet()

    if fit_calibration is not None:
        if identities is None:
            raise click.UsageError("--fit-calibration needs --identities: a folder per person.")
        from ..calibration import fit_score_model

        people = sorted(p for p in identities.iterdir() if p.is_dir())
        photos = [
            f
            for person in people
            for f in sorted(person.iterdir())
            if f.suffix.lower() in evaluation.IMAGE_SUFFIXES and not evaluation.is_mislabelled(f)
        ]
        embedded = evaluation.embed_photos(photos, chosen, workers=workers, progress=progress)
        readable = [i for i, p in enumerate(photos) if p not in set(embedded.unreadable)]
        document = fit_score_model(
            embedded.vectors[readable],
            [photos[i].parent.name for i in readable],
            model=described["model"],
            fitted_on=f"{identities} ({len(readable)} photos of {len(people)} people)",
        )
        fit_calibration.write_text(json.dumps(document, indent=1))
        summary = {k: v for k, v in document.items() if k not in ("impostor", "genuine", "query_photos")}
        summary["query_photos"] = {
            k: {"gamma": v["gamma"], "recalibration": v.get("recalibration")}
            for k, v in document.get("query_photos", {}).items()
        }
        click.echo(json.dumps(summary, indent=2))
        return

    config = confidence.default_config(described, prior=prior)
    if score_model is not None:
        config["score_model"] = json.loads(score_model.read_text())
    if pairs_file is not None:
        report = evaluation.evaluate_pairs(
            evaluation.read_pairs(pairs_file), images, chosen, config, workers=workers, progress=progress
        )
        result = report.as_dict()
        if plots:
            from ..plots import pairs_plots

            result["plots"] = [str(p) for p in pairs_plots(report, plots, "pairs")]
        if as_json:
            echo_json(result)
            return
        click.echo(
            f"{report.pairs} pairs ({report.same} same person), {report.photos} photos, "
            f"{report.faces_not_detected} without a detected face (centre region used)\n"
            f"  10-fold accuracy  {report.accuracy:.2%} (+/- {report.accuracy_std:.2%})\n"
            f"  ROC AUC           {report.auc:.5f}\n"
            f"  TAR at FAR        "
            + ", ".join(f"{v:.3f} @ {k}" for k, v in report.tar_at_far.items())
            + f"\n  ECE of confidence {report.ece:.4f}"
        )
    else:
        protocol = evaluation.identities_protocol(
            identities, seed=seed, max_photos=max_photos, distractors=distractors, query_photos=query_photos
        )
        reports = evaluation.evaluate_identities(
            protocol, chosen, config, query_photos=range(1, query_photos + 1), workers=workers, progress=progress
        )
        results = [report.as_dict() for report in reports]
        result = results[0] if len(results) == 1 else {"by_query_photos": results}
        if plots:
            from ..plots import identities_plots

            result["plots"] = [str(p) for p in identities_plots(reports, plots, "open-set")]
        if as_json:
            echo_json(result)
            return
        report = reports[0]
        left_out = ""
        if report.left_out:
            left_out = f"; {report.left_out} mislabelled photo{'s' if report.left_out > 1 else ''} left out"
        each = f", {query_photos} query photos each" if query_photos > 1 else ""
        click.echo(
            f"gallery of {report.gallery_faces} faces; {report.probes} people searched "
            f"({results[0]['present_probes']} present, {results[0]['absent_probes']} absent){each}{left_out}"
        )
        for report, figures in zip(reports, results, strict=True):
            match, either = figures["match"], figures["possible_or_match"]
            indent = "  "
            if len(reports) > 1:
                click.echo(f"  with {report.query_photos} photo{'s' if report.query_photos > 1 else ''}:")
                indent = "    "
            click.echo(
                f"{indent}'match' (confidence >= {match['threshold']}): "
                f"FNIR {match['fnir']:.1%}, FPIR {match['fpir']:.1%}\n"
                f"{indent}'possible' or better (>= {either['threshold']}): "
                f"FNIR {either['fnir']:.1%}, FPIR {either['fpir']:.1%}\n"
                f"{indent}top hit is the person (present): {figures['top_hit_is_the_person']:.1%}\n"
                f"{indent}ECE of confidence {report.ece:.4f}"
            )
    if plots:
        click.echo("plots: " + ", ".join(result["plots"]))
