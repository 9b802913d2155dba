"""The catalog of face datasets and remedies that ships with photocheck (``indexer/data/catalog.toml``).

The file is data reviewed like code: every entry names its sources. ``load_catalog`` reads and
checks it once (a malformed file is an error that names the entry and the field, never a half-read
catalog); ``get_entry`` finds one entry by name and suggests close names when there is none.
``dataset_fields`` turns an entry into the dataset fields ``photocheck index add --catalog`` fills.
"""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import PhotocheckError

STATUSES = ("distributed", "restricted", "withdrawn", "withdrawn_circulating")
REMEDY_KINDS = ("request", "lawsuit", "agency_order")
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

#: Fields every dataset entry has, and those only the disclosed ones need.
REQUIRED_ALL = ("name", "title", "photo_source", "distribution", "maintainer", "description", "disclosed", "sources")
REQUIRED_DISCLOSED = ("year", "terms", "status", "status_note", "page", "removal")
REQUIRED_UNDISCLOSED = ("known", "route")
OPTIONAL = ("identities", "images", "videos", "contact", "search_url", "year", "terms", "status", "status_note")
REMEDY_REQUIRED = ("name", "title", "kind", "where", "binds", "needs", "deadline", "notes", "sources")

TEXT_FIELDS = {
    "name",
    "title",
    "photo_source",
    "distribution",
    "maintainer",
    "description",
    "terms",
    "status",
    "status_note",
    "page",
    "contact",
    "search_url",
    "known",
    "route",
}
INT_FIELDS = {"year", "images", "identities", "videos"}
URL_FIELDS = {"page", "search_url"}


class CatalogError(PhotocheckError):
    """The catalog file is malformed: a packaging or editing mistake, not a user's."""

    code = "bad_catalog"


class CatalogEntryNotFound(PhotocheckError):
    code = "unknown_catalog_entry"


@dataclass(frozen=True)
class Catalog:
    """The checked catalog. Entries are plain JSON-ready dicts, as the API serves them."""

    updated: str
    notice: str
    datasets: tuple[dict[str, Any], ...]  # disclosed sets, which can be indexed and checked
    undisclosed: tuple[dict[str, Any], ...]  # collections never published: facts and routes only
    remedies: tuple[dict[str, Any], ...]

    def entries(self) -> tuple[dict[str, Any], ...]:
        return self.datasets + self.undisclosed

    def names(self) -> list[str]:
        return [e["name"] for e in self.entries()]

    def as_dict(self) -> dict[str, Any]:
        return {
            "updated": self.updated,
            "notice": self.notice,
            "datasets": list(self.datasets),
            "undisclosed": list(self.undisclosed),
            "remedies": list(self.remedies),
        }


def catalog_path() -> Path:
    return Path(str(resources.files("indexer") / "data" / "catalog.toml"))


