"""The index type the store chooses for large datasets, against exact search, on synthetic faces.

What it measures: N synthetic face embeddings (default 1,000,000, 128-d like dlib) go into exact
search (``IDMap2,Flat``) and into the type ``indexer.store.choose_index_type(N)`` picks (an IVF
holding half-precision vectors), both built with ``indexer.store.build_faiss_index``. For each it
reports the build time (train + add), the bytes per face of the serialised index, the time of one
single-query search of k=64 neighbours on one thread (as the service searches), and, for the
approximate type at each nprobe, against exact search:

* recall@1 on "present" queries (a new photo of a person in the set): does the search still find
  one of that person's faces first? This decides a match.
* recall@1 on "absent" queries (people not in the set): is the nearest stranger still first?
* the error of the best score (mean and max |approximate - exact|): the confidence is computed
  from the best score alone, so a miss that returns a stranger almost as close costs little, and
  quantisation moves every score a little.

It prints the smallest nprobe reaching recall@1 >= 0.99 on present queries, to set the share of
lists the store probes (``indexer.store.PROBED_SHARE``).

The faces: people are clusters. Each identity has a centre and 1-10 photos (few people have many,
as in scraped sets); a photo is centre + within-identity noise, L2-normalised. When LFW dlib
embeddings are on disk (--stats, default /work/cache/lfw-dlib-flip.npz: arrays ``paths`` and
``vectors``, identity = the folder of each path) the centres and the noise are drawn from
Gaussians fitted to them (the mean face, the between-identity covariance and the pooled
within-identity covariance), so the cloud has dlib's shape: not centred on the origin and far from
isotropic, which is what an IVF's coarse quantiser has to cope with. Otherwise, or when --dim differs
from the file's, it falls back to isotropic clusters (centres uniform on the sphere,
same-identity cosine about 0.5-0.9, different-identity cosine near 0) and says so. Either way it
prints the same- and different-identity cosines of the synthetic faces (and of the real ones), so
that the realism can be judged. When fitted, it also runs a small IVF (as many faces per list as
the main one) on the real embeddings, with held-out photos as queries, and on synthetic galleries
of the same size: if the fitted faces are harder for an IVF than real ones (they lack the finer
structure of real faces, groups of similar-looking people), the main recall figures are pessimistic.

Memory: the vectors are generated in chunks into one array (1M x 128 float32 = 512 MB; x4 with
--dim 512); exact search holds a second copy, freed before the approximate index is built. The
peak resident memory is printed.

Machine facts that matter: the core count (builds and the ground truth use every core; the timed
searches use one, ``faiss.omp_set_num_threads(1)``, as one service worker answering one request
would) and the CPU's SIMD support (faiss's distance code).

Run (from the project root):

    .venv/bin/python bench/index_types.py                   # 1M faces, d=128, nprobe 32..512
    .venv/bin/python bench/index_types.py --dim 512         # insightface-sized vectors
    .venv/bin/python bench/index_types.py --nprobes 64,256,4096   # 4096 = every list: the quantisation ceiling
    .venv/bin/python bench/index_types.py --factory IVF4096,SQ8   # compare another type
    .venv/bin/python bench/index_types.py --quick           # a smoke run: 100,000 faces
    .venv/bin/python bench/index_types.py --json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import latency_summary, machine_facts, peak_rss_mb, print_facts, print_json, say, table

DEFAULT_STATS = Path("/work/cache/lfw-dlib-flip.npz")
#: Identities generated per chunk: a few tens of MB of temporaries at d=128.
CHUNK_IDENTITIES = 50_000


# -- the synthetic faces ---------------------------------------------------------------------


@dataclass
class FaceModel:
    """How identity centres and photos are drawn. ``between``/``within`` are matrix square roots of
    the covariances (Gaussian model), or None for the isotropic fallback."""

    dimension: int
    source: str
    mean: np.ndarray | None = None
    between: np.ndarray | None = None
    within: np.ndarray | None = None

    @property
    def isotropic(self) -> bool:
        return self.between is None

    def centres(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` identity centres, and each identity's noise scale."""
        z = rng.standard_normal((count, self.dimension), dtype=np.float32)
        if self.isotropic:
            # Noise of norm s around a unit centre gives same-identity cosines near 1 / (1 + s^2):
            # s in [0.33, 1] spreads them over 0.5-0.9, some people more variable than others.
            scales = rng.uniform(0.33, 1.0, count).astype(np.float32)
            return normalise(z), scales
        return self.mean + z @ self.between, np.ones(count, np.float32)

    def photos(self, rng: np.random.Generator, centres: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """One L2-normalised photo per row of ``centres``."""
        z = rng.standard_normal(centres.shape, dtype=np.float32)
        shaped = z / np.sqrt(self.dimension) if self.isotropic else z @ self.within
        return normalise(centres + shaped * scales[:, None])


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def sqrtm_psd(matrix: np.ndarray) -> tuple[np.ndarray, int]:
    """Symmetric square root of a covariance; negative eigenvalues (estimation noise) become 0."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    clipped = int((values < 0).sum())
    root = (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T
    return root.astype(np.float32), clipped


def load_real(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        vectors = normalise(data["vectors"])
        labels = np.array([Path(str(p)).parent.name for p in data["paths"]])
    return vectors, labels


def fit_model(vectors: np.ndarray, labels: np.ndarray, path: Path) -> FaceModel:
    """Gaussians for centres and photos, fitted to real embeddings.

    Within: the deviations from each person's mean, pooled over people with two or more photos
    (divided by photos - people, which makes it unbiased). Between: the covariance of one photo per
    person minus the within part, so that a person with 500 photos weighs as much as one with one.
    """
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    dimension = vectors.shape[1]
    sums = np.zeros((len(counts), dimension), np.float64)
    np.add.at(sums, inverse, vectors)
    means = sums / counts[:, None]
    multi = counts[inverse] >= 2
    deviations = (vectors - means[inverse])[multi]
    people_multi = int((counts >= 2).sum())
    within = deviations.T @ deviations / max(len(deviations) - people_multi, 1)
    first = np.unique(inverse, return_index=True)[1]
    one_each = vectors[first].astype(np.float64)
    total = np.cov(one_each, rowvar=False)
    between_root, clipped = sqrtm_psd(total - within)
    within_root, _ = sqrtm_psd(within)
    source = (
        f"Gaussians fitted to {path} ({len(vectors)} faces of {len(counts)} people, {people_multi} with 2+ photos"
        + (f"; {clipped} negative between-identity eigenvalues set to 0)" if clipped else ")")
    )
    return FaceModel(dimension, source, one_each.mean(axis=0).astype(np.float32), between_root, within_root)


def photo_counts(rng: np.random.Generator, total: int, most: int, skew: float) -> np.ndarray:
    """Photos per identity, 1..most with P(k) ~ k^-skew, adding up to exactly ``total``."""
    k = np.arange(1, most + 1)
    p = k**-skew / (k**-skew).sum()
    expected = float((k * p).sum())
    counts = rng.choice(k, size=int(total / expected * 1.05) + 16, p=p)
    while counts.sum() < total:
        counts = np.concatenate([counts, rng.choice(k, size=len(counts) // 10 + 16, p=p)])
    end = int(np.searchsorted(np.cumsum(counts), total)) + 1
    counts = counts[:end].copy()
    counts[-1] -= int(counts.sum()) - total
    return counts


def generate(
    model: FaceModel, n: int, queries: int, rng: np.random.Generator, counts: np.ndarray, quiet: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The gallery (n x d, in chunks into one array), present and absent queries, and the
    identity of each present query."""
    vectors = np.empty((n, model.dimension), np.float32)
    present_ids = np.sort(rng.choice(len(counts), size=min(queries, len(counts)), replace=False))
    present_centres = np.empty((len(present_ids), model.dimension), np.float32)
    present_scales = np.empty(len(present_ids), np.float32)
    row = 0
    for first in range(0, len(counts), CHUNK_IDENTITIES):
        last = min(first + CHUNK_IDENTITIES, len(counts))
        centres, scales = model.centres(rng, last - first)
        # Keep the centres of the people that present queries will photograph again, and only those.
        wanted = (present_ids >= first) & (present_ids < last)
        present_centres[wanted] = centres[present_ids[wanted] - first]
        present_scales[wanted] = scales[present_ids[wanted] - first]
        chunk = counts[first:last]
        photos = model.photos(rng, np.repeat(centres, chunk, axis=0), np.repeat(scales, chunk))
        vectors[row : row + len(photos)] = photos
        row += len(photos)
        say(f"  generated {row:,} / {n:,}", quiet=quiet)
    present = model.photos(rng, present_centres, present_scales)
    absent = model.photos(rng, *model.centres(rng, queries))
    return vectors, present, absent, present_ids


def cosines(model: FaceModel, rng: np.random.Generator, pairs: int = 5000) -> dict[str, dict[str, float]]:
    """Same- and different-identity cosines of freshly drawn synthetic faces."""
    centres, scales = model.centres(rng, pairs)
    a, b = model.photos(rng, centres, scales), model.photos(rng, centres, scales)
    same = (a * b).sum(axis=1)
    different = (a * np.roll(b, 1, axis=0)).sum(axis=1)
    return {"same": describe(same), "different": describe(different)}


def real_cosines(vectors: np.ndarray, labels: np.ndarray, rng: np.random.Generator, pairs: int = 5000) -> dict:
    """The same figures for real faces: at most 10 photos per person, so that one person with 500
    photos does not make up the genuine pairs."""
    order = np.argsort(labels, kind="stable")
    same: list[float] = []
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and labels[order[end]] == labels[order[start]]:
            end += 1
        members = vectors[order[start:end][:10]]
        if len(members) >= 2:
            sims = members @ members.T
            same.extend(sims[np.triu_indices(len(members), 1)].tolist())
        start = end
    i, j = rng.integers(0, len(vectors), (2, pairs * 2))
    keep = labels[i] != labels[j]
    different = (vectors[i[keep]] * vectors[j[keep]]).sum(axis=1)[:pairs]
    return {"same": describe(np.asarray(same)), "different": describe(different)}


def describe(values: np.ndarray) -> dict[str, float]:
    p5, p50, p95 = np.percentile(values, [5, 50, 95])
    return {"mean": float(values.mean()), "p5": float(p5), "p50": float(p50), "p95": float(p95)}


# -- the indexes -----------------------------------------------------------------------------


def index_bytes(index) -> int:
    """Bytes of the serialised index, as ``faiss.serialize_index(index).nbytes`` would say, counted
    as written instead: at 1M faces the serialised copy would add 512 MB to the peak."""
    import faiss

    written = [0]

    def count(chunk: bytes) -> None:
        written[0] += len(chunk)

    faiss.write_index(index, faiss.PyCallbackIOWriter(count))
    return written[0]


def timed_searches(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """One query at a time, as the service searches; the caller sets the thread count."""
    from indexer.store import cosine_scores

    scores = np.empty((len(queries), k), np.float32)
    ids = np.empty((len(queries), k), np.int64)
    seconds = []
    for i in range(len(queries)):
        query = queries[i : i + 1]
        began = time.perf_counter()
        s, j = index.search(query, k)
        seconds.append(time.perf_counter() - began)
        # Approximate types rank by L2 distance; compare them as the service does, as cosines.
        scores[i], ids[i] = cosine_scores(index, s[0]), j[0]
    return scores, ids, seconds


def accuracy(ids: np.ndarray, scores: np.ndarray, exact_ids: np.ndarray, exact_scores: np.ndarray) -> dict:
    error = np.abs(scores[:, 0] - exact_scores[:, 0])
    return {
        "recall_at_1": float((ids[:, 0] == exact_ids[:, 0]).mean()),
        "top1_score_error_mean": float(error.mean()),
        "top1_score_error_max": float(error.max()),
    }


def result_row(
    kind: str,
    nprobe: int | None,
    build: float,
    bytes_per_face: float,
    seconds: list[float],
    parts: dict[str, slice],
    ids: np.ndarray,
    scores: np.ndarray,
    exact_ids: np.ndarray,
    exact_scores: np.ndarray,
) -> dict[str, Any]:
    row: dict[str, Any] = {"type": kind, "nprobe": nprobe, "build_s": build, "bytes_per_face": bytes_per_face}
    row.update({f"query_{key}": value for key, value in latency_summary(seconds).items()})
    for name, part in parts.items():
        measured = accuracy(ids[part], scores[part], exact_ids[part], exact_scores[part])
        row.update({f"{name}_{key}": value for key, value in measured.items()})
    return row


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--faces", type=int, default=1_000_000, help="faces in the dataset (default 1,000,000)")
    parser.add_argument("--dim", type=int, default=128, help="embedding dimension: 128 dlib, 512 insightface")
    parser.add_argument("--queries", type=int, default=1000, help="present queries, and as many absent (default 1000)")
    parser.add_argument("--nprobes", default="32,64,128,256,512", help="nprobe values to try")
    parser.add_argument("--factory", help="FAISS factory to compare (default: the store's choice for --faces)")
    parser.add_argument("--exact-timing", type=int, default=300, help="single queries timed on exact search")
    parser.add_argument("--stats", type=Path, default=DEFAULT_STATS, help=f"real embeddings (default {DEFAULT_STATS})")
    parser.add_argument("--isotropic", action="store_true", help="ignore --stats: isotropic clusters")
    parser.add_argument("--max-photos", type=int, default=10, help="most photos of one identity (default 10)")
    parser.add_argument("--skew", type=float, default=1.5, help="P(k photos) ~ k^-skew (default 1.5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 100,000 faces, 200 queries of each kind")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args(argv)
    if args.quick:
        args.faces, args.queries, args.exact_timing = 100_000, 200, 100
    try:
        args.nprobes = sorted({int(p) for p in args.nprobes.split(",") if p.strip()})
    except ValueError:
        parser.error("--nprobes takes integers separated by commas, e.g. 8,16,32")
    if not args.nprobes or min(args.nprobes) < 1 or args.faces < 1000 or args.queries < 1:
        parser.error("--nprobes must be at least 1, --faces at least 1000, --queries at least 1")
    return args


def choose_model(
    args: argparse.Namespace,
) -> tuple[FaceModel, tuple[np.ndarray, np.ndarray] | None, str | None]:
    """The face model, the real (vectors, labels) when it was fitted to them, and why not when not."""
    if args.isotropic:
        return FaceModel(args.dim, "isotropic clusters (--isotropic)"), None, None
    if not args.stats.is_file():
        why = f"{args.stats} does not exist"
    else:
        vectors, labels = load_real(args.stats)
        if vectors.shape[1] == args.dim:
            return fit_model(vectors, labels, args.stats), (vectors, labels), None
        why = f"{args.stats} holds {vectors.shape[1]}-d vectors, not {args.dim}-d"
    return FaceModel(args.dim, f"isotropic clusters (fallback: {why})"), None, why


def check_model(
    real: tuple[np.ndarray, np.ndarray], model: FaceModel, factory: str, faces_per_list: float, rng: np.random.Generator
) -> dict[str, Any]:
    """Is the fitted model as hard for an IVF as real faces? Recall@1 against exact search on the
    real embeddings (held-out photos as queries) and on synthetic galleries of the same size.

    The Gaussians keep the mean and the spreads but not the finer structure of real faces (groups
    of similar-looking people), which an IVF's lists exploit; so synthetic recall below the real
    one means the main figures are on the pessimistic side.
    """
    import faiss

    from indexer.store import build_faiss_index

    vectors, labels = real
    _, person, counts = np.unique(labels, return_inverse=True, return_counts=True)
    queries_each = min(500, int((counts >= 2).sum()), int((counts == 1).sum()))
    seen: set[int] = set()
    present: list[int] = []
    absent: list[int] = []
    for i in rng.permutation(len(vectors)):
        p = int(person[i])
        if p in seen:
            continue
        if counts[p] >= 2 and len(present) < queries_each:
            present.append(i)
            seen.add(p)
        elif counts[p] == 1 and len(absent) < queries_each:
            absent.append(i)
            seen.add(p)
    gallery = np.ones(len(vectors), bool)
    gallery[present + absent] = False
    n = int(gallery.sum())
    lists = max(4, 2 ** round(np.log2(n / faces_per_list)))
    kind = factory.split(",", 1)[1] if factory.startswith("IVF") and "," in factory else "SQfp16"
    small = f"IVF{lists},{kind}"
    nprobes = [p for p in (1, 2, 4, 8, 16) if p <= lists]
    same_counts = photo_counts(rng, n, 10, 1.5)
    cases = {"real": (vectors[gallery], vectors[present], vectors[absent])}
    cases["fitted model"] = model_case(model, n, queries_each, same_counts, rng)
    cases["isotropic"] = model_case(FaceModel(model.dimension, "isotropic"), n, queries_each, same_counts, rng)
    rows = []
    for name, (faces, present_q, absent_q) in cases.items():
        index = build_faiss_index(faces, np.arange(len(faces)), small)
        ivf = faiss.extract_index_ivf(index)
        for label, queries in (("present", present_q), ("absent", absent_q)):
            exact = np.argmax(queries @ faces.T, axis=1)
            recalls = []
            for nprobe in nprobes:
                ivf.nprobe = nprobe
                _, found = index.search(np.ascontiguousarray(queries), 1)
                recalls.append(float((found[:, 0] == exact).mean()))
            rows.append({"faces": name, "queries": label, "recall_at_1": recalls})
    return {"factory": small, "gallery": n, "queries_each": queries_each, "nprobes": nprobes, "rows": rows}


def model_case(
    model: FaceModel, n: int, queries: int, counts: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gallery, present, absent, _ = generate(model, n, queries, rng, counts, quiet=True)
    return gallery, present, absent


def run(args: argparse.Namespace) -> dict[str, Any]:
    import faiss

    from indexer.check import NEIGHBOURS
    from indexer.store import EXACT_SEARCH_LIMIT, build_faiss_index, choose_index_type, default_nprobe

    quiet = args.json
    cores = os.cpu_count() or 1
    rng = np.random.default_rng(args.seed)
    model, real_data, fallback = choose_model(args)
    if fallback:
        say(f"warning: {fallback}; the faces are isotropic clusters, not dlib-shaped", quiet=quiet)
    if args.factory:
        factory, chosen_for = args.factory, "--factory"
    elif args.faces > EXACT_SEARCH_LIMIT:
        factory, chosen_for = choose_index_type(args.faces), f"choose_index_type({args.faces})"
    else:
        # Below the limit the store searches exactly; compare the type it would choose just above it.
        factory, chosen_for = choose_index_type(EXACT_SEARCH_LIMIT + 1), f"choose_index_type({EXACT_SEARCH_LIMIT + 1})"
    k = NEIGHBOURS

    say(f"generating {args.faces:,} faces ({model.dimension}-d): {model.source}", quiet=quiet)
    started = time.perf_counter()
    counts = photo_counts(rng, args.faces, args.max_photos, args.skew)
    vectors, present, absent, present_people = generate(model, args.faces, args.queries, rng, counts, quiet)
    ids = np.arange(args.faces, dtype=np.int64)
    queries = np.ascontiguousarray(np.vstack([present, absent]))
    kinds = {"present": slice(0, len(present)), "absent": slice(len(present), len(queries))}
    generated = time.perf_counter() - started
    synthetic = cosines(model, rng)
    real = real_cosines(*real_data, rng) if real_data else None

    faiss.omp_set_num_threads(cores)
    say("building exact search...", quiet=quiet)
    began = time.perf_counter()
    exact = build_faiss_index(vectors, ids, "IDMap2,Flat")
    exact_build = time.perf_counter() - began
    exact_size = index_bytes(exact)
    # The ground truth for every query in one batch, on every core.
    exact_scores, exact_ids = exact.search(queries, k)
    # A face id's identity, from the photo counts: ids are handed out identity by identity.
    first_person = np.searchsorted(np.cumsum(counts), exact_ids[kinds["present"], 0], side="right")
    person_first = float((first_person == present_people).mean())
    faiss.omp_set_num_threads(1)
    timing = np.linspace(0, len(queries) - 1, min(args.exact_timing, len(queries))).astype(int)
    _, _, exact_seconds = timed_searches(exact, queries[timing], k)
    rows = [
        result_row(
            "IDMap2,Flat",
            None,
            exact_build,
            exact_size / args.faces,
            exact_seconds,
            kinds,
            exact_ids,
            exact_scores,
            exact_ids,
            exact_scores,
        )
    ]
    del exact

    faiss.omp_set_num_threads(cores)
    say(f"building {factory} (train + add)...", quiet=quiet)
    began = time.perf_counter()
    approximate = build_faiss_index(vectors, ids, factory)
    approximate_build = time.perf_counter() - began
    approximate_size = index_bytes(approximate)
    del vectors
    try:
        ivf = faiss.extract_index_ivf(approximate)
    except RuntimeError:
        ivf = None  # a --factory without an inverted file has no nprobe to vary
    nlist = int(ivf.nlist) if ivf is not None else None
    faiss.omp_set_num_threads(1)
    probes: list[int | None] = [p for p in args.nprobes if p <= nlist] if ivf is not None else [None]
    skipped = [p for p in args.nprobes if p > nlist] if ivf is not None else []
    for nprobe in probes:
        say(f"searching {factory}" + (f" at nprobe {nprobe}..." if nprobe else "..."), quiet=quiet)
        if ivf is not None:
            ivf.nprobe = nprobe
        scores, found, seconds = timed_searches(approximate, queries, k)
        rows.append(
            result_row(
                factory,
                nprobe,
                approximate_build,
                approximate_size / args.faces,
                seconds,
                kinds,
                found,
                scores,
                exact_ids,
                exact_scores,
            )
        )
    faiss.omp_set_num_threads(cores)

    del approximate
    model_check = None
    if real_data and nlist:
        say("checking the face model against the real faces...", quiet=quiet)
        model_check = check_model(real_data, model, factory, args.faces / nlist, rng)

    good = [r["nprobe"] for r in rows[1:] if r["nprobe"] and r["present_recall_at_1"] >= 0.99]
    return {
        "machine": machine_facts(faiss_threads_for_queries=1, faiss_compile_options=_simd()),
        "settings": {
            "faces": args.faces,
            "identities": len(counts),
            "dimension": model.dimension,
            "present_queries": len(present),
            "absent_queries": len(absent),
            "k": k,
            "factory": factory,
            "factory_from": chosen_for,
            "nlist": nlist,
            "skipped_nprobes": skipped,
            "exact_search_limit": EXACT_SEARCH_LIMIT,
            "default_nprobe": default_nprobe(nlist) if nlist else None,
            "exact_timing_queries": len(timing),
            "seed": args.seed,
            "quick": args.quick,
        },
        "faces_model": {"source": model.source, "isotropic": model.isotropic, "fallback": fallback},
        "cosines": {"synthetic": synthetic, "real": real},
        "generate_s": generated,
        "rows": rows,
        "exact_person_first_present": person_first,
        "model_check": model_check,
        "smallest_nprobe_recall_0_99_present": good[0] if good else None,
        "peak_rss_mb": peak_rss_mb(),
    }


def _simd() -> str | None:
    try:
        import faiss

        return faiss.get_compile_options()
    except (ImportError, AttributeError):
        return None


def report(result: dict[str, Any]) -> None:
    print_facts(result["machine"])
    s = result["settings"]
    print(
        f"\n{s['faces']:,} synthetic faces of {s['identities']:,} identities, {s['dimension']}-d; "
        f"{s['present_queries']} present and {s['absent_queries']} absent queries, k={s['k']}"
    )
    print(f"faces: {result['faces_model']['source']}")
    if result["faces_model"]["fallback"]:
        print("  (NOT dlib-shaped: the recall figures are for isotropic clusters; rerun when the file exists)")
    cos_rows = []
    for name, figures in (("synthetic", result["cosines"]["synthetic"]), ("real", result["cosines"]["real"])):
        if figures:
            for pair in ("same", "different"):
                f = figures[pair]
                cos_rows.append([name, pair, f["mean"], f["p5"], f["p50"], f["p95"]])
    print(table(["faces", "identity", "mean cos", "p5", "p50", "p95"], cos_rows, digits=[0, 0, 3, 3, 3, 3]))
    print(
        f"\nexact search against {s['factory']} ({s['factory_from']}"
        + (f", {s['nlist']} lists" if s["nlist"] else "")
        + "); ms per query: "
        f"one query at a time on one thread ({s['exact_timing_queries']} queries timed for exact search)"
    )
    print(
        table(
            [
                "type",
                "nprobe",
                "build s",
                "bytes/face",
                "ms/query",
                "p95 ms",
                "R@1 present",
                "R@1 absent",
                "score err present",
                "max",
                "score err absent",
                "max",
            ],
            [
                [
                    r["type"],
                    r["nprobe"],
                    r["build_s"],
                    r["bytes_per_face"],
                    r["query_mean_ms"],
                    r["query_p95_ms"],
                    r["present_recall_at_1"],
                    r["absent_recall_at_1"],
                    r["present_top1_score_error_mean"],
                    r["present_top1_score_error_max"],
                    r["absent_top1_score_error_mean"],
                    r["absent_top1_score_error_max"],
                ]
                for r in result["rows"]
            ],
            digits=[0, 0, 2, 1, 3, 3, 3, 3, 4, 4, 4, 4],
        )
    )
    print(
        f"exact search puts the queried person first for {100 * result['exact_person_first_present']:.1f}% "
        "of present queries (otherwise a stranger scores higher: the faces, not the index)"
    )
    if s["skipped_nprobes"]:
        print(f"skipped nprobe {s['skipped_nprobes']}: more than the {s['nlist']} lists")
    best = result["smallest_nprobe_recall_0_99_present"]
    print(
        f"\nsmallest nprobe with recall@1 >= 0.99 on present queries: {best if best else 'none of those tried'} "
        f"(the store probes {s['default_nprobe']} of {s['nlist']} lists)"
    )
    check = result["model_check"]
    if check:
        print(
            f"\nthe face model against real faces: {check['factory']} over {check['gallery']:,} faces, "
            f"{check['queries_each']} held-out queries of each kind, recall@1 against exact search"
        )
        print(
            table(
                ["faces", "queries", *(f"nprobe {p}" for p in check["nprobes"])],
                [[r["faces"], r["queries"], *r["recall_at_1"]] for r in check["rows"]],
                digits=[0, 0, *(3 for _ in check["nprobes"])],
            )
        )
        mean = {
            name: np.mean([r["recall_at_1"] for r in check["rows"] if r["faces"] == name])
            for name in ("real", "fitted model")
        }
        side = "pessimistic" if mean["fitted model"] < mean["real"] else "optimistic"
        print(
            f"mean recall@1: real {mean['real']:.3f}, fitted model {mean['fitted model']:.3f}: "
            f"the figures above are likely on the {side} side"
        )
    print(f"generating the faces took {result['generate_s']:.1f} s; peak memory {result['peak_rss_mb']:.0f} MB")
    print(
        "\nnotes: 'score err' is |approximate - exact| best score (cosine); the confidence uses the best score"
        "\nalone, so for absent queries a small error matters more than which stranger comes first."
        "\nBuild s is train + add on every core; bytes/face is the serialised index over the faces."
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    if args.json:
        print_json(result)
    else:
        report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
