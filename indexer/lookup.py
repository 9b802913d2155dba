"""Search by Flickr account or photo: an index of the Flickr identifiers in each dataset's metadata.

Most disclosed face sets were taken from Flickr, and their metadata names the photos: a photo page
URL (``https://www.flickr.com/photos/<NSID or path alias>/<photo id>/``), an image URL on
staticflickr.com (which carries the photo id), a ``flic.kr`` short link, or photo id and owner
columns. ``extract`` finds them in an entry's metadata wherever they are; ``record_identifiers``
stores them in ``metadata.sqlite`` in the same transaction as the entries (``IndexStore.record_entries``
calls it), and ``FlickrLookup`` answers "which photos of this account, or is this photo, in each
dataset?" through indexes, never by scanning entries.

Only what identifies the account's own public photos is kept and answered: photo ids, owner NSIDs,
path aliases and author names. The answer names the photo id and the photo's Flickr page, nothing
else of any entry.

A username can only be found where the metadata holds it (a path alias in a photo URL, or an
author column): each answer says per dataset whether that is the case (``username_searchable``).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import PhotocheckError

log = logging.getLogger("photocheck")

SCHEMA = """
CREATE TABLE IF NOT EXISTS flickr_photos (
    id INTEGER PRIMARY KEY,
    dataset_id INTEGER NOT NULL,
    entry_id INTEGER NOT NULL,
    photo_id TEXT,
    nsid TEXT,
    alias TEXT,
    author TEXT
);
CREATE INDEX IF NOT EXISTS flickr_photos_photo ON flickr_photos(photo_id) WHERE photo_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS flickr_photos_nsid ON flickr_photos(nsid) WHERE nsid IS NOT NULL;
CREATE INDEX IF NOT EXISTS flickr_photos_alias ON flickr_photos(alias) WHERE alias IS NOT NULL;
CREATE INDEX IF NOT EXISTS flickr_photos_author ON flickr_photos(author) WHERE author IS NOT NULL;
CREATE INDEX IF NOT EXISTS flickr_photos_dataset ON flickr_photos(dataset_id);
CREATE TABLE IF NOT EXISTS flickr_coverage (
    dataset_id INTEGER PRIMARY KEY,
    entries INTEGER NOT NULL DEFAULT 0,
    photo_ids INTEGER NOT NULL DEFAULT 0,
    nsids INTEGER NOT NULL DEFAULT 0,
    usernames INTEGER NOT NULL DEFAULT 0
);
"""

#: At most this many photos are named per dataset in one answer; ``photos`` still counts them all.
ITEMS_LIMIT = 1000
#: How deep and how many values of an entry's metadata are looked through.
MAX_DEPTH = 4
MAX_VALUES = 400
MAX_TEXT = 4096

NSID = re.compile(r"^\d{3,12}@[Nn]\d{2}$")
PHOTO_ID = re.compile(r"^\d{4,20}$")
ALIAS = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_HOST = r"(?:https?://)?(?:www\.|m\.|secure\.)?flickr\.com"
PHOTO_PAGE = re.compile(_HOST + r"/photos/([^/?#\s\"']+)/(\d{4,20})(?=[/?#\s\"']|$)", re.IGNORECASE)
PROFILE = re.compile(_HOST + r"/(?:photos|people)/([^/?#\s\"']+)/?(?=[?#\s\"']|$)", re.IGNORECASE)
STATIC = re.compile(
    r"(?:https?://)?(?:farm\d+\.|c\d+\.|live\.|)static\.?flickr\.com/(?:\d+/)+(\d{4,20})_[0-9a-f]+", re.IGNORECASE
)
SHORT = re.compile(r"(?:https?://)?flic\.kr/p/([1-9a-km-zA-HJ-NP-Z]{1,15})(?=[/?#\s\"']|$)")
#: Path segments after /photos/ that are Flickr pages, not accounts.
NOT_ACCOUNTS = {"tags", "search", "upload", "organize", "friends", "explore", "groups", "places", "me"}
BASE58 = "123456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"

#: Metadata keys (lower case, last path component) and what they hold. Keys naming Flickr are
#: trusted on their own; the generic ones count only in an entry that names Flickr somewhere else.
FLICKR_PHOTO_ID_KEYS = {"flickr_id", "flickr_photo_id", "flickrid", "flickr_photoid"}
PHOTO_ID_KEYS = {"photo_id", "photoid"}
OWNER_KEYS = {
    "nsid",
    "owner",
    "owner_nsid",
    "user_nsid",
    "flickr_nsid",
    "flickr_owner",
    "flickr_user_id",
    "user_id",
    "userid",
    "owner_id",
}
ALIAS_KEYS = {"path_alias", "pathalias", "flickr_alias", "flickr_path_alias"}
NUMERIC_KEYS = FLICKR_PHOTO_ID_KEYS | PHOTO_ID_KEYS
AUTHOR_KEYS = {
    "author",
    "ownername",
    "owner_name",
    "username",
    "user_name",
    "flickr_username",
    "flickr_user",
    "screen_name",
    "realname",
    "photographer",
}


class BadFlickrQuery(PhotocheckError):
    code = "bad_flickr_query"


@dataclass(frozen=True)
class FlickrRef:
    """What one entry's metadata says about one Flickr photo (any part may be unknown)."""

    photo_id: str | None = None
    nsid: str | None = None
    alias: str | None = None
    author: str | None = None


