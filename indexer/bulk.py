"""Bulk checks: many member photos against every disclosed dataset, into a report that survives a kill.

``run_bulk`` reads a folder or a manifest with the indexer's own source readers (a photo's id is its
source key: relative path or manifest key), skips the ids already in the report, and checks the rest
in batches, several batches at once. With ``several_photos``, a member may have up to 5 photos, checked
together as one person (``Checker.check_photos``): a folder's subfolder, or the manifest rows with the
same ``member`` (or ``member_id``), is one member, whose id is the subfolder's name or that value. It
checks either against a server (``ServerChecker``: ``POST
/api/v1/bulk`` with an API key) or locally (``LocalChecker``: the same ``Checker`` the service runs).
After every batch the report is rewritten atomically, so a run killed at any moment leaves a valid
report holding every photo done so far, and running the same command again goes on from there.

The server client retries what is worth retrying: 429 (waiting as long as ``Retry-After`` says, all
threads together), 5xx and dropped connections (exponential backoff with jitter). It learns the
server's batch limit from its ``too_many_images`` answer and splits a batch that is too large in bytes.
A refused key stops the run at once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from . import report as reports
from .errors import ImageError, PhotocheckError
from .sources import Entry, open_source
from .template import MAX_PHOTOS, refusal_message

log = logging.getLogger("photocheck")

#: The manifest columns that say whose photo a row is, with ``several_photos``.
MEMBER_COLUMNS = ("member", "member_id")
#: Errors of photos the client itself could not read: nothing was sent, so a rerun tries them again.
LOCAL_ERRORS = {"missing_file", "unreadable_file"}
#: Statuses worth sending the same request again for.
RETRY_STATUSES = {500, 502, 503, 504}
#: A rate-limited client waits and goes on, but not forever.
MAX_RATE_LIMITED_WAITS = 1000


class BulkError(PhotocheckError):
    code = "bulk_failed"


class KeyRefused(BulkError):
    """The server refused the API key (missing, unknown or revoked): no point in going on."""

    code = "key_refused"


class ServerUnavailable(BulkError):
    code = "server_unavailable"


@dataclass
class Member:
    """One member: their id in the report, and their photos (one, or with ``several_photos`` up to 5)."""

    id: str
    entries: list[Entry]
    #: With ``several_photos``: the report lists each photo (and says which were left out).
    listed: bool = False
    #: Photos past the most checked together, recorded as not used.
    left_out: list[Entry] = field(default_factory=list)

    @property
    def photos(self) -> int:
        return len(self.entries)


@dataclass
class Batch:
    members: list[Member]
    records: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0


@dataclass
class BulkSummary:
    report: Path
    html: Path | None
    members: int = 0  # in the report now
    checked: int = 0  # answered in this run
    skipped: int = 0  # already in the report
    errors: int = 0  # photos of this run that could not be checked (no face, bad image...)
    requests: int = 0
    rate_limited: int = 0
    retries: int = 0
    seconds: float = 0.0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def photos_per_second(self) -> float:
        return self.checked / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "report": str(self.report),
            "html": str(self.html) if self.html else None,
            "members": self.members,
            "checked": self.checked,
            "skipped": self.skipped,
            "errors": self.errors,
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "retries": self.retries,
            "seconds": round(self.seconds, 2),
            "photos_per_second": round(self.photos_per_second, 2),
            "datasets": self.counts,
        }


def _read(member: Member) -> list[bytes | ImageError] | dict[str, Any]:
    """Each photo's bytes (or the error that kept it from being read), or the error record of a member
    none of whose photos can be read: a rerun tries those again."""
    read: list[bytes | ImageError] = []
    for entry in member.entries:
        try:
            read.append(entry.read())
        except ImageError as exc:
            read.append(exc)
    errors = [data for data in read if isinstance(data, ImageError)]
    if len(errors) == len(read):
        return reports.error_record(member.id, errors[0].code, errors[0].message)
    return read


def _record(member: Member, answer: dict[str, Any]) -> dict[str, Any]:
    """The report's record of a member's answer: with several photos, each photo by its own id."""
    record = reports.member_record(member.id, answer)
    if not member.listed:
        return record
    photos = [
        {"id": entry.key, **reports.photo_record(photo)}
        for entry, photo in zip(member.entries, answer.get("photos") or [{}] * member.photos, strict=True)
    ]
    for entry in member.left_out:
        message = f"At most {MAX_PHOTOS} photos of a member are checked together; this one was left out."
        photos.append(
            {"id": entry.key, **reports.photo_record({"error": {"code": "too_many_photos", "message": message}})}
        )
    record["photos"] = photos
    error = record.get("error") or {}
    if error.get("code") == "not_same_person":  # name the member's photos, not their numbers in the request
        pairs = sorted({tuple(sorted((n, other))) for n, p in enumerate(photos) for other in p.get("differs_from", [])})
        if pairs:
            error["message"] = refusal_message([entry.key for entry in member.entries], pairs)
    return record


def _merged(read: list[bytes | ImageError], answer: dict[str, Any]) -> dict[str, Any]:
    """A server's answer for the photos that could be read, with the ones that could not put back in place."""
    answered = list(answer.get("photos") or [])
    if not answered:
        return answer
    sent = [n for n, data in enumerate(read) if isinstance(data, bytes)]
    renumber = dict(enumerate(sent))
    photos: list[dict[str, Any]] = []
    for data in read:
        if isinstance(data, ImageError):
            photos.append({"faces_detected": 0, "faces": [], "face": None, "error": data.as_dict()})
            continue
        photo = dict(answered.pop(0))
        if "differs_from" in photo:
            photo["differs_from"] = [renumber[n] for n in photo["differs_from"]]
        photos.append(photo)
    return {**answer, "photos": photos}


