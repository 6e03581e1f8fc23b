"""Follow-up comparison on phantom pairs (a script, not a test).

Each seed gives two pairs of one randomised phantom spine
(:func:`bmetoolkit.data.phantom.followup.make_phantom_pair`): a **follow-up** pair (lesions
grown, shrunk, resolved, new, Modic I -> II; new grids, noise and patient position) and a
**test-retest** pair (no change). Each visit is written as NIfTI, analysed from the files
with the phantom's true vertebral bodies as labels, saved, and the two output folders are
compared (``bmetoolkit.compare``, timed), as a user would.

Printed, median and worst decile (90th percentile of an error):

- change error of the edema volume per body with edema at either visit and of the total,
  against the true change, the share within max(0.3 mL, 10 % of the true change) (issue
  14's "0.3 mL or 10 %, whichever is larger"), and each error over that allowance, median
  and worst decile (at most 1 in the median when at least half are within);
- test-retest: RC of the total edema volume (2.77 x within-subject SD, as % of the mean
  volume over pairs), lesions reported new or resolved, changes flagged real;
- Modic transitions right where the type is right at both visits;
- seconds per compare of two realistic studies (from their output folders).

Every pair is compared twice: both visits' edema decided together
(:mod:`bmetoolkit.followup.joint`) with the lesion edges weighted by their partial volume
(``partial_volume=True``, :mod:`bmetoolkit.followup.partial_volume`; timed), and with each
visit decided alone (``joint=False``); the change table of the first is also recomputed from
voxel counts of the joint edema, which is what ``compare`` ships by default. The summary
prints all three, with the true changes (bodies changed by 0.3 mL or more) flagged real.

``--calibrate`` measures :data:`bmetoolkit.followup.repeatability.BOUNDARY_SD_FACTOR` on the
test-retest pairs of the **tuning** seeds: the factor K under which 95 % of the test-retest
differences of every region, total and lesion lie within their RC (the RC's definition).

``--sources`` (test-retest pairs): per visit, the true edema volume counted on its own grid
(what a perfect segmentation on that grid gives) against the analysis' volume, its missed
and extra voxels: where a test-retest difference of the total comes from.
``--subject-check``: the texture and shape measures of the subject check on one-subject and
two-subject pairs, with and without marrow texture. ``--joint``: joint phantom pairs (the
any-bone path, held-out joint seeds, or tuning ones with ``--tuning``), analysed with the
true bone masks and compared; ``--param NAME=VALUE`` (repeatable) changes an analysis
parameter of those runs (e.g. ``band_decided_jointly=false``: each visit's partial-volume
band decided alone, as before session 39).

``--timing``: seconds (wall and CPU) per compare from output folders, alternately on each
seed's test-retest pair: both visits decided together from the saved ratio images, together
from folders without them (each visit analysed again), and alone. With ``--joint``: the
joint test-retest pairs compared from output folders (each bone-mask visit analysed again
for its partial-volume band), in memory, and from folders decided alone.

``--keep DIR`` keeps each visit's analysis (``DIR/<seed>-baseline``, shared by all pairs of
a seed, and ``DIR/<seed>-pair/followup``, ``DIR/<seed>-retest[-<vary>]/followup``) and
reuses each one that is complete (a ``report.json``), so variants of the comparison can be
rerun on the same analyses.

``--vary A,B`` (test-retest pairs): the second visit changes only these, of ``noise``,
``offset``, ``pixel``, ``tilt`` and ``position`` (each with the value it has when all
change): which part of an acquisition a test-retest difference comes from.

``--seeds A-B`` runs more tuning seeds (any range below the held-out seeds, e.g. 60-119).

``--retest-lesions --keep DIR`` (tuning seeds only): where each test-retest pair's
difference of the total comes from, lesion by lesion, from the kept analyses (each pair
analysed first when it is not kept yet; :mod:`retest_lesions`).

Run: ``python benchmarks/bench_followup.py [--tuning | --seeds A-B] [--pairs N] [--calibrate
| --sources | --subject-check | --joint [--param NAME=VALUE ...] | --timing] [--json rows.json]
[--keep DIR]`` (about a minute per seed on one core).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from bench_randomized import parameters
from tuning_seeds import tuning_seed_range
from vein_truth import inside_veins_ml

from bmetoolkit.analysis import analyze
from bmetoolkit.data.phantom.followup import (
    ACQUISITION_CHANGES,
    HELD_OUT_PAIR_SEEDS,
    TUNING_PAIR_SEEDS,
    PhantomPair,
    make_phantom_pair,
)
from bmetoolkit.errors import BmetoolkitError, ContrastMismatchError, VisitMismatchError
from bmetoolkit.followup.change import change_table
from bmetoolkit.followup.compare import Comparison, compare
from bmetoolkit.followup.register import Correspondence
from bmetoolkit.followup.repeatability import BOUNDARY_SD_FACTOR, RC_FACTOR
from bmetoolkit.params import Parameters

#: Change error allowed: the larger of this (mL) and this fraction of the true change.
ALLOWED_ML, ALLOWED_FRACTION = 0.3, 0.10
#: A test-retest difference of the total larger than this fraction of its mean volume is
#: listed with the part of it inside the true veins.
LARGE_RETEST = 0.15


def _allowed(true_change: float) -> float:
    """The change error allowed for a true change (mL): the larger of ``ALLOWED_ML`` and
    ``ALLOWED_FRACTION`` of it.

    >>> _allowed(1.0), _allowed(-5.0)
    (0.3, 0.5)
    """
    return max(ALLOWED_ML, ALLOWED_FRACTION * abs(true_change))


def _against_allowed(rows: Sequence[dict[str, Any]]) -> str:
    """Each row's error (``measured`` against ``true``) over its allowance: median and
    worst decile, e.g. ``"median 0.857, worst decile 3.1"``."""
    return _quantiles([abs(r["measured"] - r["true"]) / _allowed(r["true"]) for r in rows])


#: Visits whose images the role check refused (analysed again without it and counted).
ROLE_CHECK_REFUSED: list[str] = []


#: ``--keep DIR``: the visits' output folders are kept (and reused) under ``DIR/<label>``
#: (a one-element list: set once by :func:`main`).
KEEP: list[Path] = []


#: ``--vary``: what a test-retest pair's second visit changes (default all; see
#: :data:`bmetoolkit.data.phantom.followup.ACQUISITION_CHANGES`).
VARY: list[str] = list(ACQUISITION_CHANGES)


def _kept_folders(label: str) -> list[Path]:
    """Where ``--keep`` keeps a pair's visits: one baseline per seed (every pair of a seed,
    change or test-retest with any ``--vary``, renders the same baseline), the second visit
    per pair."""
    seed = label.split()[0]
    return [KEEP[0] / f"{seed}-baseline", KEEP[0] / label.replace(" ", "-") / "followup"]


def _analysed(pair: PhantomPair, folder: Path, label: str) -> list[Path]:
    outputs = []
    targets = [folder / "baseline", folder / "followup"]
    if KEEP:
        targets = _kept_folders(label)
    for target, study in zip(targets, (pair.baseline, pair.followup), strict=True):
        if (target / "report.json").exists():
            outputs.append(target)
            continue
        name = target.name
        images = study.write_nifti(target.with_name(f"{name}_nifti"))
        arguments = {"stir": images["stir"], "vertebrae": images["vertebrae"]}
        try:
            result = analyze(images["t1"], **arguments)
        except ContrastMismatchError:  # the phantom's roles are known: count it, go on
            ROLE_CHECK_REFUSED.append(f"{label} {name}")
            result = analyze(images["t1"], **arguments, verify_roles=False)
        result.save(target, qc=False)
        outputs.append(target)
    return outputs


def _compared(pair: PhantomPair, label: str) -> tuple[Comparison, float, Comparison]:
    """The pair compared from its output folders, both visits decided together with lesion
    edges weighted by partial volume (timed, outputs written; :func:`_counted` gives the
    default, voxels counted, from it), and with each visit decided alone (as before the
    joint decision), for the comparison of the three."""
    with tempfile.TemporaryDirectory() as tmp:
        base, follow = _analysed(pair, Path(tmp), label)
        clock = time.perf_counter()
        result = compare(base, follow, out=Path(tmp) / "compare", partial_volume=True)
        seconds = time.perf_counter() - clock
        alone = compare(base, follow, joint=False)
        return result, seconds, alone


def _counted(result: Comparison) -> Comparison:
    """``result`` with its change table from voxel counts of the joint edema (the volumes
    compared before the partial-volume weighting, :mod:`bmetoolkit.followup.partial_volume`)."""
    visits = [replace(v, bme_share=None) for v in (result.baseline, result.followup)]
    pairing = Correspondence.of(result.registration, *(v.body_names for v in visits))
    return replace(result, change_rows=change_table(*visits, pairing))


def _change_errors(pair: PhantomPair, result: Comparison) -> list[dict[str, Any]]:
    truth = {row["region"]: row for row in pair.change_table()}
    found = {row["region"]: row for row in result.change_rows}
    total_truth = sum(r["bme_change_ml"] for k, r in truth.items() if r["zone"] == "body")
    rows = [("total", total_truth)]
    rows += [
        (k, r["bme_change_ml"])
        for k, r in truth.items()
        if r["zone"] == "body" and (r["bme_ml_baseline"] or r["bme_ml_followup"])
    ]
    errors = []
    for region, true_change in rows:
        measured = found.get(region, {}).get("bme_change_ml") or 0.0
        error = abs(measured - true_change)
        errors.append({"region": region, "true": true_change, "measured": measured,
                       "error_ml": error, "within": bool(error <= _allowed(true_change)),
                       "real": bool(found.get(region, {}).get("bme_change_real"))})  # fmt: skip
    return errors


def _transitions(pair: PhantomPair, result: Comparison) -> tuple[int, int]:
    """(right, assessable): endplates whose type is right at both visits, transition right."""
    truth = {row["region"]: row for row in pair.change_table() if row["zone"] != "body"}
    right = assessable = 0
    for row in result.change_rows:
        true = truth.get(row["region"])
        if true is None or row.get("modic_baseline") is None:
            continue
        if (row["modic_baseline"], row["modic_followup"]) == (
            true["modic_baseline"], true["modic_followup"],
        ):  # fmt: skip
            assessable += 1
            expected = (
                "unchanged" if true["modic_baseline"] == true["modic_followup"]
                else f"{true['modic_baseline']} -> {true['modic_followup']}"
            )  # fmt: skip
            right += row["modic_transition"] == expected
    return right, assessable


def _retest(result: Comparison) -> dict[str, Any]:
    total = result.change_rows[-1]
    differences = []  # (|d|, boundary scale s: RC = 2.77 K s)
    for row in result.change_rows:
        for prefix in ("bme", "modic"):
            rc = row.get(f"{prefix}_rc_ml")
            if rc:
                differences.append(
                    (abs(row[f"{prefix}_change_ml"]), rc / (RC_FACTOR * BOUNDARY_SD_FACTOR))
                )
    for row in result.lesion_rows:
        if row["rc_ml"]:
            differences.append(
                (abs(row["change_ml"]), row["rc_ml"] / (RC_FACTOR * BOUNDARY_SD_FACTOR))
            )
    return {
        "total_baseline": total["bme_ml_baseline"],
        "total_followup": total["bme_ml_followup"],
        "new_or_resolved": sum(r["status"] in ("new", "resolved") for r in result.lesion_rows),
        "one_visit_only": [  # (volume, rc) of lesions seen at one visit: new if volume > rc
            (r["volume_ml_baseline"] + r["volume_ml_followup"], r["rc_ml"])
            for r in result.lesion_rows
            if r["status"] in ("new", "resolved", "uncertain")
        ],
        "real_changes": sum(bool(r.get("bme_change_real")) for r in result.change_rows),
        "differences": differences,
    }


def _retest_sources(seed: int) -> dict[str, Any]:
    """Where a test-retest difference of the total edema comes from (``--sources``).

    Per visit of the retest pair: the true edema volume counted on the T1 grid (what a
    perfect segmentation on that grid gives: the grid and partial-volume part), on the STIR
    grid, and the analysis' volume (the decision's part, noise included); the compare's
    total uses each visit's own analysis, so registration does not enter it.
    """
    pair = make_phantom_pair(seed, retest=True)
    row: dict[str, Any] = {"seed": seed}
    for name, study in (("b", pair.baseline), ("f", pair.followup)):
        truth = study.truth
        mm3 = truth.bme_mask.grid.voxel_volume_mm3
        row[f"truth_t1_{name}"] = float(np.count_nonzero(truth.bme_mask.data)) * mm3 / 1000
        stir = truth.grid_masks.get("stir", {}).get("bme_mask")
        if stir is not None:
            row[f"truth_stir_{name}"] = (
                float(np.count_nonzero(stir.data)) * stir.grid.voxel_volume_mm3 / 1000
            )
        result = analyze(study.t1, stir=study.stir, vertebrae=truth.vertebrae)
        found = np.asarray(result.bme_mask.data) > 0
        true = np.asarray(truth.bme_mask.data) > 0
        row[f"found_{name}"] = result.bme_volume_ml
        row[f"missed_{name}"] = float((true & ~found).sum()) * mm3 / 1000
        row[f"extra_{name}"] = float((found & ~true).sum()) * mm3 / 1000
        row[f"spacing_{name}"] = [round(float(v), 2) for v in result.study.grid.spacing]
    return row


def _timing(seeds: list[int], repeats: int = 2) -> None:
    """Seconds (wall and CPU) per compare from output folders (outputs and QC page written),
    alternately on each seed's test-retest pair (``--timing``), so the machine's load
    cancels: both visits decided together from the folders' saved ratio images (the
    default), together from folders without them (as written before they were saved: each
    visit analysed again), and each visit decided alone."""
    import shutil

    variants = ("together", "together, analysed again", "alone")
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            folders = _analysed(make_phantom_pair(seed, retest=True), Path(tmp), f"{seed} retest")
            old = []
            for folder in folders:
                shutil.copytree(folder, folder.with_name(f"{folder.name}_old"))
                folder.with_name(f"{folder.name}_old").joinpath("decision_images.npz").unlink()
                old.append(folder.with_name(f"{folder.name}_old"))
            for n in range(repeats):
                for name in variants:
                    given = old if name.endswith("again") else folders
                    clock, cpu_clock = time.perf_counter(), time.process_time()
                    compare(*given, out=Path(tmp) / f"{name}{n}", joint=name != "alone")
                    times[name].append(time.perf_counter() - clock)
                    cpu[name].append(time.process_time() - cpu_clock)
        print(json.dumps({"seed": seed} | {k: [round(t, 2) for t in v] for k, v in cpu.items()}),
              flush=True)  # fmt: skip
    for name in variants:
        print(f"compare, decided {name}: wall s {_quantiles(times[name])}; CPU s "
              f"{_quantiles(cpu[name])} ({len(times[name])} compares)")  # fmt: skip


def _joint_options(index: int) -> dict[str, str]:
    """The joint (knee and sacroiliac in turn) and plane (in turn) of the ``index``-th
    joint pair of a run."""
    from bmetoolkit.data.phantom.joint import PLANES

    return {"joint": ("knee", "sij")[index % 2], "plane": PLANES[(index // 2) % len(PLANES)]}


def _joint_timing(seeds: Sequence[int], repeats: int = 2) -> None:
    """Seconds (wall and CPU) per compare of each seed's joint test-retest pair
    (``--joint --timing``), alternately so the machine's load cancels: from ``analyze``
    output folders (each visit analysed again from its inputs for the partial-volume band
    decided together, :mod:`bmetoolkit.followup.joint_bones`), from the analyses in memory,
    and from the folders with each visit decided alone. The visits are written to NIfTI and
    analysed from the files with the true bone masks, as a user's would be."""
    from bmetoolkit.data.phantom.joint.followup import make_joint_pair
    from bmetoolkit.io import save_nifti

    variants = ("together, from folders", "together, in memory", "alone, from folders")
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for index, seed in enumerate(seeds):
        pair = make_joint_pair(seed, retest=True, **_joint_options(index))
        with tempfile.TemporaryDirectory() as tmp:
            results, folders = [], []
            for name, visit in (("baseline", pair.baseline), ("followup", pair.followup)):
                folder = Path(tmp) / name
                folder.mkdir()
                paths = {
                    role: str(save_nifti(image, folder / f"{role}.nii.gz"))
                    for role, image in (("t1", visit.t1), ("stir", visit.fluid),
                                        ("bones", visit.truth.bones))
                }  # fmt: skip
                results.append(analyze(paths["t1"], stir=paths["stir"], marrow=paths["bones"],
                                       marrow_labels=visit.truth.bone_names))  # fmt: skip
                results[-1].save(folder / "out")
                folders.append(folder / "out")
            for _ in range(repeats):
                for name in variants:
                    given = results if name.endswith("memory") else folders
                    clock, cpu_clock = time.perf_counter(), time.process_time()
                    compare(*given, joint=not name.startswith("alone"))
                    times[name].append(time.perf_counter() - clock)
                    cpu[name].append(time.process_time() - cpu_clock)
        shape = "x".join(map(str, results[0].study.grid.shape))
        seconds = {name: [round(t, 2) for t in cpu[name][-repeats:]] for name in variants}
        print(json.dumps({"seed": seed, "grid": shape} | seconds), flush=True)
    for name in variants:
        print(f"joint compare, {name}: wall s {_quantiles(times[name])}; CPU s "
              f"{_quantiles(cpu[name])} ({len(times[name])} compares)")  # fmt: skip


