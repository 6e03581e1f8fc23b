"""Independent steps run in threads give what the plain loop gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from bmetoolkit import concurrency
from bmetoolkit.concurrency import (
    BLAS_THREAD_VARIABLES,
    THREADS_VARIABLE,
    map_threads,
    thread_count,
)


def test_results_come_back_in_the_order_of_the_items(monkeypatch):
    monkeypatch.setenv(THREADS_VARIABLE, "3")
    assert map_threads(lambda x: x * 10, range(7)) == [0, 10, 20, 30, 40, 50, 60]


def test_the_calls_run_in_several_threads_when_allowed(monkeypatch):
    monkeypatch.setenv(THREADS_VARIABLE, "2")
    barrier = threading.Barrier(2, timeout=10)  # both calls must be running at once

    def meet(item):
        barrier.wait()
        return threading.get_ident()

    assert len(set(map_threads(meet, [1, 2]))) == 2


def test_one_thread_runs_the_calls_here_one_after_the_other(monkeypatch):
    monkeypatch.setenv(THREADS_VARIABLE, "1")
    assert thread_count() == 1
    here = threading.get_ident()
    assert map_threads(lambda _: threading.get_ident(), [1, 2, 3]) == [here] * 3


@pytest.mark.parametrize("value", ["0", "-2", "two", ""])
def test_a_bad_thread_count_falls_back_to_the_free_cores(monkeypatch, value):
    monkeypatch.setenv(THREADS_VARIABLE, value)
    monkeypatch.setattr(concurrency.os, "sched_getaffinity", lambda _: {0, 1, 2}, raising=False)
    monkeypatch.setattr(concurrency.os, "getloadavg", lambda: (0.2, 0.5, 0.5), raising=False)
    assert thread_count() == 3


@pytest.mark.parametrize(
    ("load", "threads"), [(0.0, 4), (1.0, 4), (1.2, 4), (1.7, 3), (3.6, 1), (9.0, 1)]
)
def test_busy_cores_are_left_to_the_other_processes(monkeypatch, load, threads):
    monkeypatch.delenv(THREADS_VARIABLE, raising=False)
    monkeypatch.setattr(concurrency.os, "sched_getaffinity", lambda _: set(range(4)), raising=False)
    monkeypatch.setattr(concurrency.os, "getloadavg", lambda: (load, load, load), raising=False)
    assert thread_count() == threads
    monkeypatch.setenv(THREADS_VARIABLE, "4")  # the variable overrides the load
    assert thread_count() == 4


def test_without_a_load_average_every_core_is_used(monkeypatch):
    monkeypatch.delenv(THREADS_VARIABLE, raising=False)
    monkeypatch.setattr(concurrency.os, "sched_getaffinity", lambda _: {0, 1}, raising=False)

    def unknown():
        raise OSError("no load average")

    monkeypatch.setattr(concurrency.os, "getloadavg", unknown, raising=False)
    assert thread_count() == 2


@pytest.mark.parametrize("threads", ["1", "4"])
def test_the_first_item_that_raises_is_raised(monkeypatch, threads):
    monkeypatch.setenv(THREADS_VARIABLE, threads)

    def check(item):
        if item in (2, 3):
            raise ValueError(f"item {item}")
        return item

    with pytest.raises(ValueError, match="item 2"):
        map_threads(check, [0, 1, 2, 3, 4])


def test_the_callers_numpy_error_settings_hold_in_the_threads(monkeypatch):
    monkeypatch.setenv(THREADS_VARIABLE, "2")
    with np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError):
            map_threads(lambda x: np.float64(x) / 0.0, [1.0, 2.0])
    with np.errstate(divide="ignore"):
        assert map_threads(lambda x: np.geterr()["divide"], [1, 2]) == ["ignore", "ignore"]


def test_an_analysis_in_threads_equals_the_one_in_one_thread(monkeypatch):
    from bmetoolkit.analysis import analyze
    from bmetoolkit.data.phantom import PhantomConfig, make_phantom

    phantom = make_phantom(seed=4, lesions="mixed", config=PhantomConfig.small())
    results = {}
    for threads in ("1", "3"):
        monkeypatch.setenv(THREADS_VARIABLE, threads)
        results[threads] = analyze(
            phantom.t1, t2=phantom.t2, stir=phantom.stir, vertebrae=phantom.truth.vertebrae
        )
    one, many = results["1"], results["3"]
    assert np.array_equal(one.bme_mask.data, many.bme_mask.data)
    assert np.array_equal(one.modic_map.data, many.modic_map.data)
    assert np.array_equal(one.study.t2.data, many.study.t2.data)
    assert one.endplate_rows == many.endplate_rows and one.lesion_rows == many.lesion_rows
    assert one.study.role_checks == many.study.role_checks
    assert [b.index.tolist() for b in one.bodies] == [b.index.tolist() for b in many.bodies]


_BLAS_PROBE = """
import contextlib, io, json, os, sys
from bmetoolkit.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    main(["--version"])
import numpy
print(json.dumps({name: os.environ.get(name) for name in %r}))
"""


def _blas_variables_after_the_cli(env: dict[str, str], prelude: str = "") -> dict:
    """The BLAS variables in a fresh interpreter after ``bmetoolkit --version`` ran."""
    clean = {k: v for k, v in os.environ.items() if k not in BLAS_THREAD_VARIABLES}
    code = prelude + _BLAS_PROBE % (BLAS_THREAD_VARIABLES,)
    done = subprocess.run(
        [sys.executable, "-c", code], env=clean | env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_command_line_runs_blas_on_one_thread():
    assert set(_blas_variables_after_the_cli({}).values()) == {"1"}


def test_a_users_blas_threads_are_kept():
    found = _blas_variables_after_the_cli({"OPENBLAS_NUM_THREADS": "3"})
    assert found["OPENBLAS_NUM_THREADS"] == "3"
    assert found["MKL_NUM_THREADS"] is None  # none set beside the user's own


def test_blas_threads_are_left_alone_once_numpy_is_imported():
    found = _blas_variables_after_the_cli({}, prelude="import numpy\n")
    assert set(found.values()) == {None}


def test_one_blas_thread_reaches_openblas():
    """The variable set by the command line is the one numpy's OpenBLAS reads (where numpy
    bundles OpenBLAS, as its wheels do)."""
    code = (
        "import contextlib, ctypes, glob, io, os\n"
        "from bmetoolkit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['--version'])\n"
        "import numpy\n"
        "libs = glob.glob(os.path.join(os.path.dirname(numpy.__file__) + '.libs', '*openblas*'))\n"
        "get = getattr(ctypes.CDLL(libs[0]), 'scipy_openblas_get_num_threads64_', None) "
        "if libs else None\n"
        "print(get() if get else 'none')\n"
    )
    clean = {k: v for k, v in os.environ.items() if k not in BLAS_THREAD_VARIABLES}
    done = subprocess.run(
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True
    )
    found = done.stdout.strip().splitlines()[-1]
    if found == "none":
        pytest.skip("numpy does not bundle OpenBLAS here")
    assert found == "1"
