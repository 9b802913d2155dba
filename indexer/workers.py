"""Running embedder work in parallel processes, each with its own embedder, results in input order."""

from __future__ import annotations

import logging
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from .embedders import EmbedderSpec, FaceEmbedder

Item = TypeVar("Item")
Result = TypeVar("Result")

_worker_embedder: FaceEmbedder | None = None


def _init_worker(spec: EmbedderSpec) -> None:
    global _worker_embedder
    logging.getLogger("photocheck").setLevel(logging.WARNING)
    _worker_embedder = spec.create()
    _worker_embedder.load()


def _call(function: Callable[..., Any], item: Any) -> Any:
    assert _worker_embedder is not None
    return function(_worker_embedder, item)


def map_ordered(
    function: Callable[[FaceEmbedder, Item], Result],
    items: Iterable[Item],
    embedder: FaceEmbedder,
    workers: int = 1,
) -> Iterator[Result]:
    """``function(embedder, item)`` for each item, in order.

    With ``workers > 1``, each worker process builds its own embedder from ``embedder.spec()``, and
    at most two items per worker are in flight, so a million-image source is never read ahead into
    memory. ``function`` must be a module-level function (it is pickled).
    """
    if workers <= 1:
        for item in items:
            yield function(embedder, item)
        return
    context = multiprocessing.get_context("spawn")  # fork after onnxruntime or dlib threads start is unsafe
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(embedder.spec(),))
    with pool:
        in_flight: deque[Future] = deque()
        for item in items:
            in_flight.append(pool.submit(_call, function, item))
            if len(in_flight) >= workers * 2:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()