def _joint_case(seed: int, index: int, params: Parameters | None = None) -> dict[str, Any]:
    """A joint pair and a joint test-retest pair, analysed with the true bone masks (and
    ``params``, the defaults when None) and compared (``--joint``): change error per bone
    with edema at either visit and of the total, and the retest totals."""
    from bmetoolkit.data.phantom.joint.followup import make_joint_pair

    options = _joint_options(index)
    case: dict[str, Any] = {"seed": seed, **options}
    for name, retest in (("change", False), ("retest", True)):
        pair = make_joint_pair(seed, retest=retest, **options)
        results = [
            analyze(
                v.t1,
                stir=v.fluid,
                marrow=v.truth.bones,
                marrow_labels=v.truth.bone_names,
                params=params,
            )
            for v in (pair.baseline, pair.followup)
        ]
        clock = time.perf_counter()
        result = compare(*results)
        case[f"{name}_seconds"] = round(time.perf_counter() - clock, 2)
        found = {row["region"]: row for row in result.change_rows}
        truth = pair.change_table()
        rows = [("total", sum(r["bme_change_ml"] for r in truth))]
        rows += [(r["bone"], r["bme_change_ml"]) for r in truth
                 if r["bme_ml_baseline"] or r["bme_ml_followup"]]  # fmt: skip
        case[name] = [
            {"region": region, "true": true, "measured": found.get(region, {}).get(
                "bme_change_ml") or 0.0} for region, true in rows
        ]  # fmt: skip
        total = found["total"]
        case[f"{name}_totals"] = (total["bme_ml_baseline"], total["bme_ml_followup"])
        case[f"{name}_new_or_resolved"] = sum(
            r["status"] in ("new", "resolved") for r in result.lesion_rows
        )
    return case


