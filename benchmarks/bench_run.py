"""A whole ``bmetoolkit analyze`` run against the cost of reading its files (a script, not a test).

In one run, on the same files, each as a fresh process of this interpreter (start-up and
imports included, as a user pays them):

- **bare read**: ``import nibabel`` and read every input (T1, T2, STIR, vertebra labels) into
  memory, nothing else (nibabel imports pydicom, when installed, for its DICOM header
  extension: ~0.1 s of CPU that ``bmetoolkit analyze`` no longer pays, see
  :mod:`bmetoolkit.lean_imports`);
- **bare read without pydicom**: the same with pydicom kept out of nibabel (its import made
  to fail), printed as a second reference: the ratio to it shows what is left once neither
  pays pydicom;
- ``bmetoolkit analyze ... --no-qc``: the analysis and its outputs, without the QC page;
- ``bmetoolkit analyze ...``: the same with its QC page (``qc.html``);
- ``bmetoolkit --help``: start-up of the command line.

Modules are byte-compiled, as in an installed package, even when ``PYTHONDONTWRITEBYTECODE``
is set (see :func:`_environment`). The four are run back to back in each round, every other
round in reverse order (run always in one order, two identical checkouts came out 15 % apart),
rounds repeated (``--repeat``), so a load from other processes hits them alike; the ratios are
the medians of the per-round ratios. Each command's CPU time (user + system of the child
process) is printed too, with its ratios: on a busy machine the wall-clock figures swing
with the other processes, CPU time much less. Inputs
default to the bundled phantom sample (``sample_data/phantom/nifti``, T1 200x200x16 with
T2, STIR and vertebra labels); ``--size realistic`` builds a ~400x400x16 phantom instead
(``make_phantom(7001)``, a healthy spine). ``--lesions random`` renders that phantom with the
lesions its seed draws (seed 7001: Modic I at T11, Modic I/II at L5 and L4, a haemangioma at
L3; the analysis reports three lesions), so the lesion and Modic stages are timed on
findings, not on an empty edema mask; any preset of
:func:`bmetoolkit.data.phantom.make_phantom` works too (``mixed``, ``modic1``...).

With ``--stages``, the same rounds also run ``analyze --no-qc`` once more with each stage's
CPU time (process time: the CPU of all its threads) measured inside the process: imports
(numpy and nibabel, which the bare read pays too; scipy.ndimage; bmetoolkit's own modules;
after :func:`bmetoolkit.cli.prepare_process`, as the command line runs them),
reading the four files,
bringing T2, STIR and labels onto the T1 grid, the role check (is the T1 a T1?), the
analysis and saving; the medians over the rounds are printed. Since 2026-12-01 the T2 and
STIR are resampled where their voxels are read: the stage "onto the T1 grid" holds their
coverage masks and the labels' resampling, the role check and the analysis their
resampling at the voxels they read.

With ``--baseline DIR`` (another checkout of bmetoolkit, e.g. ``git archive main | tar -x -C
DIR``), each round also runs both ``analyze`` commands from DIR, on the same files and right
beside this checkout's: the "was" figures of a change then meet the same load, and the
per-round ratios of this checkout's CPU time to the baseline's are printed. Under a load
that swings between rounds this is the fair comparison; two separate runs can differ by more
than the change.

With ``--one-thread``, each round also runs this checkout's two ``analyze`` commands with
``BMETOOLKIT_THREADS=1`` (every step one after the other, as on a single core): the per-round
ratios of the default to these show what running independent steps side by side in
threads (:mod:`bmetoolkit.concurrency`) gains, which it can only where a core is free. The
load average is printed at the start and the end of the run.

Run: ``python benchmarks/bench_run.py [--repeat 7] [--size sample|realistic]
[--lesions random] [--stages] [--baseline DIR] [--one-thread]``.
Targets: ``analyze --no-qc`` within 2.5x and ``analyze`` with its QC page within 4x of the
bare read; ``--help`` under 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
#: Targets of issue 17: ratios to the bare read, and the start-up time (s).
TARGET_NO_QC, TARGET_QC, TARGET_HELP_S = 2.5, 4.0, 0.5
#: The bare read with nibabel's optional pydicom import made to fail (its name, its code).
_BARE_NO_PYDICOM, _NO_PYDICOM = "bare, no pydicom", "import sys; sys.modules['pydicom'] = None\n"
#: How the baseline checkout's commands are named in the output.
_BASELINE = "(baseline)"
#: How the commands run with ``BMETOOLKIT_THREADS=1`` are named in the output.
_ONE_THREAD = "(1 thread)"
_BARE_READ = (
    "import sys\n"
    "import numpy as np\n"
    "import nibabel as nib\n"
    "for path in sys.argv[1:]:\n"
    "    np.asanyarray(nib.load(path).dataobj)\n"
)

#: ``bmetoolkit analyze`` (argv after the script) with the CPU time of each stage printed as
#: JSON: imports timed one after the other, the rest by wrapping the functions
#: ``bmetoolkit.cli.main`` calls (the run itself is unchanged).
_STAGES = """
import json, sys, time
clock, stages = time.process_time, {}
start = clock()
import bmetoolkit.cli
bmetoolkit.cli.prepare_process()  # as bmetoolkit.cli.main does before numpy is imported
def stage(name, since):
    stages[name] = stages.get(name, 0.0) + clock() - since
