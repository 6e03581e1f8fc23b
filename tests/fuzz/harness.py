"""Run fuzz cases through the command line in-process and check the input contract.

For each :class:`~tests.fuzz.corpus.Case` the ``bmetoolkit`` command runs in-process
(:func:`bmetoolkit.cli.main`) with the case folder as working directory, and the outcome
is checked:

- **traceback**: an exception escaped ``main`` (anything but a clean exit code);
- **hang**: the case ran longer than its time limit (``SIGALRM``);
- **outside**: a file appeared or changed outside the case's ``out/`` folder;
- **half-written**: ``out/`` holds a temporary ``.partial.`` file, a ``report.json`` next to
  missing outputs, or a successful ``analyze`` left no ``report.json``;
- **bad volume**: a report with a NaN or negative volume;
- **warning**: a Python warning escaped to the caller;
- **message**: a failure (exit 1) whose message does not start ``bmetoolkit <command>: error:``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import signal
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz.corpus import Case

__all__ = ["PROBLEMS", "Outcome", "Tally", "run_case"]

#: Problem kinds a case can show; each fails the contract.
PROBLEMS = ("traceback", "hang", "outside", "half-written", "bad volume", "warning", "message")
#: Outputs ``analyze`` lists in its report folder.
_ANALYZE_OUTPUTS = ("bme_mask.nii.gz", "modic_map.nii.gz", "lesions.csv", "endplates.csv")


class _Timeout(Exception):
    pass


class _Records(logging.Handler):
    """Keeps log records of level WARNING and above (they would reach stderr)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Outcome:
    """What one case did: exit code, problems found, seconds, the end of stderr."""

    case: Case
    code: int | None
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stderr: str = ""

    def describe(self) -> str:
        """One paragraph for a failure report."""
        return (
            f"case {self.case.number} [{self.case.kind}] {self.case.detail}: "
            f"exit {self.code}, {', '.join(self.problems)}\n  argv: {' '.join(self.case.argv)}\n"
            f"  {self.stderr.strip()[-1500:]}"
        )


@dataclass
class Tally:
    """Counts over many cases: by exit code, by problem, by mutator; slowest case."""

    cases: int = 0
    codes: Counter = field(default_factory=Counter)
    problems: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    failures: list[Outcome] = field(default_factory=list)
    slowest: float = 0.0

    def add(self, outcome: Outcome) -> None:
        """Count one outcome."""
        self.cases += 1
        self.codes[outcome.code] += 1
        self.kinds[outcome.case.kind] += 1
        self.slowest = max(self.slowest, outcome.seconds)
        for problem in outcome.problems:
            self.problems[problem] += 1
        if outcome.problems:
            self.failures.append(outcome)


def _snapshot(folder: Path, skip: Path) -> dict[str, tuple[int, int]]:
    state = {}
    for root, dirs, names in os.walk(folder):
        if Path(root) == skip:
            dirs[:] = []
            continue
        for name in names:
            path = os.path.join(root, name)
            with contextlib.suppress(OSError):
                stat = os.stat(path)
                state[path] = (stat.st_size, stat.st_mtime_ns)
    return state


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def expire(signum, frame):
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _half_written(case: Case, code: int | None) -> list[str]:
    out = case.out
    if not out.exists():
        return ["half-written"] if code == 0 and case.argv[0] == "analyze" else []
    found = [p.name for p in out.rglob("*")]
    problems = []
    if any(".partial." in name for name in found):
        problems.append("half-written")
    report = out / "report.json"
    if case.argv[0] == "analyze" and code == 0 and not report.exists():
        problems.append("half-written")
    if report.exists() and any(not (out / name).exists() for name in _ANALYZE_OUTPUTS):
        problems.append("half-written")
    if report.exists() and _bad_volumes(report):
        problems.append("bad volume")
    return problems


def _bad_volumes(report: Path) -> bool:
    try:
        values = json.loads(report.read_text())
    except (OSError, ValueError):
        return True
    volumes = [values.get("bme", {}).get("volume_ml", 0.0)]
    volumes += [
        value
        for row in values.get("endplates", [])
        for key, value in row.items()
        if key.endswith("_ml")
    ]
    return any(not isinstance(v, int | float) or not math.isfinite(v) or v < 0 for v in volumes)


def run_case(case: Case, *, time_limit_s: float = 60.0) -> Outcome:
    """Run one case in-process and check the contract (see the module documentation)."""
    from bmetoolkit.cli import main

    before = _snapshot(case.folder, case.out)
    stdout, stderr = io.StringIO(), io.StringIO()
    problems: list[str] = []
    code: int | None = None
    here = os.getcwd()
    clock = time.perf_counter()
    logged = _Records()
    logging.getLogger().addHandler(logged)
    saved_options = sys.warnoptions[:]
    sys.warnoptions[:] = ["always"]  # the CLI then leaves warnings alone: see every escape
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            os.chdir(case.folder)
            with (
                contextlib.redirect_stdout(stdout),
                contextlib.redirect_stderr(stderr),
                _time_limit(time_limit_s),
            ):
                code = main(list(case.argv))
        except _Timeout:
            problems.append("hang")
        except BaseException as exc:
            problems.append("traceback")
            stderr.write(f"\n{type(exc).__name__}: {exc}")
        finally:
            os.chdir(here)
            logging.getLogger().removeHandler(logged)
            sys.warnoptions[:] = saved_options
    seconds = time.perf_counter() - clock
    if caught or logged.records:
        problems.append("warning")
        stderr.write("".join(f"\nwarning: {w.category.__name__}: {w.message}" for w in caught))
        stderr.write("".join(f"\nlogged: {r.name}: {r.getMessage()}" for r in logged.records))
    after = _snapshot(case.folder, case.out)
    if after != before:
        problems.append("outside")
    problems += _half_written(case, code)
    text = stderr.getvalue()
    if code == 1 and f"bmetoolkit {case.argv[0]}: error:" not in text and case.argv[0] != "convert":
        problems.append("message")
    return Outcome(case, code, sorted(set(problems)), seconds, text)
