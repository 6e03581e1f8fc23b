"""``bmetoolkit analyze``: one subject, from images (or a DICOM study folder) to the outputs.

Either name the images::

    bmetoolkit analyze --t1 T1 --t2 T2 [--stir STIR] [--vertebrae LABELS] --out DIR

(each a NIfTI file or a DICOM series folder), or give one DICOM study folder and let the
series be paired automatically (``--t1-series`` etc. choose when the pairing is ambiguous)::

    bmetoolkit analyze STUDY_DIR [--vertebrae LABELS] --out DIR

Any bone instead of the spine: give bone masks (``docs/bones.md``); the T1 is optional
there::

    bmetoolkit analyze --t1 T1 --stir STIR --marrow MASK [--marrow-labels TABLE] --out DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bmetoolkit.commands import EXIT_OK, INCOMPLETE_OUTPUT
from bmetoolkit.errors import UsageError

__all__ = ["PARAMS_HELP", "register", "run"]

#: Help of ``--params`` (every command that analyses takes the same).
PARAMS_HELP = (
    "parameter values: a JSON object ('{\"stir_hyper_ratio\": 1.3}', nested "
    "'{\"autoseg\": {...}}' for the automatic vertebrae), or a JSON file of some values or a "
    "report.json"
)


def register(commands: Any) -> None:
    """Add the ``analyze`` command to the CLI's sub-parsers."""
    parser = commands.add_parser(
        "analyze",
        help="find bone marrow edema (and Modic changes in the spine) in one subject",
        description="Analyse one subject: T1 plus T2 and/or STIR (NIfTI files or DICOM series "
        "folders), or a DICOM study folder paired automatically. Writes bme_mask.nii.gz, "
        "modic_map.nii.gz, vertebrae.nii.gz, lesions.nii.gz, lesions.csv, endplates.csv, "
        "report.json (written last) and qc.html into --out. With --marrow (bone masks of any "
        "bone) bones.nii.gz and bones.csv replace the spine outputs.",
    )
    parser.add_argument(
        "study", nargs="?", type=Path, metavar="STUDY_DIR", help="DICOM folder of one study"
    )
    parser.add_argument("--t1", type=Path, metavar="PATH", help="T1-weighted image")
    parser.add_argument("--t2", type=Path, metavar="PATH", help="T2-weighted image")
    parser.add_argument(
        "--stir",
        type=Path,
        metavar="PATH",
        help="STIR, or a fat-suppressed T2 or proton-density image (fat-sat, SPAIR, Dixon water)",
    )
    parser.add_argument(
        "--vertebrae",
        type=Path,
        metavar="PATH",
        help="vertebra label map: VerSe/SPINEPS ids, TotalSegmentator classes or a binary "
        "body mask (found automatically when omitted)",
    )
    parser.add_argument(
        "--marrow",
        type=Path,
        metavar="MASK",
        help="bone masks of any bone instead of the spine: a binary or multi-label map (any "
        "grid), or a folder of one mask per bone (TotalSegmentator's output); no levels, "
        "endplates or Modic types. The T1 is then optional",
    )
    parser.add_argument(
        "--marrow-labels",
        metavar="TABLE",
        help="names of the --marrow ids: a dseg.tsv, a two-column TSV or a JSON file, or a "
        "TotalSegmentator task (total, total_mr, appendicular_bones, appendicular_bones_mr, "
        "vertebrae_mr); default: a table beside the mask, else 'bone N'",
    )
    parser.add_argument(
        "--label-convention",
        default="auto",
        choices=("auto", "verse", "spineps", "totalsegmentator", "total_mr", "binary"),
        help="convention of --vertebrae (default: auto-detect)",
    )
    parser.add_argument("--params", metavar="JSON", help=PARAMS_HELP)
    parser.add_argument(
        "--reference-mask",
        type=Path,
        metavar="PATH",
        help="a region of normal marrow (any grid) to take the normal-marrow reference from, "
        "as readers do for SPARCC-style scoring (default: estimated from the marrow itself)",
    )
    for role in ("t1", "t2", "stir"):
        parser.add_argument(
            f"--{role}-series",
            metavar="N",
            help=f"with STUDY_DIR: the {role.upper()} series (number, UID or description)",
        )
    parser.add_argument(
        "--allow-cross-study",
        action="store_true",
        help="pair DICOM series of different studies (StudyInstanceUID); refused by default",
    )
    parser.add_argument(
        "--no-role-check",
        action="store_true",
        help="do not refuse images whose fat, fluid and marrow do not look like their roles "
        "(use only for images you know are right)",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--no-qc", action="store_true", help="skip the QC page (qc.html)")
    parser.add_argument(
        "--subject",
        metavar="NAME",
        help="the subject's name on the QC page (default: the name of the --out folder)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run, interrupted=INCOMPLETE_OUTPUT)


def _series(value: str | None) -> str | int | None:
    return int(value) if value is not None and value.isdigit() else value


def run(args: argparse.Namespace) -> int:
    """Run the analysis for the parsed arguments; return the exit code."""
    _check_arguments(args)
    from bmetoolkit.analysis import analyze
    from bmetoolkit.params import Parameters

    params = Parameters.from_argument(args.params) if args.params is not None else None
    result = analyze(
        args.study if args.study is not None else args.t1,
        t2=args.t2,
        stir=args.stir,
        vertebrae=args.vertebrae,
        marrow=args.marrow,
        marrow_labels=args.marrow_labels,
        verify_roles=not args.no_role_check,
        params=params,
        reference_mask=args.reference_mask,
        label_convention=args.label_convention,
        t1_series=_series(args.t1_series),
        t2_series=_series(args.t2_series),
        stir_series=_series(args.stir_series),
        allow_cross_study=args.allow_cross_study,
    )
    files = result.save(args.out, qc=not args.no_qc, subject=args.subject)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print(result.summary())
        print(f"outputs in {args.out} (report: {files['report'].name})")
        if "qc" in files:
            print(f"QC page: {files['qc']}")
    return EXIT_OK


def _check_arguments(args: argparse.Namespace) -> None:
    """Raise UsageError when the images given do not make one subject."""
    fluid = args.t2 or args.stir
    if args.marrow is not None and args.vertebrae is not None:
        raise UsageError("give --vertebrae for the spine or --marrow for any bone, not both")
    if args.study is not None and (args.t1 or fluid):
        raise UsageError("give either STUDY_DIR or the images (--t1, --t2, --stir), not both")
    if args.study is None and args.t1 is not None and not fluid:
        raise UsageError("--t1 needs --t2 and/or --stir")
    if args.study is None and not fluid:
        raise UsageError("give STUDY_DIR, or the images: --t1 with --t2 and/or --stir")
    series = [args.t1_series, args.t2_series, args.stir_series]
    if args.study is None and any(s is not None for s in series):
        raise UsageError("--t1-series/--t2-series/--stir-series need STUDY_DIR")
