"""How well the image-based role check separates genuine T1s from T2s given as the T1.

Prints :func:`bmetoolkit.pairing.sanity.fluid_dark_fraction` for genuine pairs (the SCT
cervical T1w/T2, fixed phantoms, randomized phantoms when
``bmetoolkit.data.phantom.make_randomized_phantom`` is available) and for wrong roles (a T2
given as the T1 with the STIR; T1 and T2 swapped), and how many of each the check refuses
at :data:`~bmetoolkit.pairing.sanity.MIN_FLUID_DARK_FRACTION`.

Usage::

    python benchmarks/bench_role_check.py [--randomized 0-39]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from bmetoolkit.data import datasets
from bmetoolkit.data import phantom as phantoms
from bmetoolkit.pairing.sanity import MIN_FLUID_DARK_FRACTION
from bmetoolkit.study import Study


def _fractions(t1, **fluid) -> dict[str, float]:
    study = Study.from_images(t1, verify_roles=False, **fluid)
    from bmetoolkit.pairing.sanity import fluid_dark_fraction

    return {
        role: fluid_dark_fraction(study.t1.data, image.data, study.covered[role])[0]
        for role, image in (("t2", study.t2), ("stir", study.stir))
        if image is not None
    }


def _cases(randomized: range):
    pair = datasets.cervical_pair()
    yield "cervical", pair["t1"], pair["t2"], None
    for seed in (0, 5):
        for config in (phantoms.PhantomConfig.small(), phantoms.PhantomConfig.realistic()):
            study = phantoms.make_phantom(seed=seed, config=config)
            yield f"phantom {seed}", study.t1, study.t2, study.stir
    make = getattr(phantoms, "make_randomized_phantom", None)
    for seed in randomized if make else ():
        study = make(seed, kind="random", small=True)
        yield f"randomized {seed}", study.t1, study.t2, study.stir


def main() -> None:
    """Measure and print the fractions per kind of pair."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--randomized", default="0-39", help="randomized phantom seeds a-b")
    first, last = (int(n) for n in parser.parse_args().randomized.split("-"))
    scores: dict[str, list[float]] = defaultdict(list)
    for name, t1, t2, stir in _cases(range(first, last + 1)):
        for role, value in _fractions(t1, t2=t2, stir=stir).items():
            scores[f"genuine T1 vs {role.upper()}"].append(value)
        if stir is not None:
            scores["T2 given as T1, with the STIR"] += _fractions(t2, stir=stir).values()
        scores["T1 and T2 swapped"] += _fractions(t2, t2=t1).values()
        print(f"measured {name}", flush=True)
    print(f"threshold {MIN_FLUID_DARK_FRACTION}")
    for kind, values in scores.items():
        known = np.array([v for v in values if v is not None])
        refused = int(np.sum(known < MIN_FLUID_DARK_FRACTION))
        print(
            f"{kind}: {known.size} pairs, fraction {known.min():.3f}-{known.max():.3f} "
            f"(median {np.median(known):.3f}), refused {refused}"
        )


if __name__ == "__main__":
    main()