def _joint(seeds: Sequence[int], params: Parameters | None = None) -> None:
    cases, failed = [], []
    for index, seed in enumerate(seeds):
        try:
            cases.append(_joint_case(seed, index, params))
        except BmetoolkitError as error:  # a refused pair is reported, and the run goes on
            failed.append(seed)
            print(json.dumps({"seed": seed, "error": str(error)}), flush=True)
            continue
        print(json.dumps(cases[-1], default=str), flush=True)
    if failed:
        print(f"\njoint pairs refused or failed: {failed} ({len(failed)} of {len(seeds)})")
    rows = [r for c in cases for r in c["change"]]
    errors = [abs(r["measured"] - r["true"]) for r in rows]
    within = [abs(r["measured"] - r["true"]) <= _allowed(r["true"]) for r in rows]
    print(f"\njoint pairs {[c['seed'] for c in cases]}: change error (mL, bones with edema "
          f"and totals) {_quantiles(errors)}; within max(0.3 mL, 10 %): {sum(within)}/"
          f"{len(within)}; error over that allowance {_against_allowed(rows)}")  # fmt: skip
    pairs = [c["retest_totals"] for c in cases if sum(c["retest_totals"]) / 2 > 1.0]
    if pairs:
        relative = np.array([(f - b) / ((f + b) / 2) for b, f in pairs])
        print(
            f"joint test-retest RC of the total edema, pairs above 1 mL ({len(pairs)}): "
            f"{100 * RC_FACTOR * float(np.sqrt(np.mean(relative**2) / 2)):.1f} %; "
            f"lesions new or resolved: {sum(c['retest_new_or_resolved'] for c in cases)}"
        )
    seconds = [c[k] for c in cases for k in ("change_seconds", "retest_seconds")]
    print(f"compare seconds (in memory): {_quantiles(seconds)}")