since = clock(); import numpy, nibabel; stage("numpy + nibabel", since)
since = clock(); import scipy.ndimage; stage("scipy.ndimage", since)
since = clock()
import bmetoolkit.analysis, bmetoolkit.cli, bmetoolkit.result, bmetoolkit.study
stage("bmetoolkit modules", since)
def timed(owner, name, label):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        since = clock()
        try:
            return original(*args, **kwargs)
        finally:
            stage(label, since)
    setattr(owner, name, wrapper)
timed(bmetoolkit.study, "as_volume", "read the files")
# the resampling runs in threads (map_threads): timed around them all, once, from this thread
timed(bmetoolkit.study, "map_threads", "onto the T1 grid")
timed(bmetoolkit.study, "check_roles", "role check")
timed(bmetoolkit.analysis, "analyze_study", "analysis")
timed(bmetoolkit.result.AnalysisResult, "save", "save")
bmetoolkit.cli.main(sys.argv[2:])
stages["whole process"] = clock() - start
print(json.dumps(stages), file=open(sys.argv[1], "w"))
"""


def _inputs(size: str, scratch: Path, lesions: str | None = None) -> dict[str, Path]:
    """T1, T2, STIR and vertebra labels as NIfTI files (``lesions``: the realistic
    phantom's, see :func:`bmetoolkit.data.phantom.make_phantom`)."""
    if size == "sample":
        from bmetoolkit.data.datasets import phantom_sample

        sample = phantom_sample()
        return {role: sample[role] for role in ("t1", "t2", "stir", "vertebrae")}
    from bmetoolkit.data.phantom import make_phantom

    make_phantom(7001, lesions=lesions).write_nifti(scratch / "nifti")
    return {
        role: scratch / "nifti" / f"{role}.nii.gz" for role in ("t1", "t2", "stir", "vertebrae")
    }


def _environment(scratch: Path, source: Path = REPOSITORY) -> dict[str, str]:
    """The children's environment: ``source`` (this repository) first on the path, modules
    byte-compiled.

    ``PYTHONSAFEPATH`` keeps ``python -m`` and ``python -c`` from putting the working
    directory before ``source``: run from a checkout, the baseline's commands imported that
    checkout's bmetoolkit instead of the baseline's (until 2026-12-01, session 18: the
    "baseline in the same rounds" figures of sessions 17 and before that were run from a
    checkout are this checkout's, see ``docs/speed.md``). As an installed package is (pip
    compiles it): ``PYTHONDONTWRITEBYTECODE`` is dropped and the byte-compiled modules go to a
    scratch folder (``PYTHONPYCACHEPREFIX``), written by the warm-up round, so no
    ``__pycache__`` is left in the repository. Every command, the bare read included, reads
    its modules from there.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    paths = [str(source), os.environ.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    env["PYTHONSAFEPATH"] = "1"
    return env


def _seconds(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    clock = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - clock
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _commands(
    files: dict[str, Path],
    out: Path,
    env: dict[str, str],
    baseline: dict[str, str] | None,
    one_thread: bool = False,
) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Each command by name, with the environment it runs in (``baseline``: the
    baseline checkout's, for its two ``analyze`` commands; ``one_thread``: also this
    checkout's two with ``BMETOOLKIT_THREADS=1``)."""
    analyze = [sys.executable, "-m", "bmetoolkit", "analyze"]
    for role, path in files.items():
        analyze += [f"--{role}", str(path)]
    commands = {
        "bare read": ([sys.executable, "-c", _BARE_READ, *map(str, files.values())], env),
        _BARE_NO_PYDICOM: (
            [sys.executable, "-c", _NO_PYDICOM + _BARE_READ, *map(str, files.values())],
            env,
        ),
        "analyze --no-qc": ([*analyze, "--out", str(out / "no_qc"), "--no-qc"], env),
        "analyze (QC page)": ([*analyze, "--out", str(out / "qc")], env),
        "bmetoolkit --help": ([sys.executable, "-m", "bmetoolkit", "--help"], env),
    }
    if baseline is not None:
        commands[f"no-qc {_BASELINE}"] = (
            [*analyze, "--out", str(out / "no_qc_baseline"), "--no-qc"],
            baseline,
        )
        commands[f"QC page {_BASELINE}"] = ([*analyze, "--out", str(out / "qc_baseline")], baseline)
    if one_thread:
        single = env | {"BMETOOLKIT_THREADS": "1"}
        commands[f"no-qc {_ONE_THREAD}"] = (
            [*analyze, "--out", str(out / "no_qc_1"), "--no-qc"],
            single,
        )
        commands[f"QC page {_ONE_THREAD}"] = ([*analyze, "--out", str(out / "qc_1")], single)
    return commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="rounds (default 7)")
    parser.add_argument("--size", choices=("sample", "realistic"), default="sample")
    parser.add_argument(
        "--lesions",
        default=None,
        metavar="PRESET",
        help="the realistic phantom's lesions: 'random' (those seed 7001 draws) or a preset "
        "name (default: none, a healthy spine)",
    )
    parser.add_argument(
        "--stages", action="store_true", help="also the CPU time of each stage of --no-qc"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="DIR",
        help="another checkout whose two analyze commands run in the same rounds",
    )
    parser.add_argument(
        "--one-thread",
        action="store_true",
        help="also run this checkout's analyze commands with BMETOOLKIT_THREADS=1",
    )
    args = parser.parse_args()
    if args.lesions is not None and args.size != "realistic":
        parser.error("--lesions is for --size realistic (the sample has its own lesions)")
    load_at_start = os.getloadavg()
    stages: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        env = _environment(Path(scratch))
        baseline = None
        if args.baseline is not None:
            baseline = _environment(Path(scratch), args.baseline.resolve())
        files = _inputs(args.size, Path(scratch), args.lesions)
        commands = _commands(files, Path(scratch), env, baseline, args.one_thread)
        for command, command_env in commands.values():  # warm-up: file cache, bytecode
            _seconds(command, command_env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for round_number in range(args.repeat):
            # every other round in reverse order: no command always runs first or last
            order = list(commands.items())
            if round_number % 2:
                order.reverse()
            for name, (command, command_env) in order:
                wall, used = _seconds(command, command_env)
                times[name].append(wall)
                cpu[name].append(used)
            if args.stages:
                for name, value in _stage_seconds(commands["analyze --no-qc"][0], env).items():
                    stages.setdefault(name, []).append(value)
    load = os.getloadavg()
    print(
        f"inputs: {', '.join(p.name for p in files.values())} ({args.size}"
        f"{'' if args.lesions is None else f', lesions {args.lesions!r}'}); "
        f"{args.repeat} rounds; load average (1, 5, 15 min) at the start "
        f"{', '.join(f'{x:.1f}' for x in load_at_start)}, at the end "
        f"{', '.join(f'{x:.1f}' for x in load)}; {os.cpu_count()} cores; modules "
        "byte-compiled (PYTHONPYCACHEPREFIX in a scratch folder)"
    )
    for name, values in times.items():
        print(
            f"{name:20s} median {statistics.median(values):.3f} s, min {min(values):.3f} s "
            f"(CPU median {statistics.median(cpu[name]):.3f} s)"
        )
    targets = {"analyze --no-qc": TARGET_NO_QC, "analyze (QC page)": TARGET_QC}
    if args.baseline is not None:
        targets |= {f"no-qc {_BASELINE}": TARGET_NO_QC, f"QC page {_BASELINE}": TARGET_QC}
    if args.one_thread:
        targets |= {f"no-qc {_ONE_THREAD}": TARGET_NO_QC, f"QC page {_ONE_THREAD}": TARGET_QC}
    for name, target in targets.items():
        ratio = _ratio(times[name], times["bare read"])
        cpu_ratio = _ratio(cpu[name], cpu["bare read"])
        verdict = "ok" if ratio <= target else "OVER"
        print(
            f"{name:20s} {ratio:.2f}x the bare read (target <= {target}x: {verdict}; worst "
            f"decile {_worst_decile(times[name], times['bare read']):.2f}x); CPU {cpu_ratio:.2f}x"
            f" ({_ratio(cpu[name], cpu[_BARE_NO_PYDICOM]):.2f}x the bare read without pydicom)"
        )
    if args.baseline is not None:
        print(f"this checkout against the baseline ({args.baseline}), median per-round ratio:")
        for mine, theirs in (
            ("analyze --no-qc", f"no-qc {_BASELINE}"),
            ("analyze (QC page)", f"QC page {_BASELINE}"),
        ):
            print(
                f"  {mine:20s} wall {_ratio(times[mine], times[theirs]):.3f}, "
                f"CPU {_ratio(cpu[mine], cpu[theirs]):.3f}"
            )
    if args.one_thread:
        print(
            "threads (default) against one thread (BMETOOLKIT_THREADS=1), median per-round ratio:"
        )
        for mine, theirs in (
            ("analyze --no-qc", f"no-qc {_ONE_THREAD}"),
            ("analyze (QC page)", f"QC page {_ONE_THREAD}"),
        ):
            print(
                f"  {mine:20s} wall {_ratio(times[mine], times[theirs]):.3f}, "
                f"CPU {_ratio(cpu[mine], cpu[theirs]):.3f}"
            )
    help_s = statistics.median(times["bmetoolkit --help"])
    verdict = "ok" if help_s < TARGET_HELP_S else "OVER"
    print(f"{'bmetoolkit --help':20s} {help_s:.3f} s (target < {TARGET_HELP_S} s: {verdict})")
    if stages:
        print("CPU per stage of analyze --no-qc (median over the rounds, min-max):")
        for name, values in stages.items():
            print(
                f"  {name:28s} {statistics.median(values):.3f} s "
                f"({min(values):.3f}-{max(values):.3f})"
            )


def _stage_seconds(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """CPU seconds of each stage of ``command`` (an ``analyze`` run) in one fresh process."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "stages.json"
        analyze = command[command.index("analyze") :]
        stage_run = [sys.executable, "-c", _STAGES, str(out), *analyze]
        subprocess.run(stage_run, check=True, env=env, stdout=subprocess.DEVNULL)
        stages = json.loads(out.read_text())
    whole = stages.pop("whole process")
    return stages | {"the rest": whole - sum(stages.values()), "whole process": whole}


def _worst_decile(values: list[float], bare: list[float]) -> float:
    """The 90th percentile of the per-round ratios (the largest with fewer than 2 rounds)."""
    ratios = [t / b for t, b in zip(values, bare, strict=True)]
    return statistics.quantiles(ratios, n=10)[-1] if len(ratios) > 1 else ratios[0]


def _ratio(values: list[float], bare: list[float]) -> float:
    """Median of the per-round ratios."""
    return statistics.median(t / b for t, b in zip(values, bare, strict=True))


if __name__ == "__main__":
    main()
