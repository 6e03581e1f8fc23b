"""``bmetoolkit spider fetch|validate``: the SPIDER lumbar dataset, for users with internet.

``fetch`` downloads SPIDER (Zenodo record 10159290, CC BY 4.0) into the user cache, verified
and resumable; ``validate`` runs the analysis on a SPIDER folder and prints its agreement
with the radiologists' per-disc Modic grades. Thin: parse, call :mod:`bmetoolkit.data.spider`,
print. Exit codes (:mod:`bmetoolkit.cli`): 0 done, 1 failed (download, or some patients),
2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bmetoolkit.commands import EXIT_FAILED, EXIT_OK
from bmetoolkit.commands.analyze import PARAMS_HELP

__all__ = ["format_metrics", "register"]


def register(commands: Any) -> None:
    """Add the ``spider`` command (sub-commands ``fetch`` and ``validate``) to ``commands``."""
    parser = commands.add_parser(
        "spider",
        help="download the SPIDER lumbar MRI dataset, or validate Modic typing against it",
        description="SPIDER: 447 sagittal T1/T2 lumbar series of 218 patients with vertebra "
        "masks and per-disc Modic grades (van der Graaf et al., Sci Data 2024; Zenodo "
        "10159290, CC BY 4.0). Nothing is downloaded unless you run 'fetch'.",
    )
    actions = parser.add_subparsers(dest="spider_command", metavar="ACTION", required=True)

    fetch = actions.add_parser(
        "fetch",
        help="download (and unzip) SPIDER into the cache",
        description="Download SPIDER into DEST (default: $BMETOOLKIT_CACHE/spider or "
        "~/.cache/bmetoolkit/spider), checking each file's MD5 from Zenodo. Interrupted "
        "downloads resume when run again; finished files are not downloaded twice.",
    )
    fetch.add_argument("--dest", type=Path, metavar="DIR", help="target folder")
    fetch.add_argument(
        "--only",
        nargs="+",
        metavar="FILE",
        help="fetch only these files (e.g. radiological_gradings.csv masks.zip)",
    )
    fetch.add_argument("--no-extract", action="store_true", help="keep the zip archives zipped")
    fetch.add_argument("--quiet", action="store_true", help="no progress bars")
    fetch.add_argument(
        "--api-url", default=None, metavar="URL", help="Zenodo records API (default zenodo.org)"
    )
    fetch.set_defaults(handler=_run_fetch)

    validate = actions.add_parser(
        "validate",
        help="score bmetoolkit's Modic types against SPIDER's per-disc grades",
        description="Analyse every patient of a SPIDER folder that has a T1 and a T2 (vertebrae "
        "from the SPIDER T1 mask) and report accuracy and Cohen's kappa against the "
        "radiologists' Modic grades per disc (type none/I/II/III and presence yes/no).",
    )
    validate.add_argument("root", type=Path, metavar="SPIDER_DIR")
    validate.add_argument("--limit", type=int, metavar="N", help="at most N patients")
    validate.add_argument("--params", metavar="JSON", help=PARAMS_HELP)
    validate.add_argument("--out", type=Path, metavar="CSV", help="write the per-disc table")
    validate.add_argument("--json", type=Path, metavar="JSON", help="write the metrics")
    validate.set_defaults(handler=_run_validate)


def _run_fetch(args: argparse.Namespace) -> int:
    from bmetoolkit.data import spider

    options: dict[str, Any] = {"extract": not args.no_extract, "progress": not args.quiet}
    if args.only:
        options["files"] = args.only
    if args.api_url:
        options["api_url"] = args.api_url
    root = spider.fetch_spider(args.dest, **options)  # a DownloadError exits with 1
    print(f"SPIDER is in {root} (CC BY 4.0: cite van der Graaf et al., Sci Data 11, 264, 2024)")
    return EXIT_OK


def format_metrics(metrics: dict[str, Any]) -> str:
    """A short text summary of :func:`bmetoolkit.data.spider.agreement` results."""
    kinds, presence = metrics["type"], metrics["presence"]
    lines = [
        f"discs scored: {metrics['n']} ({metrics.get('n_patients', '?')} patients, "
        f"{metrics.get('n_failed', 0)} failed, {metrics.get('n_unreported', 0)} discs not "
        "reported by the analysis)",
        f"Modic type (none/I/II/III): accuracy {kinds['accuracy']:.3f}, "
        f"Cohen's kappa {kinds['kappa']:.3f}",
        f"Modic present: accuracy {presence['accuracy']:.3f}, balanced accuracy "
        f"{presence['balanced_accuracy']:.3f}, kappa {presence['kappa']:.3f} "
        "(SpineNet V2: balanced accuracy 0.86, kappa 0.74)",
    ]
    for kind, row in metrics["per_type"].items():
        lines.append(
            f"  type {kind:<3} expected {row['n_expected']:4d}  predicted {row['n_predicted']:4d}"
            f"  sensitivity {row['sensitivity']:.3f}  precision {row['precision']:.3f}"
        )
    return "\n".join(lines)


def _run_validate(args: argparse.Namespace) -> int:
    from bmetoolkit.data import spider
    from bmetoolkit.io import write_json, write_text
    from bmetoolkit.params import Parameters

    params = Parameters.from_argument(args.params) if args.params is not None else None
    failures: list[str] = []

    def report(patient: int, exc: Exception) -> None:
        failures.append(f"patient {patient}: {type(exc).__name__}: {exc}")
        print(f"bmetoolkit spider validate: patient {patient} failed: {exc}", file=sys.stderr)

    per_disc, metrics = spider.validate_spider(
        args.root,
        params=params,
        limit=args.limit,
        on_error=report,
        progress=True,
    )
    if args.out:
        write_text(args.out, per_disc.to_csv(index=False))
    if args.json:
        write_json(args.json, metrics | {"failures": failures})
    print(format_metrics(metrics))
    if args.json is None:
        print(json.dumps(metrics["type"]["confusion"]))
    return EXIT_FAILED if failures else EXIT_OK
