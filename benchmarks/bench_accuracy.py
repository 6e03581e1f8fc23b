"""Accuracy of the analysis on held-out phantom cases (a script, not a test).

Runs :func:`bmetoolkit.analyze` on a fixed set of realistic phantoms whose seeds were never
used while choosing the defaults (those were chosen on seeds 0-29), and prints:

- BME Dice (median, worst) and BME volume error (median, worst) on cases with edema;
- per-endplate Modic type accuracy and Cohen's kappa (types as reported: none, I, II,
  III, mixed), and presence/absence kappa (the task of SpineNet's 0.74);
- endplates called Modic on healthy spines, and haemangiomas flagged (BME or Modic);
- the analysis time per case (after loading).

Cases: seeds 7001-7012 with random lesions (1-3 endplate lesions, mirrored across the disc
in 60 % of cases, edema and haemangioma in half of them), seeds 7101-7103 healthy, seed 7201
a haemangioma alone. Each runs with STIR and with T2 only. ``--masks auto`` uses the
automatic vertebral bodies instead of the phantom's true labels (``both`` runs both);
``--autoseg-param NAME=VALUE`` changes a field of :class:`AutosegParameters` for them.
``--tuning`` runs tuning seeds instead (0-11 random, 20-25 healthy), for choosing defaults
without looking at the held-out cases.

Run: ``python benchmarks/bench_accuracy.py`` (about 2 minutes); ``--quick`` runs 4 cases.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from bmetoolkit.analysis import analyze_study
from bmetoolkit.data.phantom import make_phantom
from bmetoolkit.data.phantom.anatomy import Tissue
from bmetoolkit.metrics import cohen_kappa, dice, endplate_types, volume_error
from bmetoolkit.spine.autoseg import AutosegParameters, find_vertebral_bodies
from bmetoolkit.study import Study

RANDOM_SEEDS = tuple(range(7001, 7013))
HEALTHY_SEEDS = (7101, 7102, 7103)
HAEMANGIOMA_SEEDS = (7201,)
TUNING_CASES = [(s, "random") for s in range(12)] + [(s, "healthy") for s in range(20, 26)]
TARGETS = {
    "median BME Dice": ">= 0.85",
    "median BME volume error": "<= 10 %",
    "endplate type accuracy": ">= 95 %",
    "Modic calls on healthy spines": "0",
    "haemangiomas flagged": "0",
}


@dataclass
class Tally:
    """Figures collected over the cases of one mode."""

    dices: list[float] = field(default_factory=list)
    volume_errors: list[float] = field(default_factory=list)
    truth_types: list[str] = field(default_factory=list)
    found_types: list[str] = field(default_factory=list)
    healthy_calls: int = 0
    haemangiomas: int = 0
    haemangiomas_flagged: int = 0
    times: list[float] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)


def cases(quick: bool, tuning: bool = False) -> list[tuple[int, str]]:
    """(seed, lesions) of every case."""
    if tuning:
        return TUNING_CASES
    chosen = [(s, "random") for s in RANDOM_SEEDS]
    chosen += [(s, "healthy") for s in HEALTHY_SEEDS]
    chosen += [(s, "haemangioma") for s in HAEMANGIOMA_SEEDS]
    return chosen[:3] + chosen[-1:] if quick else chosen


def run_case(
    seed: int,
    lesions: str,
    masks: str,
    tallies: dict[str, Tally],
    autoseg: AutosegParameters | None = None,
) -> None:
    phantom = make_phantom(seed, lesions=lesions)
    truth = phantom.truth
    labels = truth.vertebrae if masks == "truth" else None
    haemangioma = np.asarray(truth.tissue.data) == Tissue.HAEMANGIOMA
    for mode, stir in (("STIR", phantom.stir), ("T2 only", None)):
        study = Study.from_images(phantom.t1, t2=phantom.t2, stir=stir, labels=labels)
        clock = time.perf_counter()
        found_bodies = None if masks == "truth" else find_vertebral_bodies(study, autoseg)
        result = analyze_study(study, found_bodies)
        tally = tallies[mode]
        tally.times.append(time.perf_counter() - clock)
        found = np.asarray(result.bme_mask.data) > 0
        expected = np.asarray(truth.bme_mask.data) > 0
        if expected.any():
            tally.dices.append(dice(found, expected))
            tally.volume_errors.append(volume_error(found, expected))
        expected_types, found_types = endplate_types(truth.endplates, result.endplate_rows)
        for row, want, got in zip(truth.endplates, expected_types, found_types, strict=True):
            tally.truth_types.append(want)
            tally.found_types.append(got)
            if got != want:
                tally.misses.append(
                    f"seed {seed} {row['level']} {row['endplate']}: {want} -> {got}"
                )
            if lesions == "healthy" and got not in ("none", "missing"):
                tally.healthy_calls += 1
        if haemangioma.any():
            tally.haemangiomas += 1
            flagged = (found | (np.asarray(result.modic_map.data) > 0)) & haemangioma
            tally.haemangiomas_flagged += int(flagged.sum() > 0.1 * haemangioma.sum())


def report(mode: str, tally: Tally) -> None:
    truth, found = tally.truth_types, tally.found_types
    accuracy = np.mean([t == f for t, f in zip(truth, found, strict=True)])
    presence_truth = [t != "none" for t in truth]
    presence_found = [f not in ("none", "missing") for f in found]
    print(f"\n== {mode}: {len(tally.times)} cases, {len(truth)} endplates")
    print(
        f"BME Dice: median {statistics.median(tally.dices):.3f}, worst {min(tally.dices):.3f} "
        f"({len(tally.dices)} cases with edema)"
    )
    print(
        f"BME volume error: median {100 * statistics.median(tally.volume_errors):.1f} %, "
        f"worst {100 * max(tally.volume_errors):.1f} %"
    )
    print(
        f"endplate Modic type: accuracy {100 * accuracy:.1f} %, "
        f"kappa {cohen_kappa(truth, found):.3f}; presence kappa "
        f"{cohen_kappa(presence_truth, presence_found, [False, True]):.3f}"
    )
    print(f"Modic calls on healthy spines: {tally.healthy_calls} endplates")
    print(f"haemangiomas flagged: {tally.haemangiomas_flagged} of {tally.haemangiomas}")
    print(
        f"analysis time (after loading): median {statistics.median(tally.times):.2f} s, "
        f"max {max(tally.times):.2f} s"
    )
    for miss in tally.misses:
        print(f"  wrong: {miss}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masks", choices=("truth", "auto", "both"), default="truth")
    parser.add_argument("--quick", action="store_true", help="4 cases only")
    parser.add_argument("--tuning", action="store_true", help="tuning seeds, not held-out")
    parser.add_argument(
        "--autoseg-param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an AutosegParameters field for --masks auto, e.g. cortex_mm=1.5",
    )
    args = parser.parse_args()
    if args.autoseg_param and args.masks == "truth":
        parser.error("--autoseg-param needs --masks auto or both")
    if args.tuning and args.quick:
        parser.error("--tuning and --quick choose different cases: use one")
    try:
        changes = dict(item.split("=", 1) for item in args.autoseg_param)
        autoseg = AutosegParameters(**{name: float(value) for name, value in changes.items()})
    except (TypeError, ValueError) as error:
        parser.error(f"--autoseg-param takes NAME=NUMBER with an AutosegParameters field: {error}")
    print("targets: " + "; ".join(f"{k} {v}" for k, v in TARGETS.items()))
    for masks in ("truth", "auto") if args.masks == "both" else (args.masks,):
        print(f"\n#### vertebra masks: {'phantom truth' if masks == 'truth' else 'automatic'}")
        tallies = {"STIR": Tally(), "T2 only": Tally()}
        for seed, lesions in cases(args.quick, args.tuning):
            run_case(seed, lesions, masks, tallies, autoseg)
        for mode, tally in tallies.items():
            report(mode, tally)


if __name__ == "__main__":
    main()
