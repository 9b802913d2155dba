"""One exception tree for photocheck.

Every error carries a stable machine-readable ``code`` and a sentence a person can act on.
The CLI turns them into ``ClickException``; the service maps them to 4xx JSON answers.
"""

from __future__ import annotations


class PhotocheckError(Exception):
    """Base class: ``code`` is stable across releases, ``message`` is for people."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


# --- problems with one input image -------------------------------------------------------


class ImageError(PhotocheckError):
    """Something is wrong with one image; the rest of a batch goes on."""

    code = "unreadable_image"


class UnreadableImage(ImageError):
    code = "unreadable_image"


class UnsupportedFormat(ImageError):
    code = "unsupported_format"


class ImageTooLarge(ImageError):
    code = "image_too_large"


class NoFace(ImageError):
    code = "no_face"


class FaceTooSmall(ImageError):
    code = "face_too_small"


class FaceNotFound(ImageError):
    """A face number was asked for that the image does not have."""

    code = "face_not_found"


class SamePhoto(ImageError):
    """Among several photos of one person, a face as close to an earlier photo's as a copy is: it adds nothing."""

    code = "same_photo"


# --- problems with several photos of one person -------------------------------------------


class NotSamePerson(PhotocheckError):
    """Photos sent as one person's are too far apart to be one person: refused rather than averaged."""

    code = "not_same_person"

    def __init__(self, message: str, pairs: list[tuple[int, int]]) -> None:
        super().__init__(message)
        self.pairs = pairs


class NoUsablePhoto(PhotocheckError):
    """None of several photos of one person could be used (each says why)."""

    code = "no_usable_photo"


# --- problems with models ----------------------------------------------------------------


class ModelError(PhotocheckError):
    code = "model_error"


class ModelNotFound(ModelError):
    code = "model_not_found"


class ModelDownloadError(ModelError):
    code = "model_download_failed"


class DeviceUnavailable(ModelError):
    code = "device_unavailable"


class ModelMismatch(ModelError):
    """A weights file is there but is not the one photocheck was built and checked against."""

    code = "model_mismatch"


# --- problems with an index or a source --------------------------------------------------


class StoreError(PhotocheckError):
    code = "index_error"


class IndexNotFound(StoreError):
    code = "index_not_found"


class IndexMismatch(StoreError):
    code = "index_mismatch"


class IndexCorrupt(StoreError):
    code = "index_corrupt"


class IndexBusy(StoreError):
    code = "index_busy"


class DatasetExists(StoreError):
    code = "dataset_exists"


class DatasetNotFound(StoreError):
    code = "dataset_not_found"


class SourceError(PhotocheckError):
    code = "bad_source"


class ClusterError(PhotocheckError):
    """Indexing on a Ray cluster could not start or did not finish (``photocheck index add --ray``)."""

    code = "ray_failed"


class IndexOutdated(StoreError):
    """The index was written by an older photocheck; ``photocheck index migrate`` updates it."""

    code = "index_outdated"
