"""The batch as a whole: check the folders, discover, plan, run, write the group tables.

:func:`run_batch` is what ``bmetoolkit batch`` calls; :func:`plan` is its ``--dry-run``.

Examples
--------
>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> run_batch(root / "missing", root / "out")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
bmetoolkit.batch.pipeline.BatchUsageError: input folder ... does not exist or is not a folder
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bmetoolkit.batch.anatomy import choose_anatomy, marrow_labels_option
from bmetoolkit.batch.choices import read_series_choices
from bmetoolkit.batch.discover import discover
from bmetoolkit.batch.inputs import Layout, SubjectInputs
from bmetoolkit.batch.manifest import check_complete
from bmetoolkit.batch.naming import inside
from bmetoolkit.batch.outputs import (
    INDEX_PAGE,
    dataset_description,
    unit_parts,
    write_group_tables,
    write_qc_index,
)
from bmetoolkit.batch.runner import Worker, run_local
from bmetoolkit.batch.subject import (
    SubjectOutcome,
    SubjectTask,
    quick_outcome,
    remove_stale,
    run_subject,
)
from bmetoolkit.errors import UsageError

__all__ = ["BatchReport", "BatchUsageError", "plan", "prepare", "run_batch"]

_LOCK_NAME = ".bmetoolkit-batch.lock"


class BatchUsageError(UsageError, ValueError):
    """The batch cannot start: bad folders or options (the command line exits with 2)."""


@dataclass
class BatchReport:
    """Outcome of a batch: one :class:`SubjectOutcome` per subject and the tables written."""

    outcomes: list[SubjectOutcome]
    tables: dict[str, Path] = field(default_factory=dict)

    def count(self, status: str) -> int:
        """Number of subjects with ``status`` (``ok``, ``unchanged``, ``failed``)."""
        return sum(o.status == status for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        """0 when every subject is done or unchanged, 1 when some failed."""
        return 1 if self.count("failed") else 0


def _check_folders(input_root: Path, output: Path) -> None:
    if not input_root.is_dir():
        raise BatchUsageError(f"input folder {input_root} does not exist or is not a folder")
    source, target = input_root.resolve(), output.resolve()
    if target == source:
        raise BatchUsageError("OUTPUT must differ from INPUT (e.g. INPUT/derivatives/bmetoolkit)")
    if target in source.parents:
        raise BatchUsageError(f"INPUT {input_root} lies inside OUTPUT {output}")
    if output.exists() and not output.is_dir():
        raise BatchUsageError(f"OUTPUT {output} exists and is not a folder")


def default_parameters(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Complete, checked parameter values (defaults for those not given)."""
    from bmetoolkit.params import Parameters

    try:
        return Parameters.from_dict(dict(parameters or {})).to_dict()
    except (ValueError, TypeError) as exc:
        raise BatchUsageError(f"invalid parameters: {exc}") from exc


def prepare(
    input_root: str | os.PathLike,
    output: str | os.PathLike,
    *,
    layout: Layout | str = "auto",
    pattern: str | None = None,
    labels_root: str | os.PathLike | None = None,
    series_choices: str | os.PathLike | None = None,
    anatomy: str = "auto",
    marrow_labels: str | os.PathLike | None = None,
) -> list[SubjectInputs]:
    """Check the folders and discover the subjects (OUTPUT is never searched).

    Paths are made absolute, so workers with another working folder (Dask) find them.
    ``series_choices`` is a TSV of series per subject (:mod:`bmetoolkit.batch.choices`);
    a subject it names that is not found is a usage error (a typo would otherwise go
    unnoticed). ``anatomy`` and ``marrow_labels`` choose between the spine and bone masks
    (:func:`bmetoolkit.batch.anatomy.choose_anatomy`).
    """
    source, target = Path(input_root).absolute(), Path(output).absolute()
    _check_folders(source, target)
    if layout not in ("auto", "bids", "dicom", "nifti"):
        raise BatchUsageError(f"unknown layout {layout!r}; choose auto, bids, dicom or nifti")
    try:
        labels = marrow_labels_option(marrow_labels)
        choices = read_series_choices(series_choices) if series_choices else None
        found = discover(
            source,
            layout=layout,
            pattern=pattern,
            labels_root=labels_root,
            exclude=[target],
            choices=choices,
        )
        found = choose_anatomy(found, anatomy, labels)
    except ValueError as exc:  # a bad pattern, choices file, anatomy or names table
        raise BatchUsageError(str(exc)) from exc
    if choices is not None and choices.unused():
        raise BatchUsageError(
            f"series choices {series_choices}: no DICOM subject folder matches "
            f"{', '.join(choices.unused())} (series choices apply to the DICOM layout; "
            "subjects are named by their folder)"
        )
    return found


def _tasks(
    subjects: Sequence[SubjectInputs],
    input_root: Path,
    output: Path,
    parameters: dict[str, Any],
    *,
    force: bool,
    keep_phi: bool,
    qc: bool,
) -> list[SubjectTask]:
    from bmetoolkit.provenance import running_version

    return [
        SubjectTask(
            subject=s,
            output=str(output),
            input_root=str(input_root),
            parameters=parameters,
            version=running_version(),
            force=force,
            keep_phi=keep_phi,
            qc=qc,
        )
        for s in subjects
    ]


