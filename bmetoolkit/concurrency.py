"""Independent steps of one analysis run at the same time, in threads.

The heavy steps of an analysis (resampling, distance transforms, zlib compression) run in
numpy, scipy and zlib code that releases Python's global interpreter lock, so independent
ones (resampling the T2 and the STIR onto the T1 grid, measuring each image for the role
check, the bodies' geometry, writing the output maps) can use several cores of one machine.
Each step computes exactly what it computes alone: only the wall-clock time changes.

The number of threads is that of the cores this process may use that other processes leave
free (the cores less the one-minute load average, this run's own thread counted as free), at
least one; or the environment variable ``BMETOOLKIT_THREADS`` (``1``: one step after the
other, as batch workers run, since their subjects are the unit of parallelism). On a machine
whose cores are all busy, threads gain nothing and cost a few percent more CPU time
(measured on the project's 2-core machine at load average 8-10, ``docs/log/speed.md``).

numpy's BLAS (OpenBLAS, MKL...) has a thread pool of its own, sized by the machine's cores.
bmetoolkit's BLAS work is small: products of a few columns over many rows (the reference
fields' normal equations, of at most a few dozen terms), which a BLAS thread pool splits
along the rows, so that their last bits depend on the number of BLAS threads, and whose
waiting threads cost more CPU than the split saves (``docs/log/speed.md``, 2026-12-01 session
17). The command line (:func:`one_blas_thread`) and batch workers run BLAS on one thread:
the same numbers whatever the machine's cores, and from ``analyze`` as from ``batch``.
"""

from __future__ import annotations

import contextvars
import os
import sys
from collections.abc import Callable, Iterable
from typing import TypeVar

__all__ = [
    "BLAS_THREAD_VARIABLES",
    "THREADS_VARIABLE",
    "map_threads",
    "one_blas_thread",
    "thread_count",
]

#: Environment variable capping the threads of one analysis (an integer >= 1).
THREADS_VARIABLE = "BMETOOLKIT_THREADS"
#: Environment variables that size the thread pool of the BLAS library numpy uses (read once,
#: when numpy is first imported).
BLAS_THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)

Item = TypeVar("Item")
Value = TypeVar("Value")


def thread_count() -> int:
    """Threads one analysis may use: ``BMETOOLKIT_THREADS`` if set to a whole number >= 1,
    else the cores this process may run on that the load average leaves free, at least 1.

    >>> import os
    >>> os.environ[THREADS_VARIABLE] = "1"
    >>> thread_count()
    1
    >>> del os.environ[THREADS_VARIABLE]
    """
    value = os.environ.get(THREADS_VARIABLE, "").strip()
    if value.isdigit() and int(value) >= 1:
        return int(value)
    if hasattr(os, "sched_getaffinity"):
        cores = max(1, len(os.sched_getaffinity(0)))
    else:
        cores = max(1, os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0]  # runnable processes, averaged over a minute
    except (AttributeError, OSError):  # no load average (Windows)
        return cores
    # rounded: a run alone on the machine counts itself in the average (about 1)
    return max(1, min(cores, round(cores - busy) + 1))


def one_blas_thread() -> bool:
    """Have numpy's BLAS run on one thread in this process, if that can still be chosen.

    Sets :data:`BLAS_THREAD_VARIABLES` to 1 when numpy is not imported yet and the user has
    set none of them (a user's setting is kept). Called by the command line before it imports
    numpy; a program that imported numpy before keeps the BLAS threads it has.

    Returns
    -------
    bool
        True when the variables were set.
    """
    if "numpy" in sys.modules or any(name in os.environ for name in BLAS_THREAD_VARIABLES):
        return False
    for name in BLAS_THREAD_VARIABLES:
        os.environ[name] = "1"
    return True


def map_threads(function: Callable[[Item], Value], items: Iterable[Item]) -> list[Value]:
    """``[function(item) for item in items]``, the calls running in threads.

    Results come back in the order of ``items``. If calls raise, the exception of the first
    item (in that order) that raised is raised, as the loop would; the other calls may have
    run. With one item or one thread (:func:`thread_count`) the calls run one after the
    other in this thread. Each call runs in a copy of the caller's context, so numpy's
    floating-point error settings (``np.errstate``) hold in the threads too.

    >>> map_threads(lambda x: x * x, [1, 2, 3])
    [1, 4, 9]
    """
    items = list(items)
    workers = min(len(items), thread_count())
    if workers <= 1:
        return [function(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    contexts = [contextvars.copy_context() for _ in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(context.run, function, item)
            for context, item in zip(contexts, items, strict=True)
        ]
        return [future.result() for future in futures]
