"""Flickr lookups on a MegaFace-sized identifier index: the cost at build time and per lookup.

What it measures, on N synthetic entries (default 1,000,000) whose metadata is shaped like the
MegaFace reader's (``flickr_nsid``, ``flickr_photo_id``, ``face_index`` and a sidecar's
``bounding_box`` and 49 landmarks), spread over accounts with a long-tailed number of photos each
(MegaFace: 3.3 M photos from 48,383 accounts):

* recording (on --record-entries, default 20,000): ``indexer.lookup.record_identifiers`` in
  transactions of 16 entries with the store's ``synchronous=FULL`` (as the pipeline commits each
  chunk), in entries per second, against inserting the same entries' metadata alone (what
  ``record_entries`` wrote before lookups existed), so the ratio is the overhead the hook adds;
  both are bounded by the disk's fsync, and both far above the 2-10 images/s a core embeds;
* the disk it takes (the identifier table and its indexes, in bytes per entry);
* one lookup (``FlickrLookup.lookup``) by NSID, by photo id and by username, in milliseconds,
  against answering the NSID question by scanning the stored metadata (``LIKE`` over the JSON), which
  is what an index without the identifier table would have to do.

The figures are ratios against a baseline run side by side in the same process (the machine is
shared and noisy); the absolute times are printed too.

The big index for the lookups is written with ``synchronous=OFF`` in large transactions (the
B-trees it ends with are the same, only faster to make).

    python bench/flickr_lookup.py                 # 1,000,000 entries to look up in
    python bench/flickr_lookup.py --entries 200000 --record-entries 5000
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from indexer.lookup import SCHEMA, DatasetRef, FlickrLookup, Query, record_identifiers

BATCH = 16


def synthetic_entries(count: int, seed: int = 0):
    """(nsid, metadata) for ``count`` entries: accounts hold a Zipf-like number of photos each."""
    rng = random.Random(seed)
    made, account = 0, 0
    while made < count:
        account += 1
        nsid = f"{10_000_000 + account}@N0{account % 10}"
        photos = min(int(rng.paretovariate(1.2)) * 3, 2469, count - made)
        for _ in range(max(photos, 1)):
            photo_id = str(rng.randrange(10**9, 10**11))
            metadata = {
                "flickr_nsid": nsid,
                "flickr_photo_id": photo_id,
                "face_index": 0,
                "bounding_box": {"x": 20.5, "y": 31.0, "width": 150.0, "height": 151.5},
                "landmarks": {str(i): {"x": 10.0 * i, "y": 12.0 * i} for i in range(49)},
            }
            if made % 7 == 0:  # some sets also hold a username for the account
                metadata["photo_url"] = f"https://www.flickr.com/photos/user{account}/{photo_id}/"
            yield nsid, metadata
            made += 1
            if made >= count:
                return


def build(root: Path, count: int, *, identifiers: bool, batch_size: int = BATCH, durable: bool = True):
    conn = sqlite3.connect(root / "metadata.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
    conn.executescript("CREATE TABLE entries (id INTEGER PRIMARY KEY, dataset_id INTEGER, metadata TEXT);" + SCHEMA)
    probes: dict = {"nsids": [], "photos": [], "usernames": []}
    started = time.perf_counter()
    batch: list[tuple[str, dict]] = []
    next_id = 1

    def flush() -> None:
        nonlocal next_id
        conn.execute("BEGIN IMMEDIATE")
        rows = [(next_id + i, 1, json.dumps(m)) for i, (_, m) in enumerate(batch)]
        conn.executemany("INSERT INTO entries (id, dataset_id, metadata) VALUES (?, ?, ?)", rows)
        if identifiers:
            record_identifiers(conn, 1, [(next_id + i, m) for i, (_, m) in enumerate(batch)])
        conn.execute("COMMIT")
        next_id += len(batch)
        batch.clear()

    for number, (nsid, metadata) in enumerate(synthetic_entries(count)):
        batch.append((nsid, metadata))
        if number % 997 == 0:
            probes["nsids"].append(nsid)
            probes["photos"].append(metadata["flickr_photo_id"])
        if number % 700 == 0:  # these entries have a photo URL with a username
            probes["usernames"].append(metadata["photo_url"].split("/")[4])
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    seconds = time.perf_counter() - started
    conn.close()
    return seconds, probes


def timed(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="entries of the index looked up in")
    parser.add_argument("--record-entries", type=int, default=20_000, help="entries recorded to time the hook")
    parser.add_argument("--lookups", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        roots = {name: Path(tmp) / name for name in ("small-plain", "small-indexed", "plain", "indexed")}
        for root in roots.values():
            root.mkdir()
        plain_seconds, _ = build(roots["small-plain"], args.record_entries, identifiers=False)
        indexed_seconds, _ = build(roots["small-indexed"], args.record_entries, identifiers=True)
        print(
            f"recording {args.record_entries:,} entries in transactions of {BATCH}: "
            f"{args.record_entries / plain_seconds:,.0f} entries/s without identifiers, "
            f"{args.record_entries / indexed_seconds:,.0f} with them (x{indexed_seconds / plain_seconds:.2f} the time)"
        )
        plain, indexed = roots["plain"], roots["indexed"]
        build(plain, args.entries, identifiers=False, batch_size=10_000, durable=False)
        _, probes = build(indexed, args.entries, identifiers=True, batch_size=10_000, durable=False)
        conn = sqlite3.connect(indexed / "metadata.sqlite")
        pages = (
            {
                name: count
                for name, count in conn.execute(
                    "SELECT name, SUM(pgsize) FROM dbstat WHERE name LIKE 'flickr%' GROUP BY name"
                ).fetchall()
            }
            if _has_dbstat(conn)
            else {}
        )
        rows = conn.execute("SELECT COUNT(*) FROM flickr_photos").fetchone()[0]
        print(f"index looked up in: {args.entries:,} entries, {rows:,} identifier rows")
        if pages:
            total = sum(pages.values())
            print(f"identifier tables and indexes: {total / 2**20:.0f} MiB, {total / args.entries:.0f} bytes/entry")

        finder = FlickrLookup(indexed)
        datasets = [DatasetRef(1, "megaface", "MegaFace")]
        rng = random.Random(1)
        for kind, key in (("nsid", "nsids"), ("photo", "photos"), ("username", "usernames")):
            values = probes[key]
            found = finder.lookup(Query(kind, values[0]), datasets)[0]["photos"]
            ms = timed(lambda k=kind, v=values: finder.lookup(Query(k, rng.choice(v)), datasets), args.lookups)
            print(f"lookup by {kind:<8}: {ms:.2f} ms (median of {args.lookups}; first probe finds {found} photos)")
        scan = sqlite3.connect(plain / "metadata.sqlite")
        needles = probes["nsids"]
        scan_ms = timed(
            lambda: scan.execute(
                "SELECT COUNT(*) FROM entries WHERE metadata LIKE ?", (f'%"{rng.choice(needles)}"%',)
            ).fetchone(),
            max(3, args.lookups // 40),
        )
        nsid_ms = timed(lambda: finder.lookup(Query("nsid", rng.choice(needles)), datasets), args.lookups)
        print(f"scanning the metadata for an NSID instead: {scan_ms:.0f} ms (x{scan_ms / nsid_ms:,.0f} the lookup)")
        finder.close()
        scan.close()
        conn.close()


def _has_dbstat(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1 FROM dbstat LIMIT 1")
    except sqlite3.OperationalError:
        return False
    return True


if __name__ == "__main__":
    main()