@dataclass(frozen=True)
class Query:
    kind: str  # nsid | username | photo
    value: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "value": self.value}


# -- normalising ---------------------------------------------------------------------------


def normal_nsid(value: str) -> str:
    number, _, tail = value.strip().partition("@")
    return f"{number}@{tail.upper()}"


def normal_author(value: str) -> str:
    return " ".join(value.split()).casefold()


def base58_decode(text: str) -> int:
    number = 0
    for char in text:
        number = number * 58 + BASE58.index(char)
    return number


def base58_encode(number: int) -> str:
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = BASE58[digit] + out
    return out or BASE58[0]


def photo_url(ref: FlickrRef) -> str:
    """The photo's own Flickr page: under its owner when known, else Flickr's short link for the id."""
    owner = ref.nsid or ref.alias
    if owner:
        return f"https://www.flickr.com/photos/{owner}/{ref.photo_id}/"
    return f"https://flic.kr/p/{base58_encode(int(ref.photo_id or 0))}"


def _owner(token: str) -> tuple[str | None, str | None]:
    """(nsid, alias) of the account part of a Flickr URL."""
    if NSID.match(token):
        return normal_nsid(token), None
    if token.lower() in NOT_ACCOUNTS or not ALIAS.match(token):
        return None, None
    return None, token.lower()


# -- extraction ----------------------------------------------------------------------------


def _values(metadata: dict[str, Any]) -> list[tuple[str, Any]]:
    """(key, value) of the strings anywhere in the metadata, and of the whole numbers under photo id
    keys, in document order; numbers elsewhere (boxes, landmarks) are skipped without a look."""
    found: list[tuple[str, Any]] = []
    stack: list[tuple[str, Any, int]] = [("", metadata, 0)]
    while stack and len(found) < MAX_VALUES:
        key, value, depth = stack.pop()
        if isinstance(value, str):
            found.append((key, value))
        elif isinstance(value, dict):
            if depth < MAX_DEPTH:
                children = [(str(k).lower(), v, depth + 1) for k, v in value.items() if not isinstance(v, float)]
                stack.extend(reversed(children))
        elif isinstance(value, list | tuple):
            if depth < MAX_DEPTH:
                stack.extend(reversed([(key, v, depth + 1) for v in value[:50] if not isinstance(v, float)]))
        elif isinstance(value, int) and not isinstance(value, bool) and key in NUMERIC_KEYS:
            found.append((key, value))
    return found


