"""How often the not_same_person refusal refuses one person's photos, and how often two people's.

Photos sent as one person's are refused when two of their faces score below the 0.1% quantile of
the index's genuine score distribution (indexer/template.py). On LFW (bench/lfw_embeddings.py's
cache: photos in which a face was detected; Elena_de_Chavez_0001 and Barbara_Boxer_0001, which show
other people, left out) this counts:

- pairs: two photos of one person (up to 20 pairs per person, so that George W. Bush's 530 photos do
  not decide the figure; and every pair, with the people refused) and two photos of different people
  (random pairs), refused or not;
- sets: K photos of one person, and K photos of which one is a stranger's, as `check --same-person`
  gets them, refused or not.

The shared faces (../shared/faces/people: 5 people, 13 photos) are embedded here and every pair counted.

    python bench/same_person.py --cache /work/cache/lfw-dlib.npz
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import FACES, machine_facts, print_facts, table  # noqa: E402

from indexer.confidence import default_config, score_model  # noqa: E402
from indexer.embedders import create_embedder  # noqa: E402
from indexer.evaluation import MISLABELLED  # noqa: E402
from indexer.images import load_image  # noqa: E402
from indexer.quality import assess  # noqa: E402
from indexer.template import SAME_PERSON_QUANTILE, disagreeing_pairs, same_person_threshold  # noqa: E402


def lfw_people(cache: Path) -> tuple[dict[str, np.ndarray], str]:
    data = np.load(cache)
    keep = data["detected"] & data["readable"] & ~np.isin(data["paths"], list(MISLABELLED))
    people: dict[str, list[np.ndarray]] = {}
    for person, vector in zip(data["people"][keep], data["vectors"][keep], strict=True):
        people.setdefault(str(person), []).append(vector)
    return {name: np.stack(vectors) for name, vectors in people.items()}, str(data["model"])


def pair_rates(people: dict[str, np.ndarray], threshold: float, rng: np.random.Generator, strangers: int) -> dict:
    genuine = []
    every = refused = 0
    refused_people = set()
    for name, vectors in people.items():
        scores = vectors @ vectors.T
        upper = scores[np.triu_indices(len(vectors), 1)]
        every += len(upper)
        refused += int((upper < threshold).sum())
        if (upper < threshold).any():
            refused_people.add(name)
        pairs = list(itertools.combinations(range(len(vectors)), 2))
        for i in rng.permutation(len(pairs))[:20]:
            a, b = pairs[i]
            genuine.append(float(vectors[a] @ vectors[b]))
    names = list(people)
    impostor = []
    for _ in range(strangers):
        a, b = rng.choice(len(names), 2, replace=False)
        va, vb = people[names[a]], people[names[b]]
        impostor.append(float(va[rng.integers(len(va))] @ vb[rng.integers(len(vb))]))
    genuine_array, impostor_array = np.asarray(genuine), np.asarray(impostor)
    return {
        "all_genuine_pairs": every,
        "all_genuine_refused": refused,
        "refused_people": sorted(refused_people),
        "genuine_pairs": len(genuine),
        "genuine_refused": float((genuine_array < threshold).mean()),
        "impostor_pairs": len(impostor),
        "impostor_refused": float((impostor_array < threshold).mean()),
    }


def set_rates(people: dict[str, np.ndarray], config: dict, k: int, rng: np.random.Generator, sets: int) -> dict:
    """K photos of one person, and K photos of which the last is a stranger's: how often each is refused."""
    eligible = [name for name, vectors in people.items() if len(vectors) >= k]
    names = list(people)
    same = mixed = 0
    for _ in range(sets):
        person = eligible[rng.integers(len(eligible))]
        vectors = people[person]
        chosen = [vectors[i] for i in rng.choice(len(vectors), k, replace=False)]
        same += bool(disagreeing_pairs(chosen, [False] * k, config))
        stranger = person
        while stranger == person:
            stranger = names[rng.integers(len(names))]
        other = people[stranger][rng.integers(len(people[stranger]))]
        mixed += bool(disagreeing_pairs([*chosen[: k - 1], other], [False] * k, config))
    return {"k": k, "sets": sets, "people": len(eligible), "same_refused": same / sets, "mixed_refused": mixed / sets}


