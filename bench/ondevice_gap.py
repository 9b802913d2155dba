"""How far the on-device check's answers are from the server's, on the same photos.

The browser pipeline (static/face-pipeline.js: face-api's detector and landmarks, dlib's chip and
ResNet in onnxruntime-web) runs in headless Chromium on a page of photocheck's own service; the
server pipeline is DlibEmbedder. For each photo: the L2 distance between the two unit embeddings,
and whether the two quality measures agree. On LFW's open-set protocol (people E-J, seed 0, as
`photocheck eval --identities` runs it, the gallery embedded by the server as an indexer would)
the probes are searched with either embedding and their verdicts compared.

    python bench/ondevice_gap.py --cache /work/cache/lfw-dlib.npz --photos 500
    python bench/ondevice_gap.py --fit     # refit static/face-align.js's FACEAPI_TEMPLATE_5 on LFW A-D

The LFW server embeddings come from bench/lfw_embeddings.py's cache; the shared faces are embedded
here. Needs `make install` (build/ondevice) and Chromium.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _common import FACES, LFW, machine_facts, print_facts, print_json, say, table  # noqa: E402

from indexer import confidence as confidence_module  # noqa: E402
from indexer.embedders import create_embedder  # noqa: E402
from indexer.evaluation import CENTRE_REGION, identities_protocol  # noqa: E402
from indexer.images import load_image  # noqa: E402
from indexer.quality import GOOD_SHARPNESS, assess  # noqa: E402

TEMPLATE_5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)
FIVE_OF_68 = [45, 42, 36, 39, 33]


def serve_static():
    """photocheck's app (no index: only its pages and files are needed) on a free port; its URL."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    from service import create_app

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args) -> None:
            pass

    server = make_server("127.0.0.1", 0, create_app({}), threaded=True, request_handler=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def similarity(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity (M, t) with target ~ source @ M.T + t."""
    sm, tm = source.mean(0), target.mean(0)
    p, q = source - sm, target - tm
    norm = (p**2).sum()
    a = (p * q).sum() / norm
    b = (p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0]).sum() / norm
    m = np.array([[a, -b], [b, a]])
    return m, tm - m @ sm


def lfw_photos(people: str) -> list[Path]:
    return sorted(
        p
        for folder in sorted(LFW.iterdir())
        if folder.is_dir() and folder.name[0] in people
        for p in folder.glob("*.jpg")
    )


def fit(pipeline, embedder, photos: int, seed: int) -> None:
    """FACEAPI_TEMPLATE_5 and DETECTOR_BOX_IN_CHIP from photos of LFW people A-D (one per person)."""
    import dlib

    rng = random.Random(seed)
    by_person: dict[str, list[Path]] = {}
    for path in lfw_photos("ABCD"):
        by_person.setdefault(path.parent.name, []).append(path)
    chosen = [rng.choice(by_person[name]) for name in rng.sample(sorted(by_person), min(photos, len(by_person)))]
    in_template, boxes = [], []
    for path in chosen:
        data = path.read_bytes()
        pixels = load_image(data)
        faces = [f for f in embedder.detect(pixels) if not embedder.is_too_small(f)]
        if len(faces) != 1:
            continue
        face = faces[0]
        out = pipeline.embed(data, pick="largest")
        if out.get("landmarks") is None:
            continue
        det = embedder._full_object_detection(face)
        dlib5 = np.array([[det.part(i).x, det.part(i).y] for i in range(5)], float)
        m, t = similarity(dlib5, TEMPLATE_5)  # image -> dlib's template frame
        in_template.append(np.asarray(out["landmarks"])[FIVE_OF_68] @ m.T + t)
        details = dlib.get_face_chip_details(det, size=150, padding=0.25)
        scale = details.rect.width() / 150
        cx, cy = (details.rect.left() + details.rect.right()) / 2, (details.rect.top() + details.rect.bottom()) / 2
        x, y, w, h = face.box
        c, s = np.cos(-details.angle), np.sin(-details.angle)
        dx, dy = x + w / 2 - cx, y + h / 2 - cy
        boxes.append(((c * dx - s * dy) / scale + 75, (s * dx + c * dy) / scale + 75, min(w, h) / scale))
    template = np.mean(in_template, axis=0)
    box = np.mean(boxes, axis=0)
    print(f"fitted on {len(in_template)} LFW photos of people A-D (one face found by both)")
    print("FACEAPI_TEMPLATE_5 = [")
    for x, y in template:
        print(f"  [{x:.6f}, {y:.6f}],")
    print("];")
    print(f"DETECTOR_BOX_IN_CHIP = {{ x: {box[0]:.1f}, y: {box[1]:.1f}, size: {box[2]:.1f} }};")


def shared_faces(pipeline, embedder) -> list[dict]:
    """Every shared photo: the server's face 0 (the largest), and the browser's face at the same place
    (the two detectors may order two faces of nearly one size differently; the person picks either way)."""
    rows = []
    for path in sorted(p for p in FACES.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
        data = path.read_bytes()
        pixels = load_image(data)
        faces = embedder.detect(pixels)
        x, y, w, h = faces[0].box if faces else (0, 0, 0, 0)
        out = pipeline.embed(data, pick=[x + w / 2, y + h / 2] if faces else "largest")
        largest = pipeline.embed(data, pick="largest")["face"] if len(out["faces"]) > 1 else out["face"]
        row = {
            "photo": str(path.relative_to(FACES)),
            "server_faces": len(faces),
            "browser_faces": len(out["faces"]),
            "same_face_0": largest == out["face"],
        }
        if faces and out.get("embedding") is not None:
            server = embedder.embed(pixels, [faces[0]])[0]
            quality = assess(pixels, faces[0])
            row.update(
                distance=float(np.linalg.norm(out["embedding"] - server)),
                server_size=quality.size,
                browser_size=out["quality"]["size"],
                server_sharpness=quality.sharpness,
                browser_sharpness=out["quality"]["sharpness"],
            )
        rows.append(row)
    return rows


def _save(path: Path, kept: dict[str, tuple[np.ndarray, bool, float]]) -> None:
    names = sorted(kept)
    np.savez(
        path,
        photos=np.asarray(names),
        vectors=np.stack([kept[n][0] for n in names]),
        detected=np.asarray([kept[n][1] for n in names]),
        sharpness=np.asarray([kept[n][2] for n in names]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--cache", type=Path, default=Path("/work/cache/lfw-dlib.npz"), help="bench/lfw_embeddings.py's file."
    )
    parser.add_argument("--photos", type=int, default=500, help="LFW photos (people E-J): the protocol's probes first.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fit", action="store_true", help="Refit the alignment template on LFW A-D instead.")
    parser.add_argument("--fit-photos", type=int, default=300)
    parser.add_argument("--json", type=Path, help="Write every figure (and each photo's) here.")
    parser.add_argument(
        "--browser-results",
        type=Path,
        help="Keep the browser's embeddings in this .npz and reuse those already there (the slow half).",
    )
    args = parser.parse_args()

    from browser import chromium
    from ondevice_page import BrowserPipeline

    embedder = create_embedder("dlib")
    embedder.load()
    server, url = serve_static()
    facts = machine_facts()
    with chromium() as browser:
        page = browser.new_page()
        started = time.monotonic()
        pipeline = BrowserPipeline(page, url)
        say(f"pipeline loaded in {time.monotonic() - started:.1f}s ({pipeline.download_bytes / 1e6:.1f} MB)")
        if args.fit:
            fit(pipeline, embedder, args.fit_photos, args.seed)
            return

        shared = shared_faces(pipeline, embedder)
        with tempfile.TemporaryDirectory() as folder:
            # The protocol over people E-J, as the README's `photocheck eval --identities` runs it.
            for person in sorted(LFW.iterdir()):
                if person.is_dir() and person.name[0] in "EFGHIJ":
                    (Path(folder) / person.name).symlink_to(person)
            protocol = identities_protocol(Path(folder), seed=args.seed, max_photos=3)
            extra = identities_protocol(Path(folder), seed=args.seed + 1, max_photos=3)
        relative = lambda p: f"{p.parent.name}/{p.name}"  # noqa: E731
        probes = [relative(p) for p in protocol.probes]
        more = [relative(p) for p in extra.probes if relative(p) not in set(probes)]
        photos = (probes + more)[: max(args.photos, len(probes))]
        kept: dict[str, tuple[np.ndarray, bool, float]] = {}
        if args.browser_results and args.browser_results.exists():
            saved = np.load(args.browser_results)
            for name, vector, found, sharpness in zip(
                saved["photos"], saved["vectors"], saved["detected"], saved["sharpness"], strict=True
            ):
                kept[str(name)] = (vector, bool(found), float(sharpness))
        started = time.monotonic()
        for n, name in enumerate(photos):
            if name not in kept:
                out = pipeline.embed((LFW / name).read_bytes(), pick="centre", centre_region=CENTRE_REGION, min_size=40)
                kept[name] = (out["embedding"], bool(out["detected"]), float(out["quality"]["sharpness"]))
            if n % 50 == 0:
                say(f"{n}/{len(photos)} LFW photos, {time.monotonic() - started:.0f}s")
                if args.browser_results:
                    _save(args.browser_results, kept)
        if args.browser_results:
            _save(args.browser_results, kept)
    server.shutdown()
    if not args.cache.exists():
        say(f"{args.cache} is not there yet: the browser's half is saved; run again with the same --browser-results")
        return
    cache = np.load(args.cache)
    row_of = {str(p): i for i, p in enumerate(cache["paths"])}
    browser_vectors = {name: kept[name][0] for name in photos}
    lfw_rows = []
    for name in photos:
        vector, found, sharpness = kept[name]
        lfw_rows.append(
            {
                "photo": name,
                "distance": float(np.linalg.norm(vector - cache["vectors"][row_of[name]])),
                "browser_detected": found,
                "server_detected": bool(cache["detected"][row_of[name]]),
                "browser_low": sharpness < GOOD_SHARPNESS,
            }
        )

    distances = np.array([r["distance"] for r in lfw_rows])
    shared_distances = np.array([r["distance"] for r in shared if "distance" in r])
    both = np.array([r["browser_detected"] and r["server_detected"] for r in lfw_rows])

    # Verdicts on the open-set protocol: the gallery as the server indexed it, the probes both ways.
    config = confidence_module.default_config(embedder.describe())
    gallery = np.stack([cache["vectors"][row_of[relative(p)]] for p in protocol.gallery])
    verdicts = {"server": [], "browser": []}
    best = {"server": [], "browser": []}
    for name in probes:
        for mode, vector in (("server", cache["vectors"][row_of[name]]), ("browser", browser_vectors[name])):
            scores = np.sort(gallery @ vector)[::-1][:64]
            value = confidence_module.confidence(scores, len(gallery), config)
            verdicts[mode].append(confidence_module.verdict(value, config))
            best[mode].append(float(scores[0]))
    present = protocol.present
    agree = np.array(verdicts["server"]) == np.array(verdicts["browser"])
    shift = np.array(best["browser"]) - np.array(best["server"])

    def rates(mode: str, level: str) -> dict[str, float]:
        said = np.array([v == "match" or (level == "possible" and v == "possible") for v in verdicts[mode]])
        return {"fnir": float((~said[present]).mean()), "fpir": float(said[~present].mean())}

    summary = {
        "lfw_photos": len(lfw_rows),
        "lfw_gap": {
            "mean": float(distances.mean()),
            "median": float(np.median(distances)),
            "p99": float(np.percentile(distances, 99)),
            "max": float(distances.max()),
            "mean_both_detected": float(distances[both].mean()),
            "detected_server": int(sum(r["server_detected"] for r in lfw_rows)),
            "detected_browser": int(sum(r["browser_detected"] for r in lfw_rows)),
        },
        "shared_faces": {
            "photos": len(shared),
            "compared": len(shared_distances),
            "mean": float(shared_distances.mean()),
            "p99": float(np.percentile(shared_distances, 99)),
            "max": float(shared_distances.max()),
            "face_0_differs": [r["photo"] for r in shared if not r["same_face_0"]],
        },
        "protocol": {
            "probes": len(probes),
            "gallery": len(gallery),
            "verdict_agreement": float(agree.mean()),
            "disagreements": [
                (n, s, b)
                for n, s, b, a in zip(probes, verdicts["server"], verdicts["browser"], agree, strict=True)
                if not a
            ],
            "best_score_shift": {
                "present_mean": float(shift[present].mean()),
                "absent_mean": float(shift[~present].mean()),
                "sd": float(shift.std()),
            },
            "server": {"match": rates("server", "match"), "possible_or_match": rates("server", "possible")},
            "browser": {"match": rates("browser", "match"), "possible_or_match": rates("browser", "possible")},
        },
    }
    print_facts(facts)
    print(
        table(
            ["photos", "n", "mean", "median", "p99", "max"],
            [
                [
                    "LFW E-J",
                    len(distances),
                    distances.mean(),
                    np.median(distances),
                    np.percentile(distances, 99),
                    distances.max(),
                ],
                [
                    "shared faces",
                    len(shared_distances),
                    shared_distances.mean(),
                    np.median(shared_distances),
                    np.percentile(shared_distances, 99),
                    shared_distances.max(),
                ],
            ],
            digits=4,
        )
    )
    print(f"shared photos whose face 0 (the largest) differs: {summary['shared_faces']['face_0_differs']}")
    p = summary["protocol"]
    print(f"open-set protocol (seed {args.seed}): {p['probes']} probes, verdicts agree on {p['verdict_agreement']:.1%}")
    if p["disagreements"]:
        steps = Counter(f"{server} -> {browser}" for _, server, browser in p["disagreements"])
        print("  where they differ, server -> browser: " + ", ".join(f"{k} {v}" for k, v in steps.most_common()))
    for mode in ("server", "browser"):
        m, q = p[mode]["match"], p[mode]["possible_or_match"]
        print(
            f"  {mode:<8} match: FNIR {m['fnir']:.1%} FPIR {m['fpir']:.1%}; "
            f"possible or match: FNIR {q['fnir']:.1%} FPIR {q['fpir']:.1%}"
        )
    s = p["best_score_shift"]
    print(
        f"  best score, browser - server: present {s['present_mean']:+.4f}, "
        f"absent {s['absent_mean']:+.4f} (sd {s['sd']:.4f})"
    )
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "lfw": lfw_rows, "shared": shared}, indent=1))
        print_json({"written": str(args.json)})


if __name__ == "__main__":
    main()
