"""Does an index of two datasets find the people it holds, and nobody else? On people the suite never saw.

Builds a real index (``build_dataset``, the default embedder) of two datasets from a folder per
person (default: LFW people E-J, who were not used to fit the confidence): each dataset holds
``--people`` people with two or more photos, all their photos but one (at most ``--max-photos``).
Then it checks, through ``Checker`` as `photocheck check` does, the held-out photo of every person
in a dataset (it must be a ``match`` there and nowhere else) and a photo of as many people in
neither (never a ``match``). It prints the true-accept rate, the false matches and the verdicts.

    .venv/bin/python bench/held_out_check.py --identities /path/to/lfw/images --letters EFGHIJ
    .venv/bin/python bench/held_out_check.py --seed 2 --people 30 --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "lfw" / "images"


def main(argv: list[str] | None = None) -> int:
    from indexer.check import Checker, LoadedIndex, embedder_for_index
    from indexer.embedders import create_embedder
    from indexer.pipeline import build_dataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identities", type=Path, default=LFW, help="a folder per person (default: LFW images)")
    parser.add_argument("--letters", default="EFGHIJ", help="only people whose names start with these (default EFGHIJ)")
    parser.add_argument("--people", type=int, default=20, help="people per dataset (default 20)")
    parser.add_argument("--max-photos", type=int, default=5, help="photos per person in a dataset (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args(argv)

    people = sorted(
        p for p in args.identities.iterdir() if p.is_dir() and p.name[0] in args.letters and len(list(p.iterdir())) >= 2
    )
    rng = np.random.default_rng(args.seed)
    order = [people[i] for i in rng.permutation(len(people))]
    groups = {"first-set": order[: args.people], "second-set": order[args.people : 2 * args.people]}
    absent = order[2 * args.people : 4 * args.people]
    started = time.monotonic()
    embedder = create_embedder("auto", threads=0 if args.workers == 1 else 1)
    with tempfile.TemporaryDirectory(prefix="photocheck-held-out-") as work:
        queries: list[tuple[Path, str | None]] = []
        for dataset, members in groups.items():
            source = Path(work) / dataset
            for person in members:
                photos = [sorted(person.iterdir())[i] for i in rng.permutation(len(list(person.iterdir())))]
                queries.append((photos[0], dataset))
                (source / person.name).mkdir(parents=True)
                for photo in photos[1 : 1 + args.max_photos]:
                    (source / person.name / photo.name).symlink_to(photo)
            build_dataset(
                Path(work) / "index",
                source,
                dataset=dataset,
                embedder=embedder,
                workers=args.workers,
                progress=not args.json,
            )
        queries += [(sorted(p.iterdir())[int(rng.integers(len(list(p.iterdir()))))], None) for p in absent]
        index = LoadedIndex(Path(work) / "index")
        checker = Checker(index, embedder_for_index(index))
        found = false_matches = present = errors = 0
        verdicts: dict[str, int] = {}
        for photo, home in queries:
            answer = checker.check(photo.read_bytes())
            if answer["error"]:
                errors += 1
                continue
            for result in answer["results"]:
                key = f"{'own' if result['dataset'] == home else 'other'}:{result['verdict']}"
                verdicts[key] = verdicts.get(key, 0) + 1
                if result["dataset"] == home:
                    present += 1
                    found += result["verdict"] == "match"
                elif result["verdict"] == "match":
                    false_matches += 1
        sizes = {d.info.name: d.size for d in index.datasets}
    figures = {
        "embedder": index.embedder_description["name"],
        "datasets": sizes,
        "people_in_a_set": present,
        "people_in_neither": len(absent),
        "true_accept_rate": round(found / max(present, 1), 4),
        "false_matches": false_matches,
        "comparisons_that_could_be_false": len(queries) * 2 - present,
        "photos_without_a_usable_face": errors,
        "verdicts": verdicts,
        "seconds": round(time.monotonic() - started, 1),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(
            f"{figures['embedder']}: datasets {sizes}; {present} people searched in their own set, "
            f"{len(absent)} in neither\n"
            f"  true-accept rate (match in their own set): {figures['true_accept_rate']:.1%}\n"
            f"  false matches: {false_matches} of {figures['comparisons_that_could_be_false']} comparisons\n"
            f"  verdicts: {verdicts}\n  photos without a usable face: {errors}; {figures['seconds']} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
