"""Benchmark automatic vertebral bodies and levels on held-out phantoms.

Usage: ``python benchmarks/bench_autoseg.py [--small] [--seeds 9001 9002 ...]``

The default seeds 9001-9012 are held out: no threshold of :mod:`bmetoolkit.spine.autoseg` was
tuned on them (tuning used seeds below 1000). Seed 9001 is the healthy preset, the others
carry random lesions. Prints, per study and overall, the per-body Dice against the
phantom's VerSe body labels (median, worst), whether every level was named right, and the
segmentation time (Study building and phantom rendering are not timed), and the share of
the true lesion voxels (Modic map or BME mask) that lie inside the automatic bodies (the
BME/Modic analysis only looks there).

Targets (issue 4): median body Dice >= 0.90; levels right on every phantom with the sacrum
in view; <= 5 s per ~400x400x16 study.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bmetoolkit.data.phantom import PhantomConfig, make_phantom
from bmetoolkit.spine.autoseg import find_vertebral_bodies
from bmetoolkit.spine.labels import VertebraLabels, level_name
from bmetoolkit.study import Study

HELD_OUT_SEEDS = tuple(range(9001, 9013))
HEALTHY_SEED = 9001


def body_scores(result: VertebraLabels, truth: np.ndarray) -> tuple[dict[str, float], bool]:
    """Dice per true level, and whether every true body got its own VerSe id and name."""
    found = result.bodies.data
    dice, right = {}, True
    for verse in (int(v) for v in np.unique(truth[truth > 0])):
        true = truth == verse
        ids, counts = np.unique(found[true], return_counts=True)
        counts, ids = counts[ids > 0], ids[ids > 0]
        if ids.size == 0:
            dice[level_name(verse)], right = 0.0, False
            continue
        best = int(ids[np.argmax(counts)])
        mask = found == best
        dice[level_name(verse)] = 2 * float((mask & true).sum()) / float(mask.sum() + true.sum())
        right &= best == verse and result.levels.get(best) == level_name(verse)
    return dice, right


def _verdict(result: VertebraLabels, right: bool) -> str:
    if right:
        return "right"
    return "unknown" if result.provenance["anchor"] is None else "WRONG"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(HELD_OUT_SEEDS))
    parser.add_argument("--small", action="store_true", help="coarse phantoms (3 mm pixels)")
    args = parser.parse_args(argv)
    config = PhantomConfig.small() if args.small else PhantomConfig.realistic()

    all_dice, times, n_right, n_unknown, lesion_in, lesion_all = [], [], 0, 0, 0, 0
    for seed in args.seeds:
        lesions = "healthy" if seed == HEALTHY_SEED else "random"
        phantom = make_phantom(seed, lesions=lesions, config=config)
        study = Study.from_images(phantom.t1, t2=phantom.t2, stir=phantom.stir)
        start = time.perf_counter()
        result = find_vertebral_bodies(study)
        times.append(time.perf_counter() - start)
        dice, right = body_scores(result, phantom.truth.vertebrae.data)
        all_dice += dice.values()
        n_right += right
        n_unknown += _verdict(result, right) == "unknown"
        lesion = (phantom.truth.masks["modic_map"].data > 0) | (
            phantom.truth.masks["bme_mask"].data > 0
        )
        lesion_in += int((result.bodies.data[lesion] > 0).sum())
        lesion_all += int(lesion.sum())
        worst = min(dice, key=dice.get)
        print(
            f"seed {seed} ({lesions:7s}) {'x'.join(map(str, study.grid.shape))}: "
            f"{len(result.levels)} bodies, Dice median {statistics.median(dice.values()):.3f} "
            f"worst {dice[worst]:.3f} ({worst}), levels {_verdict(result, right)} "
            f"(anchor {result.provenance['anchor']}, "
            f"confidence {result.provenance['level_confidence']}), {times[-1]:.2f} s"
        )
    print(
        f"\n{len(args.seeds)} studies, {len(all_dice)} bodies: Dice median "
        f"{statistics.median(all_dice):.3f}, worst {min(all_dice):.3f}; levels right on "
        f"{n_right}/{len(args.seeds)} (unknown on {n_unknown}, wrong on "
        f"{len(args.seeds) - n_right - n_unknown}); time median {statistics.median(times):.2f} s, "
        f"max {max(times):.2f} s; lesion voxels inside the bodies "
        f"{100 * lesion_in / max(lesion_all, 1):.1f} %"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