def _digits(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    text = str(value).strip() if isinstance(value, int | str) else ""
    return text if PHOTO_ID.match(text) else None


def extract(metadata: dict[str, Any] | None) -> list[FlickrRef]:
    """The Flickr photos an entry's metadata names (usually one), with what it says of their owner."""
    if not metadata:
        return []
    flickr = False  # whether the entry names Flickr at all: generic columns count only then
    photo_ids: list[str] = []
    generic_ids: list[str] = []
    nsids: list[str] = []
    aliases: list[str] = []
    authors: list[str] = []
    for key, value in _values(metadata):
        if isinstance(value, str) and len(value) <= MAX_TEXT and ("flickr" in value.lower() or "flic.kr" in value):
            for match in PHOTO_PAGE.finditer(value):
                nsid, alias = _owner(match.group(1))
                if nsid or alias:
                    flickr = True
                    photo_ids.append(match.group(2))
                    nsids += [nsid] if nsid else []
                    aliases += [alias] if alias else []
            for match in STATIC.finditer(value):
                flickr = True
                photo_ids.append(match.group(1))
            for match in SHORT.finditer(value):
                flickr = True
                photo_ids.append(str(base58_decode(match.group(1))))
            for match in PROFILE.finditer(value):
                nsid, alias = _owner(match.group(1))
                if nsid or alias:
                    flickr = True
                    nsids += [nsid] if nsid else []
                    aliases += [alias] if alias else []
        if key in FLICKR_PHOTO_ID_KEYS and (digits := _digits(value)):
            flickr = True
            photo_ids.append(digits)
        elif key in PHOTO_ID_KEYS and (digits := _digits(value)):
            generic_ids.append(digits)
        elif key in OWNER_KEYS and isinstance(value, str) and NSID.match(value.strip()):
            flickr = True  # an NSID is Flickr's own format
            nsids.append(normal_nsid(value))
        elif key in ALIAS_KEYS and isinstance(value, str) and ALIAS.match(value.strip()):
            aliases.append(value.strip().lower())
        elif key in AUTHOR_KEYS and isinstance(value, str) and 0 < len(value.strip()) <= 100:
            authors.append(normal_author(value))
    if not flickr:
        return []
    photo_ids = list(dict.fromkeys(photo_ids + generic_ids))
    owner = FlickrRef(
        nsid=nsids[0] if nsids else None,
        alias=aliases[0] if aliases else None,
        author=authors[0] if authors else None,
    )
    if not photo_ids:
        return [owner] if owner.nsid or owner.alias else []
    return [FlickrRef(photo_id=p, nsid=owner.nsid, alias=owner.alias, author=owner.author) for p in photo_ids]


# -- writing (inside IndexStore's transactions) ----------------------------------------------


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


def record_identifiers(
    conn: sqlite3.Connection, dataset_id: int, entries: Iterable[tuple[int, dict[str, Any] | None]]
) -> None:
    """Store the Flickr identifiers of (entry id, metadata) pairs; runs in the caller's transaction."""
    rows = []
    counts = [0, 0, 0, 0]  # entries, with a photo id, with an NSID, with a username
    for entry_id, metadata in entries:
        refs = extract(metadata)
        if not refs:
            continue
        counts[0] += 1
        counts[1] += any(r.photo_id for r in refs)
        counts[2] += any(r.nsid for r in refs)
        counts[3] += any(r.alias or r.author for r in refs)
        rows += [(dataset_id, entry_id, r.photo_id, r.nsid, r.alias, r.author) for r in refs]
    conn.executemany(
        "INSERT INTO flickr_photos (dataset_id, entry_id, photo_id, nsid, alias, author) VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    # A row for every dataset, even with no Flickr identifiers: its absence marks a dataset indexed
    # before this table existed, which ``backfill`` fills in.
    conn.execute(
        "INSERT INTO flickr_coverage (dataset_id, entries, photo_ids, nsids, usernames) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(dataset_id) DO UPDATE SET entries = entries + excluded.entries, "
        "photo_ids = photo_ids + excluded.photo_ids, nsids = nsids + excluded.nsids, "
        "usernames = usernames + excluded.usernames",
        (dataset_id, *counts),
    )


def delete_identifiers(conn: sqlite3.Connection, dataset_id: int) -> None:
    conn.execute("DELETE FROM flickr_photos WHERE dataset_id = ?", (dataset_id,))
    conn.execute("DELETE FROM flickr_coverage WHERE dataset_id = ?", (dataset_id,))


def backfill(conn: sqlite3.Connection, batch: int = 5000) -> int:
    """Index the identifiers of datasets recorded before this table existed; returns how many."""
    missing = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM datasets WHERE status IN ('building', 'complete') "
            "AND id NOT IN (SELECT dataset_id FROM flickr_coverage)"
        ).fetchall()
    ]
    if missing:
        log.info("recording the Flickr identifiers of %d dataset(s) indexed before lookups existed", len(missing))
    for dataset_id in missing:
        conn.execute("BEGIN IMMEDIATE")
        try:
            last = 0
            while True:
                rows = conn.execute(
                    "SELECT id, metadata FROM entries WHERE dataset_id = ? AND id > ? ORDER BY id LIMIT ?",
                    (dataset_id, last, batch),
                ).fetchall()
                if not rows:
                    break
                record_identifiers(conn, dataset_id, [(r[0], json.loads(r[1] or "{}")) for r in rows])
                last = rows[-1][0]
            record_identifiers(conn, dataset_id, [])
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return len(missing)


# -- the query -----------------------------------------------------------------------------


