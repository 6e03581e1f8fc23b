"""Accuracy and speed of the any-bone analysis on held-out joint phantoms (a script, not a test).

Each case is a joint phantom (:mod:`bmetoolkit.data.phantom.joint`: a knee or the
sacroiliac joints, every property drawn from broad ranges) analysed as a user would:
``bmetoolkit.analyze(t1, stir=fluid, marrow=true bone masks, marrow_labels=names)``. In
every 24 cases each joint meets every plane (sagittal, coronal, axial, oblique) and fluid
image (STIR, fat-suppressed T2 or PD) once (:func:`case_options`); every fifth case is
healthy (red-marrow islands only) and every seventh has no T1.

Printed per case: joint, plane, fluid image, T1 or not, BME Dice and volume error, edema
reported on a healthy joint, voxels of cysts and of red-marrow islands reported as edema,
the analysis seconds (``timings.analysis_s``: after loading and resampling) and the grid.
Then the median and the worst decile (10th percentile where higher is better, 90th where
lower is better) of Dice and volume error (cases with edema), healthy joints with edema,
cases with a cyst reported as edema, and the analysis time.

Cases: held-out seeds (``HELD_OUT_SEEDS``, from 5000) by default; ``--tuning`` takes the
tuning seeds (from 0), the only ones to look at while choosing defaults.

Run: ``python benchmarks/bench_joint.py [--tuning] [--cases N] [--first I] [--jobs 2]
[--json rows.json] [--cache DIR] [--lesions none|random] [--param NAME=VALUE ...]``
(``--first``: start at the I-th case, e.g. ``--tuning --first 30 --cases 30`` for seeds
30-59; ``--lesions none``: every case a healthy joint, to count edema reported on healthy
joints on more of them; about 20 s per case on one
core, most of it rendering; with ``--cache`` a second run reuses the rendered phantoms while
the joint phantom's source is unchanged, and takes a few seconds per case).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_randomized import WORST_DECILE_PERCENTILE, parameters
from phantom_cache import cached, source_digest

import bmetoolkit as bt
from bmetoolkit.batch.runner import single_threaded_workers
from bmetoolkit.data.phantom.joint import (
    FLUID_KINDS,
    HELD_OUT_SEEDS,
    PLANES,
    TUNING_SEEDS,
    make_joint_phantom,
)
from bmetoolkit.errors import ContrastMismatchError
from bmetoolkit.metrics import dice, volume_error
from bmetoolkit.params import Parameters

JOINTS = ("knee", "sij")


def case_options(index: int, lesions: str | None = None) -> dict[str, Any]:
    """The options of the ``index``-th case of a run: in every 24 cases each joint meets
    every plane and fluid image once; every fifth case is healthy, every seventh has no T1.
    ``lesions`` (``"none"`` or ``"random"``) makes every case healthy, or every case one
    with lesions, instead.
    """
    return {
        "joint": JOINTS[(index // 12) % len(JOINTS)],
        "plane": PLANES[index % len(PLANES)],
        "fluid": FLUID_KINDS[(index // len(PLANES)) % len(FLUID_KINDS)],
        "with_t1": index % 7 != 6,
        "lesions": lesions or ("none" if index % 5 == 3 else "random"),
    }


def _generator_version() -> str:
    """A digest of the joint phantom's source: cached phantoms of other code are stale."""
    return source_digest(make_joint_phantom)


def build_phantom(
    seed: int, index: int, cache: Path | None = None, lesions: str | None = None
) -> Any:
    """The joint phantom of a case, from ``cache`` when it holds this generator's."""
    options = case_options(index, lesions)
    key = f"joint-{_generator_version()}-{seed}-{index}" + (f"-{lesions}" if lesions else "")
    return cached(cache, key, lambda: make_joint_phantom(seed, **options))


def run_case(
    seed: int,
    index: int,
    params: Parameters,
    cache: Path | None = None,
    lesions: str | None = None,
) -> dict[str, Any]:
    """Render (or load from ``cache``) one case, analyse it and score it against the truth."""
    options = case_options(index, lesions)
    phantom = build_phantom(seed, index, cache, lesions)
    truth = np.asarray(phantom.truth.bme_mask.data, bool)
    healthy = not truth.any()
    case = {
        "seed": seed,
        "joint": options["joint"],
        "plane": "".join(phantom.fluid.grid.axcodes),
        "fluid": phantom.fluid_kind,
        "t1": phantom.t1 is not None,
        "healthy": healthy,
    }
    try:
        result = bt.analyze(
            phantom.t1,
            stir=phantom.fluid,
            marrow=phantom.truth.bones,
            marrow_labels=phantom.truth.bone_names,
            params=params,
        )
    except ContrastMismatchError as exc:  # the role check refused the genuine T1
        return case | {"refused": str(exc)}
    found = np.asarray(result.bme_mask.data, bool)
    return case | {
        "refused": None,
        "dice": None if healthy else dice(found, truth),
        "volume_error": None if healthy else volume_error(found, truth),
        "found_ml": result.bme_volume_ml,
        "true_ml": round(float(truth.sum()) * result.study.grid.voxel_volume_mm3 / 1000, 4),
        "cyst_voxels": int(
            np.count_nonzero(found & np.asarray(phantom.truth.cyst_mask.data, bool))
        ),
        "island_voxels": int(
            np.count_nonzero(found & np.asarray(phantom.truth.islands_mask.data, bool))
        ),
        "analysis_s": round(result.timings.get("analysis_s", float("nan")), 3),
        "shape": list(result.study.grid.shape),
        "n_bones": len(phantom.truth.bone_names),
    }


