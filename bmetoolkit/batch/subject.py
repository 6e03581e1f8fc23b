"""One subject's work: analyse into a hidden folder, then move it into place.

:func:`run_subject` never leaves a half-done output under a final name:

1. when the subject's outputs are complete and its inputs, parameters and version are
   unchanged (:func:`bmetoolkit.batch.manifest.check_complete`), it is skipped;
2. otherwise the analysis writes into ``.<unit>.partial-<random>/`` beside the final folder;
   the manifest is written last;
3. the hidden folder is renamed onto the final one (an older output is first renamed away
   and deleted afterwards).

A crash or a kill between these steps leaves only hidden ``.partial-`` / ``.old-`` folders,
which :func:`remove_stale` deletes at the end of the batch (a worker that died takes the
subjects in flight beside it down; they are redone in the same batch) or, after an
interrupted batch, at the start of the next one; the subject is then redone.
Errors of one subject are caught and returned as a failed :class:`SubjectOutcome` with the
stage they happened in; only ``KeyboardInterrupt`` propagates.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bmetoolkit.batch.inputs import SubjectInputs
from bmetoolkit.batch.manifest import (
    MANIFEST_VERSION,
    check_complete,
    input_fingerprints,
    manifest_name,
)
from bmetoolkit.batch.naming import UnsafePathError, bids_prefix, inside, sanitize_label
from bmetoolkit.batch.outputs import INDEX_PAGE, output_names, summary_of, unit_parts
from bmetoolkit.batch.privacy import scrub
from bmetoolkit.io import write_json
from bmetoolkit.provenance import running_version

__all__ = [
    "SubjectOutcome",
    "SubjectTask",
    "publish",
    "quick_outcome",
    "remove_stale",
    "run_subject",
]

#: Hidden folder names the batch creates (and may delete): ``.<unit>.partial-*``, ``.old-*``.
_TEMP_MARKERS = (".partial-", ".old-")

AnalyzeFunction = Callable[..., Any]


@dataclass(frozen=True)
class SubjectTask:
    """Everything a worker needs for one subject (picklable, no open resources).

    Parameters
    ----------
    subject : SubjectInputs
        The subject's inputs as discovered.
    output : str
        The batch output folder.
    input_root : str
        The cohort folder (paths in the manifest are relative to it).
    parameters : dict
        Analysis parameters (:meth:`bmetoolkit.params.Parameters.to_dict`).
    version : str
        The batch's bmetoolkit version with the digest of its code
        (:func:`bmetoolkit.provenance.running_version`): outputs whose manifest records
        another are redone, even where the version number is the same. The manifest
        records the version of the process that ran the analysis (a Dask worker's own).
    force : bool
        Redo even when the outputs are complete and up to date.
    keep_phi : bool
        Keep patient identity and absolute input paths in the report.
    qc : bool
        Also write the subject's QC page (``sub-<label>_qc.html``).
    """

    subject: SubjectInputs
    output: str
    input_root: str
    parameters: dict[str, Any]
    version: str
    force: bool = False
    keep_phi: bool = False
    qc: bool = False

    @property
    def options(self) -> dict[str, bool]:
        """Options that change the outputs (recorded in the manifest)."""
        return {"keep_phi": self.keep_phi, "qc": self.qc}


@dataclass
class SubjectOutcome:
    """What happened to one subject.

    ``status`` is ``"ok"`` (analysed now), ``"unchanged"`` (complete outputs kept) or
    ``"failed"`` (``stage`` and ``error`` say where and why). ``endplates`` (spine) or
    ``bones`` (bone masks) are the subject's rows of the group tables.
    """

    subject: str
    session: str | None
    status: str
    stage: str = ""
    error: str = ""
    error_type: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    endplates: list[dict[str, Any]] = field(default_factory=list)
    bones: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float = 0.0
    output: str = ""
    worker_pid: int | None = None
    peak_rss_mb: float | None = None
    cpu_s: float | None = None

    @property
    def key(self) -> str:
        """``sub-<subject>[_ses-<session>]``."""
        return bids_prefix(self.subject, self.session)

    def row(self) -> dict[str, Any]:
        """The subject's row of ``subjects.csv``."""
        return {
            "subject": self.subject,
            "session": self.session,
            "status": self.status,
            **self.summary,
            "duration_s": round(self.duration_s, 3),
            "output": self.output,
            "error_type": self.error_type,
            "error": self.error,
        }


def run_subject(task: SubjectTask, *, analyze: AnalyzeFunction | None = None) -> SubjectOutcome:
    """Analyse one subject into its output folder, or skip it when it is up to date.

    Parameters
    ----------
    task : SubjectTask
    analyze : callable, optional
        ``analyze(t1, t2=, stir=, vertebrae=, params=)`` (and ``marrow=``, ``marrow_labels=``
        for a subject with a bone mask) returning an
        :class:`~bmetoolkit.analysis.AnalysisResult`; default
        :func:`bmetoolkit.analysis.analyze` (tests inject a stand-in).

    Returns
    -------
    SubjectOutcome
        Never raises for a bad subject; the error is in the outcome.
    """
    start = time.perf_counter()
    subject = task.subject
    outcome = SubjectOutcome(subject.subject, subject.session, status="failed")
    stage = "discover"
    try:
        if subject.problem:
            raise DiscoveryProblem(subject.problem_type or "BmetoolkitError", subject.problem)
        stage = "output"
        final = _final_folder(task)
        outcome.output = final.relative_to(task.output).as_posix()
        if not task.force:
            stage = "check"
            manifest = _complete_manifest(task, final)
            if manifest is not None:
                return _from_manifest(outcome, manifest, start)
        stage = "fingerprint"
        inputs = input_fingerprints(subject, task.input_root)
        stage = "analyze"
        result = _analyze(task, analyze)
        stage = "save"
        with _temporary_folder(final) as temporary:
            manifest = _save(result, temporary, task, inputs)
            stage = "publish"
            publish(temporary, final)
        outcome.status = "ok"
        outcome.summary = manifest["summary"]
        outcome.endplates = manifest["endplates"]
        outcome.bones = manifest.get("bones") or []
        outcome.stage = ""
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # one bad subject never stops the batch
        outcome.stage = stage
        outcome.error_type, outcome.error = _error_type(exc), _message(exc)
        if not task.keep_phi:  # the error goes into failures.csv and the index, like a report
            outcome.error = scrub(outcome.error, input_root=task.input_root)
    outcome.duration_s = time.perf_counter() - start
    return outcome


def quick_outcome(task: SubjectTask) -> SubjectOutcome | None:
    """The outcome of ``task`` when it needs no analysis, else None.

    A subject that discovery could not pair fails at once; one whose outputs are complete
    and up to date is ``"unchanged"``. The batch calls this in the main process, so a rerun
    with nothing to do starts no worker.
    """
    if task.subject.problem:
        return run_subject(task)
    if task.force:
        return None
    try:
        final = _final_folder(task)
    except UnsafePathError:
        return run_subject(task)
    manifest = _complete_manifest(task, final)
    if manifest is None:
        return None
    outcome = SubjectOutcome(task.subject.subject, task.subject.session, status="unchanged")
    outcome.output = final.relative_to(task.output).as_posix()
    return _from_manifest(outcome, manifest, time.perf_counter())


def _final_folder(task: SubjectTask) -> Path:
    _check_labels(task.subject)
    return inside(task.output, *unit_parts(task.subject.subject, task.subject.session))


def _complete_manifest(task: SubjectTask, final: Path) -> dict[str, Any] | None:
    manifest, _reason = check_complete(
        final,
        task.subject,
        task.input_root,
        parameters=task.parameters,
        version=task.version,
        options=task.options,
    )
    return manifest


def _check_labels(subject: SubjectInputs) -> None:
    """Refuse labels that were not sanitised (e.g. built by hand, bypassing discovery)."""
    for label in (subject.subject, subject.session):
        if label is not None and (not label or sanitize_label(label, prefix=None) != label):
            raise UnsafePathError(
                f"label {label!r} is not a BIDS label (letters and digits only); "
                "discovery sanitises labels, pass them through bmetoolkit.batch.naming"
            )


class DiscoveryProblem(Exception):
    """Why discovery could not prepare a subject, with the type of the error behind it."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _error_type(exc: BaseException) -> str:
    return exc.kind if isinstance(exc, DiscoveryProblem) else type(exc).__name__


#: What to do about images refused by the role check, in a batch's terms: the batch has no
#: option to skip the check (``analyze`` has ``--no-role-check``, Python ``verify_roles``).
ROLE_CHECK_HINT = (
    "check which file is which (`bmetoolkit info FILE` shows what the header and name say) "
    "and name each file for its role; a batch always checks the roles: if you are sure of "
    "them, analyse this subject alone with `bmetoolkit analyze ... --no-role-check`"
)


def _message(exc: BaseException) -> str:
    """``Type: message`` on one line; for an unexpected error (a bug), where it happened.

    Advice that names an option of ``analyze`` or an argument of ``bt.analyze`` the batch
    does not have is replaced by advice in the batch's terms (:data:`ROLE_CHECK_HINT`).
    """
    from bmetoolkit.errors import BmetoolkitError, ContrastMismatchError

    place = ""
    expected = BmetoolkitError | ValueError | OSError | DiscoveryProblem
    if not isinstance(exc, expected):  # a bug: say where
        where = traceback.extract_tb(exc.__traceback__)[-1:]
        place = f" (at {Path(where[0].filename).name}:{where[0].lineno})" if where else ""
    message = str(exc)
    if isinstance(exc, ContrastMismatchError):  # the role check's advice: skip it
        message = exc.with_hint(ROLE_CHECK_HINT)
    text = "; ".join(line.strip() for line in message.splitlines() if line.strip())
    return f"{_error_type(exc)}: {text}{place}"


def _from_manifest(outcome: SubjectOutcome, manifest: Mapping, start: float) -> SubjectOutcome:
    outcome.status = "unchanged"
    outcome.summary = dict(manifest.get("summary") or {})
    outcome.endplates = list(manifest.get("endplates") or [])
    outcome.bones = list(manifest.get("bones") or [])
    outcome.duration_s = time.perf_counter() - start
    return outcome


def _load_images(task: SubjectTask) -> dict[str, Any]:
    """Inputs for ``analyze``: NIfTI paths as they are, DICOM series read from their files."""
    from bmetoolkit.dicom.read import read_series
    from bmetoolkit.io import load

    images: dict[str, Any] = {}
    for role, image in task.subject.images().items():
        kind = "label" if role in ("vertebrae", "marrow") else "intensity"
        if image.info is not None:
            images[role] = read_series(image.info, kind=kind)
        elif image.series is not None:
            images[role] = load(image.path, kind=kind, series=image.series)
        else:
            images[role] = image.path
    return images


def _analyze(task: SubjectTask, analyze: AnalyzeFunction | None) -> Any:
    from bmetoolkit.params import Parameters

    if analyze is None:
        from bmetoolkit.analysis import analyze
    images = _load_images(task)
    extra: dict[str, Any] = {"allow_cross_study": True} if task.subject.allow_cross_study else {}
    if "marrow" in images:  # bone masks: per-bone edema, the T1 optional
        extra |= {"marrow": images["marrow"], "marrow_labels": task.subject.marrow_labels}
    return analyze(
        images.get("t1"),
        t2=images.get("t2"),
        stir=images.get("stir"),
        vertebrae=images.get("vertebrae"),
        params=Parameters.from_dict(task.parameters),
        **extra,
    )


def _records(table: Any) -> list[dict[str, Any]]:
    """Rows of a DataFrame as JSON-ready dicts (NaN -> None)."""
    if table is None or len(table) == 0:
        return []
    import pandas as pd

    clean = table.astype(object).where(pd.notna(table), None)
    return [
        {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in clean.to_dict(orient="records")
    ]


def _save(result: Any, folder: Path, task: SubjectTask, inputs: dict) -> dict[str, Any]:
    """Write the outputs through :meth:`AnalysisResult.save` with BIDS names, then the manifest.

    Returns the manifest (written last, so a folder with one is complete).

    The analysis' files are exactly those of ``bmetoolkit analyze``; the batch only names them
    (:func:`~bmetoolkit.batch.outputs.output_names`), scrubs identity from the report (unless
    ``keep_phi``), links the QC page to the batch index and adds the manifest.
    """
    key = task.subject.key
    anat = folder / "anat"
    report = result.to_dict()
    if not task.keep_phi:
        report = scrub(report, input_root=task.input_root)
    depth = len(unit_parts(task.subject.subject, task.subject.session)) + 1  # + anat/
    written = result.save(
        anat,
        names=output_names(key),
        qc=task.qc,
        subject=key,
        report=report,
        index_href="../" * depth + INDEX_PAGE,
    )
    outputs = {
        name: {"path": path.relative_to(folder).as_posix(), "size": path.stat().st_size}
        for name, path in sorted(written.items())
    }
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "subject": task.subject.subject,
        "session": task.subject.session,
        "layout": task.subject.layout,
        # the code that ran (a Dask worker may hold another install than the batch's client:
        # its subjects are then redone on every rerun, never taken for up to date)
        "version": running_version(),
        "parameters": task.parameters,
        "options": task.options,
        "inputs": inputs,
        "pairing": list(task.subject.reasons),
        "outputs": outputs,
        "summary": summary_of(result, report),
        "endplates": _records(result.endplates),
        "bones": list(report.get("bones") or []),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(folder / manifest_name(key), manifest)
    return manifest


@contextlib.contextmanager
def _temporary_folder(final: Path) -> Iterator[Path]:
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.parent / f".{final.name}.partial-{uuid.uuid4().hex[:12]}"
    temporary.mkdir()
    try:
        yield temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def publish(temporary: str | os.PathLike, final: str | os.PathLike) -> None:
    """Move a complete ``temporary`` folder onto ``final``, replacing an older one.

    The older folder is first renamed to a hidden ``.old-`` name, so at every instant
    ``final`` is either the old complete output, absent, or the new complete output.
    """
    source, target = Path(temporary), Path(final)
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:12]}"
        os.rename(target, old)
        os.rename(source, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(source, target)


def remove_stale(output: str | os.PathLike) -> list[Path]:
    """Delete hidden folders left by an interrupted batch in OUTPUT and its subject folders.

    Only names this module creates (``.sub-*`` / ``.ses-*`` with ``.partial-`` or ``.old-``)
    are touched. Call it only while no other batch writes into OUTPUT.

    Returns
    -------
    list of Path
        The folders removed.
    """
    base = Path(output)
    if not base.is_dir():
        return []
    parents = [base, *(p for p in base.glob("sub-*") if p.is_dir())]
    removed = []
    for parent in parents:
        for path in parent.iterdir():
            name = path.name
            if (
                name.startswith((".sub-", ".ses-"))
                and any(m in name for m in _TEMP_MARKERS)
                and path.is_dir()
            ):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed
