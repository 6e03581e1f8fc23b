"""Time building a phantom study: realistic (~400x400x16 per contrast) and small configs.

Usage: ``python benchmarks/bench_phantom.py [--repeats N] [--seed S] [--write]``

Prints the best and median wall time of :func:`bmetoolkit.data.phantom.make_phantom` for each
config (random lesions), and with ``--write`` the time to write NIfTI and DICOM.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bmetoolkit.data.phantom import PhantomConfig, make_phantom


def _timed(function: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="builds per config (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="also time NIfTI and DICOM output")
    args = parser.parse_args(argv)

    configs = {"realistic": PhantomConfig.realistic(), "small": PhantomConfig.small()}
    for name, config in configs.items():
        best, median, study = _timed(
            lambda config=config: make_phantom(args.seed, "random", config), args.repeats
        )
        shapes = ", ".join(f"{c} {'x'.join(map(str, v.shape))}" for c, v in study.contrasts.items())
        print(f"{name:9s} build: best {best:.2f} s, median {median:.2f} s  ({shapes})")
        if args.write:
            with tempfile.TemporaryDirectory() as folder:
                root = Path(folder)
                best, _, _ = _timed(lambda root=root, study=study: study.write_nifti(root / "n"), 1)
                print(f"{name:9s} write NIfTI: {best:.2f} s")
                best, _, _ = _timed(lambda root=root, study=study: study.write_dicom(root / "d"), 1)
                print(f"{name:9s} write DICOM: {best:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
