"""Bulk checks: many member photos against every disclosed dataset, into a report that survives a kill.

``run_bulk`` reads a folder or a manifest with the indexer's own source readers (a photo's id is its
source key: relative path or manifest key), skips the ids already in the report, and checks the rest
in batches, several batches at once, either against a server (``ServerChecker``: ``POST
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
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from . import report as reports
from .errors import ImageError, PhotocheckError
from .sources import Entry, open_source

log = logging.getLogger("photocheck")

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
class Photo:
    id: str
    entry: Entry


@dataclass
class Batch:
    photos: list[Photo]
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


def _read(photo: Photo) -> bytes | dict[str, Any]:
    """The photo's bytes, or the error record of a photo that cannot be read."""
    try:
        return photo.entry.read()
    except ImageError as exc:
        return reports.error_record(photo.id, exc.code, exc.message)


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
        read = [(photo, _read(photo)) for photo in batch.photos]
        ready = [(photo, data) for photo, data in read if isinstance(data, bytes)]
        answered = dict(self._send(ready, batch))
        for photo, data in read:
            batch.records.append(data if isinstance(data, dict) else answered[photo.id])
        return batch

    def _send(self, items: list[tuple[Photo, bytes]], batch: Batch) -> Iterator[tuple[str, dict[str, Any]]]:
        if not items:
            return
        limit = self.max_images
        if limit is not None and len(items) > limit:
            for start in range(0, len(items), limit):
                yield from self._send(items[start : start + limit], batch)
            return
        response = self._post(items, batch)
        if response.status_code in (400, 413):  # too_many_images is a 400 (a 413 from servers before 0.2)
            body = _json(response)
            error = body.get("error") or {}
            if error.get("code") == "too_many_images" and int(body.get("max_images") or 0) > 0:
                with self._lock:
                    self.max_images = min(int(body["max_images"]), self.max_images or len(items))
                log.info("the server takes at most %d photos per request", self.max_images)
                yield from self._send(items, batch)
                return
            if len(items) > 1:  # too many bytes at once: halve the batch
                middle = len(items) // 2
                yield from self._send(items[:middle], batch)
                yield from self._send(items[middle:], batch)
                return
            photo = items[0][0]
            yield photo.id, reports.error_record(photo.id, "upload_too_large", error.get("message") or "Too large.")
            return
        results = _json(response).get("results")
        if not isinstance(results, list) or len(results) != len(items):
            raise BulkError(f"{self.url} answered a batch of {len(items)} photos with something else.")
        # Answers come in the order sent: the ids are ours, whatever the multipart encoding did to them.
        for (photo, _data), answer in zip(items, results, strict=True):
            yield photo.id, reports.member_record(photo.id, answer)

    def _post(self, items: list[tuple[Photo, bytes]], batch: Batch):
        import requests

        files = [("image", (photo.id, data, "application/octet-stream")) for photo, data in items]
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
        for photo in batch.photos:
            data = _read(photo)
            if isinstance(data, dict):
                batch.records.append(data)
                continue
            with self._lock:
                answer = self.checker.check(data, evidence=True)
            batch.records.append(reports.member_record(photo.id, answer))
        return batch


# -- the run -------------------------------------------------------------------------------------


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
) -> BulkSummary:
    """Check every photo of ``source`` not yet in ``report``; the report is complete after each batch."""
    report = Path(report)
    reports.report_format(report)
    if not report.parent.is_dir():
        raise BulkError(f"{report.parent} does not exist; create it or give another -o.")
    records = reports.load_report(report)
    photos = [Photo(entry.key, entry) for entry in open_source(Path(source), source_format, path_column=path_column)]
    order = {photo.id: number for number, photo in enumerate(photos)}
    done = {
        photo_id
        for photo_id, record in records.items()
        if not (record.get("error") and record["error"].get("code") in LOCAL_ERRORS)
    }
    todo = [photo for photo in photos if photo.id not in done]
    summary = BulkSummary(report=report, html=None, skipped=len(photos) - len(todo))
    about = {"checked_with": checker.describe(), **checker.about()}
    if summary.skipped:
        log.info(
            "%d of %d photos are already in %s; checking the other %d", summary.skipped, len(photos), report, len(todo)
        )

    def ordered() -> list[dict[str, Any]]:
        # Source order; ids of earlier runs that the source no longer has stay, at the end.
        return sorted(records.values(), key=lambda r: order.get(r["id"], len(order)))

    started = time.perf_counter()
    batches = iter([Batch(todo[i : i + batch_size]) for i in range(0, len(todo), batch_size)])
    from tqdm import tqdm

    bar = tqdm(total=len(todo), unit="photo", disable=not progress, dynamic_ncols=True, leave=True)
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
