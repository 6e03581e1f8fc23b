"""Run subject tasks on a Dask distributed cluster (the ``distributed`` extra).

``bmetoolkit batch --scheduler tcp://host:8786`` submits one task per subject to the
scheduler; each worker runs the same :func:`bmetoolkit.batch.subject.run_subject` as a local
run, so the outputs are identical. INPUT and OUTPUT must be on a file system every worker
sees under the same path. On SLURM or PBS, start the cluster with dask-jobqueue (see
``docs/batch.md``) and pass its scheduler address, or pass the cluster object to
:func:`run_on_dask` from Python.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from bmetoolkit.batch.runner import Worker, call_worker, failed_outcome, progress_bar
from bmetoolkit.batch.subject import SubjectOutcome, SubjectTask, run_subject

__all__ = ["MissingExtraError", "SchedulerError", "import_distributed", "run_on_dask"]

#: Seconds to wait for the scheduler before giving up.
CONNECT_TIMEOUT_S = 30.0


class MissingExtraError(ImportError):
    """An optional dependency of bmetoolkit is not installed."""


class SchedulerError(ConnectionError):
    """The Dask scheduler cannot be reached."""


def import_distributed() -> Any:
    """Import :mod:`distributed`, or explain which extra provides it.

    Raises
    ------
    MissingExtraError
        Dask distributed is not installed.
    """
    try:
        import distributed
    except ImportError as exc:
        raise MissingExtraError(
            "--scheduler needs Dask distributed, which is not installed; install the "
            "extra: pip install 'bmetoolkit[distributed]'"
        ) from exc
    return distributed


def run_on_dask(
    tasks: Sequence[SubjectTask],
    scheduler: Any,
    *,
    worker: Worker = run_subject,
    progress: bool | None = None,
    timeout_s: float = CONNECT_TIMEOUT_S,
) -> list[SubjectOutcome]:
    """Run every task on a Dask cluster; outcomes in task order.

    Parameters
    ----------
    tasks : sequence of SubjectTask
    scheduler : str or distributed cluster
        Scheduler address (``tcp://host:8786``) or a cluster object (``LocalCluster``,
        a dask-jobqueue ``SLURMCluster``...).
    worker : callable
        ``worker(task) -> SubjectOutcome``, importable on the workers.
    progress : bool or None
        Show a progress bar; None shows it only on a terminal.
    timeout_s : float
        How long to wait for the scheduler.

    Raises
    ------
    SchedulerError
        The scheduler does not answer within ``timeout_s``.
    """
    distributed = import_distributed()
    run = uuid.uuid4().hex[:8]
    results: dict[int, SubjectOutcome] = {}
    try:
        client = distributed.Client(scheduler, timeout=timeout_s)
    except (OSError, TimeoutError) as exc:
        raise SchedulerError(
            f"cannot reach the Dask scheduler {scheduler} within {timeout_s:.0f} s ({exc}); "
            "check the address and that the scheduler is running"
        ) from exc
    with client, progress_bar(len(tasks), progress) as bar:
        futures = {
            client.submit(
                call_worker, worker, task, key=f"bmetoolkit-{task.subject.key}-{run}", pure=False
            ): index
            for index, task in enumerate(tasks)
        }
        for future in distributed.as_completed(futures):
            index = futures[future]
            try:
                results[index] = future.result()
            except Exception as exc:  # KilledWorker, lost connection...
                results[index] = failed_outcome(
                    tasks[index], "worker", f"{type(exc).__name__}: {exc}"
                )
            bar.update(1)
    return [results[i] for i in range(len(tasks))]
