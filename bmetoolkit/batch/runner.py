"""Run subject tasks in local worker processes, with a progress bar.

:func:`run_local` runs ``worker(task)`` for every task in ``jobs`` processes started with the
``spawn`` method (safe with threads and on every platform), at most ``jobs`` tasks in flight.
Results come back in task order. When a worker process dies (killed, out of memory, a crash
in native code) the tasks that were in flight are retried one at a time in a fresh process,
so only the subject that kills its worker is reported as failed (stage ``worker``); the rest
of the batch goes on.

Each worker runs its numerical libraries single-threaded (:data:`THREAD_VARIABLES` set to 1
unless already set): subjects are the unit of parallelism, and BLAS thread pools that spin
while waiting make every worker many times slower when processes compete for the CPUs
(measured: one phantom analysis 0.38 s with one BLAS thread, 5.96 s with the default on the
project's loaded 2-core machine). Dask's nanny does the same for its workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from bmetoolkit.batch.subject import SubjectOutcome, SubjectTask, run_subject
from bmetoolkit.concurrency import BLAS_THREAD_VARIABLES

__all__ = [
    "THREAD_VARIABLES",
    "call_worker",
    "failed_outcome",
    "progress_bar",
    "run_local",
    "single_threaded_workers",
]

#: Environment variables that size the thread pools of BLAS, OpenMP, numexpr, ITK and bmetoolkit.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    *BLAS_THREAD_VARIABLES,
    "NUMEXPR_NUM_THREADS",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",
    "BMETOOLKIT_THREADS",  # bmetoolkit.concurrency: an analysis' steps one after the other
)

Worker = Callable[[SubjectTask], SubjectOutcome]


def call_worker(worker: Worker, task: SubjectTask) -> SubjectOutcome:
    """Run ``worker(task)``; note the process id, CPU time and peak memory in the outcome."""
    start = time.process_time()
    outcome = worker(task)
    outcome.cpu_s = time.process_time() - start
    outcome.worker_pid = os.getpid()
    outcome.peak_rss_mb = peak_rss_mb()
    return outcome


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process in MiB (None where unknown)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)


def failed_outcome(task: SubjectTask, stage: str, error: str) -> SubjectOutcome:
    """A failed outcome for ``task`` produced outside the worker."""
    subject = task.subject
    return SubjectOutcome(subject.subject, subject.session, "failed", stage=stage, error=error)


@contextlib.contextmanager
def single_threaded_workers() -> Iterator[None]:
    """Set :data:`THREAD_VARIABLES` to 1 (those the user has not set) while workers start.

    Spawned processes inherit the environment, and the libraries read it when they load.
    """
    added = [name for name in THREAD_VARIABLES if name not in os.environ]
    os.environ.update(dict.fromkeys(added, "1"))
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def progress_bar(total: int, enabled: bool | None) -> Any:
    """A tqdm bar (count, rate, ETA) on stderr; ``enabled=None``: only on a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, unit="subject", disable=None if enabled is None else not enabled)


def run_local(
    tasks: Sequence[SubjectTask],
    *,
    jobs: int = 1,
    worker: Worker = run_subject,
    progress: bool | None = None,
) -> list[SubjectOutcome]:
    """Run every task in ``jobs`` spawned worker processes; outcomes in task order.

    Parameters
    ----------
    tasks : sequence of SubjectTask
    jobs : int
        Worker processes (at least 1).
    worker : callable
        Module-level function ``worker(task) -> SubjectOutcome`` (picklable).
    progress : bool or None
        Show a progress bar; None shows it only on a terminal.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    results: dict[int, SubjectOutcome] = {}
    pending = list(range(len(tasks)))
    with progress_bar(len(tasks), progress) as bar, single_threaded_workers():
        while pending:
            suspects = _run_pool(tasks, pending, jobs, worker, results, bar)
            for index in suspects:  # each alone: only the one that kills its worker fails
                _run_pool(tasks, [index], 1, worker, results, bar, last_try=True)
            pending = [i for i in pending if i not in results]
    return [results[i] for i in range(len(tasks))]


def _run_pool(
    tasks: Sequence[SubjectTask],
    indices: list[int],
    jobs: int,
    worker: Worker,
    results: dict[int, SubjectOutcome],
    bar: Any,
    *,
    last_try: bool = False,
) -> list[int]:
    """Run ``indices`` in one pool; return the tasks in flight when a worker died."""
    context = multiprocessing.get_context("spawn")
    queue = list(indices)
    running: dict[Future, int] = {}
    executor = ProcessPoolExecutor(
        max_workers=min(jobs, len(queue)), mp_context=context, initializer=_leave_interrupts
    )
    try:
        while queue or running:
            while queue and len(running) < jobs:
                index = queue.pop(0)
                running[executor.submit(call_worker, worker, tasks[index])] = index
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = [running.pop(f) for f in done if _is_broken(f)]
            for future in [f for f in done if f in running]:
                index = running.pop(future)
                results[index] = _outcome(future, tasks[index])
                _advance(bar, results[index])
            if broken and not last_try:
                return [*broken, *running.values()]
            for index in broken:
                results[index] = failed_outcome(
                    tasks[index],
                    "worker",
                    "the worker process died (killed, out of memory or crashed)",
                )
                _advance(bar, results[index])
        return []
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop the workers now, then re-raise
        _stop_workers(executor)
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _leave_interrupts() -> None:
    """Worker initializer: a Ctrl-C reaches the whole process group, and the batch (not each
    worker) handles it, so workers ignore SIGINT and are stopped by :func:`_stop_workers`."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_workers(executor: ProcessPoolExecutor) -> None:
    """Cancel what has not started and terminate the workers, waiting a bounded time.

    A subject interrupted this way leaves only its hidden ``.partial-`` folder, which the
    next run removes (:mod:`bmetoolkit.batch.subject`); waiting for running subjects instead
    would make a Ctrl-C take minutes, and a worker interrupted inside the pool's own queues
    can leave the pool waiting forever.
    """
    # the pool's processes, taken before shutdown forgets them, to wait for them below
    workers = list((getattr(executor, "_processes", None) or {}).values())
    if hasattr(executor, "terminate_workers"):  # Python 3.14: the same, public
        executor.terminate_workers()  # shutdown(wait=False, cancel_futures=True), terminate
    else:
        executor.shutdown(wait=False, cancel_futures=True)
        for process in workers:
            with contextlib.suppress(Exception):
                process.terminate()
    for process in workers:
        with contextlib.suppress(Exception):
            process.join(timeout=10)


def _is_broken(future: Future) -> bool:
    return isinstance(future.exception(), BrokenProcessPool)


def _outcome(future: Future, task: SubjectTask) -> SubjectOutcome:
    error = future.exception()
    if error is None:
        return future.result()
    return failed_outcome(task, "worker", f"{type(error).__name__}: {error}")


def _advance(bar: Any, outcome: SubjectOutcome) -> None:
    bar.update(1)
    bar.set_postfix_str(f"{outcome.key} {outcome.status}", refresh=False)
