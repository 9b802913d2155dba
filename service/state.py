"""What a worker loads once, before it takes requests: the index, its embedder and a checker."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from indexer.catalog import find_entry
from indexer.check import Checker, LoadedIndex, embedder_for_index
from indexer.confidence import describe_thresholds
from indexer.errors import PhotocheckError
from indexer.lookup import DatasetRef, FlickrLookup, parse_query

log = logging.getLogger("photocheck")


@dataclass
class ServiceState:
    checker: Checker | None = None
    error: str | None = None
    flickr: FlickrLookup | None = None
    #: At most one check at a time in this process: a check is CPU-bound, and the worker's other threads
    #: are there to receive uploads (service/worker.py), not to split a core between checks.
    checking: threading.Lock = field(default_factory=threading.Lock)

    @property
    def ready(self) -> bool:
        return self.checker is not None

    @classmethod
    def load(cls, config: dict[str, Any]) -> ServiceState:
        index_dir = config.get("INDEX")
        if not index_dir:
            return cls(error="No index is configured: set PHOTOCHECK_INDEX or use `photocheck serve --index DIR`.")
        import faiss

        # One search is small: OpenMP threads only add spikes when every core is answering a request.
        faiss.omp_set_num_threads(1)
        try:
            index = LoadedIndex(index_dir)
            options = {
                "device": config["DEVICE"],
                "model_root": config["MODEL_ROOT"],
                "runtime": config["DLIB_RUNTIME"],
                "threads": int(config["MODEL_THREADS"] or 0),
            }
            if index.embedder_description["name"] == "dlib":  # insightface's detect_size means another thing
                options["detect_size"] = config.get("DLIB_DETECT_SIZE")
                options["upsample"] = config.get("DLIB_UPSAMPLE")
            embedder = embedder_for_index(index, **options)
            checker = Checker(index, embedder, max_pixels=int(config["MAX_PIXELS"]))
            checker.warm_up()
        except PhotocheckError as exc:
            log.error("the index at %s could not be loaded: %s [%s]", index_dir, exc.message, exc.code)
            return cls(error=f"The index could not be loaded: {exc.message}")
        described = index.describe()
        log.info(
            "serving %s: %d datasets, %d faces, %s embedder, index version %d",
            index_dir,
            described["datasets"],
            described["faces"],
            described["embedder"],
            described["version"],
        )
        return cls(checker=checker, flickr=FlickrLookup(index_dir))

    def datasets(self) -> dict[str, Any]:
        assert self.checker is not None
        index = self.checker.index
        return {
            "index": index.describe(),
            "thresholds": describe_thresholds(index.confidence_config),
            "datasets": [{**d.info.public(), "catalog": find_entry(d.info.catalog)} for d in index.datasets],
        }

    def lookup(self, text: str) -> dict[str, Any]:
        """The lookup answer for a Flickr username, NSID or URL, over the datasets this worker serves."""
        assert self.checker is not None and self.flickr is not None
        query = parse_query(text)
        infos = [d.info for d in self.checker.index.datasets]
        datasets = [DatasetRef(i.id, i.name, i.title or i.name) for i in infos]
        return {"query": query.as_dict(), "results": self.flickr.lookup(query, datasets), "error": None}