def parse_query(text: str) -> Query:
    """A Flickr username, NSID, account URL or photo URL (``flickr:`` in front is optional)."""
    value = (text or "").strip()
    if value.lower().startswith("flickr:"):
        value = value[len("flickr:") :].strip()
    if not value:
        raise BadFlickrQuery("Give a Flickr username, an NSID such as 12345678@N00, or a Flickr photo URL.")
    if len(value) > 300 or any(ord(c) < 32 for c in value):
        raise BadFlickrQuery("That is not a Flickr username, NSID or URL: it is too long or holds control characters.")
    if NSID.match(value):
        return Query("nsid", normal_nsid(value))
    looks_like_url = "/" in value or value.lower().startswith(("http", "www.")) or "flickr.com" in value.lower()
    if looks_like_url:
        if match := PHOTO_PAGE.search(value):
            nsid, alias = _owner(match.group(1))
            if nsid or alias:
                return Query("photo", match.group(2))
        if match := STATIC.search(value):
            return Query("photo", match.group(1))
        if match := SHORT.search(value):
            return Query("photo", str(base58_decode(match.group(1))))
        if match := PROFILE.search(value):
            nsid, alias = _owner(match.group(1))
            if nsid:
                return Query("nsid", nsid)
            if alias:
                return Query("username", alias)
        raise BadFlickrQuery(
            "That URL is not a Flickr photo or account: use a link such as "
            "https://www.flickr.com/photos/USERNAME/1234567890/ or https://www.flickr.com/photos/USERNAME/."
        )
    if len(value) > 100:
        raise BadFlickrQuery("A Flickr username is at most 100 characters.")
    return Query("username", value)


@dataclass(frozen=True)
class DatasetRef:
    id: int
    name: str
    title: str


class FlickrLookup:
    """Answers lookups from an index's ``metadata.sqlite``, read-only, one connection per instance."""

    def __init__(self, root: str | Path) -> None:
        self.path = Path(root) / "metadata.sqlite"
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def lookup(self, query: Query, datasets: Sequence[DatasetRef]) -> list[dict[str, Any]]:
        """Per dataset: how many of the account's photos it holds (or whether it holds the photo), and which."""
        with self._lock:
            conn = self._connection()
            try:
                coverage = {
                    r[0]: {"photo_ids": r[1], "nsids": r[2], "usernames": r[3]}
                    for r in conn.execute("SELECT dataset_id, photo_ids, nsids, usernames FROM flickr_coverage")
                }
                rows = self._rows(conn, query)
            except sqlite3.OperationalError as exc:
                if "no such table" not in str(exc):
                    raise
                coverage, rows = {}, []  # an index written before lookups existed
        wanted = {d.id for d in datasets}
        found: dict[int, list[tuple[Any, ...]]] = {}
        for row in rows:
            if row[0] in wanted:
                found.setdefault(row[0], []).append(row)
        needs = {"nsid": "nsids", "username": "usernames", "photo": "photo_ids"}[query.kind]
        results = []
        for dataset in datasets:
            covered = coverage.get(dataset.id, {})
            photos, items = _photos(found.get(dataset.id, []))
            results.append(
                {
                    "dataset": dataset.name,
                    "title": dataset.title,
                    "photos": photos,
                    "items": items,
                    "searchable": covered.get(needs, 0) > 0,
                    "username_searchable": covered.get("usernames", 0) > 0,
                }
            )
        return results

    @staticmethod
    def _rows(conn: sqlite3.Connection, query: Query) -> list[tuple[Any, ...]]:
        columns = "SELECT dataset_id, entry_id, photo_id, nsid, alias FROM flickr_photos"
        if query.kind == "nsid":
            return conn.execute(f"{columns} WHERE nsid = ?", (query.value,)).fetchall()
        if query.kind == "photo":
            return conn.execute(f"{columns} WHERE photo_id = ?", (query.value,)).fetchall()
        return conn.execute(
            f"{columns} WHERE alias = ? UNION {columns} WHERE author = ?",
            (query.value.lower(), normal_author(query.value)),
        ).fetchall()


def _photos(rows: list[tuple[Any, ...]]) -> tuple[int, list[dict[str, str]]]:
    """How many distinct photos the rows name (an entry without a photo id counts once), and the named ones."""
    by_photo: dict[str, FlickrRef] = {}
    without_id: set[int] = set()
    for _, entry_id, photo_id, nsid, alias in rows:
        if photo_id is None:
            without_id.add(entry_id)
        elif photo_id not in by_photo or (nsid and not by_photo[photo_id].nsid):
            by_photo[photo_id] = FlickrRef(photo_id=photo_id, nsid=nsid, alias=alias)
    ordered = sorted(by_photo.values(), key=lambda r: int(r.photo_id or 0))
    items = [{"photo_id": r.photo_id, "url": photo_url(r)} for r in ordered[:ITEMS_LIMIT]]
    return len(by_photo) + len(without_id), items
