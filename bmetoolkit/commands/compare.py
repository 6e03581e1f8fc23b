"""``bmetoolkit compare``: two visits of one subject, the change between them.

    bmetoolkit compare BASELINE FOLLOWUP --out DIR

Each visit is an ``analyze`` output folder or a DICOM study folder (analysed first, and
saved in ``DIR/baseline`` and ``DIR/followup``); visits analysed with ``--marrow`` bone
masks are compared bone by bone. Writes ``change.csv``,
``lesions_matched.csv``, ``lesion_status.nii.gz``, ``followup_bme_on_baseline.nii.gz`` and
``report.json`` (last) into ``DIR``; see :mod:`bmetoolkit.followup.compare`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bmetoolkit.commands import INCOMPLETE_OUTPUT

EXIT_OK = 0


def register(commands: Any) -> None:
    """Add the ``compare`` command to the CLI's sub-parsers."""
    parser = commands.add_parser(
        "compare",
        help="compare two visits of one subject: change per level, lesion by lesion",
        description="Register the follow-up visit to the baseline (rigid, then per body), "
        "check that both show the same anatomy, and write the change per body and endplate "
        "(or per bone, for visits analysed with --marrow bone masks) "
        "with its repeatability coefficient (change.csv), each lesion as persisting, new or "
        "resolved (lesions_matched.csv) and report.json (written last) into --out. Each "
        "visit is an `analyze` output folder or a DICOM study folder.",
    )
    parser.add_argument("baseline", type=Path, metavar="BASELINE", help="the first visit")
    parser.add_argument("followup", type=Path, metavar="FOLLOWUP", help="the later visit")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--no-subject-check",
        action="store_true",
        help="compare even when the visits do not look like one subject (bone overlap, "
        "marrow texture or bone shape); visits without a common body are still refused",
    )
    parser.add_argument(
        "--decide-alone",
        action="store_true",
        help="use each visit's own analysis as it is; by default both visits' edema is "
        "decided together (a region found at one visit is re-examined at the other)",
    )
    parser.add_argument(
        "--partial-volume",
        action="store_true",
        help="weigh each lesion's edge voxels by their partial volume in the volumes "
        "compared (on phantoms neither repeatability nor change error differ beyond their "
        "noise); by default voxels are counted, as analyze counts them",
    )
    parser.add_argument(
        "--whole-fields",
        action="store_true",
        help="compare each visit's whole edema; by default the edema is compared only where "
        "both visits imaged (a slab placed differently at one visit is not a change), and "
        "change.csv notes what lies outside",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run, interrupted=INCOMPLETE_OUTPUT)


def run(args: argparse.Namespace) -> int:
    """Compare the two visits of the parsed arguments; return the exit code."""
    from bmetoolkit.followup.compare import compare

    result = compare(
        args.baseline,
        args.followup,
        out=args.out,
        check_subject=not args.no_subject_check,
        joint=not args.decide_alone,
        partial_volume=args.partial_volume,
        whole_fields=args.whole_fields,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print(result.summary())
        print(f"outputs in {args.out} (change.csv, lesions_matched.csv, report.json)")
    return EXIT_OK
