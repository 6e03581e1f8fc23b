"""Benchmark ``bmetoolkit batch``: speed-up with 2 workers, memory per worker, no-op rerun.

Builds a cohort of phantom subjects (NIfTI images + vertebra labels, ``{subject}/{role}``
layout), runs the batch with ``--jobs 1`` and ``--jobs 2`` into separate folders, then reruns
the ``--jobs 2`` batch with nothing to do (in-process and as a CLI subprocess). Prints the
wall times, the speed-up (target >= 1.7x on 2 cores), the peak resident memory of each
worker process and the rerun times (target < 2 s).

Usage::

    python benchmarks/bench_batch.py [--subjects 24] [--size realistic|small] [--layout nifti|dicom]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bmetoolkit.batch.pipeline import BatchReport, run_batch
from bmetoolkit.data.phantom import PhantomConfig, make_phantom


def build_subject(root: Path, seed: int, size: str, layout: str) -> None:
    """One phantom subject (random lesions drawn from ``seed``) in ``root/p<seed>``."""
    config = PhantomConfig.small() if size == "small" else PhantomConfig.realistic()
    study = make_phantom(seed, config=config)
    if layout == "dicom":
        study.write_dicom(root / f"p{seed:02d}")
    else:
        study.write_nifti(root / f"p{seed:02d}")


def build_cohort(root: Path, count: int, size: str, layout: str) -> None:
    """``count`` phantom subjects (seeds 0..count-1) under ``root``, built in parallel."""
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        seeds = range(count)
        n = len(seeds)
        list(pool.map(build_subject, [root] * n, seeds, [size] * n, [layout] * n))


def timed_batch(cohort: Path, out: Path, jobs: int) -> tuple[float, BatchReport]:
    start = time.perf_counter()
    report = run_batch(cohort, out, jobs=jobs, progress=False)
    return time.perf_counter() - start, report


def memory_by_worker(report: BatchReport) -> dict[int, float]:
    """Peak resident memory (MiB) of each worker process that analysed a subject."""
    peaks: dict[int, float] = defaultdict(float)
    for outcome in report.outcomes:
        if outcome.worker_pid is not None and outcome.peak_rss_mb is not None:
            peaks[outcome.worker_pid] = max(peaks[outcome.worker_pid], outcome.peak_rss_mb)
    return dict(peaks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=24)
    parser.add_argument(
        "--size",
        choices=("small", "realistic"),
        default="realistic",
        help="realistic (~400x400x16, ~2 s of analysis each) or small (spawn-dominated)",
    )
    parser.add_argument("--layout", choices=("nifti", "dicom"), default="nifti")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        cohort = base / "cohort"
        start = time.perf_counter()
        build_cohort(cohort, args.subjects, args.size, args.layout)
        print(
            f"cohort: {args.subjects} {args.size} phantom subjects ({args.layout}) built in "
            f"{time.perf_counter() - start:.1f} s; {os.cpu_count()} CPUs, load average "
            f"{os.getloadavg()[0]:.1f} before the runs (above 0, other processes compete)"
        )
        one, report_one = timed_batch(cohort, base / "jobs1", 1)
        two, report_two = timed_batch(cohort, base / "jobs2", 2)
        for jobs, report in ((1, report_one), (2, report_two)):
            failed = [f"{o.key}: {o.error}" for o in report.outcomes if o.status == "failed"]
            if failed:
                print(f"--jobs {jobs}: {len(failed)} failed: {failed[:3]}")
        per_subject = sum(o.duration_s for o in report_one.outcomes) / args.subjects
        print(f"--jobs 1: {one:6.1f} s  ({per_subject:.2f} s per subject inside the worker)")
        print(f"--jobs 2: {two:6.1f} s")
        print(
            f"speed-up: {one / two:.2f}x (target >= 1.7x); "
            f"load average now {os.getloadavg()[0]:.1f}"
        )
        for jobs, wall, report in ((1, one, report_one), (2, two, report_two)):
            busy = sum(o.duration_s for o in report.outcomes) / (jobs * wall)
            cpu = sum(o.cpu_s or 0.0 for o in report.outcomes)
            print(
                f"--jobs {jobs}: workers busy {100 * busy:.0f} % of the wall time (the rest is "
                f"the runner's overhead); CPU {cpu / args.subjects:.2f} s per subject, "
                f"{cpu / wall:.2f} CPUs used on average"
            )
        for jobs, report in ((1, report_one), (2, report_two)):
            peaks = ", ".join(f"{mb:.0f} MiB" for mb in memory_by_worker(report).values())
            print(f"peak memory per worker, --jobs {jobs}: {peaks}")
        rerun, report_again = timed_batch(cohort, base / "jobs2", 2)
        unchanged = report_again.count("unchanged")
        print(f"rerun, nothing to do (run_batch): {rerun:.2f} s, {unchanged} unchanged")
        command = [sys.executable, "-m", "bmetoolkit", "batch", str(cohort), str(base / "jobs2")]
        start = time.perf_counter()
        done = subprocess.run([*command, "--jobs", "2"], capture_output=True, text=True)
        cli = time.perf_counter() - start
        print(f"rerun, nothing to do (CLI process): {cli:.2f} s (target < 2 s): {done.stdout}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
