"""Speed of the any-bone analysis on a 400x400x30 study with three bones (a script, not a test).

The issue's target: the analysis of a 400 x 400 x 30 study with 3 bones in under 1 s. Each
case is a joint phantom (:mod:`bmetoolkit.data.phantom.joint`: a knee with femur, tibia and
patella, coronal T1 and STIR by default) whose T1 matrix is set to 400 x 400 x 30 with the
drawn field of view and slice spacing kept (the fluid image keeps its own drawn grid). The
study is built once (loading, resampling and the first role check are not part of the
figure; the role check on the bone masks is), then
:func:`bmetoolkit.analysis.analyze_study` runs with the true bone masks ``--repeat`` times
after a warm-up run; the figure is ``timings.analysis_s`` (the bone analysis after the masks
are on the grid) and the process CPU time of the same call.

Printed per seed: the grid, the bones in view with their marrow (mL), the median, min and
max wall and CPU seconds; then the median over all runs of all seeds, and the load average
before and after (other processes on a shared machine slow the wall time, not the CPU time).
``--profile`` adds the functions taking the most CPU time in one more run of the first seed.

``--against TREE`` compares this code with another checkout's (e.g. a ``git worktree`` of
main): two worker processes, one importing each tree's ``bmetoolkit``, analyse the same
studies in turn, call by call (the first of each pair alternating), so both see the same
load; printed per tree: the CPU median and minimum per seed and over all calls. On a shared
machine this is the fair comparison: back-to-back runs minutes apart meet different loads.

Run: ``python benchmarks/bench_joint_speed.py [--seeds 9001 9002 9003] [--repeat 5]
[--joint knee|sij] [--plane coronal] [--cache DIR] [--profile] [--against TREE]`` (about
20 s per seed to render the phantom, reused from ``--cache`` while the generator's source is
unchanged).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import os
import pickle
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bmetoolkit.analysis import analyze_study
from bmetoolkit.data.phantom.joint import draw_joint_case, render_joint_case
from bmetoolkit.study import Study

#: The study grid of the target.
SHAPE = (400, 400, 30)


def _generator_version() -> str:
    """A digest of the joint phantom's source: cached phantoms of other code are stale."""
    folder = Path(render_joint_case.__code__.co_filename).parent
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_phantom(seed: int, joint: str, plane: str, cache: Path | None) -> Any:
    """The seed's joint phantom with its T1 on a 400x400x30 matrix (same field of view)."""
    path = None
    if cache is not None:
        path = cache / f"speed-{_generator_version()}-{joint}-{plane}-{seed}.pkl"
        if path.exists():
            with path.open("rb") as stream:
                return pickle.load(stream)
    draws = draw_joint_case(seed, joint=joint, plane=plane, fluid="stir", lesions="random")
    t1 = draws.acquisitions["t1"]
    fov = (t1.shape[0] * t1.pixel_mm[0], t1.shape[1] * t1.pixel_mm[1])
    t1 = replace(t1, shape=SHAPE, pixel_mm=(fov[0] / SHAPE[0], fov[1] / SHAPE[1]))
    phantom = render_joint_case(replace(draws, acquisitions={**draws.acquisitions, "t1": t1}))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.part")
        with partial.open("wb") as stream:
            pickle.dump(phantom, stream, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(path)
    return phantom


def time_seed(phantom: Any, repeat: int) -> tuple[Study, list[float], list[float], Any]:
    """Wall (``timings.analysis_s``) and CPU seconds of ``repeat`` analyses of one study."""
    study = Study.from_images(phantom.t1, stir=phantom.fluid)
    names = phantom.truth.bone_names

    def run() -> Any:
        return analyze_study(study, marrow=phantom.truth.bones, marrow_labels=names)

    result = run()  # warm-up: imports, caches
    wall, cpu = [], []
    for _ in range(repeat):
        clock = time.process_time()
        result = run()
        cpu.append(time.process_time() - clock)
        wall.append(result.timings["analysis_s"])
    return study, wall, cpu, run


def _spread(values: Sequence[float]) -> str:
    return (
        f"median {statistics.median(values):.3f} s (min {min(values):.3f}, max {max(values):.3f})"
    )


def answer_seeds(joint: str, plane: str, cache: Path | None) -> int:
    """Worker of ``--against``: for each seed read from stdin, the CPU seconds of one
    analysis of its study (studies built and warmed up once)."""
    runs: dict[int, Any] = {}
    for line in sys.stdin:
        seed = int(line)
        if seed not in runs:
            runs[seed] = time_seed(build_phantom(seed, joint, plane, cache), 0)[3]
        clock = time.process_time()
        runs[seed]()
        print(time.process_time() - clock, flush=True)
    return 0


def alternate(args: argparse.Namespace) -> int:
    """This tree's and ``args.against``'s analyses in turn, call by call (``--against``)."""
    trees = {"this": Path(__file__).resolve().parents[1], "against": args.against.resolve()}
    options = ["--worker", "--joint", args.joint, "--plane", args.plane]
    if args.cache is not None:
        options += ["--cache", str(args.cache.resolve())]
    workers = {
        name: subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), *options],
            cwd=tree,
            env={**os.environ, "PYTHONPATH": str(tree)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name, tree in trees.items()
    }
    cpu: dict[str, dict[int, list[float]]] = {name: {} for name in trees}
    load_before = os.getloadavg()[0]
    for round_ in range(args.repeat):
        for seed in args.seeds:
            for name in list(trees)[:: 1 if round_ % 2 == 0 else -1]:
                worker = workers[name]
                assert worker.stdin is not None and worker.stdout is not None
                worker.stdin.write(f"{seed}\n")
                worker.stdin.flush()
                cpu[name].setdefault(seed, []).append(float(worker.stdout.readline()))
    for worker in workers.values():
        assert worker.stdin is not None
        worker.stdin.close()
        worker.wait()
    for name, tree in trees.items():
        per_seed = ", ".join(
            f"{seed} {statistics.median(v):.3f} (min {min(v):.3f})" for seed, v in cpu[name].items()
        )
        every = [v for values in cpu[name].values() for v in values]
        print(f"{name} ({tree}): CPU per seed {per_seed}; all {len(every)} calls {_spread(every)}")
    print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[9001, 9002, 9003])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--joint", choices=("knee", "sij"), default="knee")
    parser.add_argument("--plane", default="coronal")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR")
    parser.add_argument("--profile", action="store_true", help="CPU profile of one more run")
    parser.add_argument(
        "--against", type=Path, default=None, metavar="TREE",
        help="alternate call by call with another checkout's code (CPU only)",
    )  # fmt: skip
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return answer_seeds(args.joint, args.plane, args.cache)
    if args.against is not None:
        return alternate(args)
    load_before = os.getloadavg()[0]
    all_wall, all_cpu, first_run = [], [], None
    for seed in args.seeds:
        phantom = build_phantom(seed, args.joint, args.plane, args.cache)
        study, wall, cpu, run = time_seed(phantom, args.repeat)
        first_run = first_run or run
        bones = np.asarray(phantom.truth.bones.data)
        voxel_ml = study.grid.voxel_volume_mm3 / 1000
        in_view = {
            name: round(float(np.count_nonzero(bones == number)) * voxel_ml, 1)
            for number, name in phantom.truth.bone_names.items()
            if (bones == number).any()
        }
        print(
            f"seed {seed} {args.joint} {args.plane} {'x'.join(map(str, study.grid.shape))} "
            f"bones (mL) {in_view}: wall {_spread(wall)}, CPU {_spread(cpu)}",
            flush=True,
        )
        all_wall += wall
        all_cpu += cpu
    print(
        f"all {len(all_wall)} runs: analysis wall {_spread(all_wall)}, CPU {_spread(all_cpu)}; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
        f"({os.cpu_count()} cores)"
    )
    if args.profile and first_run is not None:
        profile = cProfile.Profile(time.process_time)
        profile.runcall(first_run)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
