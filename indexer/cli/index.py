"""photocheck index: add, list, set-confidence, remove, rebuild, migrate."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import click

from .common import (
    DATE_PATTERN,
    counted,
    device_option,
    dlib_runtime_option,
    echo_json,
    embedder_option,
    embedder_options,
    err,
    index_option,
    json_option,
    model_root_option,
    path_column_option,
    quiet,
    source_format_option,
    workers_option,
)


@click.group()
def index() -> None:
    """Build and inspect an index of disclosed datasets."""


@index.command("add")
@index_option
@click.option("--dataset", help="Short name of the dataset, e.g. megaface (default: the --catalog name).")
@click.option(
    "--catalog",
    "catalog_name",
    help="The set's name in photocheck's catalog (`photocheck catalog list`): fills the title, description, "
    "links, date and licence; options given here win.",
)
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
@dlib_runtime_option
@model_root_option
@workers_option("Processes reading images (with --ray: Ray actors, one CPU or GPU each).")
@click.option(
    "--ray",
    "ray_address",
    metavar="ADDRESS",
    help="Read, detect and embed on a Ray cluster: host:6379, ray://host:10001, or auto ($RAY_ADDRESS, else "
    "the cluster of this machine, else a local one for this run). Needs photocheck[ray].",
)
@click.option("--index-type", help="A FAISS factory string overriding the size-based choice, e.g. 'IVF1024,Flat'.")
@click.option(
    "--upsample",
    type=click.IntRange(0, 3),
    help="dlib HOG: upsample every image N times to find smaller faces (default: once for images of at most "
    "512 px, none for larger ones, which are downscaled to 1024 px).",
)
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
    dataset: str | None,
    catalog_name: str | None,
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
    dlib_runtime: str,
    model_root: str | None,
    workers: int,
    ray_address: str | None,
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
      photocheck index add --index ./index --catalog ffhq ./ffhq/
      photocheck index add --index ./index --dataset pipa --title "PIPA" ./pipa/
      photocheck index add --index ./index --dataset laion-face-00 ./shards/ --workers 2
      photocheck index add --index ./index --dataset scraped ./manifest.csv --path-column file
      photocheck index add --index ./index --dataset laion-face --ray ray-head:6379 --workers 32 /mnt/shards/
    """
    from ..pipeline import build_dataset, index_embedder

    if date and not DATE_PATTERN.match(date):
        raise click.BadParameter("use YYYY, YYYY-MM or YYYY-MM-DD", param_hint="--date")
    given = {
        "title": title,
        "description": description,
        "disclosure_url": disclosure_url,
        "removal_url": removal_url,
        "date": date,
        "license": license_,
    }
    if catalog_name:
        from ..catalog import dataset_fields, get_entry

        entry = get_entry(catalog_name)
        given = {k: v if v is not None else dataset_fields(entry)[k] for k, v in given.items()}
        catalog_name = entry["name"]
    dataset = dataset or catalog_name
    if not dataset:
        raise click.UsageError("Name the dataset with --dataset NAME, or give its catalog entry with --catalog NAME.")
    if ray_address is not None:
        from ..distributed import import_ray

        import_ray()  # before the models load: say at once what to install
    # One thread per process when several share the machine (a Ray actor gets one CPU).
    threads = 0 if workers == 1 and ray_address is None else 1
    options = embedder_options(
        # With --ray this process only describes the embedder (its GPU, if any, is the workers' own).
        "cpu" if ray_address is not None else device,
        model_root,
        threads=threads,
        runtime=dlib_runtime,
        upsample=upsample,
        detector=dlib_detector,
        min_face_size=min_face_size,
    )
    chosen = index_embedder(index_dir, embedder, options)
    if ray_address is not None and device == "cuda" and chosen.name == "dlib" and dlib_runtime == "dlib":
        raise click.UsageError("dlib's own runtime has no GPU code: use --dlib-runtime onnx with --device cuda.")
    chosen.load()
    described = chosen.describe()
    err(f"embedder: {described['name']} ({described['model']}, {described['dimension']}-d)")
    # Ray prints its workers' output and its own notices (a worker lost, a task retried) on stdout,
    # which is this command's summary (--json): they go to stderr with the other messages.
    with contextlib.redirect_stdout(sys.stderr) if ray_address is not None else contextlib.nullcontext():
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
            progress=not no_progress and not as_json and not quiet(),
            prior=prior,
            ray_address=ray_address,
            ray_num_gpus=1.0 if ray_address is not None and device == "cuda" else 0.0,
            fields={**given, "evidence": evidence, "catalog": catalog_name},
        )
    if as_json:
        echo_json(summary.as_dict())
        return
    totals = summary.dataset
    rate = summary.images / summary.seconds if summary.seconds else 0.0
    lines = [
        f"dataset {totals.name}: {'resumed, ' if summary.resumed else ''}"
        f"{counted(summary.images, 'image')} read in {summary.seconds:.1f}s ({rate:.1f} images/s)"
        + (f", {summary.skipped} done before" if summary.skipped else ""),
        f"  faces indexed:             {summary.faces:,}",
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
        f"{index_dir}{os.sep}: {totals.name} holds {counted(totals.faces, 'face')} from "
        f"{counted(totals.images, 'image')} ({totals.index_type})"
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
    from ..confidence import describe_thresholds
    from ..store import IndexStore

    store = IndexStore(index_dir)
    try:
        datasets = store.datasets(include_unfinished=True)
        manifest = store.manifest
    finally:
        store.close()
    if as_json:
        echo_json(
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
        f"{index_dir}{os.sep}: index version {manifest['index_version']}, {embedder['name']} {embedder['model']}, "
        f"{embedder['dimension']}-d"
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
        faces, images = counted(d.faces, "face"), counted(d.images, "image")
        click.echo(f"  {d.name:<20} {faces:>15} {images:>16}  {d.title or ''}{state}")


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
    from ..confidence import describe_thresholds
    from ..store import IndexStore

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
        echo_json(described)
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
    from ..store import IndexStore

    store = IndexStore(index_dir)
    try:
        with store.writing():
            removed = store.remove_dataset(dataset)
    finally:
        store.close()
    if as_json:
        echo_json({"dataset": dataset, **removed})
    else:
        click.echo(f"removed {dataset}: {removed['faces']} faces from {removed['images']} images")


@index.command("rebuild")
@index_option
@click.option("--dataset", required=True, help="Name of the dataset whose FAISS index to build again.")
@click.option("--index-type", help="A FAISS factory string (default: the size-based choice), e.g. 'IVF1024,Flat'.")
@click.option(
    "--nprobe",
    type=click.IntRange(1),
    help="Lists an inverted file probes (default: 6 x the square root of its lists, 384 of 4,096).",
)
@click.option(
    "--rerank", type=click.IntRange(1), help="Candidates an approximate index re-ranks exactly (default: 1,024)."
)
@json_option
def index_rebuild(
    index_dir: Path, dataset: str, index_type: str | None, nprobe: int | None, rerank: int | None, as_json: bool
) -> None:
    """Build a dataset's FAISS index again from its stored vectors, without reading its images.

    For another index type or other search settings, or, after `photocheck index migrate`, to give
    a dataset indexed by an older photocheck the type chosen for its size now. A running service
    picks it up on `kill -HUP`.

    \b
    Examples:
      photocheck index rebuild --index ./index --dataset megaface
      photocheck index rebuild --index ./index --dataset megaface --index-type IVF8192,RaBitQ --nprobe 512
    """
    from ..store import IndexStore

    store = IndexStore(index_dir)
    try:
        with store.writing():
            before = store.dataset(dataset).index_type
            info = store.rebuild_dataset(dataset, index_type=index_type, nprobe=nprobe, rerank=rerank)
    finally:
        store.close()
    if as_json:
        echo_json({"dataset": dataset, "faces": info.faces, "index_type": info.index_type, **info.search_params})
    else:
        settings = ", ".join(f"{k} {v}" for k, v in info.search_params.items())
        click.echo(
            f"rebuilt {dataset}: {counted(info.faces, 'face')}, {before} -> {info.index_type}"
            + (f" ({settings})" if settings else "")
        )


@index.command("migrate")
@index_option
@json_option
def index_migrate(index_dir: Path, as_json: bool) -> None:
    """Bring an index written by an older photocheck up to this version's format.

    Format 1 kept each face's vector in SQLite; this moves the vectors into one array per dataset
    (vectors/<id>.npy) and compacts the database. The FAISS files stay as they are; a service can
    keep serving the index meanwhile, and picks up the new version on `kill -HUP`. Nothing happens
    to an index that is up to date. Interrupted, run it again: it writes the arrays anew (or, if
    they were complete, finishes compacting) and then makes the new format live.

    \b
    Example:
      photocheck index migrate --index ./index
    """
    from ..store import IndexStore

    store = IndexStore(index_dir)
    try:
        done = store.migrate()
    finally:
        store.close()
    if as_json:
        echo_json(done)
    elif done["from_version"] == done["to_version"]:
        click.echo(f"{index_dir}{os.sep}: already format {done['to_version']}, nothing to do")
    else:
        click.echo(
            f"{index_dir}{os.sep}: format {done['from_version']} -> {done['to_version']}: "
            f"{counted(done['faces'], 'face vector')} of {counted(done['datasets'], 'dataset')} moved to vectors/"
        )
