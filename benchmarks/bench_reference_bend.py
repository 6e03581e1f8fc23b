"""Whether a faint edema filling much of a bone bends the normal-marrow reference (a script,
not a test).

The scene is that of ``tests/test_bones_rules.py`` (two block bones across a joint, 0.8 x
0.8 x 3 mm, T1 and STIR with 3 % noise) with mottled marrow (``_mottled_scene``: log SD
``--mottle`` on the STIR in patches of about 5 mm) and a faint edema (T1 0.85 x, STIR at
each ``--ratios``) filling a fraction of bone 1 from the joint side (0: healthy). Each case
is analysed with the reference estimated voxel by voxel (``reference_region_mm`` 0, before
session 26) and at a region's scale of 10 and 15 mm (15, the default); found volumes per seed
are printed against the truth.

Run: ``python benchmarks/bench_reference_bend.py [--seeds 3] [--mottle 0.06 0.12]``
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_bones_rules as scene  # the scene of the tests

#: Fractions of bone 1 the edema fills, from the joint side.
FRACTIONS = (0.0, 0.25, 0.5)


def edema_of(fraction: float) -> np.ndarray:
    """The part of bone 1 (i 5-37) nearest the joint holding ``fraction`` of it."""
    mask = np.zeros(scene.SHAPE, bool)
    depth = round(33 * fraction)
    if depth:
        mask[38 - depth : 38, scene.BONE_J, scene.BONE_K] = True
    return mask


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per case (default 3)")
    parser.add_argument("--mottle", type=float, nargs="+", default=[0.06, 0.12])
    parser.add_argument("--ratios", type=float, nargs="+", default=[1.35, 1.5])
    args = parser.parse_args(argv)
    voxel_ml = float(np.prod(scene.SPACING)) / 1000
    settings = {"voxel by voxel": {"reference_region_mm": 0.0},
                "region 10 mm": {"reference_region_mm": 10.0},
                "region 15 mm": {"reference_region_mm": 15.0}}  # fmt: skip
    for mottle in args.mottle:
        for fraction in FRACTIONS:
            for ratio in args.ratios if fraction else [1.0]:
                edema = edema_of(fraction)
                found = {name: [] for name in settings}
                for seed in range(args.seeds):
                    images = scene._mottled_scene(edema, mottle, seed=seed, stir_ratio=ratio)
                    for name, params in settings.items():
                        result = scene._analyze(*images, **params)
                        found[name].append(round(result.bme_volume_ml, 1))
                cells = "  ".join(f"{name} {values}" for name, values in found.items())
                print(
                    f"mottle {mottle:.2f} fraction {fraction:.2f} STIR {ratio:.2f} x "
                    f"true {edema.sum() * voxel_ml:5.1f} mL: {cells}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