def _subject_check(seeds: list[int], auto_bodies: bool = False) -> None:
    """The subject check's measures on one-subject and two-subject pairs (``--subject-check``).

    One subject: each seed's follow-up pair and test-retest pair; two subjects: each seed's
    baseline against the next seed's follow-up. Marrow with texture and without
    (``textured=False``). The visits are the phantom's truth (the body masks an analysis
    with the phantom's labels uses), compared without the check; ``auto_bodies``: each visit
    analysed with automatic bodies instead (no labels given).
    """
    from bmetoolkit.data.phantom.followup import truth_visit

    for textured in (False, True):
        pairs = {s: make_phantom_pair(s, textured=textured) for s in seeds}
        retests = {s: make_phantom_pair(s, textured=textured, retest=True) for s in seeds}
        cases = [("one", f"{s} follow-up", pairs[s].baseline, pairs[s].followup) for s in seeds]
        cases += [("one", f"{s} retest", retests[s].baseline, retests[s].followup) for s in seeds]
        cases += [("two", f"{a} vs {b}", pairs[a].baseline, pairs[b].followup)
                  for a, b in zip(seeds, seeds[1:] + seeds[:1], strict=True)]  # fmt: skip
        for subjects, name, first, second in cases:
            if auto_bodies:
                visits = [analyze(v.t1, stir=v.stir) for v in (first, second)]
            else:
                visits = [truth_visit(first), truth_visit(second)]
            result = compare(*visits, check_subject=False)
            q = result.quality
            print(json.dumps({"textured": textured, "subjects": subjects, "pair": name,
                              "texture": q.texture_correlation, "shape": q.shape_difference,
                              "bone_dice": round(q.bone_dice, 3)}), flush=True)  # fmt: skip


