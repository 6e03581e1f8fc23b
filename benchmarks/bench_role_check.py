"""How often the image-based role check refuses genuine pairs and catches images in wrong roles.

Every case is judged as :meth:`bmetoolkit.study.Study.from_images` judges it
(:func:`bmetoolkit.pairing.sanity.judge_roles` on :func:`bmetoolkit.pairing.tissue.measure_roles`
for each fluid role), with and without a marrow mask where the case has one:

- **genuine**: the real cervical T1w/T2 pair (SCT, the only bundled real study with a T1),
  the bundled phantom sample, fixed phantoms (seeds 0 and 5, small and realistic),
  randomized spine phantoms (:func:`~bmetoolkit.data.phantom.make_randomized_phantom`: STIR
  or fat-suppressed T2, any SNR, shading, grids, fields of view) with their T2 and STIR, and
  joint phantoms (:func:`~bmetoolkit.data.phantom.joint.make_joint_phantom`: knee and
  sacroiliac joints, every plane, STIR / fat-suppressed T2 / PD);
- **wrong**: on the same cases, a T2 given as the T1 (with the STIR), a STIR given as the T1
  (with the T2), the T1 and T2 swapped, the T1 and STIR swapped, a T2 as the T1 with the T1
  as the STIR, a STIR as the T1 with the T1 as the T2; on joints, the T1 and the fluid image
  swapped; on the real pair, T1 and T2 swapped;
- **views without the body's surface**, genuine and in every wrong role as above, cut from
  the same phantoms in world coordinates (so every grid of a study shows the same part of
  the body): ``spine-slab``, a sagittal slab of the spine without skin (the vertebrae's box,
  20 mm wider front and back, as wide as the bodies from side to side, head to foot);
  ``knee-small-fov`` and ``sij-small-fov``, the inner 60 % in-plane with the whole slab (a
  small field of view); ``knee-tight`` and ``sij-tight``, the inner 40 % of every axis (a
  view inside the joint that fatty marrow fills).

A relation that speaks against the roles but cannot be judged in the view (the fat-scarce
relation without the body's surface fat: :data:`bmetoolkit.pairing.sanity.NOTE_RULES`) is a
note, not a refusal, as in the check; the summary counts the cases that passed with one.

Seeds: ``--tuning`` (randomized spine 0-39, joints from ``TUNING_SEEDS``), where the
thresholds were looked at, and held-out (randomized spine 40-99, joints from
``HELD_OUT_SEEDS``, the default), never mixed. Printed: genuine refused of N and wrong caught
of M, per kind of case, and each refusal; ``--json`` saves every measure.

Fine grids are judged on every k-th voxel, as the check does
(:func:`bmetoolkit.pairing.tissue.judging_steps`: the small phantoms, 3.5 mm and coarser, on
every voxel); ``--every-voxel`` judges every voxel, to compare (with ``--full-size-spine``
and ``--full-size-joints``, where the two differ).

Run: ``python benchmarks/bench_role_check.py [--tuning] [--spine N] [--joints N]
[--first-spine K] [--first-joint K] [--jobs 2] [--full-size-spine] [--full-size-joints]
[--every-voxel] [--json rows.json]`` and ``--rejudge rows.json`` to judge saved
measures again with the current thresholds (about 3 s per spine case and 4 s per small joint
case on one core).

``--bench-joint I:N[:none] --cache DIR`` judges instead the full-size joint phantoms of
``benchmarks/bench_joint.py`` (its cases I to I+N-1, ``:none`` for its healthy renders, from
its phantom cache), genuine and with the T1 and the fluid image swapped, with and without
their bone masks: e.g. ``--tuning --bench-joint 0:34 --bench-joint 60:25:none --cache
/tmp/work/cache/joint`` (the tuning phantoms its runs have rendered).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from bmetoolkit.data import datasets
from bmetoolkit.data import phantom as phantoms
from bmetoolkit.data.phantom.joint import (
    FLUID_KINDS,
    HELD_OUT_SEEDS,
    PLANES,
    TUNING_SEEDS,
    make_joint_phantom,
)
from bmetoolkit.pairing.sanity import NOTE_RULES, judge_roles, names_say_swapped
from bmetoolkit.pairing.tissue import RoleEvidence, measure_roles
from bmetoolkit.study import Study
from bmetoolkit.volume import Volume

SPINE_TUNING = range(0, 40)
SPINE_HELD_OUT = range(40, 100)
JOINTS = ("knee", "sij")


#: Judge every voxel (``--every-voxel``), not every k-th of a fine grid as the check does.
EVERY_VOXEL = False


def _judge(name: str, kind: str, t1, labels=None, **fluid) -> Iterator[dict[str, Any]]:
    """One row per marrow choice: the roles' measures and the verdict on the whole study."""
    study = Study.from_images(t1, labels=labels, verify_roles=False, **fluid)
    masks: dict[str, Any] = {"no mask": None}
    if study.labels is not None:
        masks["marrow mask"] = np.asarray(study.labels.data) > 0  # vertebra or bone ids
    for mask_name, marrow in masks.items():
        roles, refusals, notes = {}, [], []
        for role in ("t2", "stir"):
            image = getattr(study, role)
            if image is None:
                continue
            evidence = measure_roles(
                study.t1.data,
                image.data,
                study.covered[role],
                study.grid.spacing,
                marrow,
                every_voxel=EVERY_VOXEL,
            )
            roles[role] = evidence.to_dict()
            roles[role]["names_swapped"] = names_say_swapped(study.t1, image)
            verdict = judge_roles(evidence, role, roles[role]["names_swapped"])
            if verdict is not None:
                (notes if verdict.rule in NOTE_RULES else refusals).append(
                    f"{role}: {verdict.rule}: {verdict.reason}"
                )
        yield {
            "case": name,
            "kind": kind,
            "mask": mask_name,
            "refused": refusals,
            "notes": notes,
            "roles": roles,
        }


