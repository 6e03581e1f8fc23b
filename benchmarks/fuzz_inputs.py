"""The larger fuzz run: thousands of damaged inputs through ``info``, ``analyze`` and ``convert``.

Builds the corpus of :mod:`tests.fuzz.corpus` (same seed, same cases) and runs every case
in-process with :func:`tests.fuzz.harness.run_case`; prints how many cases ended in a
traceback, a write outside the output folder, a half-written output, a hang, a NaN or
negative volume, an escaping warning or a failure without a clear message, and the exit
codes per mutator. Exit code 1 when any case broke the contract.

Usage::

    python benchmarks/fuzz_inputs.py [--cases 2000] [--seed 15] [--show 5]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the corpus lives in tests/

from tests.fuzz.corpus import build_case, make_seeds
from tests.fuzz.harness import PROBLEMS, Tally, run_case


def main(argv: list[str] | None = None) -> int:
    """Run the corpus and print the tally; return 1 when a case broke the contract."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000, help="number of cases (default 2000)")
    parser.add_argument("--seed", type=int, default=15, help="corpus seed (default 15)")
    parser.add_argument("--first", type=int, default=0, help="number of the first case")
    parser.add_argument("--show", type=int, default=5, help="failures to print in full")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per case")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bmetoolkit-fuzz-"))
    tally = Tally()
    by_kind: dict[str, Counter] = {}
    corpus_errors: list[str] = []
    clock = time.perf_counter()
    try:
        seeds = make_seeds(work / "seeds")
        for number in range(args.first, args.first + args.cases):
            try:
                case = build_case(seeds, work / "cases", args.seed, number)
            except Exception as exc:  # a bug of the corpus, not of bmetoolkit: count it
                corpus_errors.append(f"case {number}: {type(exc).__name__}: {exc}")
                continue
            outcome = run_case(case, time_limit_s=args.time_limit)
            tally.add(outcome)
            by_kind.setdefault(case.kind, Counter())[outcome.code] += 1
            if not outcome.problems:
                shutil.rmtree(case.folder, ignore_errors=True)
    finally:
        elapsed = time.perf_counter() - clock
    print(
        f"{tally.cases} cases (seed {args.seed}) in {elapsed:.0f} s, slowest {tally.slowest:.1f} s"
    )
    print("exit codes: " + ", ".join(f"{c}: {n}" for c, n in sorted(tally.codes.items(), key=str)))
    for problem in PROBLEMS:
        print(f"{problem}: {tally.problems[problem]}")
    print(f"cases the corpus could not build: {len(corpus_errors)}")
    for line in corpus_errors[: args.show]:
        print(f"  {line}")
    print("per mutator (exit code: cases):")
    for kind in sorted(by_kind):
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(by_kind[kind].items(), key=str))
        print(f"  {kind}: {codes}")
    for outcome in tally.failures[: args.show]:
        print(outcome.describe())
    if tally.failures:
        print(f"failed cases kept in {work / 'cases'}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if tally.failures or corpus_errors else 0


if __name__ == "__main__":
    sys.exit(main())