def _rc_interval(rc: float, pairs: int) -> tuple[float, float]:
    """95 % confidence interval of an RC estimated from ``pairs`` test-retest pairs: the
    within-subject variance (mean squared difference / 2) has ``pairs`` degrees of freedom,
    so ``pairs x variance / true variance`` follows a chi-square distribution with ``pairs``
    degrees of freedom (Bland and Altman 1996).

    >>> [round(v, 3) for v in _rc_interval(0.05, 12)]
    [0.036, 0.083]
    """
    from scipy.stats import chi2

    return (
        rc * float(np.sqrt(pairs / chi2.ppf(0.975, pairs))),
        rc * float(np.sqrt(pairs / chi2.ppf(0.025, pairs))),
    )


def _quantiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"median {statistics.median(values):.3f}, worst decile {np.percentile(values, 90):.3f}"


def summarise_saved(paths: Sequence[Path]) -> None:
    """Print the summary of the per-case rows saved with ``--json`` in ``paths``, as one run
    over all of them would (a refused pair is counted, as in a run)."""
    rows = [row for path in paths for row in json.loads(Path(path).read_text())]
    cases = [row for row in rows if "refused" not in row]
    refused = len(rows) - len(cases)
    print(f"{len(cases)} pairs from {len(paths)} file(s); refused as two subjects: {refused}")
    _summary(cases, calibrate=not any("changes" in case for case in cases))  # --calibrate rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tuning", action="store_true", help="tuning seeds (default held-out)")
    parser.add_argument("--pairs", type=int, default=20, help="seeds to run (default 20)")
    parser.add_argument("--skip", type=int, default=0, help="start after this many seeds")
    parser.add_argument(
        "--seeds",
        type=tuning_seed_range(min(HELD_OUT_PAIR_SEEDS)),
        metavar="A-B",
        help="tuning seeds A..B (below the held-out range), e.g. 60-119; --skip and --pairs apply",
    )
    parser.add_argument("--calibrate", action="store_true", help="measure K (tuning retest)")
    parser.add_argument("--json", type=Path, help="write the per-case rows here")
    parser.add_argument(
        "--joint",
        action="store_true",
        help="joint phantom pairs (held-out joint seeds; --tuning: tuning ones), bone by bone",
    )
    parser.add_argument(
        "--subject-check",
        action="store_true",
        help="texture and shape measures of one- and two-subject pairs",
    )
    parser.add_argument(
        "--auto-bodies",
        action="store_true",
        help="--subject-check with automatic bodies (each visit analysed without labels)",
    )
    parser.add_argument(
        "--timing",
        action="store_true",
        help="seconds per compare, decided together and alone, on test-retest pairs",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep each visit's analysis under this folder (and reuse it when there)",
    )
    parser.add_argument(
        "--vary",
        type=lambda text: text.split(","),
        default=list(ACQUISITION_CHANGES),
        metavar="A,B",
        help=f"what a test-retest pair changes, of {','.join(ACQUISITION_CHANGES)} (default all)",
    )
    parser.add_argument(
        "--sources",
        action="store_true",
        help="test-retest: truth on each grid vs the analysis, per visit",
    )
    parser.add_argument(
        "--retest-lesions",
        action="store_true",
        help="test-retest (tuning, --keep): the difference of the total lesion by lesion",
    )
    parser.add_argument(
        "--summarise",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="print the summary of per-case rows saved with --json (e.g. the two halves of "
        "the held-out seeds together) instead of running anything",
    )
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE",
        help="with --joint: an analysis parameter (repeatable; e.g. band_decided_jointly=false)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.summarise:
        summarise_saved(args.summarise)
        return
    if args.keep:
        KEEP.append(args.keep)
    VARY[:] = args.vary
    seeds = TUNING_PAIR_SEEDS if args.tuning or args.calibrate else HELD_OUT_PAIR_SEEDS
    seeds = tuple(args.seeds) if args.seeds else seeds
    seeds = seeds[args.skip : args.skip + args.pairs]
    if args.joint:
        from bmetoolkit.data.phantom import joint

        chosen = joint.TUNING_SEEDS if args.tuning else joint.HELD_OUT_SEEDS
        chosen = chosen[args.skip : args.skip + args.pairs]
        if args.timing:
            _joint_timing(chosen)
        else:
            _joint(chosen, parameters(args.param))
        return
    if args.subject_check:
        _subject_check(list(seeds), args.auto_bodies)
        return
    if args.timing:
        _timing(list(seeds))
        return
    if args.retest_lesions:
        _retest_lesions(list(seeds), args)
        return
    if args.sources:
        for seed in seeds:
            print(json.dumps(_retest_sources(seed)), flush=True)
        return
    cases: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    for seed in seeds:
        case = _pair_case(seed, args.calibrate)
        if "refused" in case:  # a genuine pair refused as two subjects: counted, not fatal
            refused.append(case)
            print(json.dumps(case), flush=True)
            continue
        cases.append(case)
        print(json.dumps({k: v for k, v in case.items() if not k.startswith("retest")} | {
            name: {k: v for k, v in case[name].items()
                   if k not in ("differences", "one_visit_only")}
            for name in ("retest", "retest_alone", "retest_counted")}, default=str),
            flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(cases + refused, indent=1, default=str))
    if refused:
        print(f"\npairs of one subject refused as two subjects: {len(refused)} of "
              f"{len(seeds)} seeds {[(r['seed'], r['pair']) for r in refused]}")  # fmt: skip
    _summary(cases, args.calibrate)


