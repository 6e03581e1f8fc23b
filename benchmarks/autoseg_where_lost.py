"""Where the automatic bodies' Dice is lost: each body's lateral sections replaced by the truth.

Usage::

    python benchmarks/autoseg_where_lost.py --images stir --seeds 160-175 [--cache DIR]
                                            [--autoseg-param NAME=VALUE ...]
                                            [--pelvis-bowel] [--resampled-1mm]
                                            [--no-vertebra-above]

Segments the randomized tuning phantoms of ``--seeds`` as ``bench_autoseg.py`` does (from
the T1 with its fluid image, or a T2 or STIR alone; no case cut above the sacrum) and scores
each true body against the found body that overlaps it most. It then scores the same body
again with parts of it replaced by the truth, each alone:

- ``beyond``: the sections outside the found body's lateral (LR) range;
- ``outer``: the found body's two outermost sections;
- ``second``: the two sections inside those;
- ``lateral``: all of the above at once.

The median and worst decile of each say how much of the Dice those sections hold. The
phantoms are sagittal (sections along the image's third axis, LR). Session 40 ran it on
seeds 160-175 before the STIR-alone lateral steps (``--autoseg-param
suppressed_outer_sections=0 --autoseg-param suppressed_outer_added=0``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from bench_autoseg import AUTOSEG, OPTIONS, ImagesOnly, _randomized, worst_decile

from bmetoolkit.spine.autoseg import AutosegParameters, find_vertebral_bodies
from bmetoolkit.study import Study

PARTS = ("base", "beyond", "outer", "second", "lateral")


def _dice(found: np.ndarray, true: np.ndarray) -> float:
    return 2.0 * float((found & true).sum()) / float(found.sum() + true.sum())


def body_rows(found: np.ndarray, truth: np.ndarray) -> list[dict[str, float]]:
    """Per true body: its Dice, and its Dice with each part of :data:`PARTS` from the truth.

    >>> truth = np.zeros((4, 4, 6), np.int32); truth[1:3, 1:3, 1:5] = 20
    >>> found = np.zeros_like(truth); found[1:3, 1:3, 2:4] = 1
    >>> row = body_rows(found, truth)[0]
    >>> round(row["base"], 3), row["beyond"], row["lateral"]
    (0.667, 1.0, 1.0)
    """
    rows = []
    for verse in (int(v) for v in np.unique(truth[truth > 0])):
        true = truth == verse
        ids, counts = np.unique(found[true], return_counts=True)
        counts, ids = counts[ids > 0], ids[ids > 0]
        if ids.size == 0:
            continue  # missed whole: no sections to replace
        body = found == ids[np.argmax(counts)]
        sections = np.flatnonzero(body.any(axis=(0, 1)))
        first, last = int(sections[0]), int(sections[-1])
        picked = {name: np.zeros(found.shape[2], bool) for name in PARTS[1:]}
        picked["beyond"][:first] = picked["beyond"][last + 1 :] = True
        picked["outer"][[first, last]] = True
        picked["second"][[min(first + 1, last), max(last - 1, first)]] = True
        picked["lateral"] = picked["beyond"] | picked["outer"] | picked["second"]
        row = {"base": _dice(body, true)}
        for name, sections_picked in picked.items():
            row[name] = _dice(np.where(sections_picked, true, body), true)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", choices=("t1", "t2", "stir"), default="t1")
    parser.add_argument("--seeds", default="160-175", help="tuning seeds A-B")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--autoseg-param", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--pelvis-bowel", action="store_true", help="as bench_autoseg.py")
    parser.add_argument("--resampled-1mm", action="store_true", help="as bench_autoseg.py")
    parser.add_argument(
        "--vertebra-above", action=argparse.BooleanOptionalAction, default=True, help="as there"
    )
    args = parser.parse_args(argv)
    OPTIONS.update(
        pelvis_and_bowel=args.pelvis_bowel,
        resampled_1mm=args.resampled_1mm,
        vertebra_above=args.vertebra_above,
    )
    low, high = (int(x) for x in args.seeds.split("-"))
    changes = dict(item.split("=", 1) for item in args.autoseg_param)
    params = AutosegParameters(**{**AUTOSEG, **{k: float(v) for k, v in changes.items()}})
    rows: list[dict[str, float]] = []
    for seed in range(low, high + 1):
        phantom = _randomized(seed, False, args.cache)
        full = Study.from_images(phantom.t1, t2=phantom.t2, stir=phantom.stir, verify_roles=False)
        if args.images == "t1":
            study = full
        else:
            images = {
                role: getattr(full, role) if role == args.images else None
                for role in ("t1", "t2", "stir")
            }
            study = ImagesOnly(**images, grid=full.t1.grid)
        found = np.asarray(find_vertebral_bodies(study, params).bodies.data)
        rows += body_rows(found, np.asarray(phantom.truth.vertebrae.data))
    print(f"{len(rows)} bodies found on seeds {args.seeds} (images: {args.images})")
    for name in PARTS:
        values = [row[name] for row in rows]
        label = "as found" if name == "base" else f"{name} from the truth"
        median, worst = np.median(values), worst_decile(values)
        print(f"{label:26s} Dice median {median:.3f}, worst decile {worst:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
