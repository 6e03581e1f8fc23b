"""Visual quality-control figures: sagittal montages with overlays and per-level volumes.

Every function here is pure: it takes :class:`~bmetoolkit.volume.Volume` objects (all on the
T1 grid), plain dicts and lists, and returns a :class:`matplotlib.figure.Figure` built on the
Agg canvas. No pyplot state is created or changed, so the functions are safe in batch runs,
threads and notebooks alike. :func:`save_figure` writes a PNG atomically.

Display conventions
-------------------
- Images are shown in the sagittal radiological convention whatever the stored orientation:
  **anterior to the left, superior up**. Volumes are first reoriented to the closest RAS axes
  (a permutation and flips of the voxel axes, no resampling), so a volume stored with
  permuted or flipped axes (and the matching affine) gives the same figure.
- Pixels are drawn with their physical size (mm), so anisotropic grids keep their true
  aspect ratio.
- Colours are those of :data:`bmetoolkit.report.colortables.LABEL_TABLES` (Okabe-Ito,
  colour-blind safe); BME is also told apart by its dashed line, so the figure reads in
  grey-scale print too. Lines and labels carry a halo so they read on bright and dark tissue.

Examples
--------
>>> import numpy as np
>>> from bmetoolkit.volume import Volume
>>> affine = np.diag([4.0, 0.7, 0.8, 1.0])
>>> t1 = Volume(np.ones((3, 40, 50), np.float32), affine)
>>> bodies = np.zeros((3, 40, 50), np.uint8)
>>> bodies[:, 10:30, 10:20] = 23
>>> labels = Volume(bodies, affine, kind="label")
>>> empty = labels.with_data(np.zeros_like(bodies))
>>> fig = sagittal_montage(t1, t1, empty, empty, labels, {23: "L4"}, n_slices=1)
>>> len(fig.axes)
2
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from numpy.typing import NDArray

from bmetoolkit.errors import GridMismatchError
from bmetoolkit.io import atomic_write
from bmetoolkit.modic import MM3_PER_ML
from bmetoolkit.report.colortables import LABEL_TABLES
from bmetoolkit.volume import Volume

__all__ = [
    "BME_COLOR",
    "MODIC_COLORS",
    "figure_png_bytes",
    "level_volume_chart",
    "level_volumes",
    "qc_figures",
    "sagittal_montage",
    "save_figure",
    "select_slices",
]

#: Colour of each Modic type (``modic_map`` value 1, 2, 3): the colour tables' colours, so
#: the figures match what 3D Slicer and ITK-SNAP show for the same label maps.
MODIC_COLORS: dict[int, str] = {
    entry.index: entry.hex for entry in LABEL_TABLES["modic_map"].entries
}
#: Colour of the bone marrow edema contour (drawn dashed).
BME_COLOR = LABEL_TABLES["bme_mask"].entries[0].hex
MODIC_NAMES = {1: "Modic I", 2: "Modic II", 3: "Modic III"}

#: Margin (mm) kept around the vertebral bodies when cropping the montage panels.
CROP_MARGIN_MM = 25.0
#: Percentiles of the intensity window of each contrast.
WINDOW_PERCENTILES = (1.0, 99.5)
#: Volumes are rounded to this many decimals of a ml (1e-6 ml = 0.001 mm³).
ML_DECIMALS = 6
#: Width of one montage panel (inches) and the base font size (points): the montage is
#: about 17 inches wide for 3 slices, so text is sized to stay readable when a page or a
#: printout scales it down to its width.
PANEL_WIDTH_IN = 2.8
FONT_SIZE = 12
_TOP_IN, _BOTTOM_IN, _ROW_TITLE_IN = 0.6, 0.45, 0.55
#: Resolution of the PNG files (dots per inch): sharp on screen and in print.
PNG_DPI = 150
_HALO = [patheffects.withStroke(linewidth=3.0, foreground="black")]


@dataclass(frozen=True)
class _Canonical:
    """Arrays reoriented to the closest RAS axes: ``[x (R), y (A), z (S)]``."""

    arrays: dict[str, NDArray]
    spacing: NDArray[np.float64]  # mm along x, y, z
    x_mm: NDArray[np.float64]  # world R coordinate of each sagittal slice (at the grid centre)


def _canonical(volumes: Mapping[str, Volume]) -> _Canonical:
    """Reorient every volume (all on one grid) to the closest RAS axes without resampling."""
    import nibabel as nib

    reference = next(iter(volumes.values()))
    grid = reference.grid
    for name, volume in volumes.items():
        if not volume.grid.same_as(grid):
            raise GridMismatchError(
                f"{name} is on grid {volume.grid!r}, the T1 is on {grid!r}; every QC input "
                "must be on the T1 grid",
                path=[p for p in (reference.source, volume.source) if p],
                hint="resample it first, e.g. with bmetoolkit.Study.from_images(t1, t2=...)",
            )
    ornt = nib.orientations.io_orientation(grid.affine)
    arrays = {
        name: nib.orientations.apply_orientation(np.asarray(volume.data), ornt)
        for name, volume in volumes.items()
    }
    spacing = np.empty(3)
    spacing[ornt[:, 0].astype(int)] = grid.spacing
    # World x of each canonical slice, through the centre of the other two axes.
    shape = np.asarray(grid.shape)
    inverse = nib.orientations.inv_ornt_aff(ornt, grid.shape)  # canonical index -> stored index
    canon_shape = np.empty(3, int)
    canon_shape[ornt[:, 0].astype(int)] = shape
    centres = np.column_stack(
        [
            np.arange(canon_shape[0]),
            np.full(canon_shape[0], (canon_shape[1] - 1) / 2),
            np.full(canon_shape[0], (canon_shape[2] - 1) / 2),
            np.ones(canon_shape[0]),
        ]
    )
    stored = centres @ inverse.T
    x_mm = grid.voxel_to_world(stored[:, :3])[:, 0]
    return _Canonical(arrays=arrays, spacing=spacing, x_mm=x_mm)


def select_slices(vertebrae: NDArray, findings: NDArray, n_slices: int = 3) -> list[int]:
    """Pick sagittal slices through the vertebral bodies: the central ones and the lesions'.

    Parameters
    ----------
    vertebrae : ndarray, shape (X, Y, Z)
        Vertebral body labels in canonical (RAS) order: axis 0 is the sagittal slice axis.
    findings : ndarray of bool, same shape
        Voxels with any finding (BME or Modic).
    n_slices : int
        How many slices to show.

    Returns
    -------
    list of int
        Slice indices along axis 0 (left to right), sorted.

    Notes
    -----
    The central slice is the middle of the slices holding at least half of the largest
    body area; its neighbours fill the montage. When findings exist, the slice holding most
    of them replaces the outermost neighbour if it is not already shown, so the largest
    lesion is always visible.

    Examples
    --------
    >>> bodies = np.zeros((7, 4, 4), np.uint8)
    >>> bodies[1:6, 1:3, 1:3] = 20
    >>> findings = np.zeros(bodies.shape, bool)
    >>> findings[5, 1, 1] = True
    >>> select_slices(bodies, findings, 3)
    [2, 3, 5]
    """
    n_total = vertebrae.shape[0]
    n_slices = max(1, min(int(n_slices), n_total))
    area = np.count_nonzero(vertebrae.reshape(n_total, -1), axis=1)
    if area.max() == 0:
        through = np.arange(n_total)
    else:
        through = np.flatnonzero(area >= 0.5 * area.max())
    centre = int(through[len(through) // 2]) if len(through) else n_total // 2
    order = sorted(range(n_total), key=lambda k: (abs(k - centre), k))
    chosen = order[:n_slices]
    lesion_area = np.count_nonzero(findings.reshape(n_total, -1), axis=1)
    if lesion_area.max() > 0:
        best = int(np.argmax(lesion_area))
        if best not in chosen:
            chosen[-1] = best
    return sorted(chosen)


def _window(image: NDArray) -> tuple[float, float]:
    values = image[np.isfinite(image)]
    values = values[values > 0] if np.any(values > 0) else values
    if values.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(values, WINDOW_PERCENTILES)
    return float(low), float(max(high, low + 1e-6))


def _crop_box(vertebrae: NDArray, spacing: NDArray) -> tuple[slice, slice]:
    """In-plane (y, z) crop around every vertebral body, with a margin in mm."""
    plane = np.any(vertebrae > 0, axis=0)
    if not plane.any():
        return slice(None), slice(None)
    boxes = []
    for axis, step in ((0, spacing[1]), (1, spacing[2])):
        hits = np.flatnonzero(np.any(plane, axis=1 - axis))
        margin = int(np.ceil(CROP_MARGIN_MM / step))
        boxes.append(slice(max(0, hits[0] - margin), min(plane.shape[axis], hits[-1] + margin + 1)))
    return boxes[0], boxes[1]


def _display(plane: NDArray) -> NDArray:
    """A canonical (y=A, z=S) slice as an image: rows superior to inferior, anterior left."""
    return np.asarray(plane).T[::-1, ::-1]


def _extent(shape: tuple[int, int], spacing_yz: NDArray) -> tuple[float, float, float, float]:
    rows, cols = shape
    return (0.0, cols * float(spacing_yz[0]), rows * float(spacing_yz[1]), 0.0)


def _draw_panel(
    ax, image: NDArray, window: tuple[float, float], masks: dict[str, NDArray], extent
) -> None:
    ax.imshow(
        image,
        cmap="gray",
        vmin=window[0],
        vmax=window[1],
        extent=extent,
        origin="upper",
        interpolation="nearest",
    )
    for value, colour in MODIC_COLORS.items():
        mask = masks["modic"] == value
        if mask.any():
            ax.contourf(
                mask.astype(float),
                levels=[0.5, 1.5],
                colors=[colour],
                alpha=0.3,
                extent=extent,
                origin="upper",
            )
            contour = ax.contour(
                mask.astype(float),
                levels=[0.5],
                colors=[colour],
                linewidths=1.6,
                extent=extent,
                origin="upper",
            )
            contour.set(path_effects=_HALO)
    if masks["bme"].any():
        contour = ax.contour(
            masks["bme"].astype(float),
            levels=[0.5],
            colors=[BME_COLOR],
            linewidths=1.8,
            linestyles="--",
            extent=extent,
            origin="upper",
        )
        contour.set(path_effects=[patheffects.withStroke(linewidth=3.4, foreground="white")])
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def _label_levels(ax, bodies: NDArray, names: Mapping[int, str], spacing_yz: NDArray) -> None:
    """Write each level name just anterior (left) of its body, at the body's height."""
    for body_id in np.unique(bodies[bodies > 0]):
        rows, cols = np.nonzero(bodies == body_id)
        if rows.size < 10:
            continue
        row_mm = (rows.mean() + 0.5) * spacing_yz[1]
        left_mm = cols.min() * spacing_yz[0]
        name = names.get(int(body_id), f"id {int(body_id)}")
        ax.text(
            max(left_mm - 3.0, 1.0),
            row_mm,
            name,
            color="white",
            fontsize=FONT_SIZE,
            fontweight="bold",
            ha="right" if left_mm > 20 else "left",
            va="center",
            path_effects=_HALO,
        )


