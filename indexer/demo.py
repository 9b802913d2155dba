"""Build a small demo index from photos that ship inside installed packages (no download).

    python -m indexer.demo --index demo/index

Two datasets: ``portraits-demo`` (scikit-image's astronaut, Eileen Collins, and matplotlib's Grace
Hopper, both public-domain photos) and ``group-demo`` (the group photo in insightface's package
data). It also writes photos to try in ``demo/try``: a mirrored crop of Grace Hopper's portrait,
which the check finds in ``portraits-demo`` only, and the Tom Hanks photo from insightface's
package data, which is in neither.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import click
from PIL import Image, ImageOps


def package_photos() -> dict[str, Path]:
    import insightface
    import skimage
    from matplotlib import cbook

    insightface_images = Path(insightface.__file__).parent / "data" / "images"
    return {
        "astronaut": Path(skimage.__file__).parent / "data" / "astronaut.png",
        "grace_hopper": Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
        "group": insightface_images / "t1.jpg",
        "tom_hanks": insightface_images / "Tom_Hanks_54745.png",
    }


def write_manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def photocheck_command() -> str:
    """How to run `photocheck` from here: the bare name when it is this environment's on PATH, else its
    path (`make demo` runs in .venv without activating it)."""
    own = Path(sys.executable).parent / "photocheck"
    found = shutil.which("photocheck")
    if found and Path(found).resolve() == own.resolve():
        return "photocheck"
    try:
        return str(own.relative_to(Path.cwd()))
    except ValueError:
        return str(own)


@click.command()
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=Path("demo/index"), show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Where to serve it.")
@click.option("--serve", is_flag=True, help="Then serve it (photocheck serve) on --port.")
def main(index_dir: Path, port: int, serve: bool) -> None:
    """Build the demo index (again, if it exists) and say what to try next."""
    from .cli.common import counted, setup_logging
    from .pipeline import build_dataset
    from .store import MANIFEST, IndexStore

    setup_logging(0, quiet=True)
    photos = package_photos()
    missing = [str(p) for p in photos.values() if not p.is_file()]
    if missing:
        raise click.ClickException(f"Demo photos missing from the installed packages: {', '.join(missing)}")
    base = index_dir.parent
    portraits = write_manifest(
        base / "sources" / "portraits.csv",
        [
            {
                "path": str(photos["astronaut"]),
                "photo_id": "astronaut",
                "license": "public domain (NASA)",
                "source_url": "https://commons.wikimedia.org/wiki/File:Eileen_Collins.jpg",
            },
            {
                "path": str(photos["grace_hopper"]),
                "photo_id": "grace_hopper",
                "license": "public domain (US Navy)",
                "source_url": "https://commons.wikimedia.org/wiki/File:Commodore_Grace_M._Hopper,_USN_(covered).jpg",
            },
        ],
    )
    group = write_manifest(
        base / "sources" / "group.csv",
        [{"path": str(photos["group"]), "photo_id": "t1", "license": "insightface package data"}],
    )
    datasets = [
        (
            "portraits-demo",
            portraits,
            {
                "title": "Public-domain portraits (demo)",
                "description": "Two public-domain portraits that ship with scikit-image and matplotlib.",
                "disclosure_url": "https://scikit-image.org/docs/stable/api/skimage.data.html",
                "license": "public domain",
            },
        ),
        (
            "group-demo",
            group,
            {
                "title": "A group photo (demo)",
                "description": "The group photo that ships with insightface's Python package.",
                "disclosure_url": "https://github.com/deepinsight/insightface",
                "license": "insightface package data",
            },
        ),
    ]
    existing = set()
    if (index_dir / MANIFEST).is_file():
        store = IndexStore(index_dir)
        existing = {d.name for d in store.datasets()}
        store.close()
    for name, source, fields in datasets:
        if name in existing:
            continue
        summary = build_dataset(
            index_dir,
            source,
            dataset=name,
            embedder_name="dlib",
            progress=False,
            fields=fields,
        )
        faces, images = counted(summary.dataset.faces, "face"), counted(summary.dataset.images, "image")
        click.echo(f"{name}: {faces} from {images}", err=True)

    tries = base / "try"
    tries.mkdir(parents=True, exist_ok=True)
    hopper = ImageOps.mirror(Image.open(photos["grace_hopper"]).convert("RGB"))
    width, height = hopper.size
    hopper.crop((width // 10, 0, width, height * 9 // 10)).save(tries / "grace_hopper_mirrored.jpg", quality=90)
    Image.open(photos["tom_hanks"]).convert("RGB").resize((224, 224)).save(tries / "tom_hanks.jpg", quality=92)
    command = photocheck_command()
    on_port = "" if port == 8000 else f" --port {port}"
    bin_dir = Path(command).parent
    activate = "" if command == "photocheck" else f"\n(`. {bin_dir}/activate` puts photocheck on your PATH.)\n"
    url = f"http://127.0.0.1:{port}"
    then = (
        f"Serving it now on {url}: open that in a browser once the workers say they are serving "
        "(Ctrl-C stops the server)."
        if serve
        else f"Or serve it and open {url} in a browser:\n  {command} serve --index {index_dir}{on_port}"
    )
    click.echo(
        f"""
Demo index ready in {index_dir}.

Try it from the command line:
  {command} check --index {index_dir} {tries / "grace_hopper_mirrored.jpg"}   (in portraits-demo)
  {command} check --index {index_dir} {tries / "tom_hanks.jpg"}              (in neither)
{activate}
{then}
""",
        err=True,
    )
    if serve:
        import os

        executable = Path(sys.executable).parent / "photocheck"
        os.execv(executable, [str(executable), "serve", "--index", str(index_dir), "--port", str(port)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