def _retest_lesions(seeds: list[int], args: argparse.Namespace) -> None:
    """``--retest-lesions``: each kept test-retest pair lesion by lesion (tuning seeds only:
    held-out pairs are not looked into), then the summary (:mod:`retest_lesions`)."""
    import retest_lesions

    if not (args.tuning or args.seeds) or not args.keep:
        raise SystemExit("--retest-lesions needs --keep DIR and tuning seeds (--tuning or --seeds)")
    rows = []
    for seed in seeds:
        if not all((f / "report.json").exists() for f in _kept_folders(f"{seed} retest")):
            _analysed(make_phantom_pair(seed, retest=True), args.keep, f"{seed} retest")
        rows.append(retest_lesions.pair_row(args.keep, seed))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "lesions"}), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    retest_lesions.summarise(rows)


def _pair_case(seed: int, calibrate: bool) -> dict[str, Any]:
    """One seed's change pair (unless ``calibrate``) and test-retest pair, compared; a row
    naming the pair and the message when compare refused it as two subjects."""
    case: dict[str, Any] = {"seed": seed}
    stage = "change"
    try:
        if not calibrate:
            pair = make_phantom_pair(seed)
            result, seconds, alone = _compared(pair, f"{seed} pair")
            counted = _counted(result)
            case |= {"changes": _change_errors(pair, result),
                     "transitions": _transitions(pair, result), "seconds": seconds,
                     "changes_alone": _change_errors(pair, alone),
                     "transitions_alone": _transitions(pair, alone),
                     "changes_counted": _change_errors(pair, counted),
                     "transitions_counted": _transitions(pair, counted)}  # fmt: skip
        stage = "test-retest"
        label = f"{seed} retest"
        if set(VARY) != set(ACQUISITION_CHANGES):
            label += " " + "+".join(sorted(VARY))
        retest_pair = make_phantom_pair(seed, retest=True, vary=VARY)
        retest, seconds_retest, retest_alone = _compared(retest_pair, label)
    except VisitMismatchError as error:
        return {"seed": seed, "pair": stage, "refused": str(error)}
    case |= {"retest": _retest(retest), "seconds_retest": seconds_retest,
             "retest_alone": _retest(retest_alone), "joint": retest.joint,
             "retest_counted": _retest(_counted(retest)),
             "retest_veins": _retest_veins(retest_pair, retest, retest_alone)}  # fmt: skip
    return case


