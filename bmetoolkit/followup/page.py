"""The QC page of a comparison: both visits side by side on the baseline grid.

``pair_qc.html`` (self-contained) shows the sagittal baseline T1 slice holding the most
lesion voxels and the follow-up T1 brought onto the same slice (whole-spine transform),
each with its own lesions coloured by status (:data:`STATUS_COLOURS`), then the change per
region with its RC, the matched lesions, the registration quality and the notes.
``pair_qc.png`` is the image pair alone.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.followup.match import LESION_STATUS
from bmetoolkit.followup.warp import box_grid, moved
from bmetoolkit.resample import resample_to
from bmetoolkit.volume import Volume

__all__ = ["STATUS_COLOURS", "pair_panels", "write_pair_page"]

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


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if r.get(c) is None else str(r.get(c)))}</td>"
                         for c in columns) + "</tr>"
        for r in rows
    )  # fmt: skip
    return f"<table><tr>{head}</tr>{body}</table>"


def write_pair_page(comparison: Any, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``pair_qc.html`` and ``pair_qc.png`` (beside it); return both paths."""
    from bmetoolkit.io import write_text
    from bmetoolkit.report.html import png_data_uri
    from bmetoolkit.report.qc import png_bytes, write_png

    rgb = pair_panels(comparison)
    page = Path(path)
    image = write_png(rgb, page.with_suffix(".png"))
    changed = [
        r for r in comparison.change_rows
        if r.get("bme_ml_baseline") or r.get("bme_ml_followup")
        or r.get("modic_transition") not in (None, "", "unchanged")
    ]  # fmt: skip
    change_columns = ["region", "bme_ml_baseline", "bme_ml_followup", "bme_change_ml",
                      "bme_rc_ml", "bme_change_real", "modic_transition", "note"]  # fmt: skip
    lesion_columns = ["status", "level", "zone", "volume_ml_baseline", "volume_ml_followup",
                      "rc_ml", "centroid_distance_mm", "matched_by"]  # fmt: skip
    legend = " ".join(
        f'<span style="background:rgb{colour};padding:0 6px">{name}</span>'
        for name, colour in STATUS_COLOURS.items()
    )
    quality = comparison.quality.to_dict(comparison.baseline.body_names)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in comparison.notes) or "<li>none</li>"
    text = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Follow-up QC</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}}</style></head><body>
<h1>Follow-up: {html.escape(comparison.baseline.source)} &rarr;
{html.escape(comparison.followup.source)}</h1>
<p>Left: baseline T1; right: follow-up T1 on the baseline slice. {legend}</p>
<img alt="baseline and follow-up" src="{png_data_uri(png_bytes(rgb))}">
<h2>Change per region (mL; real when beyond the repeatability coefficient)</h2>
{_table(changed, change_columns)}
<h2>Lesions</h2>{_table(comparison.lesion_rows, lesion_columns)}
<h2>Registration</h2><p>bone Dice {quality["bone_dice"]}, mutual information
{quality["mutual_information"]}, bodies compared {quality["bodies_compared"]}; one subject?
marrow texture correlation {quality["texture_correlation"]}, bone shape difference
{quality["shape_difference"]} (None: not measurable)</p>
<h2>Notes</h2><ul>{notes}</ul></body></html>
"""
    return write_text(page, text), image