def _format(row: dict[str, Any]) -> str:
    def number(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    head = (
        f"seed {row['seed']:5d} {row['joint']:4s} {row['plane']:3s} {row['fluid']:5s} "
        f"{'T1' if row['t1'] else 'noT1'} {'healthy' if row['healthy'] else 'lesions'} "
    )
    if row["refused"]:
        return head + "REFUSED by the role check"
    return head + (
        f"dice {number(row['dice'], '.3f')} vol.err {number(row['volume_error'], '.1%')} "
        f"found {row['found_ml']:.2f} true {row['true_ml']:.2f} mL cyst {row['cyst_voxels']} "
        f"island {row['island_voxels']} {row['analysis_s']:.2f} s "
        f"{'x'.join(map(str, row['shape']))}"
    )


def _figure(name: str, values: list[float], *, higher_is_better: bool, fmt: str) -> str:
    if not values:
        return f"{name}: no cases"
    percentile = WORST_DECILE_PERCENTILE if higher_is_better else 100 - WORST_DECILE_PERCENTILE
    return (
        f"{name}: median {format(float(np.median(values)), fmt)}, worst decile "
        f"{format(float(np.percentile(values, percentile)), fmt)} ({len(values)} cases)"
    )


def summary(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Median and worst decile of every figure (cases the role check refused apart)."""
    refused = [r for r in rows if r["refused"]]
    rows = [r for r in rows if not r["refused"]]
    lesion_rows = [r for r in rows if not r["healthy"]]
    healthy = [r for r in rows if r["healthy"]]
    with_cyst = [r for r in rows if r["cyst_voxels"] > 0]
    return [
        f"genuine T1s refused by the role check: {len(refused)} of {len(rows) + len(refused)}",
        _figure("BME Dice", [r["dice"] for r in lesion_rows], higher_is_better=True, fmt=".3f"),
        _figure(
            "BME volume error",
            [r["volume_error"] for r in lesion_rows],
            higher_is_better=False,
            fmt=".1%",
        ),
        f"healthy joints with edema reported: {sum(r['found_ml'] > 0 for r in healthy)} of "
        f"{len(healthy)}",
        f"cases with cyst voxels reported as edema: {len(with_cyst)} of {len(rows)}",
        _figure(
            "analysis seconds",
            [r["analysis_s"] for r in rows],
            higher_is_better=False,
            fmt=".2f",
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tuning", action="store_true", help="tuning seeds, not held-out")
    parser.add_argument("--cases", type=int, default=24, metavar="N", help="cases (default 24)")
    parser.add_argument(
        "--first", type=int, default=0, metavar="I", help="index of the first case (default 0)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="save rows")
    parser.add_argument(
        "--cache", type=Path, default=None, metavar="DIR", help="reuse rendered phantoms"
    )
    parser.add_argument(
        "--lesions",
        choices=("none", "random"),
        default=None,
        help="every case healthy (none) or with lesions (random), instead of every fifth healthy",
    )
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="a parameter"
    )
    args = parser.parse_args(argv)
    params = parameters(args.param)
    indices = list(range(args.first, args.first + args.cases))
    seeds = [(TUNING_SEEDS if args.tuning else HELD_OUT_SEEDS)[index] for index in indices]
    print(f"{'tuning' if args.tuning else 'held-out'} seeds {seeds[0]}-{seeds[-1]}", flush=True)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    if args.jobs <= 1:
        for seed, index in zip(seeds, indices, strict=True):
            rows.append(run_case(seed, index, params, args.cache, args.lesions))
            print(_format(rows[-1]), flush=True)
    else:
        context = multiprocessing.get_context("spawn")
        with single_threaded_workers(), ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            caches = [args.cache] * len(seeds)
            lesions = [args.lesions] * len(seeds)
            for row in pool.map(run_case, seeds, indices, [params] * len(seeds), caches, lesions):
                rows.append(row)
                print(_format(row), flush=True)
    print("\n".join(summary(rows)))
    print(f"{len(rows)} cases in {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