def _retest_veins(
    pair: PhantomPair, together: Comparison, alone: Comparison
) -> dict[str, dict[str, float]]:
    """Per visit of a test-retest pair, the edema counted inside the true basivertebral
    veins (voxels, on the visit's grid; :func:`vein_truth.inside_veins_ml`): decided
    together (compare's default) and alone; empty when the phantom has no veins."""
    rows = {}
    for way, result in (("together", together), ("alone", alone)):
        for name, study, visit in (("baseline", pair.baseline, result.baseline),
                                   ("followup", pair.followup, result.followup)):  # fmt: skip
            inside = inside_veins_ml(visit.maps["bme_mask"], study.truth)
            if inside:
                rows[f"{way}_{name}"] = inside
    return rows


def _vein_lines(cases: Sequence[dict[str, Any]], means: np.ndarray, diffs: np.ndarray) -> None:
    """The test-retest pairs above 1 mL differing by more than :data:`LARGE_RETEST` of their
    mean volume, each with the part of its difference that lies in true vein voxels
    (decided together, voxels counted: compare's default)."""
    rows = [c.get("retest_veins") or {} for c in cases]
    if not any(rows):
        return
    inside = np.array([
        [r.get(f"together_{v}", {}).get("bme_in_vein_ml", 0.0) for v in ("baseline", "followup")]
        for r in rows
    ])  # fmt: skip
    in_vein = inside[:, 1] - inside[:, 0]
    keep = means > 1.0
    print(f"test-retest, edema inside the true veins (together, counted), pairs above 1 mL "
          f"({keep.sum()}): per visit {_quantiles(list(inside[keep].ravel()))} mL; |difference| "
          f"inside the veins {_quantiles(list(abs(in_vein[keep])))} mL")  # fmt: skip
    large = keep & (abs(diffs) > LARGE_RETEST * means)
    print(f"  pairs differing by more than {100 * LARGE_RETEST:.0f} % ({large.sum()}):")
    for k in np.flatnonzero(large):
        print(f"  seed {cases[k]['seed']}: mean {means[k]:.3f} mL, difference {diffs[k]:+.3f} mL "
              f"({100 * diffs[k] / means[k]:+.1f} %), of it in true vein voxels "
              f"{in_vein[k]:+.3f} mL (baseline {inside[k, 0]:.3f}, follow-up "
              f"{inside[k, 1]:.3f} mL)")  # fmt: skip
    rest = diffs[keep] - in_vein[keep]
    rc = RC_FACTOR * float(np.sqrt(np.mean((rest / means[keep]) ** 2) / 2))
    print(
        f"  RC of the total above 1 mL with the differences inside the veins taken out: "
        f"{100 * rc:.1f} %"
    )