def plan(
    subjects: Sequence[SubjectInputs],
    input_root: str | os.PathLike,
    output: str | os.PathLike,
    *,
    parameters: Mapping[str, Any] | None = None,
    force: bool = False,
    keep_phi: bool = False,
    qc: bool = False,
) -> str:
    """What a batch would do, subject by subject: inputs paired and why, run or skip."""
    from bmetoolkit.provenance import running_version

    values = default_parameters(parameters)
    lines = [f"{len(subjects)} subject(s) in {input_root}"]
    for s in subjects:
        if s.problem:
            action = f"cannot run: {s.problem_type}: {s.problem}"
        elif force:
            action = "run (--force)"
        else:
            folder = inside(output, *unit_parts(s.subject, s.session))
            manifest, reason = check_complete(
                folder,
                s,
                input_root,
                parameters=values,
                version=running_version(),
                options={"keep_phi": keep_phi, "qc": qc},
            )
            action = "skip: outputs complete and up to date" if manifest else f"run: {reason}"
        lines.append(f"{s.key} ({s.layout}, {s.source}): {action}")
        for role, image in s.images().items():
            lines.append(f"  {role}: {image.description or image.path}")
        lines.extend(f"  why: {reason}" for reason in s.reasons)
    return "\n".join(lines)


@contextlib.contextmanager
def _exclusive(output: Path) -> Iterator[None]:
    """Hold an exclusive lock on OUTPUT for the batch (refuse a second concurrent batch)."""
    output.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks
        yield
        return
    with open(output / _LOCK_NAME, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise BatchUsageError(
                f"another bmetoolkit batch is writing into {output}; wait for it to finish"
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_batch(
    input_root: str | os.PathLike,
    output: str | os.PathLike,
    *,
    layout: Layout | str = "auto",
    pattern: str | None = None,
    labels_root: str | os.PathLike | None = None,
    anatomy: str = "auto",
    marrow_labels: str | os.PathLike | None = None,
    parameters: Mapping[str, Any] | None = None,
    jobs: int = 1,
    scheduler: Any = None,
    force: bool = False,
    keep_phi: bool = False,
    qc: bool = False,
    progress: bool | None = None,
    worker: Worker = run_subject,
    subjects: Sequence[SubjectInputs] | None = None,
) -> BatchReport:
    """Analyse every subject of a cohort into a BIDS-derivatives folder.

    Parameters
    ----------
    input_root, output : path
        The cohort folder and the output folder (created; may lie inside the input).
    layout, pattern, labels_root
        How to find the subjects (:func:`bmetoolkit.batch.discover.discover`).
    anatomy : {'auto', 'spine', 'bones'}
        ``auto``: subjects with a bone mask are analysed per bone, the others as spines
        (:mod:`bmetoolkit.batch.anatomy`).
    marrow_labels : str or path, optional
        Names of every subject's bone mask ids: a table or a TotalSegmentator convention.
    parameters : mapping, optional
        Analysis parameters (defaults for those not given).
    jobs : int
        Local worker processes (ignored with ``scheduler``).
    scheduler : str or cluster, optional
        Run on this Dask cluster instead of local processes.
    force : bool
        Redo subjects whose outputs are complete and up to date.
    keep_phi : bool
        Keep patient identity and absolute input paths in the reports.
    qc : bool
        Also write a QC page per subject (a second or two each) and ``OUTPUT/index.html``;
        without it an ``index.html`` of an earlier run is removed (its links would be
        broken: the subjects it lists are redone without their pages).
    progress : bool or None
        Progress bar; None shows it only on a terminal.
    worker : callable
        Per-subject function (default :func:`~bmetoolkit.batch.subject.run_subject`).
    subjects : sequence of SubjectInputs, optional
        Already discovered subjects (skips discovery).

    Returns
    -------
    BatchReport

    Raises
    ------
    BatchUsageError
        Bad folders, options or parameters, or another batch writing into ``output``.
    """
    from bmetoolkit.provenance import running_version

    if jobs < 1:
        raise BatchUsageError(f"--jobs must be at least 1, got {jobs}")
    source, target = Path(input_root).absolute(), Path(output).absolute()
    if subjects is None:
        subjects = prepare(
            source,
            target,
            layout=layout,
            pattern=pattern,
            labels_root=labels_root,
            anatomy=anatomy,
            marrow_labels=marrow_labels,
        )
    else:
        _check_folders(source, target)
    values = default_parameters(parameters)
    with _exclusive(target):
        remove_stale(target)
        dataset_description(target, source, running_version(), values)
        tasks = _tasks(subjects, source, target, values, force=force, keep_phi=keep_phi, qc=qc)
        outcomes = [quick_outcome(task) for task in tasks]
        todo = [task for task, outcome in zip(tasks, outcomes, strict=True) if outcome is None]
        if not todo:
            done = []
        elif scheduler is not None:
            from bmetoolkit.batch.dask_cluster import run_on_dask

            done = run_on_dask(todo, scheduler, worker=worker, progress=progress)
        else:
            done = run_local(todo, jobs=jobs, worker=worker, progress=progress)
        # A worker that died took the subjects in flight beside it down mid-write; they were
        # redone, and no worker writes any more: their hidden folders go now, not next run.
        remove_stale(target)
        finished = iter(done)
        outcomes = [o if o is not None else next(finished) for o in outcomes]
        tables = write_group_tables(target, outcomes)
        from bmetoolkit.batch.longitudinal import write_longitudinal  # sessions compared

        tables |= write_longitudinal(target, outcomes, source)
        if qc:
            tables["qc_index"] = write_qc_index(target, outcomes)
        else:  # an earlier run's index would link to the QC pages this run did not write
            (target / INDEX_PAGE).unlink(missing_ok=True)
    return BatchReport(outcomes=outcomes, tables=tables)