def _orientation_marks(ax) -> None:
    """Mark the anterior (left) and posterior (right) sides at the bottom of a panel."""
    for x, text, align in ((0.02, "A", "left"), (0.98, "P", "right")):
        ax.text(
            x,
            0.01,
            text,
            transform=ax.transAxes,
            color="white",
            fontsize=FONT_SIZE - 1,
            fontweight="bold",
            va="bottom",
            ha=align,
            path_effects=_HALO,
        )


def _legend_handles(present_types: Sequence[int], has_bme: bool) -> list:
    handles: list = [
        Patch(facecolor=MODIC_COLORS[t], edgecolor="black", alpha=0.8, label=MODIC_NAMES[t])
        for t in (1, 2, 3)
    ]
    handles.append(Line2D([], [], color=BME_COLOR, linestyle="--", linewidth=2.0, label="BME"))
    labels_found = [f"{MODIC_NAMES[t]}{'' if t in present_types else ' (none)'}" for t in (1, 2, 3)]
    labels_found.append("BME" if has_bme else "BME (none)")
    for handle, text in zip(handles, labels_found, strict=True):
        handle.set_label(text)
    return handles


def sagittal_montage(
    t1: Volume,
    fluid: Volume,
    bme_mask: Volume,
    modic_map: Volume,
    vertebrae: Volume,
    level_names: Mapping[int, str],
    *,
    n_slices: int = 3,
    fluid_name: str = "STIR",
    title: str | None = None,
    pairs_per_row: int = 3,
) -> Figure:
    """Sagittal slices through the spine, T1 and T2/STIR side by side, with the findings.

    Parameters
    ----------
    t1 : Volume
        The T1 image; its grid is the grid of every other input.
    fluid : Volume
        The fluid-sensitive image (STIR, or T2) on the T1 grid.
    bme_mask : Volume
        Label volume, nonzero where bone marrow edema was found (drawn as a dashed contour).
    modic_map : Volume
        Label volume: 0 none, 1/2/3 Modic type I/II/III (filled, one colour per type).
    vertebrae : Volume
        Label volume of vertebral bodies (e.g. VerSe ids); each body is named on the figure.
    level_names : mapping of int to str
        Display name of each body id (``{23: "L4"}``); ids missing here are shown as
        ``"id N"``.
    n_slices : int
        Number of sagittal slices (pairs of panels); the central slices through the
        vertebral bodies, and the slice with most findings (see :func:`select_slices`).
    fluid_name : str
        Name of the fluid-sensitive contrast in the panel titles (``"STIR"`` or ``"T2"``).
    title : str, optional
        Figure title (e.g. the subject id).
    pairs_per_row : int
        T1/fluid pairs per row of panels: 3 puts three slices in one wide row (screens);
        1 stacks them (a portrait page in print).

    Returns
    -------
    matplotlib.figure.Figure
        On an Agg canvas; not registered with pyplot.

    Raises
    ------
    GridMismatchError
        An input is not on the T1 grid.
    """
    canon = _canonical(
        {"t1": t1, "fluid": fluid, "bme": bme_mask, "modic": modic_map, "bodies": vertebrae}
    )
    arrays = canon.arrays
    findings = (arrays["bme"] > 0) | (arrays["modic"] > 0)
    slices = select_slices(arrays["bodies"], findings, n_slices)
    crop_y, crop_z = _crop_box(arrays["bodies"], canon.spacing)
    spacing_yz = canon.spacing[1:]
    windows = {name: _window(arrays[name][:, crop_y, crop_z]) for name in ("t1", "fluid")}

    pairs_per_row = max(1, min(int(pairs_per_row), len(slices)))
    n_rows = -(-len(slices) // pairs_per_row)
    sample = _display(arrays["t1"][slices[0], crop_y, crop_z])
    extent = _extent(sample.shape, spacing_yz)
    panel_aspect = (extent[2] - extent[3]) / (extent[1] - extent[0])  # height / width
    row_height = PANEL_WIDTH_IN * panel_aspect + _ROW_TITLE_IN
    height = n_rows * row_height + _TOP_IN - _ROW_TITLE_IN + _BOTTOM_IN
    height += 0.35 if title else 0.0
    fig = Figure(figsize=(PANEL_WIDTH_IN * 2 * pairs_per_row + 0.2, height), dpi=110)
    FigureCanvasAgg(fig)
    grid_axes = fig.subplots(n_rows, 2 * pairs_per_row, squeeze=False)
    axes = list(grid_axes.ravel())
    for unused in axes[2 * len(slices) :]:
        unused.set_axis_off()
    for n, k in enumerate(slices):
        masks = {
            "bme": _display(arrays["bme"][k, crop_y, crop_z] > 0),
            "modic": _display(arrays["modic"][k, crop_y, crop_z]),
        }
        bodies = _display(arrays["bodies"][k, crop_y, crop_z])
        side = "R" if canon.x_mm[k] >= 0 else "L"
        where = f"x = {side} {abs(canon.x_mm[k]):.1f} mm"
        for m, (name, label) in enumerate((("t1", "T1"), ("fluid", fluid_name))):
            ax = axes[2 * n + m]
            _draw_panel(ax, _display(arrays[name][k, crop_y, crop_z]), windows[name], masks, extent)
            _label_levels(ax, bodies, level_names, spacing_yz)
            ax.set_title(f"{label}\n{where}", fontsize=FONT_SIZE)
            _orientation_marks(ax)
    present = sorted(int(v) for v in np.unique(arrays["modic"]) if v in MODIC_COLORS)
    fig.legend(
        handles=_legend_handles(present, bool(np.any(arrays["bme"] > 0))),
        loc="lower center",
        ncol=4,
        fontsize=FONT_SIZE + 1,
        frameon=False,
        bbox_to_anchor=(0.5, 0.0),
    )
    if title:
        fig.suptitle(title, fontsize=FONT_SIZE + 3, fontweight="bold")
    height = fig.get_figheight()
    fig.subplots_adjust(
        left=0.01,
        right=0.99,
        top=1 - (_TOP_IN + (0.35 if title else 0.0)) / height,
        bottom=_BOTTOM_IN / height,
        wspace=0.03,
        hspace=_ROW_TITLE_IN / (row_height - _ROW_TITLE_IN),
    )
    return fig


def level_volumes(
    bme_mask: Volume,
    modic_map: Volume,
    vertebrae: Volume,
    level_names: Mapping[int, str],
) -> list[dict[str, object]]:
    """Edema and Modic volumes (ml) inside each vertebral body, cranial to caudal.

    Parameters
    ----------
    bme_mask, modic_map, vertebrae : Volume
        Label volumes on one grid (see :func:`sagittal_montage`).
    level_names : mapping of int to str
        Display name of each body id.

    Returns
    -------
    list of dict
        One row per body (``level``, ``id``, ``bme_ml``, ``modic_I_ml``, ``modic_II_ml``,
        ``modic_III_ml``), ordered from the most superior body down, then a row
        ``"outside bodies"`` (``id`` None) when some finding lies outside every body.

    Examples
    --------
    >>> affine = np.diag([10.0, 10.0, 10.0, 1.0])  # 1 ml voxels
    >>> bodies = np.zeros((1, 1, 4), np.uint8); bodies[0, 0, :2] = 24; bodies[0, 0, 2:] = 23
    >>> bme = np.zeros_like(bodies); bme[0, 0, 3] = 1
    >>> vol = lambda a: Volume(a, affine, kind="label")
    >>> rows = level_volumes(vol(bme), vol(np.zeros_like(bme)), vol(bodies), {23: "L4"})
    >>> [(r["level"], r["bme_ml"]) for r in rows]
    [('L4', 1.0), ('id 24', 0.0)]
    """
    canon = _canonical({"bme": bme_mask, "modic": modic_map, "bodies": vertebrae})
    bodies, bme, modic = canon.arrays["bodies"], canon.arrays["bme"] > 0, canon.arrays["modic"]
    ml_per_voxel = bme_mask.grid.voxel_volume_mm3 / MM3_PER_ML
    ids = [int(i) for i in np.unique(bodies[bodies > 0])]
    height = {i: float(np.nonzero(bodies == i)[2].mean()) for i in ids}

    def ml(mask: NDArray) -> float:
        return round(float(np.count_nonzero(mask) * ml_per_voxel), ML_DECIMALS)

    def row(name: str, body_id: int | None, inside: NDArray) -> dict[str, object]:
        return {
            "level": name,
            "id": body_id,
            "bme_ml": ml(bme & inside),
            **{
                f"modic_{roman}_ml": ml((modic == t) & inside)
                for t, roman in ((1, "I"), (2, "II"), (3, "III"))
            },
        }

    rows = [
        row(level_names.get(i, f"id {i}"), i, bodies == i)
        for i in sorted(ids, key=lambda i: -height[i])
    ]
    outside = row("outside bodies", None, bodies == 0)
    if any(outside[key] > 0 for key in outside if key.endswith("_ml")):
        rows.append(outside)
    return rows


def level_volume_chart(
    bme_mask: Volume,
    modic_map: Volume,
    vertebrae: Volume,
    level_names: Mapping[int, str],
    *,
    title: str | None = None,
) -> Figure:
    """Horizontal grouped bars of edema and Modic I/II/III volume (ml) per level.

    Levels read top to bottom as in the spine; bars are labelled with their value, and a
    level without findings shows none. Colours match :func:`sagittal_montage`.

    Parameters
    ----------
    bme_mask, modic_map, vertebrae : Volume
        Label volumes on one grid.
    level_names : mapping of int to str
        Display name of each body id.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = level_volumes(bme_mask, modic_map, vertebrae, level_names)
    series = [
        ("bme_ml", "BME", BME_COLOR, "//"),
        ("modic_I_ml", "Modic I", MODIC_COLORS[1], None),
        ("modic_II_ml", "Modic II", MODIC_COLORS[2], None),
        ("modic_III_ml", "Modic III", MODIC_COLORS[3], None),
    ]
    n = max(len(rows), 1)
    fig = Figure(figsize=(8.0, 0.5 * n + 1.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    bar_height = 0.2
    positions = np.arange(len(rows), dtype=float)
    largest = max([float(r[key]) for r in rows for key, *_ in series] + [0.0])
    for s, (key, label, colour, hatch) in enumerate(series):
        values = np.array([float(r[key]) for r in rows])
        offsets = positions + (s - 1.5) * bar_height
        bars = ax.barh(
            offsets,
            values,
            height=bar_height,
            color=colour,
            edgecolor="black",
            linewidth=0.6,
            hatch=hatch,
            label=label,
        )
        for bar, value in zip(bars, values, strict=True):
            if value > 0:
                ax.text(
                    bar.get_width() + 0.01 * max(largest, 1e-9),
                    bar.get_y() + bar_height / 2,
                    f"{value:.2f}",
                    va="center",
                    ha="left",
                    fontsize=FONT_SIZE - 3,
                )
    ax.set_yticks(positions, [str(r["level"]) for r in rows], fontsize=FONT_SIZE)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, largest * 1.2 if largest > 0 else 1.0)
    ax.set_xlabel("volume (ml)", fontsize=FONT_SIZE - 1)
    ax.tick_params(axis="x", labelsize=FONT_SIZE - 2)
    ax.grid(axis="x", color="0.85", linewidth=0.6)
    ax.set_axisbelow(True)
    for y in positions[:-1]:
        ax.axhline(y + 0.5, color="0.7", linewidth=0.5)
    if largest == 0:
        ax.text(
            0.5,
            0.5,
            "no edema or Modic change found",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=FONT_SIZE,
            color="0.3",
        )
    ax.legend(  # outside the axes: never hides a bar
        loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=FONT_SIZE - 2, frameon=False
    )
    ax.set_title(title or "Findings per vertebral level", fontsize=FONT_SIZE)
    fig.tight_layout()
    return fig


def qc_figures(
    t1: Volume,
    fluid: Volume,
    bme_mask: Volume,
    modic_map: Volume,
    vertebrae: Volume,
    level_names: Mapping[int, str],
    *,
    fluid_name: str = "STIR",
    subject: str | None = None,
    n_slices: int = 3,
) -> dict[str, Figure]:
    """The QC figures of one subject, by caption, ready for the HTML page.

    Parameters are those of :func:`sagittal_montage` and :func:`level_volume_chart`;
    ``subject`` titles the montage.

    Returns
    -------
    dict of str to Figure
        The montage, then the per-level chart; pass it to
        :func:`bmetoolkit.report.html.write_subject_page` as ``figures``.
    """
    labels = (bme_mask, modic_map, vertebrae, level_names)
    return {
        f"Sagittal T1 and {fluid_name}: Modic types (filled) and BME (dashed)": sagittal_montage(
            t1, fluid, *labels, n_slices=n_slices, fluid_name=fluid_name, title=subject
        ),
        "Edema and Modic volume per vertebral level": level_volume_chart(*labels),
    }


def figure_png_bytes(fig: Figure, *, dpi: int | None = None) -> bytes:
    """Render a figure to PNG bytes at ``dpi`` (default :data:`PNG_DPI`), without metadata.

    No software or time stamp is written, so identical figures give identical bytes.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi or PNG_DPI, metadata={"Software": None})
    return buffer.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int | None = None) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically; return the path.

    Examples
    --------
    >>> import tempfile
    >>> fig = Figure(); _ = FigureCanvasAgg(fig); _ = fig.subplots()
    >>> out = save_figure(fig, Path(tempfile.mkdtemp()) / "qc.png")
    >>> out.read_bytes()[:4]
    b'\\x89PNG'
    """
    target = Path(path)
    data = figure_png_bytes(fig, dpi=dpi)
    with atomic_write(target) as temporary:
        temporary.write_bytes(data)
    return target