@functools.cache
def _packaged() -> Catalog:
    return read_catalog(catalog_path())


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The shipped catalog (read once per process), or the one at ``path``."""
    return _packaged() if path is None else read_catalog(Path(path))


def get_entry(name: str, catalog: Catalog | None = None) -> dict[str, Any]:
    """The entry called ``name`` (disclosed or not); the error lists close names."""
    catalog = catalog or load_catalog()
    wanted = name.strip().lower()
    for entry in catalog.entries():
        if entry["name"] == wanted:
            return entry
    raise CatalogEntryNotFound(_unknown_message(name, catalog))


def find_entry(name: str | None, catalog: Catalog | None = None) -> dict[str, Any] | None:
    """Like ``get_entry`` but ``None`` for no name or an unknown one (an old index, a renamed entry)."""
    if not name:
        return None
    try:
        return get_entry(name, catalog)
    except CatalogEntryNotFound:
        return None


def _unknown_message(name: str, catalog: Catalog) -> str:
    names = catalog.names()
    by_title = {e["title"].lower(): e["name"] for e in catalog.entries()}
    close = difflib.get_close_matches(name.lower(), names, n=4, cutoff=0.5)
    close += [v for k, v in by_title.items() if name.lower() in k and v not in close]
    hint = f"Did you mean {', '.join(close[:4])}? " if close else ""
    return (
        f"The catalog has no entry {name!r}. {hint}"
        f"`photocheck catalog list` shows all {len(names)} ({', '.join(sorted(names))})."
    )


def dataset_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """What ``index add --catalog`` records on a dataset from its catalog entry."""
    if not entry.get("disclosed"):
        raise PhotocheckError(
            f"{entry['title']} was never published, so it cannot be indexed; the catalog lists it so that a "
            "person can read what is known about it.",
            code="undisclosed_dataset",
        )
    return {
        "title": entry["title"],
        "description": entry["description"],
        "disclosure_url": entry["page"],
        "removal_url": entry["removal"].get("url"),
        "date": str(entry["year"]),
        "license": entry["terms"],
    }


# -- reading and checking ------------------------------------------------------------------


def read_catalog(path: Path) -> Catalog:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogError(f"The catalog {path} cannot be read: {exc.strerror or exc}.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"The catalog {path} is not valid TOML: {exc}.") from exc
    unknown = set(document) - {"updated", "notice", "dataset", "remedy"}
    if unknown:
        raise CatalogError(f"The catalog {path} has unknown top-level keys: {', '.join(sorted(unknown))}.")
    for key in ("updated", "notice"):
        if not isinstance(document.get(key), str) or not document[key].strip():
            raise CatalogError(f"The catalog {path} needs a top-level {key!r} string.")
    entries = document.get("dataset", [])
    remedies = document.get("remedy", [])
    seen: set[str] = set()
    for number, entry in enumerate(entries, 1):
        _check_dataset(entry, f"{path.name}: dataset #{number} ({entry.get('name', 'no name')})", seen)
    for number, remedy in enumerate(remedies, 1):
        _check_remedy(remedy, f"{path.name}: remedy #{number} ({remedy.get('name', 'no name')})", seen)
    return Catalog(
        updated=document["updated"],
        notice=document["notice"],
        datasets=tuple(e for e in entries if e["disclosed"]),
        undisclosed=tuple(e for e in entries if not e["disclosed"]),
        remedies=tuple(remedies),
    )


def _fail(where: str, problem: str) -> CatalogError:
    return CatalogError(f"{where}: {problem}.")


def _check_name(entry: dict[str, Any], where: str, seen: set[str]) -> None:
    name = entry.get("name")
    if not isinstance(name, str) or not SLUG.match(name):
        raise _fail(where, f"'name' must be a slug of lower-case letters, digits and dashes, not {name!r}")
    if name in seen:
        raise _fail(where, f"the name {name!r} is used twice")
    seen.add(name)


def _check_sources(value: Any, where: str) -> None:
    if not isinstance(value, list) or not value:
        raise _fail(where, "'sources' must list at least one {title, url}")
    for source in value:
        if not isinstance(source, dict) or set(source) != {"title", "url"}:
            raise _fail(where, f"each source needs exactly a title and a url, not {source!r}")
        if not isinstance(source["title"], str) or not source["title"].strip():
            raise _fail(where, "a source has an empty title")
        _check_url(source["url"], where, "a source's url")


def _check_url(value: Any, where: str, what: str) -> None:
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+\.[^\s]+$", value):
        raise _fail(where, f"{what} must be an http(s) URL, not {value!r}")


def _check_dataset(entry: Any, where: str, seen: set[str]) -> None:
    if not isinstance(entry, dict):
        raise _fail(where, "an entry must be a table")
    _check_name(entry, where, seen)
    disclosed = entry.get("disclosed")
    if not isinstance(disclosed, bool):
        raise _fail(where, "'disclosed' must be true or false")
    required = REQUIRED_ALL + (REQUIRED_DISCLOSED if disclosed else REQUIRED_UNDISCLOSED)
    missing = [k for k in required if k not in entry]
    if missing:
        raise _fail(where, f"missing {', '.join(missing)}")
    allowed = set(REQUIRED_ALL) | set(REQUIRED_DISCLOSED) | set(REQUIRED_UNDISCLOSED) | set(OPTIONAL)
    extra = set(entry) - allowed
    if extra:
        raise _fail(where, f"unknown fields {', '.join(sorted(extra))}")
    if disclosed and "images" not in entry and "videos" not in entry:
        raise _fail(where, "a disclosed set needs 'images' (or 'videos' for a video set)")
    for key, value in entry.items():
        if key in TEXT_FIELDS and (not isinstance(value, str) or not value.strip()):
            raise _fail(where, f"{key!r} must be a non-empty string")
        if key in INT_FIELDS and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise _fail(where, f"{key!r} must be a positive whole number, not {value!r}")
        if key in URL_FIELDS:
            _check_url(value, where, repr(key))
    if "year" in entry and not 1990 <= entry["year"] <= 2100:
        raise _fail(where, f"'year' {entry['year']} is not a plausible year")
    if "status" in entry and entry["status"] not in STATUSES:
        raise _fail(where, f"'status' must be one of {', '.join(STATUSES)}, not {entry['status']!r}")
    if "removal" in entry:
        _check_removal(entry["removal"], where)
    _check_sources(entry["sources"], where)


def _check_removal(removal: Any, where: str) -> None:
    if not isinstance(removal, dict) or set(removal) - {"summary", "url", "steps"}:
        raise _fail(where, "'removal' holds summary, url (optional) and steps")
    if not isinstance(removal.get("summary"), str) or not removal["summary"].strip():
        raise _fail(where, "'removal' needs a summary")
    if "url" in removal:
        _check_url(removal["url"], where, "the removal url")
    steps = removal.get("steps")
    if not isinstance(steps, list) or not all(isinstance(s, str) and s.strip() for s in steps):
        raise _fail(where, "'removal.steps' must be a list of sentences (empty when there is no route)")


def _check_remedy(remedy: Any, where: str, seen: set[str]) -> None:
    if not isinstance(remedy, dict):
        raise _fail(where, "a remedy must be a table")
    _check_name(remedy, where, seen)
    missing = [k for k in REMEDY_REQUIRED if k not in remedy]
    if missing:
        raise _fail(where, f"missing {', '.join(missing)}")
    extra = set(remedy) - set(REMEDY_REQUIRED) - {"orders"}
    if extra:
        raise _fail(where, f"unknown fields {', '.join(sorted(extra))}")
    for key in ("title", "binds", "needs", "deadline", "notes"):
        if not isinstance(remedy[key], str) or not remedy[key].strip():
            raise _fail(where, f"{key!r} must be a non-empty string")
    if remedy["kind"] not in REMEDY_KINDS:
        raise _fail(where, f"'kind' must be one of {', '.join(REMEDY_KINDS)}, not {remedy['kind']!r}")
    where_list = remedy["where"]
    if not isinstance(where_list, list) or not where_list or not all(isinstance(w, str) for w in where_list):
        raise _fail(where, "'where' must list the jurisdictions")
    for order in remedy.get("orders", []):
        if not isinstance(order, dict) or set(order) != {"name", "date", "summary"}:
            raise _fail(where, "each order needs exactly name, date and summary")
        if not isinstance(order["date"], str) or not re.match(r"^\d{4}-\d{2}-\d{2}$", order["date"]):
            raise _fail(where, f"an order's date must be YYYY-MM-DD, not {order['date']!r}")
    _check_sources(remedy["sources"], where)