# -- checking against a server -------------------------------------------------------------------


class ServerChecker:
    """Sends batches to ``POST /api/v1/bulk``; safe to call from several threads at once."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        retries: int = 6,
        timeout: float = 300.0,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.retries = retries
        self.timeout = timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.max_images: int | None = None  # learnt from the server's too_many_images
        self.rate_limited = 0
        self.retried = 0
        self._local = threading.local()
        self._lock = threading.Lock()
        self._paused_until = 0.0

    def describe(self) -> dict[str, Any]:
        return {"server": self.url}

    def _session(self):
        import requests

        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {self.key}"
            session.headers["User-Agent"] = "photocheck-bulk"
            self._local.session = session
        return session

    def about(self) -> dict[str, Any]:
        """The server's datasets and index (public facts), for the report."""
        import requests

        for attempt in range(self.retries + 1):
            try:
                response = self._session().get(f"{self.url}/api/v1/datasets", timeout=min(self.timeout, 60))
            except requests.RequestException as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    body = response.json()
                    return {"index": body.get("index"), "datasets": body.get("datasets") or []}
                failure = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUSES:
                    break
            if attempt < self.retries:
                self.sleep(self._delay(attempt))
        raise ServerUnavailable(f"{self.url} did not answer /api/v1/datasets ({failure}). Is it a photocheck service?")

    # -- pacing ------------------------------------------------------------------------------------
    def _delay(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)

    def _pause_everyone(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def _wait_turn(self) -> None:
        with self._lock:
            left = self._paused_until - time.monotonic()
        if left > 0:
            self.sleep(left)

    @staticmethod
    def _retry_after(response) -> float | None:
        value = response.headers.get("Retry-After")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None

    # -- sending -------------------------------------------------------------------------------------
    def check(self, batch: Batch) -> Batch:
        read = [(member, _read(member)) for member in batch.members]
        ready = [(member, data) for member, data in read if isinstance(data, list)]
        answered = dict(self._send(ready, batch))
        for member, data in read:
            batch.records.append(data if isinstance(data, dict) else answered[member.id])
        return batch

    def _send(
        self, items: list[tuple[Member, list[bytes | ImageError]]], batch: Batch
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        if not items:
            return
        limit = self.max_images
        if limit is not None and _photo_count(items) > limit and len(items) > 1:
            for chunk in _chunks(items, limit):
                yield from self._send(chunk, batch)
            return
        response = self._post(items, batch)
        if response.status_code in (400, 413):  # too_many_images is a 400 (a 413 from servers before 0.2)
            body = _json(response)
            error = body.get("error") or {}
            if error.get("code") == "too_many_images" and int(body.get("max_images") or 0) > 0:
                with self._lock:
                    self.max_images = min(int(body["max_images"]), self.max_images or _photo_count(items))
                log.info("the server takes at most %d photos per request", self.max_images)
                if len(items) > 1:
                    yield from self._send(items, batch)
                    return
                error = {"code": "too_many_images", "message": f"The server takes at most {self.max_images} photos."}
            elif len(items) > 1:  # too many bytes at once: halve the batch
                middle = len(items) // 2
                yield from self._send(items[:middle], batch)
                yield from self._send(items[middle:], batch)
                return
            member = items[0][0]
            code = error.get("code") or "upload_too_large"
            yield member.id, reports.error_record(member.id, code, error.get("message") or "Too large.")
            return
        results = _json(response).get("results")
        if not isinstance(results, list) or len(results) != len(items):
            raise BulkError(f"{self.url} answered a batch of {len(items)} members with something else.")
        # Answers come in the order sent: the ids are ours, whatever the multipart encoding did to them.
        for (member, read), answer in zip(items, results, strict=True):
            yield member.id, _record(member, _merged(read, answer))

    def _post(self, items: list[tuple[Member, list[bytes | ImageError]]], batch: Batch):
        import requests

        # A member's photos share their id: the server checks them together.
        files = [
            ("image", (member.id, data, "application/octet-stream"))
            for member, read in items
            for data in read
            if isinstance(data, bytes)
        ]
        failures = 0
        waits = 0
        while True:
            self._wait_turn()
            batch.requests += 1
            try:
                response = self._session().post(f"{self.url}/api/v1/bulk", files=files, timeout=self.timeout)
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                error = _json(response).get("error") or {}
                if status in (200, 413) or error.get("code") == "too_many_images":
                    return response
                if status == 401:
                    raise KeyRefused(
                        f"The server refused the API key: {error.get('message', 'unauthorised')}",
                        code=error.get("code") or KeyRefused.code,
                    )
                if status == 429:
                    waits += 1
                    with self._lock:
                        self.rate_limited += 1
                    if waits > MAX_RATE_LIMITED_WAITS:
                        raise ServerUnavailable(f"{self.url} kept answering 429 (rate limited); try later.")
                    retry_after = self._retry_after(response)
                    self._pause_everyone(self._delay(min(waits, 6)) if retry_after is None else retry_after)
                    continue
                if status not in RETRY_STATUSES:
                    raise BulkError(
                        f"{self.url} refused a batch: HTTP {status} "
                        f"{error.get('message', '')} [{error.get('code', 'http_error')}]".replace("  ", " ")
                    )
                problem = f"HTTP {status} {error.get('code', '')}".strip()
                retry_after = self._retry_after(response)
                if retry_after:
                    self._pause_everyone(retry_after)
            failures += 1
            if failures > self.retries:
                raise ServerUnavailable(f"{self.url} failed {failures} times in a row (last: {problem}).")
            with self._lock:
                self.retried += 1
            log.debug("retrying a batch after %s", problem)
            self.sleep(self._delay(failures - 1))


def _photo_count(items: list[tuple[Member, list[bytes | ImageError]]]) -> int:
    return sum(1 for _, read in items for data in read if isinstance(data, bytes))


def _chunks(items: list[tuple[Member, list[bytes | ImageError]]], limit: int):
    """Consecutive runs of whole members, each of at most ``limit`` photos where a member allows."""
    chunk: list[tuple[Member, list[bytes | ImageError]]] = []
    for item in items:
        if chunk and _photo_count([*chunk, item]) > limit:
            yield chunk
            chunk = []
        chunk.append(item)
    if chunk:
        yield chunk


def _json(response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# -- checking locally ----------------------------------------------------------------------------


class LocalChecker:
    """The same check, in this process, against an index on disk: no server, no key."""

    def __init__(self, index_dir: Path, *, embedder_options: dict[str, Any] | None = None, **checker: Any) -> None:
        from .check import Checker, LoadedIndex, embedder_for_index

        self.index_dir = Path(index_dir)
        self.loaded = LoadedIndex(self.index_dir)
        embedder = embedder_for_index(self.loaded, **(embedder_options or {}))
        self.checker = Checker(self.loaded, embedder, **checker)
        self.rate_limited = 0
        self.retried = 0
        self._lock = threading.Lock()  # one check at a time: the embedder is not shared across threads

    def describe(self) -> dict[str, Any]:
        return {"index": str(self.index_dir)}

    def about(self) -> dict[str, Any]:
        from .catalog import find_entry

        # Shaped as a server's /api/v1/datasets, catalog entry included (the report's guidance reads it).
        return {
            "index": self.loaded.describe(),
            "datasets": [{**d.info.public(), "catalog": find_entry(d.info.catalog)} for d in self.loaded.datasets],
        }

    def check(self, batch: Batch) -> Batch:
        for member in batch.members:
            read = _read(member)
            if isinstance(read, dict):
                batch.records.append(read)
                continue
            with self._lock:
                answer = self.checker.check_photos(read, labels=[entry.key for entry in member.entries], evidence=True)
            batch.records.append(_record(member, answer))
        return batch


# -- the run -------------------------------------------------------------------------------------


def _members(entries: Iterable[Entry], several_photos: bool) -> list[Member]:
    """The members, in source order: a photo each, or with ``several_photos`` grouped by their member
    column (``member`` or ``member_id``), else by their subfolder; at most ``MAX_PHOTOS`` photos are
    checked per member, the others are listed as left out."""
    if not several_photos:
        return [Member(entry.key, [entry]) for entry in entries]
    grouped: dict[str, list[Entry]] = {}
    for entry in entries:
        named = next((str(entry.metadata[c]).strip() for c in MEMBER_COLUMNS if entry.metadata.get(c)), "")
        folder = entry.key.split("/", 1)[0] if "/" in entry.key else ""
        grouped.setdefault(named or folder or entry.key, []).append(entry)
    return [
        Member(member_id, entries[:MAX_PHOTOS], listed=True, left_out=entries[MAX_PHOTOS:])
        for member_id, entries in grouped.items()
    ]


def _batches(members: list[Member], size: int) -> Iterator[Batch]:
    """Consecutive batches of whole members, of at most ``size`` photos where a member allows."""
    batch: list[Member] = []
    for member in members:
        if batch and sum(m.photos for m in batch) + member.photos > size:
            yield Batch(batch)
            batch = []
        batch.append(member)
    if batch:
        yield Batch(batch)


def run_bulk(
    source: str | Path,
    report: str | Path,
    checker: ServerChecker | LocalChecker,
    *,
    source_format: str = "auto",
    path_column: str | None = None,
    batch_size: int = 10,
    concurrency: int = 4,
    progress: bool = True,
    html: bool = True,
    several_photos: bool = False,
) -> BulkSummary:
    """Check every member of ``source`` not yet in ``report``; the report is complete after each batch.

    Each photo is a member, or with ``several_photos`` each subfolder and each ``member`` (or
    ``member_id``) of a manifest; ``batch_size`` counts photos."""
    report = Path(report)
    reports.report_format(report)
    if not report.parent.is_dir():
        raise BulkError(f"{report.parent} does not exist; create it or give another -o.")
    records = reports.load_report(report)
    members = _members(open_source(Path(source), source_format, path_column=path_column), several_photos)
    order = {member.id: number for number, member in enumerate(members)}
    done = {
        photo_id
        for photo_id, record in records.items()
        if not (record.get("error") and record["error"].get("code") in LOCAL_ERRORS)
    }
    todo = [member for member in members if member.id not in done]
    summary = BulkSummary(report=report, html=None, skipped=len(members) - len(todo))
    about = {"checked_with": checker.describe(), **checker.about()}
    noun = "members" if several_photos else "photos"
    if summary.skipped:
        log.info(
            "%d of %d %s are already in %s; checking the other %d",
            summary.skipped,
            len(members),
            noun,
            report,
            len(todo),
        )

    def ordered() -> list[dict[str, Any]]:
        # Source order; ids of earlier runs that the source no longer has stay, at the end.
        return sorted(records.values(), key=lambda r: order.get(r["id"], len(order)))

    started = time.perf_counter()
    batches = _batches(todo, batch_size)
    from tqdm import tqdm

    bar = tqdm(
        total=len(todo),
        unit="member" if several_photos else "photo",
        disable=not progress,
        dynamic_ncols=True,
        leave=True,
    )
    found = 0
    completed = False
    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bulk") as pool:
            pending: set[Future] = set()
            try:
                while True:
                    # One batch more than the threads: a thread takes it at once while this one writes the report.
                    while len(pending) < concurrency + 1:
                        batch = next(batches, None)
                        if batch is None:
                            break
                        pending.add(pool.submit(checker.check, batch))
                    if not pending:
                        break
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        batch = future.result()
                        summary.requests += batch.requests
                        for record in batch.records:
                            records[record["id"]] = record
                            summary.checked += 1
                            if record.get("error"):
                                summary.errors += 1
                            elif any(r["verdict"] in ("match", "possible") for r in record["results"]):
                                found += 1
                        reports.write_report(report, ordered(), about)
                        bar.set_postfix_str(f"{found} found, {summary.errors} not checked", refresh=False)
                        bar.update(len(batch.records))
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        completed = True
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - started
        summary.rate_limited = checker.rate_limited
        summary.retries = checker.retried
        final = ordered()
        summary.members = len(final)
        summary.counts = reports.dataset_counts(final, [d["name"] for d in about["datasets"]])
        if completed or records:  # a run refused at once leaves no empty report behind
            reports.write_report(report, final, about)
            if html:
                summary.html = reports.write_html(report, final, about)
    return summary
