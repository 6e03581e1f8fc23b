"""``bmetoolkit info PATH``: the image series in a folder or file, their contrast and pairing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bmetoolkit.commands import EXIT_OK
from bmetoolkit.errors import BmetoolkitError

__all__ = ["register", "run"]


def register(commands: Any) -> None:
    """Add the ``info`` command to the CLI's sub-parsers ``commands``."""
    parser = commands.add_parser(
        "info",
        help="list the image series in a folder or file, their contrast and the pairing",
        description="List every image series found in PATH (a DICOM folder, a DICOM file or "
        "NIfTI files): number, description, plane, matrix, spacing, slices, detected contrast "
        "and why, and which series would be paired for analysis.",
    )
    parser.add_argument("path", type=Path, metavar="PATH")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def _describe_inputs(path: Path) -> tuple[list[Any], list[str]]:
    """SeriesInfo of every image series under ``path`` (DICOM series and NIfTI files), and
    why files were skipped (damaged DICOM files, NIfTI files that cannot be read)."""
    from bmetoolkit.dicom.read import describe_skipped, scan_dicom
    from bmetoolkit.errors import EmptyInputError, InputNotFoundError
    from bmetoolkit.io import NIFTI_SUFFIXES, nifti_series_info

    if not path.exists():
        raise InputNotFoundError("does not exist", path=path, hint="check the path")
    if path.is_file() and path.name.lower().endswith(NIFTI_SUFFIXES):
        return [nifti_series_info(path)], []
    niftis = (
        sorted(p for p in path.rglob("*") if p.name.lower().endswith(NIFTI_SUFFIXES))
        if path.is_dir()
        else []
    )
    skipped: list[tuple[str, str]] = []
    try:
        series = scan_dicom(path, skipped=skipped)
    except EmptyInputError:
        if not niftis:
            raise
        series = []
    notes = [describe_skipped(skipped, examples=len(skipped))] if skipped and series else []
    for nifti in niftis:
        try:
            series.append(nifti_series_info(nifti))
        except BmetoolkitError as exc:
            notes.append(f"skipped {exc}")
    if not series:
        raise EmptyInputError(
            "holds no readable image: " + "; ".join(notes),
            path=path,
            hint="copy or export the damaged files again",
        )
    return series, notes


def _pairing_of(series: list[Any]) -> tuple[dict[str, str], list[str]]:
    """Role of each paired series uid, and the pairing's reasons (or why it failed)."""
    from bmetoolkit.pairing.pair import pair_series

    dicom_series = [s for s in series if s.files]
    if not dicom_series:
        return {}, [
            "NIfTI files are not paired automatically: give each its role, "
            "`bmetoolkit analyze --t1 FILE --t2 FILE --stir FILE --out DIR` (in Python, "
            "bt.analyze(t1, t2=..., stir=...))"
        ]
    try:
        pairing = pair_series(dicom_series)
    except BmetoolkitError as exc:
        return {}, [f"no automatic pairing: {exc.for_cli()}"]
    roles = {}
    for role in ("t1", "t2", "stir"):
        chosen = getattr(pairing, role)
        if chosen is not None:
            roles[chosen.uid] = role.upper()
    return roles, list(pairing.reasons)


def _series_row(info: Any, call: Any, role: str) -> dict[str, Any]:
    plane = info.plane + (f" ({info.tilt_deg:.0f}° oblique)" if info.is_oblique else "")
    return {
        "number": info.number,
        "description": info.description,
        "plane": plane,
        "matrix": f"{info.shape[0]}x{info.shape[1]}",
        "spacing_mm": "x".join(f"{s:.3g}" for s in info.spacing),
        "slices": info.shape[2],
        "contrast": call.contrast + (" (fat-sat)" if call.fat_suppressed else ""),
        "why": "; ".join(call.reasons),
        "paired_as": role,
        "source": info.source,
    }


def run(args: argparse.Namespace) -> int:
    """List the series of ``args.path``, their contrast and the pairing; return the exit code."""
    from bmetoolkit.pairing.contrast import classify_series

    series, skipped = _describe_inputs(args.path)
    roles, reasons = _pairing_of(series)
    rows = [_series_row(s, classify_series(s), roles.get(s.uid, "")) for s in series]
    if args.json:
        print(json.dumps({"series": rows, "pairing": reasons, "skipped": skipped}, indent=2))
        return EXIT_OK
    for note in skipped:
        print(f"note: {note}")
    columns = ["number", "description", "plane", "matrix", "spacing_mm", "slices", "contrast"]
    columns += ["paired_as", "why"]
    print(_table(rows, columns))
    print()
    for reason in reasons:
        print(f"pairing: {reason}")
    return EXIT_OK


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[("" if row[c] is None else str(row[c])) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)