def _summary(cases: list[dict[str, Any]], calibrate: bool) -> None:
    """The three summaries; the seconds are those of the joint, weighted compare.

    Each way's RC above 1 mL is also given on the pairs whose default volume (decided
    together, voxels counted) is above 1 mL: the weighted volumes are larger, and a pair
    just under 1 mL counted (whose relative difference is large) would otherwise enter one
    way's figure and not the other's.
    """
    default = [c["retest_counted"] for c in cases if "retest_counted" in c]
    shared = np.array([(r["total_baseline"] + r["total_followup"]) / 2 for r in default])
    for suffix, title in (("_alone", "each visit decided alone"),
                          ("_counted", "both visits decided together, voxels counted "
                           "(compare's default)"),
                          ("", "both visits decided together, edges weighted by partial "
                           "volume (--partial-volume)")):  # fmt: skip
        print(f"\n== {title} ==")
        _summary_of(
            [
                c
                | {
                    k: c[k + suffix]
                    for k in ("retest", "changes", "transitions")
                    if k + suffix in c
                }
                for c in cases
            ],
            calibrate,
            timed=not suffix,
            default_means=shared if len(shared) == len(cases) else None,
            veins=suffix == "_counted",
        )


def _summary_of(
    cases: list[dict[str, Any]],
    calibrate: bool,
    timed: bool = True,
    default_means: np.ndarray | None = None,
    veins: bool = False,
) -> None:
    retest = [c["retest"] for c in cases]
    ratios = [d / (RC_FACTOR * s) for r in retest for d, s in r["differences"] if s > 0]
    print(f"\n{len(cases)} seeds {[c['seed'] for c in cases]}")
    if ROLE_CHECK_REFUSED:
        print(f"visits the role check refused (analysed without it): {ROLE_CHECK_REFUSED}")
    if ratios:
        print(f"K for 95 % of test-retest differences within RC: {np.percentile(ratios, 95):.4f} "
              f"(shipped {BOUNDARY_SD_FACTOR}; {len(ratios)} differences)")  # fmt: skip
    means = np.array([(r["total_baseline"] + r["total_followup"]) / 2 for r in retest])
    diffs = np.array([r["total_followup"] - r["total_baseline"] for r in retest])
    rc_ml = RC_FACTOR * float(np.sqrt(np.mean(diffs**2) / 2))
    spread = _quantiles(list(abs(diffs)))
    print(f"test-retest RC of the total edema: {rc_ml:.3f} mL over {len(retest)} pairs "
          f"(mean volume {means.mean():.2f} mL); |difference| mL {spread}")  # fmt: skip

    def relative_rc(pairs: str, keep: np.ndarray) -> None:
        relative = diffs[keep] / means[keep]
        rc = RC_FACTOR * float(np.sqrt(np.mean(relative**2) / 2))
        low, high = _rc_interval(rc, int(keep.sum()))
        print(f"  relative, {pairs} ({keep.sum()}): RC {100 * rc:.1f} % (95 % CI "
              f"{100 * low:.1f}-{100 * high:.1f} %); |difference| % "
              f"{_quantiles(list(100 * abs(relative)))}")  # fmt: skip

    for floor in (0.0, 1.0):
        if (means > floor).any():
            relative_rc(f"pairs with a mean volume above {floor} mL", means > floor)
    if default_means is not None and (default_means > 1.0).any():
        relative_rc(
            "the pairs whose default volume (voxels counted) is above 1 mL", default_means > 1.0
        )
    if veins:
        _vein_lines(cases, means, diffs)
    print(f"test-retest lesions new or resolved: {sum(r['new_or_resolved'] for r in retest)} "
          f"in {len(retest)} pairs; regions flagged real: "
          f"{sum(r['real_changes'] for r in retest)}")  # fmt: skip
    seconds = [c["seconds_retest"] for c in cases] + [c["seconds"] for c in cases if "seconds" in c]
    if timed:
        print(f"compare seconds (two realistic studies, from output folders): "
              f"{_quantiles(seconds)}")  # fmt: skip
    if calibrate:
        return
    errors = [e for c in cases for e in c["changes"]]
    body = [e for e in errors if e["region"] != "total"]
    total = [e for e in errors if e["region"] == "total"]
    for name, rows in (("per body", body), ("total", total)):
        print(f"change error {name} (mL): {_quantiles([e['error_ml'] for e in rows])}; within "
              f"max(0.3 mL, 10 %): {sum(e['within'] for e in rows)}/{len(rows)}; error over "
              f"that allowance {_against_allowed(rows)}")  # fmt: skip
    changed = [e for e in body if abs(e["true"]) >= ALLOWED_ML]
    unchanged = [e for e in body if e["true"] == 0]
    print(f"true changes flagged real (bodies changed by {ALLOWED_ML} mL or more): "
          f"{sum(e.get('real', False) for e in changed)}/{len(changed)}; bodies without a "
          f"true change flagged real: {sum(e.get('real', False) for e in unchanged)}/"
          f"{len(unchanged)}")  # fmt: skip
    right = sum(c["transitions"][0] for c in cases)
    assessable = sum(c["transitions"][1] for c in cases)
    print(f"Modic transitions right where the type is right at both visits: {right}/{assessable}")


if __name__ == "__main__":
    main()
