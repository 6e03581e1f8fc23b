"""The QC page of a comparison: both visits side by side on the baseline grid.

``pair_qc.html`` (self-contained) shows the sagittal baseline T1 slice holding the most
lesion voxels and the follow-up T1 brought onto the same slice (whole-spine transform),
each with its own lesions coloured by status (:data:`STATUS_COLOURS`), then the change per
region with its RC, the matched lesions, the registration quality and the notes.
``pair_qc.png`` is the image pair alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.followup.match import LESION_STATUS
from bmetoolkit.followup.warp import box_grid, moved
from bmetoolkit.resample import resample_to
from bmetoolkit.volume import Volume

__all__ = [
    "STATUS_COLOURS",
    "change_lines",
    "pair_panels",
    "render_pair_page",
    "write_pair_page",
]

#: Colour (RGB) of each lesion status.
STATUS_COLOURS = {
    "persisting": (250, 200, 30),
    "new": (230, 40, 40),
    "resolved": (40, 120, 255),
    "uncertain": (170, 90, 230),  # purple: grey would vanish on the grey image
}
#: Opacity of the status colours over the image.
ALPHA = 0.55


def _display_axes(volume: Volume) -> tuple[int, int, bool, bool]:
    """(row axis, column axis, flip rows, flip columns) showing superior up, anterior left."""
    codes = volume.grid.axcodes
    row = next(a for a, c in enumerate(codes) if c in "SI")
    column = next(a for a, c in enumerate(codes) if c in "AP" and a != row)
    return row, column, codes[row] == "S", codes[column] == "A"


def _plane(data: NDArray, k: int, axes: tuple[int, int, bool, bool]) -> NDArray:
    row, column, flip_rows, flip_columns = axes
    slicer = [slice(None)] * 3
    slicer[3 - row - column] = k
    plane = np.asarray(data)[tuple(slicer)]
    plane = plane if row < column else plane.T
    plane = plane[::-1] if flip_rows else plane
    return plane[:, ::-1] if flip_columns else plane


def _grey(plane: NDArray) -> NDArray[np.uint8]:
    finite = plane[np.isfinite(plane)]
    low, high = np.percentile(finite, [1, 99.5]) if finite.size else (0.0, 1.0)
    scaled = np.clip((np.nan_to_num(plane) - low) / max(high - low, 1e-9), 0, 1)
    return np.repeat((255 * scaled).astype(np.uint8)[..., None], 3, axis=2)


def _paint(rgb: NDArray[np.uint8], status: NDArray) -> NDArray[np.uint8]:
    out = rgb.astype(np.float32)
    for name, code in LESION_STATUS.items():
        mask = status == code
        out[mask] = (1 - ALPHA) * out[mask] + ALPHA * np.array(STATUS_COLOURS[name])
    return out.astype(np.uint8)


def pair_panels(comparison: Any) -> NDArray[np.uint8]:
    """Baseline and follow-up T1 (or bone masks without T1) side by side, RGB."""
    base = comparison.baseline
    bodies = base.maps["vertebrae"]
    status = np.asarray(comparison.lesion_status().data)
    axes = _display_axes(bodies)
    slice_axis = 3 - axes[0] - axes[1]
    shown = (  # each visit's own lesions
        np.asarray(base.maps["lesion_labels"].data) > 0,
        np.asarray(comparison.warped["lesion_labels"].data) > 0,
    )
    others = tuple(a for a in range(3) if a != slice_axis)
    per_visit = [((status > 0) & mine).sum(axis=others) for mine in shown]
    counts = per_visit[0] + per_visit[1]
    both = (per_visit[0] > 0) & (per_visit[1] > 0)
    if both.any():  # a slice where both visits have lesions shows the change best
        counts = np.where(both, counts, 0)
    middle = bodies.shape[slice_axis] // 2
    k = int(np.argmax(counts)) if counts.any() else middle
    box = [slice(0, n) for n in bodies.shape]
    box[slice_axis] = slice(k, k + 1)
    target = box_grid(bodies.grid, tuple(box))
    images = []
    for visit, transform in (
        (base, np.eye(4)),
        (comparison.followup, comparison.registration.transform),
    ):
        source = visit.t1 if visit.t1 is not None else visit.maps["vertebrae"]
        if source.is_label:
            source = source.with_data(np.asarray(source.data, np.float32), kind="intensity")
        images.append(np.asarray(resample_to(moved(source, transform), target).data))
    panels = [
        _paint(
            _grey(_plane(image, 0, axes)), _plane(np.where(mine, status, 0)[tuple(box)], 0, axes)
        )
        for image, mine in zip(images, shown, strict=True)
    ]
    gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
    return np.concatenate([panels[0], gap, panels[1]], axis=1)


#: Columns of the page's change table (every column is in ``change.csv``), with headers.
CHANGE_SHOWN = {
    "region": "Region",
    "bme_ml_baseline": "Edema, baseline (mL)",
    "bme_ml_followup": "Edema, follow-up (mL)",
    "bme_change_ml": "Change (mL)",
    "bme_change_pct": "Change (%)",
    "bme_rc_ml": "RC (mL)",
    "bme_change_real": "Real change",
    "modic_transition": "Modic type",
    "note": "Note",
}
#: Columns of the page's lesion table (all of them are in ``lesions_matched.csv``).
LESIONS_SHOWN = {
    "status": "Status",
    "level": "Level",
    "zone": "Zone",
    "finding_baseline": "Finding, baseline",
    "finding_followup": "Finding, follow-up",
    "volume_ml_baseline": "Baseline (mL)",
    "volume_ml_followup": "Follow-up (mL)",
    "change_ml": "Change (mL)",
    "rc_ml": "RC (mL)",
    "centroid_distance_mm": "Centroids apart (mm)",
    "matched_by": "Matched by",
}
#: The registration and subject-check measures shown (``report.json`` ``quality`` has all).
QUALITY_SHOWN = {
    "bone_dice": "Bone Dice",
    "mutual_information": "Mutual information",
    "bodies_compared": "Bodies or bones compared",
    "common_field": "Common field of view (fraction)",
    "texture_correlation": "Marrow texture correlation (– not measurable)",
    "shape_difference": "Bone shape difference (– not measurable)",
}


def change_lines(change_rows: list[dict[str, Any]], lesion_rows: list[dict[str, Any]]) -> list[str]:
    """What changed, in a few sentences: the total with its RC, the real changes, the Modic
    transitions and the lesions by status (the terminal summary and the page's summary).

    Examples
    --------
    >>> rows = [{"region": "L1 body", "bme_change_ml": -1.2, "bme_change_real": True},
    ...         {"region": "total", "bme_ml_baseline": 2.0, "bme_ml_followup": 0.8,
    ...          "bme_change_ml": -1.2, "bme_rc_ml": 0.9, "bme_change_real": True}]
    >>> for line in change_lines(rows, [{"status": "resolved"}]):
    ...     print(line)
    bone marrow edema: 2.00 -> 0.80 mL (-1.20 mL; RC 0.90 mL: real)
    L1 body: edema -1.20 mL
    lesions: 1 resolved
    """
    total = change_rows[-1]
    lines = [
        f"bone marrow edema: {total['bme_ml_baseline']:.2f} -> {total['bme_ml_followup']:.2f} "
        f"mL ({total['bme_change_ml']:+.2f} mL; RC {total['bme_rc_ml']:.2f} mL: "
        f"{'real' if total['bme_change_real'] else 'within measurement error'})"
    ]
    for row in change_rows[:-1]:
        if row.get("bme_change_real"):
            lines.append(f"{row['region']}: edema {row['bme_change_ml']:+.2f} mL")
        if row.get("modic_transition") not in (None, "", "unchanged"):
            lines.append(f"{row['region']}: Modic {row['modic_transition']}")
    counts: dict[str, int] = {}
    for row in lesion_rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    lines.append("lesions: " + (", ".join(f"{n} {s}" for s, n in counts.items()) or "none"))
    return lines


def render_pair_page(comparison: Any, rgb: NDArray[np.uint8]) -> str:
    """HTML of the comparison's QC page (self-contained), with ``rgb`` as its image."""
    from bmetoolkit.report.html import png_data_uri, render_page
    from bmetoolkit.report.qc import png_bytes

    changed = [
        r for r in comparison.change_rows
        if r.get("bme_ml_baseline") or r.get("bme_ml_followup")
        or r.get("modic_transition") not in (None, "", "unchanged")
    ]  # fmt: skip
    quality = comparison.quality.to_dict(comparison.baseline.body_names)
    return render_page(
        "pair.html.j2",
        title="bmetoolkit follow-up QC",
        script=None,
        baseline=comparison.baseline.source,
        followup=comparison.followup.source,
        summary=change_lines(comparison.change_rows, comparison.lesion_rows),
        legend=list(STATUS_COLOURS.items()),
        image_uri=png_data_uri(png_bytes(rgb)),
        changes=changed,
        change_columns=list(CHANGE_SHOWN.items()),
        lesions=comparison.lesion_rows,
        lesion_columns=list(LESIONS_SHOWN.items()),
        quality=quality,
        quality_columns=list(QUALITY_SHOWN.items()),
        notes=[str(n) for n in comparison.notes],
    )


def write_pair_page(comparison: Any, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``pair_qc.html`` and ``pair_qc.png`` (beside it); return both paths."""
    from bmetoolkit.io import write_text
    from bmetoolkit.report.qc import write_png

    rgb = pair_panels(comparison)
    page = Path(path)
    image = write_png(rgb, page.with_suffix(".png"))
    return write_text(page, render_pair_page(comparison, rgb)), image
