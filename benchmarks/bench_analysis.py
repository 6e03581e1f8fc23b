"""Speed and memory of the analysis on a realistic study (a script, not a test).

Builds a realistic phantom (T1 400x400x16, T2 384x384x16, STIR 320x320x15), puts it on the
T1 grid once (loading and resampling are not part of the figure), then times
:func:`bmetoolkit.analysis.analyze_study` with the phantom's vertebra labels, and reports
the peak resident memory of the process (which includes the phantom and the study).

Run: ``python benchmarks/bench_analysis.py [--repeat 5]``. Target: under 1 s per study on
a 2-core machine (issue 12; the CPU time is printed too, for a shared machine), peak memory
under 1 GB.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

from bmetoolkit.analysis import analyze_study
from bmetoolkit.data.phantom import make_phantom
from bmetoolkit.study import Study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7001)
    args = parser.parse_args()
    phantom = make_phantom(args.seed)
    study = Study.from_images(
        phantom.t1, t2=phantom.t2, stir=phantom.stir, labels=phantom.truth.vertebrae
    )
    for volume in (study.t2, study.stir):  # resampled on the whole grid now, not in the figure
        volume.data  # noqa: B018
    analyze_study(study)  # warm-up: imports, caches
    times, cpu_times = [], []
    for _ in range(args.repeat):
        clock, cpu_clock = time.perf_counter(), time.process_time()
        analyze_study(study)
        times.append(time.perf_counter() - clock)
        cpu_times.append(time.process_time() - cpu_clock)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"study grid {study.grid.shape}, T1 + T2 + STIR, seed {args.seed}")
    print(
        f"analysis: median {statistics.median(times):.2f} s, min {min(times):.2f} s, "
        f"max {max(times):.2f} s over {args.repeat} runs"
    )
    print(
        f"CPU time of this process: median {statistics.median(cpu_times):.2f} s (on a loaded "
        "machine the wall time above is longer; the CPU time is not)"
    )
    print(f"peak resident memory of the process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
