"""``bmetoolkit batch INPUT OUTPUT``: analyse a cohort into a BIDS-derivatives folder.

Thin: parse, call :func:`bmetoolkit.batch.pipeline.run_batch`, print. Heavy imports happen
in the handler. Exit codes (:mod:`bmetoolkit.cli`): 0 every subject done or unchanged, 1 some
failed (or the parameters could not be read), 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bmetoolkit.commands import EXIT_FAILED, EXIT_OK
from bmetoolkit.commands.analyze import PARAMS_HELP
from bmetoolkit.errors import BmetoolkitError, UsageError

__all__ = ["register", "run"]


def register(commands: Any) -> None:
    """Add the ``batch`` command to the CLI's sub-parsers ``commands``."""
    parser = commands.add_parser(
        "batch",
        help="analyse every subject of a cohort (BIDS, DICOM tree or NIfTI files)",
        description="Find the subjects under INPUT (a BIDS dataset, one DICOM folder per "
        "subject, or NIfTI files matched by --pattern), analyse each and write a "
        "BIDS-derivatives dataset into OUTPUT with group tables (subjects.csv, endplates.csv, "
        "bones.csv, failures.csv). A subject with a bone mask is analysed per bone "
        "(docs/bones.md). Reruns skip subjects whose outputs are complete and whose inputs and "
        "parameters are unchanged. One failing subject never stops the batch.",
    )
    parser.add_argument("input", type=Path, metavar="INPUT")
    parser.add_argument("output", type=Path, metavar="OUTPUT")
    parser.add_argument(
        "--layout",
        choices=("auto", "bids", "dicom", "nifti"),
        default="auto",
        help="how INPUT is organised (default: detected)",
    )
    parser.add_argument(
        "--pattern",
        help="NIfTI layout: file pattern relative to INPUT with {subject}, {role} and "
        "optionally {session} and *, e.g. '{subject}_{role}.nii.gz' "
        "(default '{subject}/{role}.nii.gz'); roles: t1/t1w, t2/t2w, stir/tirm/t2fs/pdfs, "
        "vertebrae/seg, bones/bone_mask/marrow (bone masks)",
    )
    parser.add_argument(
        "--labels",
        type=Path,
        metavar="DIR",
        help="BIDS layout: folder of vertebra label maps (*_seg-vert_msk, *_dseg) and bone "
        "masks (*_desc-bones_dseg, *_desc-bones_mask); default INPUT/derivatives",
    )
    parser.add_argument(
        "--anatomy",
        choices=("auto", "spine", "bones"),
        default="auto",
        help="auto (default): subjects with a bone mask are analysed per bone, the others as "
        "spines; bones: every subject needs a bone mask; spine: bone masks are ignored",
    )
    parser.add_argument(
        "--marrow-labels",
        metavar="TABLE|CONVENTION",
        help="names of the ids of every subject's bone mask: a dseg.tsv, two-column TSV or "
        "JSON file, or a TotalSegmentator task (total, total_mr, appendicular_bones...); "
        "default: the mask's own _dseg.tsv beside it, else bone 1..n",
    )
    parser.add_argument(
        "--series-choices",
        type=Path,
        metavar="TSV",
        help="DICOM layout: series to pair per subject, a tab-separated file with the columns "
        "subject and any of session, t1, t2, stir (series numbers) and allow_cross_study "
        "(yes/no); see docs/batch.md",
    )
    parser.add_argument("--params", metavar="JSON", help=PARAMS_HELP)
    parser.add_argument(
        "--jobs", "-j", type=int, default=1, metavar="N", help="worker processes (default 1)"
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask distributed cluster (tcp://host:8786); needs bmetoolkit[distributed]",
    )
    parser.add_argument("--force", action="store_true", help="redo subjects already complete")
    parser.add_argument(
        "--keep-phi",
        action="store_true",
        help="keep patient identity and absolute input paths in the reports and errors",
    )
    parser.add_argument(
        "--qc", action="store_true", help="also write a QC page per subject (sub-*_qc.html)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the subjects, what would be paired and why, and what would run",
    )
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None)
    progress.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="progress bar on or off (default: on a terminal)",
    )
    parser.set_defaults(
        handler=run,
        interrupted="subjects already finished are kept, unfinished ones left no output. "
        "Run the same command again to finish.",
    )


def _parameters(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    from bmetoolkit.params import Parameters

    return Parameters.from_argument(text).to_dict()


def run(args: argparse.Namespace) -> int:
    """Run (or with ``--dry-run`` plan) the batch; return the exit code."""
    from bmetoolkit.batch.dask_cluster import MissingExtraError, SchedulerError, import_distributed
    from bmetoolkit.batch.pipeline import plan, prepare, run_batch

    parameters = _parameters(args.params)
    try:
        if args.scheduler and not args.dry_run:
            import_distributed()
        subjects = prepare(
            args.input,
            args.output,
            layout=args.layout,
            pattern=args.pattern,
            labels_root=args.labels,
            series_choices=args.series_choices,
            anatomy=args.anatomy,
            marrow_labels=args.marrow_labels,
        )
        if args.dry_run:
            print(
                plan(
                    subjects,
                    args.input,
                    args.output,
                    parameters=parameters,
                    force=args.force,
                    keep_phi=args.keep_phi,
                    qc=args.qc,
                )
            )
            return EXIT_FAILED if any(s.problem for s in subjects) else EXIT_OK
        if not subjects:
            raise BmetoolkitError(
                "no subjects found",
                path=args.input,
                hint="check --layout and --pattern with --dry-run (docs/batch.md)",
            )
        with _sigterm_as_interrupt():
            report = run_batch(
                args.input,
                args.output,
                parameters=parameters,
                jobs=args.jobs,
                scheduler=args.scheduler,
                force=args.force,
                keep_phi=args.keep_phi,
                qc=args.qc,
                progress=args.progress,
                subjects=subjects,
            )
    except (MissingExtraError, SchedulerError) as exc:  # an option this machine cannot serve
        raise UsageError(str(exc)) from exc
    for outcome in report.outcomes:
        if outcome.status == "failed":
            print(f"failed {outcome.key} [{outcome.stage}]: {outcome.error}", file=sys.stderr)
    subjects_seen = {outcome.subject for outcome in report.outcomes}
    units = f"{len(subjects_seen)} subject(s)"
    if any(outcome.session for outcome in report.outcomes):
        units += f", {len(report.outcomes)} subject-session(s)"
    print(
        f"{units}: {report.count('ok')} analysed, "
        f"{report.count('unchanged')} unchanged, {report.count('failed')} failed; "
        f"tables in {args.output}"
    )
    if "qc_index" in report.tables:
        print(f"QC index: {report.tables['qc_index']}")
    return report.exit_code


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (``kill``, a job scheduler) like Ctrl-C while the batch runs."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
