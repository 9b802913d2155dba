"""API keys for bulk checks: who may call ``POST /api/v1/bulk``, and how often.

Keys live in a small SQLite database, by default ``<index>/keys.sqlite``. A key is shown once, when
it is created; only its SHA-256 is stored (a key holds 256 random bits, so a fast hash is enough:
nobody can search that space). The service opens the database read-only and looks the hash up on
every request, so a revoked key is refused at once, without a restart, and answering writes nothing.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import PhotocheckError

KEYS_DATABASE = "keys.sqlite"
PREFIX = "pck_"
#: flask-limiter syntax: requests to the bulk endpoint per period, whatever their size.
DEFAULT_RATE = "120/minute"
#: How much of a key `keys list` shows, so that a person can tell their keys apart.
HINT_LENGTH = len(PREFIX) + 4

SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    rate TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
"""

_UNITS = {
    "s": "second",
    "sec": "second",
    "second": "second",
    "m": "minute",
    "min": "minute",
    "minute": "minute",
    "h": "hour",
    "hr": "hour",
    "hour": "hour",
    "d": "day",
    "day": "day",
}
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d+)?\s*([a-z]+?)s?\s*$", re.IGNORECASE)


class ApiKeyError(PhotocheckError):
    code = "key_error"


class KeyNotFound(ApiKeyError):
    code = "key_not_found"


class BadRate(ApiKeyError):
    code = "bad_rate"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def normalize_rate(rate: str) -> str:
    """``N/min``, ``N per hour``, ``N/10 seconds``... in flask-limiter's own spelling, or ``BadRate``."""
    match = _RATE.match(rate or "")
    unit = _UNITS.get(match.group(3).lower()) if match else None
    if not match or unit is None or int(match.group(1)) < 1:
        raise BadRate(
            f"{rate!r} is not a rate: write it as N/second, N/minute, N/hour or N/day (for example 120/minute)."
        )
    count, multiple = int(match.group(1)), match.group(2)
    return f"{count}/{multiple} {unit}s" if multiple and int(multiple) > 1 else f"{count}/{unit}"


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    hint: str
    rate: str
    created_at: str
    revoked_at: str | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "hint": self.hint,
            "rate": self.rate,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def keys_path(index_dir: str | Path | None, keys_db: str | Path | None) -> Path:
    """Where the keys are: ``keys_db`` when given, else ``<index>/keys.sqlite``."""
    if keys_db:
        return Path(keys_db)
    if not index_dir:
        raise ApiKeyError("Say where the keys are: --index DIR (keys in DIR/keys.sqlite) or --keys-db PATH.")
    return Path(index_dir) / KEYS_DATABASE


class KeyStore:
    """The keys database. ``readonly`` is how the service opens it: no journal, no file is written."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            # A missing database is no error for a reader: it simply holds no key.
            self._conn = (
                sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5) if self.path.is_file() else None
            )
        else:
            if not self.path.parent.is_dir():
                raise ApiKeyError(f"{self.path.parent} does not exist; the keys database cannot be created there.")
            self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=5)
            # Rollback journal, not WAL: a read-only reader then never creates a -wal or -shm file.
            self._conn.execute("PRAGMA journal_mode=DELETE")
            self._conn.executescript(SCHEMA)
        if self._conn is not None:
            self._conn.row_factory = sqlite3.Row

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @staticmethod
    def _key(row: sqlite3.Row) -> ApiKey:
        return ApiKey(
            id=row["id"],
            name=row["name"],
            hint=row["hint"],
            rate=row["rate"],
            created_at=row["created_at"],
            revoked_at=row["revoked_at"],
        )

    def create(self, name: str, rate: str = DEFAULT_RATE) -> tuple[ApiKey, str]:
        """A new key for ``name``: its record and the key itself, which is not kept anywhere."""
        name = (name or "").strip()
        if not name:
            raise ApiKeyError("A key needs a --name: the organisation it is for.")
        rate = normalize_rate(rate)
        secret = PREFIX + secrets.token_urlsafe(32)
        assert self._conn is not None and not self.readonly
        cursor = self._conn.execute(
            "INSERT INTO keys (name, hash, hint, rate, created_at) VALUES (?, ?, ?, ?, ?)",
            (name, hash_key(secret), secret[:HINT_LENGTH], rate, _now()),
        )
        return self.get(int(cursor.lastrowid)), secret  # type: ignore[arg-type]

    def get(self, key_id: int) -> ApiKey:
        row = self._conn.execute("SELECT * FROM keys WHERE id = ?", (key_id,)).fetchone() if self._conn else None
        if row is None:
            raise KeyNotFound(f"There is no key {key_id} in {self.path}; `photocheck keys list` shows the keys.")
        return self._key(row)

    def list_keys(self) -> list[ApiKey]:
        if self._conn is None:
            return []
        return [self._key(r) for r in self._conn.execute("SELECT * FROM keys ORDER BY id")]

    def revoke(self, key_id: int) -> tuple[ApiKey, bool]:
        """Revoke a key; returns it and whether it was revoked now (False: it already was)."""
        key = self.get(key_id)
        if key.revoked:
            return key, False
        assert self._conn is not None and not self.readonly
        self._conn.execute("UPDATE keys SET revoked_at = ? WHERE id = ?", (_now(), key_id))
        return self.get(key_id), True

    def lookup(self, secret: str) -> ApiKey | None:
        """The key whose hash this is, revoked or not; None when there is no such key."""
        if self._conn is None or not secret:
            return None
        row = self._conn.execute("SELECT * FROM keys WHERE hash = ?", (hash_key(secret),)).fetchone()
        return self._key(row) if row else None
