"""When is a narrow disc above the sacrum flagged? (a script, not a test)

Renders realistic phantoms with six lumbar bodies (T12-L6 over S1, so the usual count
names every level one too low) and the disc between L6 and S1 set to a range of heights,
runs :func:`bmetoolkit.spine.autoseg.find_vertebral_bodies` and prints, per disc height, the
measured lumbosacral disc ratio, whether the rudimentary-disc note was added, and the
level confidence. The disc above (L5-L6) is 11 mm, as in the default anatomy.

Run: ``python benchmarks/bench_transitional.py [--seeds 105 101 9003]`` (about 1 minute).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from bmetoolkit.data.phantom import PhantomConfig, make_phantom
from bmetoolkit.data.phantom.anatomy import AnatomyConfig
from bmetoolkit.spine.autoseg import find_vertebral_bodies
from bmetoolkit.study import Study

SIX_LUMBAR = ("T12", "L1", "L2", "L3", "L4", "L5", "L6", "S1")
DISC_HEIGHTS_MM = (10.0, 6.0, 4.0, 3.0)


def six_lumbar_config(disc_mm: float) -> PhantomConfig:
    """Realistic grids, six lumbar bodies, the lowest disc ``disc_mm`` tall."""
    anatomy = AnatomyConfig()
    discs = (*anatomy.disc_height_mm[:-1], disc_mm)
    return replace(
        PhantomConfig(), anatomy=replace(anatomy, levels=SIX_LUMBAR, disc_height_mm=discs)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[105, 101, 9003])
    args = parser.parse_args()
    print("disc (mm)  seed  ratio  flagged  confidence")
    for disc_mm in DISC_HEIGHTS_MM:
        for seed in args.seeds:
            phantom = make_phantom(seed=seed, lesions=None, config=six_lumbar_config(disc_mm))
            labels = find_vertebral_bodies(
                Study.from_images(phantom.t1, t2=phantom.t2, stir=phantom.stir)
            )
            evidence = labels.provenance["level_evidence"]
            flagged = any("rudimentary disc" in note for note in labels.notes)
            print(
                f"{disc_mm:9.1f}  {seed:4d}  {evidence.get('lumbosacral_disc_ratio')!s:>5}  "
                f"{'yes' if flagged else 'no':>7}  {labels.provenance['level_confidence']:10.2f}"
            )


if __name__ == "__main__":
    main()