def _crop(volume: Volume, low: np.ndarray, high: np.ndarray) -> Volume:
    """``volume`` cut to the box of voxels whose centres lie in the world box ``low``-``high``
    (mm, RAS): the same part of the body on every grid of a study, oblique ones too."""
    index = np.indices(volume.shape).reshape(3, -1)
    world = volume.affine[:3, :3] @ index + volume.affine[:3, 3:]
    inside = np.all((world >= low[:, None]) & (world <= high[:, None]), axis=0)
    if not inside.any():
        return volume
    start, stop = index[:, inside].min(axis=1), index[:, inside].max(axis=1) + 1
    box = tuple(slice(a, b) for a, b in zip(start, stop, strict=True))
    affine = volume.affine.copy()
    affine[:3, 3] = (volume.affine @ np.array([*start, 1.0]))[:3]
    return Volume(np.asarray(volume.data)[box], affine, kind=volume.kind, meta=volume.meta)


def _world_box(volume: Volume, fractions: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The world box (RAS, mm) of the inner ``fractions`` of each axis of ``volume``'s grid."""
    shape = np.asarray(volume.shape, float)
    low = (1 - np.asarray(fractions)) / 2 * (shape - 1)
    high = (shape - 1) - low
    corners = np.array(
        [
            [x, y, z, 1.0]
            for x in (low[0], high[0])
            for y in (low[1], high[1])
            for z in (low[2], high[2])
        ]
    )
    world = (volume.affine @ corners.T)[:3]
    return world.min(axis=1), world.max(axis=1)


def _skinless_slab(t1: Volume, vertebrae: Volume) -> tuple[np.ndarray, np.ndarray]:
    """A sagittal slab of the spine without skin: the vertebrae's world box, 20 mm wider
    front and back (muscle, discs and canal, not the back's subcutaneous fat) and as wide
    as the bodies from side to side."""
    inside = np.argwhere(np.asarray(vertebrae.data) > 0)
    ends = np.array([inside.min(axis=0), inside.max(axis=0)], float)
    corners = np.array(
        [[*ends[[i, j, k], [0, 1, 2]], 1.0] for i in (0, 1) for j in (0, 1) for k in (0, 1)]
    )
    world = (vertebrae.affine @ corners.T)[:3]
    low, high = world.min(axis=1), world.max(axis=1)
    low[1], high[1] = low[1] - 20.0, high[1] + 20.0  # anterior-posterior (RAS y)
    low[2], high[2] = -1e6, 1e6  # head to foot: all
    return low, high


def spine_case(seed: int, small: bool = True) -> list[dict[str, Any]]:
    """A randomized spine phantom: genuine and every wrong assignment."""
    study = phantoms.make_randomized_phantom(seed, kind="random", small=small)
    fluid = study.render_parameters["randomization"].get("fluid", "stir")
    name = f"spine {seed} ({fluid}){'' if small else ' full size'}"
    t1, t2, stir, labels = study.t1, study.t2, study.stir, study.truth.vertebrae
    cases = [
        ("genuine", t1, {"t2": t2, "stir": stir}),
        ("T2 as T1, with the STIR", t2, {"stir": stir}),
        ("STIR as T1, with the T2", stir, {"t2": t2}),
        ("T1 and T2 swapped", t2, {"t2": t1}),
        ("T1 and STIR swapped", stir, {"stir": t1}),
        ("T2 as T1, T1 as STIR", t2, {"stir": t1}),
        ("STIR as T1, T1 as T2", stir, {"t2": t1}),
    ]
    rows = []
    for kind, first, others in cases:
        rows += _judge(name, kind, first, labels=labels, **others)
    # a sagittal slab without skin (no air in view); in all roles as above
    low, high = _skinless_slab(t1, labels)
    cut = {id(v): _crop(v, low, high) for v in (t1, t2, stir)}
    slab = f"spine-slab {seed} ({fluid}){'' if small else ' full size'}"
    for kind, first, others in cases:
        others = {role: cut[id(image)] for role, image in others.items()}
        rows += _judge(slab, kind, cut[id(first)], labels=_crop(labels, low, high), **others)
    return rows


def joint_case(seed: int, index: int, small: bool = True) -> list[dict[str, Any]]:
    """A joint phantom (joint, plane and fluid image from ``index``): genuine and swapped."""
    joint = JOINTS[index % 2]
    plane = PLANES[(index // 2) % len(PLANES)]
    fluid = FLUID_KINDS[(index // (2 * len(PLANES))) % len(FLUID_KINDS)]
    phantom = make_joint_phantom(seed, joint=joint, plane=plane, fluid=fluid, small=small)
    name = f"{joint} {seed} {plane} {fluid}{'' if small else ' full size'}"
    bones = phantom.truth.bones
    rows = []
    views = {
        "": None,
        # a small field of view: the inner 60 % in-plane, the whole slab (no skin in view)
        "-small-fov": (0.6, 0.6, 1.0),
        # a tight view inside the joint: the inner 40 % of every axis, filled by marrow
        "-tight": (0.4, 0.4, 0.4),
    }
    for suffix, fractions in views.items():
        t1, fluid_image, labels = phantom.t1, phantom.fluid, bones
        if fractions is not None:
            low, high = _world_box(phantom.t1, fractions)
            t1, fluid_image, labels = (_crop(v, low, high) for v in (t1, fluid_image, bones))
        view = name.replace(joint, joint + suffix, 1)
        rows += _judge(view, "genuine", t1, labels=labels, stir=fluid_image)
        rows += _judge(view, "T1 and fluid image swapped", fluid_image, labels=labels, stir=t1)
    return rows


def bench_joint_case(seed: int, index: int, cache: Path | None, lesions: str | None):
    """A full-size case of ``bench_joint.py`` (its ``index``-th, from its phantom ``cache``):
    genuine and with the T1 and the fluid image swapped; none without a T1."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_joint import build_phantom, case_options

    phantom = build_phantom(seed, index, cache, lesions)
    if phantom.t1 is None:
        return []
    options = case_options(index, lesions)
    name = f"{options['joint']}-full {seed} {options['plane']} {phantom.fluid_kind}"
    bones = phantom.truth.bones
    return [
        *_judge(name, "genuine", phantom.t1, labels=bones, stir=phantom.fluid),
        *_judge(name, "T1 and fluid image swapped", phantom.fluid, labels=bones, stir=phantom.t1),
    ]


def fixed_cases() -> list[dict[str, Any]]:
    """The real cervical pair, the bundled phantom sample and fixed phantoms."""
    pair = datasets.cervical_pair()
    rows = [
        *_judge("real cervical (SCT)", "genuine", pair["t1"], t2=pair["t2"]),
        *_judge("real cervical (SCT)", "T1 and T2 swapped", pair["t2"], t2=pair["t1"]),
    ]
    sample = datasets.phantom_sample()
    rows += _judge(
        "bundled phantom sample", "genuine", sample["t1"], labels=sample["vertebrae"],
        t2=sample["t2"], stir=sample["stir"],
    )  # fmt: skip
    for seed in (0, 5):
        for size in ("small", "realistic"):
            config = getattr(phantoms.PhantomConfig, size)()
            study = phantoms.make_phantom(seed=seed, config=config)
            name = f"fixed phantom {seed} {size}"
            labels = study.truth.vertebrae
            rows += _judge(name, "genuine", study.t1, labels=labels, t2=study.t2, stir=study.stir)
            rows += _judge(
                name, "T2 as T1, with the STIR", study.t2, labels=labels, stir=study.stir
            )
            rows += _judge(name, "STIR as T1, with the T2", study.stir, labels=labels, t2=study.t2)
            rows += _judge(name, "T1 and T2 swapped", study.t2, labels=labels, t2=study.t1)
            rows += _judge(name, "T1 and STIR swapped", study.stir, labels=labels, stir=study.t1)
    return rows


def _evidence(measures: dict[str, Any]) -> RoleEvidence:
    """Saved measures as evidence (measures an older version saved and this one does not
    make are left out)."""
    known = {f.name for f in fields(RoleEvidence)}
    return RoleEvidence(**{k: v for k, v in measures.items() if k in known})


def _run(task: tuple, every_voxel: bool = False) -> list[dict[str, Any]]:
    global EVERY_VOXEL
    EVERY_VOXEL = every_voxel  # (in this process: a worker's own copy of the module)
    what, *args = task
    cases = {"spine": spine_case, "joint": joint_case, "fixed": fixed_cases}
    return (cases | {"bench-joint": bench_joint_case})[what](*args)


def summary(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Genuine refused of N and wrong caught of M, overall and per kind and mask."""
    lines = []
    genuine = [r for r in rows if r["kind"] == "genuine"]
    wrong = [r for r in rows if r["kind"] != "genuine"]
    lines.append(
        f"genuine refused {sum(bool(r['refused']) for r in genuine)} of {len(genuine)}; "
        f"wrong caught {sum(bool(r['refused']) for r in wrong)} of {len(wrong)}"
    )
    noted = [r for r in rows if r.get("notes") and not r["refused"]]
    lines.append(
        f"not refused with a note that the roles could not be fully judged: genuine "
        f"{sum(r['kind'] == 'genuine' for r in noted)}, wrong "
        f"{sum(r['kind'] != 'genuine' for r in noted)}"
    )
    groups = Counter((r["kind"], r["mask"], r["case"].split()[0]) for r in rows)
    for kind, mask, family in sorted(groups):
        members = [
            r for r in rows
            if (r["kind"], r["mask"], r["case"].split()[0]) == (kind, mask, family)
        ]  # fmt: skip
        refused = sum(bool(r["refused"]) for r in members)
        verb = "refused" if kind == "genuine" else "caught"
        lines.append(f"  {kind:28s} {family:8s} {mask:12s} {verb} {refused} of {len(members)}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tuning", action="store_true", help="tuning seeds, not held-out")
    parser.add_argument("--spine", type=int, default=None, metavar="N", help="spine cases")
    parser.add_argument("--joints", type=int, default=24, metavar="N", help="joint cases")
    parser.add_argument(
        "--first-spine",
        type=int,
        default=0,
        metavar="K",
        help="start at the K-th spine seed (e.g. 30: held-out 70-99)",
    )
    parser.add_argument(
        "--first-joint",
        type=int,
        default=0,
        metavar="K",
        help="start at the K-th joint seed (e.g. held-out seeds not looked at before)",
    )
    parser.add_argument(
        "--full-size-joints", action="store_true", help="joints at full size (~20 s each)"
    )
    parser.add_argument(
        "--full-size-spine", action="store_true", help="spine phantoms at full size (~0.9 mm)"
    )
    parser.add_argument(
        "--every-voxel",
        action="store_true",
        help="judge every voxel, not every k-th of a fine grid as the check does (to compare)",
    )
    parser.add_argument(
        "--bench-joint",
        action="append",
        default=[],
        metavar="I:N[:none]",
        help="judge instead the N full-size cases of bench_joint.py from its I-th (':none': "
        "its healthy cases, as its --lesions none), genuine and swapped; repeatable",
    )
    parser.add_argument(
        "--cache", type=Path, default=None, metavar="DIR", help="bench_joint.py's phantom cache"
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="save rows")
    parser.add_argument(
        "--rejudge",
        type=Path,
        default=None,
        metavar="PATH",
        help="judge the measures saved by --json again with the current thresholds (no rendering)",
    )
    args = parser.parse_args(argv)
    if args.rejudge:
        rows = json.loads(args.rejudge.read_text())
        for row in rows:
            verdicts = [
                f"{role}: {verdict.rule}: {verdict.reason}"
                for role, measures in row["roles"].items()
                if (
                    verdict := judge_roles(
                        _evidence(measures), role, measures.get("names_swapped", False)
                    )
                )
            ]
            row["notes"] = [v for v in verdicts if v.split(": ")[1] in NOTE_RULES]
            row["refused"] = [v for v in verdicts if v not in row["notes"]]
        print("\n".join(summary(rows)))
        return 0
    spine = list(SPINE_TUNING if args.tuning else SPINE_HELD_OUT)[args.first_spine :]
    spine = spine[: args.spine]
    first = args.first_joint
    joints = list(TUNING_SEEDS if args.tuning else HELD_OUT_SEEDS)[first : first + args.joints]

    def seeds(values: list[int]) -> str:
        return f"{values[0]}-{values[-1]}" if values else "none"

    which = "tuning" if args.tuning else "held-out"
    print(f"{which} seeds: spine {seeds(spine)}, joints {seeds(joints)}", flush=True)
    tasks: list[tuple] = [("spine", seed, not args.full_size_spine) for seed in spine]
    small = not args.full_size_joints
    tasks += [("joint", seed, index, small) for index, seed in enumerate(joints, start=first)]
    tasks += [("fixed",)] if args.tuning else []
    if args.bench_joint:  # full-size cases of bench_joint.py instead
        tasks = []
        for spec in args.bench_joint:
            first_case, count, *healthy = spec.split(":")
            lesions = healthy[0] if healthy else None
            indices = range(int(first_case), int(first_case) + int(count))
            all_seeds = TUNING_SEEDS if args.tuning else HELD_OUT_SEEDS
            tasks += [("bench-joint", all_seeds[i], i, args.cache, lesions) for i in indices]
        print(f"bench_joint.py cases {', '.join(args.bench_joint)}", flush=True)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []

    def show(batch: list[dict[str, Any]]) -> None:
        rows.extend(batch)
        for row in batch:
            wrong = row["kind"] != "genuine"
            if bool(row["refused"]) != wrong:
                what = "REFUSED" if row["refused"] else "not caught"
                print(f"{what}: {row['case']}, {row['kind']}, {row['mask']}: {row['refused']}")
        if batch:  # (a bench_joint.py case without a T1 has none)
            print(f"measured {batch[0]['case']}", flush=True)
        if args.json:  # after every case, so that a long run can be looked at while it runs
            args.json.write_text(json.dumps(rows, indent=1))

    if args.jobs <= 1:
        for task in tasks:
            show(_run(task, args.every_voxel))
    else:
        from bmetoolkit.batch.runner import single_threaded_workers

        context = multiprocessing.get_context("spawn")
        with single_threaded_workers(), ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            for future in as_completed(
                [pool.submit(_run, task, args.every_voxel) for task in tasks]
            ):
                show(future.result())
    print("\n".join(summary(rows)))
    print(f"{len(rows)} judgements in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
