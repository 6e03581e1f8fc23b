"""The fuzz corpus at a fixed budget: no traceback, no write outside OUT, no half-written
output, no hang, no escaping warning, every failure a clear message.

``FUZZ_CASES`` cases of :mod:`tests.fuzz.corpus` (seed ``FUZZ_SEED``: the same bytes every
run) go through ``info``, ``analyze`` and ``convert`` in-process; the larger run is
``benchmarks/fuzz_inputs.py``. A failing case is rebuilt alone with
``build_case(seeds, root, FUZZ_SEED, number)``.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.fuzz.corpus import MUTATORS, build_case, make_seeds
from tests.fuzz.harness import Tally, run_case

pytestmark = pytest.mark.slow  # about 45 s: in `make test`, not in `make test-fast`

#: Cases per test run (about 40 s on the project's 2-core machine).
FUZZ_CASES = 300
#: Corpus seed of the test run (the benchmark uses another by default).
FUZZ_SEED = 2026
#: A case running longer than this counts as a hang.
TIME_LIMIT_S = 60.0


@pytest.fixture(scope="module")
def tally(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    seeds = make_seeds(root / "seeds")
    result = Tally()
    for number in range(FUZZ_CASES):
        case = build_case(seeds, root / "cases", FUZZ_SEED, number)
        result.add(run_case(case, time_limit_s=TIME_LIMIT_S))
    return result


def test_every_damaged_input_ends_cleanly(tally):
    report = "\n".join(outcome.describe() for outcome in tally.failures[:5])
    assert not tally.failures, f"{len(tally.failures)} case(s) broke the contract:\n{report}"


def test_the_corpus_exercises_every_mutator_and_both_outcomes(tally):
    assert set(tally.kinds) == set(MUTATORS)
    assert tally.codes[0] > 0 and tally.codes[1] > 0  # some inputs survive, some are refused


def test_the_corpus_is_deterministic(tmp_path):
    seeds = make_seeds(tmp_path / "seeds")
    first = build_case(seeds, tmp_path / "a", FUZZ_SEED, 7)
    second = build_case(seeds, tmp_path / "b", FUZZ_SEED, 7)
    assert (first.kind, first.detail) == (second.kind, second.detail)
    files = Counter(p.name for p in first.folder.rglob("*") if p.is_file())
    assert files == Counter(p.name for p in second.folder.rglob("*") if p.is_file())
