"""insightface model packs: where they live, whether they are there, and fetching one on purpose.

Nothing is ever downloaded implicitly. ``photocheck models download buffalo_l`` fetches the pack,
checks its pinned SHA-256 and unpacks it atomically into the model root.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .atomic import fsync_dir
from .errors import ModelDownloadError, ModelNotFound

log = logging.getLogger("photocheck")

#: insightface's own default model root (``FaceAnalysis(root="~/.insightface")`` + ``models/``).
INSIGHTFACE_DEFAULT_ROOT = "~/.insightface/models"
MODEL_ROOT_ENV = "PHOTOCHECK_MODEL_ROOT"


@dataclass(frozen=True)
class ModelPack:
    name: str
    detector: str
    recognizer: str
    url: str
    sha256: str
    size: int
    licence: str = "insightface pretrained models: non-commercial research use only"

    def files(self) -> tuple[str, str]:
        return (self.detector, self.recognizer)


PACKS: dict[str, ModelPack] = {
    "buffalo_l": ModelPack(
        name="buffalo_l",
        detector="det_10g.onnx",  # SCRFD-10GF with 5 keypoints
        recognizer="w600k_r50.onnx",  # ArcFace ResNet-50 trained on WebFace600K, 512-d
        url="https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip",
        sha256="80ffe37d8a5940d59a7384c201a2a38d4741f2f3c51eef46ebb28218a7b0ca2f",
        size=288_621_354,
    ),
}
DEFAULT_PACK = "buffalo_l"


def resolve_model_root(explicit: str | os.PathLike | None = None) -> Path:
    """``--model-root``, else ``$PHOTOCHECK_MODEL_ROOT``, else insightface's default."""
    chosen = explicit or os.environ.get(MODEL_ROOT_ENV) or INSIGHTFACE_DEFAULT_ROOT
    return Path(chosen).expanduser()


def get_pack(name: str) -> ModelPack:
    try:
        return PACKS[name]
    except KeyError:
        raise ModelNotFound(f"Unknown model pack {name!r}. Known packs: {', '.join(PACKS)}.") from None


def find_pack(name: str, root: Path) -> Path | None:
    """The pack's directory when both its models are there, else None."""
    pack = get_pack(name)
    directory = root / name
    if all((directory / f).is_file() for f in pack.files()):
        return directory
    return None


def require_pack(name: str, root: Path) -> Path:
    directory = find_pack(name, root)
    if directory is None:
        pack = get_pack(name)
        raise ModelNotFound(
            f"The insightface model pack {name!r} is not in {root} (it needs {' and '.join(pack.files())}). "
            f"Either run `photocheck models download {name}` ({pack.size / 1e6:.0f} MB; {pack.licence}), "
            "or use `--embedder dlib`, which works offline with CC0 weights. "
            f"A pack elsewhere can be named with --model-root or ${MODEL_ROOT_ENV}."
        )
    return directory


def _fetch(url: str, destination: Path, expected_size: int | None, progress: bool) -> str:
    """Stream ``url`` into ``destination``; return the SHA-256 of what arrived."""
    from tqdm import tqdm

    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "photocheck"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response, open(destination, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or expected_size
            with tqdm(total=total, unit="B", unit_scale=True, desc="download", disable=not progress) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise ModelDownloadError(f"Could not download {url}: {exc}. Check the network and retry.") from exc
    return digest.hexdigest()


def _extract(archive: Path, into: Path, wanted: tuple[str, ...]) -> None:
    """Extract the pack's files from the zip, flat, refusing paths that escape ``into``."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = {Path(m.filename).name: m for m in zf.infolist() if not m.is_dir()}
            missing = [f for f in wanted if f not in members]
            if missing:
                raise ModelDownloadError(f"The archive does not hold {', '.join(missing)}; it is not this pack.")
            for name, member in members.items():
                if not name.endswith(".onnx") or name.startswith("."):
                    continue
                with zf.open(member) as src, open(into / name, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                    dst.flush()
                    os.fsync(dst.fileno())
    except zipfile.BadZipFile as exc:
        raise ModelDownloadError(f"The downloaded file is not a valid zip archive: {exc}") from exc


def download_pack(
    name: str,
    root: Path,
    *,
    url: str | None = None,
    sha256: str | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Fetch a pack, verify its SHA-256, unpack it into ``root/name`` atomically.

    A failed or interrupted download leaves the model root as it was.
    """
    pack = get_pack(name)
    target = root / name
    if not force and find_pack(name, root) is not None:
        log.info("%s is already in %s", name, target)
        return target
    root.mkdir(parents=True, exist_ok=True)
    expected = (sha256 or pack.sha256).lower()
    with tempfile.TemporaryDirectory(prefix=f".{name}.partial-", dir=root) as work:
        work_dir = Path(work)
        archive = work_dir / f"{name}.zip"
        actual = _fetch(url or pack.url, archive, None if url else pack.size, progress)
        if actual != expected:
            raise ModelDownloadError(
                f"The download of {name} has SHA-256 {actual}, not the pinned {expected}. "
                "It was discarded; nothing was installed. Retry, or check for a proxy altering downloads."
            )
        staged = work_dir / name
        staged.mkdir()
        _extract(archive, staged, pack.files())
        previous = work_dir / "previous"
        if target.exists():
            os.replace(target, previous)  # the old copy is removed with the work directory
        os.replace(staged, target)
        fsync_dir(root)
    log.info("installed %s into %s", name, target)
    return target