def shared_rates(config: dict) -> dict:
    embedder = create_embedder("dlib")
    embedder.load()
    found = []
    for path in sorted((FACES / "people").glob("*/*")):
        pixels = load_image(path.read_bytes())
        face = embedder.detect(pixels)[0]
        found.append((path.parent.name, embedder.embed(pixels, [face])[0], assess(pixels, face).low))
    same = different = same_refused = different_refused = 0
    for (a, va, la), (b, vb, lb) in itertools.combinations(found, 2):
        refused = bool(disagreeing_pairs([va, vb], [la, lb], config))
        if a == b:
            same, same_refused = same + 1, same_refused + refused
        else:
            different, different_refused = different + 1, different_refused + refused
    return {"same": same, "same_refused": same_refused, "different": different, "different_refused": different_refused}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path("/work/cache/lfw-dlib.npz"), help="lfw_embeddings.py's file")
    parser.add_argument("--strangers", type=int, default=200_000, help="Pairs of different people.")
    parser.add_argument("--sets", type=int, default=20_000, help="Sets of K photos per K.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    people, model = lfw_people(args.cache)
    config = default_config({"model": model})
    threshold = same_person_threshold(config)
    print_facts(machine_facts(model=model, seed=args.seed))
    print(
        f"refused below {threshold:.4f} (blurred: {same_person_threshold(config, low_quality=True):.4f}), the "
        f"{SAME_PERSON_QUANTILE:.1%} quantile of the shipped genuine distribution"
    )
    pairs = pair_rates(people, threshold, rng, args.strangers)
    print(
        table(
            ["LFW pairs", "pairs", "refused"],
            [
                ["one person", f"{pairs['genuine_pairs']:,}", f"{pairs['genuine_refused']:.2%}"],
                ["two people", f"{pairs['impostor_pairs']:,}", f"{pairs['impostor_refused']:.2%}"],
            ],
        )
    )
    print(
        f"every pair of one person's photos: {pairs['all_genuine_refused']} of {pairs['all_genuine_pairs']:,} refused "
        f"({', '.join(pairs['refused_people']) or 'nobody'})"
    )
    # What a stricter bar would trade (the refusal uses SAME_PERSON_QUANTILE).
    rows = []
    model = score_model(config)
    for quantile in (0.001, 0.002, 0.005, 0.01):
        bar = model.genuine_quantile(quantile)
        other = pair_rates(people, bar, np.random.default_rng(args.seed), args.strangers)
        rows.append(
            [
                f"{quantile:.1%}",
                f"{bar:.4f}",
                f"{other['all_genuine_refused']} of {other['all_genuine_pairs']:,}",
                f"{other['impostor_refused']:.1%}",
            ]
        )
    print(table(["genuine quantile", "cosine", "one person's pairs refused", "two people's refused"], rows))
    rows = []
    for k in (2, 3, 5):
        rates = set_rates(people, config, k, rng, args.sets)
        rows.append(
            [
                str(k),
                f"{rates['people']:,}",
                f"{rates['sets']:,}",
                f"{rates['same_refused']:.2%}",
                f"{rates['mixed_refused']:.2%}",
            ]
        )
    print(table(["K photos", "people", "sets", "one person refused", "one stranger among them refused"], rows))
    shared = shared_rates(config)
    print(
        f"../shared/faces: {shared['same_refused']} of {shared['same']} pairs of one person refused, "
        f"{shared['different_refused']} of {shared['different']} pairs of different people refused"
    )


if __name__ == "__main__":
    main()
