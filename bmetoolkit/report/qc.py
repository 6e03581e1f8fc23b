"""Visual quality-control figures: sagittal montages with overlays and per-level volumes.

Every function here is pure: it takes :class:`~bmetoolkit.volume.Volume` objects (all on the
T1 grid), plain dicts and lists, and returns arrays, rows and small dataclasses. The montage
panels are RGB arrays drawn with numpy **once, at the size they are shown** on the QC page
(:data:`PANEL_WIDTH_PX`); the text around them (titles, level names, legend, the per-level
volumes) is HTML, so it stays sharp and readable at any page width and costs nothing to draw.
No plotting library is imported. :func:`png_bytes` encodes an RGB array as PNG (zlib, no
timestamp: the same image gives the same bytes), :func:`write_png` writes one atomically.

Display conventions
-------------------
- Images are shown in the sagittal radiological convention whatever the stored orientation:
  **anterior to the left, superior up**. Volumes are first reoriented to the closest RAS axes
  (a permutation and flips of the voxel axes, no resampling), so a volume stored with
  permuted or flipped axes (and the matching affine) gives the same panels.
- Pixels are drawn with their physical size (mm), so anisotropic grids keep their true
  aspect ratio (nearest-neighbour, never smoothing a label).
- Colours are those of :data:`bmetoolkit.report.colortables.LABEL_TABLES` (Okabe-Ito,
  colour-blind safe); Modic types are filled and outlined, BME is a dashed outline, so the
  panels read in grey-scale print too. Outlines carry a halo so they read on bright and dark
  tissue.

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
>>> montage = sagittal_montage(t1, t1, empty, empty, labels, {23: "L4"}, n_slices=1)
>>> [panel.contrast for panel in montage.panels], montage.panels[0].levels[0].name
(['T1', 'STIR'], 'L4')
>>> montage.panels[0].rgb.shape[1] == PANEL_WIDTH_PX
True
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.concurrency import map_threads
from bmetoolkit.errors import GridMismatchError
from bmetoolkit.io import atomic_write
from bmetoolkit.modic import MM3_PER_ML, MODIC_NAMES
from bmetoolkit.report.colortables import LABEL_TABLES
from bmetoolkit.volume import Volume

__all__ = [
    "BME_COLOR",
    "MODIC_COLORS",
    "OUTLINE_COLOR",
    "LevelMark",
    "Montage",
    "Panel",
    "QCFigures",
    "level_volumes",
    "png_bytes",
    "qc_figures",
    "sagittal_montage",
    "select_slices",
    "write_png",
]

#: Colour of each Modic type (``modic_map`` value 1, 2, 3): the colour tables' colours, so
#: the figures match what 3D Slicer and ITK-SNAP show for the same label maps.
MODIC_COLORS: dict[int, str] = {
    entry.index: entry.hex for entry in LABEL_TABLES["modic_map"].entries
}
#: Colour of the bone marrow edema outline (drawn dashed).
BME_COLOR = LABEL_TABLES["bme_mask"].entries[0].hex
#: Colour of the 1 px outline of each vertebral body (or bone) on the first panel of a slice:
#: bluish green, apart from the Modic types' and the edema's colours (Okabe-Ito palette).
OUTLINE_COLOR = "#009E73"
_RGB = {value: entry.rgb for value, entry in enumerate(LABEL_TABLES["modic_map"].entries, 1)}
_OUTLINE_RGB = tuple(int(OUTLINE_COLOR[i : i + 2], 16) for i in (1, 3, 5))
_BME_RGB = LABEL_TABLES["bme_mask"].entries[0].rgb

#: Margin (mm) kept around the vertebral bodies when cropping the montage panels.
CROP_MARGIN_MM = 25.0
#: Percentiles of the intensity window of each contrast.
WINDOW_PERCENTILES = (1.0, 99.5)
#: Volumes are rounded to this many decimals of a mL (1e-6 mL = 0.001 mm³).
ML_DECIMALS = 6
#: Width (CSS px) of one montage panel, and the width it is drawn at: two panels (T1 and
#: STIR of one slice) side by side fit a phone screen once scaled, two slices a 1000 px page.
PANEL_WIDTH_PX = 230
#: Opacity of the Modic fills.
FILL_ALPHA = 0.3
#: Width (px) of the outlines, of the dark (or light) halo outside them, and of a dash.
OUTLINE_PX, HALO_PX, DASH_PX = 2, 1, 5
#: Height (px) of the thumbnail of a subject on the batch index, and its width / height
#: when cropped around the findings.
THUMBNAIL_HEIGHT_PX = 96
THUMBNAIL_ASPECT = 0.8
#: A level name is written inside the panel, not anterior to its body, when the body starts
#: closer than this to the anterior (left) edge (mm).
LABEL_ROOM_MM = 20.0
#: zlib level of the PNG files: 1, the fastest; zlib's default 6 saves ~12 % of the bytes of a
#: montage panel at 3-4 times the time.
PNG_COMPRESSION = 1


@dataclass(frozen=True)
class LevelMark:
    """Where a level name goes on a panel (percent of the panel's width and height).

    ``align`` is ``"right"`` when the name ends just anterior (left) of its body at ``x_pct``,
    ``"left"`` when it starts at ``x_pct`` (a body too close to the panel's left edge).
    """

    name: str
    x_pct: float
    y_pct: float
    align: str


@dataclass(frozen=True)
class Panel:
    """One montage panel: an RGB image (superior up, anterior left) and its captions."""

    contrast: str
    position: str
    rgb: NDArray[np.uint8]
    levels: tuple[LevelMark, ...]

    def png(self) -> bytes:
        """The panel as PNG bytes."""
        return png_bytes(self.rgb)


@dataclass(frozen=True)
class Montage:
    """T1 and fluid panels of a few sagittal slices, with what the legend says.

    ``key_panel`` is the fluid panel of the slice with most findings (the central slice
    when there are none), ``key_rows`` the rows of that panel holding findings (first, last;
    None without findings): the subject's thumbnail on the batch index. ``contrasts`` names
    the images each slice shows, in panel order: the T1 (or other base image) and the fluid
    image, or the fluid image alone when there is no T1.
    """

    panels: tuple[Panel, ...]
    title: str | None
    fluid_name: str
    modic_present: tuple[int, ...]
    has_bme: bool
    key_panel: int
    key_rows: tuple[int, int] | None = None
    plane: str = "sagittal"
    sides: tuple[str, str] = ("A", "P")
    show_modic: bool = True
    contrasts: tuple[str, ...] = ("T1", "STIR")
    outlined: str = "vertebral body"

    def legend(self) -> list[dict[str, object]]:
        """Legend entries: ``label``, ``colour``, ``line`` (``"dashed"``, ``"solid"``, or None
        for a filled swatch), ``present`` (False: "(none)"); the bodies' (or bones') outline,
        a thin solid line, last."""
        entries: list[dict[str, object]] = [
            {
                "label": f"Modic {name}",
                "colour": MODIC_COLORS[value],
                "line": None,
                "present": value in self.modic_present,
            }
            for value, name in MODIC_NAMES.items()
            if self.show_modic
        ]
        entries.append(
            {
                "label": "BME",
                "colour": BME_COLOR,
                "line": "dashed",
                "present": self.has_bme,
            }
        )
        entries.append(
            {
                "label": f"{self.outlined} ({self.contrasts[0]} panels)",
                "colour": OUTLINE_COLOR,
                "line": "solid",
                "present": True,
            }
        )
        return entries

    def thumbnail(self, height_px: int = THUMBNAIL_HEIGHT_PX) -> NDArray[np.uint8]:
        """The key panel around its findings, scaled (nearest neighbour) to ``height_px`` rows.

        The crop is at least as tall as the panel is wide (:data:`THUMBNAIL_ASPECT` of it)
        and centred on the findings; the whole panel when there are none.
        """
        rgb = self.panels[self.key_panel].rgb
        rows, cols = rgb.shape[:2]
        if self.key_rows is not None:
            first, last = self.key_rows
            height = min(rows, max(last - first + 1, round(cols / THUMBNAIL_ASPECT)))
            top = int(np.clip((first + last + 1 - height) // 2, 0, rows - height))
            rgb = rgb[top : top + height]
            rows = height
        width = max(1, round(cols * height_px / rows))
        return rgb[_sample(rows, height_px)][:, _sample(cols, width)]

    def png(self) -> bytes:
        """All panels side by side, as PNG bytes (text is on the page, not in the image)."""
        height = max(panel.rgb.shape[0] for panel in self.panels)
        padded = [
            np.pad(p.rgb, ((0, height - p.rgb.shape[0]), (0, 2), (0, 0))) for p in self.panels
        ]
        return png_bytes(np.concatenate(padded, axis=1))

    def _repr_html_(self) -> str:
        """The montage as on the QC page (notebooks display it with its text)."""
        from bmetoolkit.report.html import render_montage

        return render_montage(self)


@dataclass(frozen=True)
class QCFigures:
    """What a QC page shows beside the tables: the montage and the per-level volumes."""

    montage: Montage
    level_rows: list[dict[str, object]]


@dataclass(frozen=True)
class _Canonical:
    """Arrays reoriented to the closest RAS axes: ``[x (R), y (A), z (S)]``."""

    arrays: dict[str, NDArray]
    spacing: NDArray[np.float64]  # mm along x, y, z
    x_mm: NDArray[np.float64]  # world R coordinate of each sagittal slice (at the grid centre)
    ornt: NDArray[np.float64]  # nibabel's orientation of the stored axes


def _canonical(volumes: Mapping[str, Volume], *, later: Sequence[str] = ()) -> _Canonical:
    """Reorient every volume (all on one grid) to the closest RAS axes without resampling.

    The volumes named in ``later`` are checked but not read: the caller reads the part it
    shows (:func:`_canonical_box`), so a resampled image is not resampled whole.
    """
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
        if name not in later
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
    return _Canonical(arrays=arrays, spacing=spacing, x_mm=x_mm, ornt=ornt)


def _canonical_box(volume: Volume, ornt: NDArray, box: tuple[slice, ...]) -> NDArray:
    """``volume`` reoriented as :func:`_canonical` does, with its values on ``box`` (of the
    canonical array) and 0 elsewhere: read there alone
    (:func:`~bmetoolkit.resample.values_at`), the same values as the whole array's.

    >>> import numpy as np
    >>> volume = Volume(np.arange(24.0).reshape(2, 3, 4), np.diag([-1.0, 1.0, 1.0, 1.0]))
    >>> ornt = np.array([[0, -1], [1, 1], [2, 1]])
    >>> _canonical_box(volume, ornt, (slice(None), slice(1, 2), slice(0, 2)))[:, 1, :2].tolist()
    [[16.0, 17.0], [4.0, 5.0]]
    """
    import nibabel as nib

    from bmetoolkit.resample import values_at

    canon_shape = [0, 0, 0]
    stored = []
    for axis, (canon_axis, flip) in enumerate(np.asarray(ornt)):
        n = volume.shape[axis]
        canon_shape[int(canon_axis)] = n
        start, stop, _ = box[int(canon_axis)].indices(n)
        stored.append(slice(n - stop, n - start) if flip < 0 else slice(start, stop))
    values = nib.orientations.apply_orientation(values_at(volume, tuple(stored)), ornt)
    out = np.zeros(canon_shape, values.dtype)
    out[tuple(slice(*part.indices(n)[:2]) for part, n in zip(box, canon_shape, strict=True))] = (
        values
    )
    return out


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


def _sample(n_in: int, n_out: int) -> NDArray[np.intp]:
    """Nearest-neighbour source index of each of ``n_out`` output pixels over ``n_in``."""
    return np.minimum(((np.arange(n_out) + 0.5) * n_in / n_out).astype(np.intp), n_in - 1)


def _shifted_all(mask: NDArray[np.bool_], combine: str) -> NDArray[np.bool_]:
    """Erosion (``"and"``) or dilation (``"or"``) of a 2-D mask by one pixel (4-neighbours)."""
    padded = np.pad(mask, 1, constant_values=combine == "and")
    neighbours = (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:])
    out = mask.copy()
    for neighbour in neighbours:
        out = (out & neighbour) if combine == "and" else (out | neighbour)
    return out


def _rings(mask: NDArray[np.bool_], inside: int, outside: int) -> tuple[NDArray, NDArray]:
    """The ``inside`` px wide outline of a mask, and the ``outside`` px wide band around it."""
    eroded, dilated = mask, mask
    for _ in range(inside):
        eroded = _shifted_all(eroded, "and")
    for _ in range(outside):
        dilated = _shifted_all(dilated, "or")
    return mask & ~eroded, dilated & ~mask


def _dashes(shape: tuple[int, int]) -> NDArray[np.bool_]:
    """A pattern that cuts any outline into dashes of :data:`DASH_PX`."""
    rows, cols = np.indices(shape)
    return (rows // DASH_PX + cols // DASH_PX) % 2 == 0


def _grey(image: NDArray, window: tuple[float, float]) -> NDArray[np.uint8]:
    """An intensity image windowed to 0-255 grey, as RGB (NaN shows black)."""
    low, high = window
    scaled = np.nan_to_num((np.asarray(image, np.float64) - low) / (high - low), nan=0.0)
    grey = np.round(np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


@dataclass(frozen=True)
class _Overlay:
    """The pixels an overlay paints on a slice, shared by its T1 and fluid panels.

    ``fills`` are the flat pixel indices of each Modic fill with its colour (blended);
    ``pixels`` and ``colours`` what is drawn over them: halos and outlines, in the order
    they are drawn resolved once per slice (the last drawn colour of each pixel), so a
    panel is painted with one assignment.
    """

    fills: tuple[tuple[NDArray[np.intp], tuple[int, int, int]], ...]
    pixels: NDArray[np.intp]
    colours: NDArray[np.uint8]


def _overlay_of(modic: NDArray, bme: NDArray[np.bool_]) -> _Overlay:
    """Modic fills and outlines with a dark halo; the dashed BME outline with a light halo."""
    fills, lines = [], []
    dark = np.zeros(modic.shape, bool)
    for value, colour in _RGB.items():
        inside = modic == value
        if inside.any():
            outline, halo = _rings(inside, OUTLINE_PX, HALO_PX)
            fills.append((np.flatnonzero(inside), colour))
            lines.append((outline, colour))
            dark |= halo & (modic == 0)
    light = np.zeros(modic.shape, bool)
    if bme.any():
        dashes = _dashes(bme.shape)
        outline, halo = _rings(bme, OUTLINE_PX, HALO_PX)
        light = halo & dashes
        lines.append((outline & dashes, _BME_RGB))
    drawn = np.zeros(modic.shape, bool)
    colours = np.zeros((*modic.shape, 3), np.uint8)
    for pixels, colour in ((dark, (0, 0, 0)), (light, (255, 255, 255)), *lines):
        drawn |= pixels
        colours[pixels] = colour
    index = np.flatnonzero(drawn)
    return _Overlay(tuple(fills), index, colours.reshape(-1, 3)[index])


def _edges(ids: NDArray) -> NDArray[np.bool_]:
    """Pixels of a body (or bone) whose 4-neighbour is another body or none: 1 px outlines
    that also part two bodies that touch."""
    padded = np.pad(ids, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    edge = np.zeros(ids.shape, bool)
    for neighbour in (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]):
        edge |= neighbour != centre
    return edge & (ids > 0)


def _paint(
    rgb: NDArray[np.uint8], overlay: _Overlay, edges: NDArray[np.bool_] | None = None
) -> NDArray[np.uint8]:
    """An RGB image with the overlay drawn on it (a new array), over the bodies' (or bones')
    outlines ``edges`` when given."""
    out = rgb.copy()
    if edges is not None:
        out[edges] = _OUTLINE_RGB
    flat = out.reshape(-1, 3)
    for inside, colour in overlay.fills:
        blended = (1 - FILL_ALPHA) * flat[inside] + FILL_ALPHA * np.asarray(colour, np.float32)
        flat[inside] = np.round(blended).astype(np.uint8)
    flat[overlay.pixels] = overlay.colours
    return out


def _level_marks(
    bodies: NDArray, names: Mapping[int, str], spacing_yz: NDArray
) -> tuple[LevelMark, ...]:
    """Each level name anterior (left) of its body, at the body's mean height."""
    rows_total, cols_total = bodies.shape
    marks = []
    for body_id in np.unique(bodies[bodies > 0]):
        rows, cols = np.nonzero(bodies == body_id)
        if rows.size < 10:
            continue
        room = cols.min() * spacing_yz[0] > LABEL_ROOM_MM
        marks.append(
            LevelMark(
                name=names.get(int(body_id), f"id {int(body_id)}"),
                x_pct=round(100.0 * cols.min() / cols_total, 2) if room else 1.0,
                y_pct=round(100.0 * (rows.mean() + 0.5) / rows_total, 2),
                align="right" if room else "left",
            )
        )
    return tuple(marks)


def _panel_size(shape: tuple[int, int], spacing_yz: NDArray, width_px: int) -> tuple[int, int]:
    """Rows and columns of a panel ``width_px`` wide showing voxels at their size in mm."""
    rows, cols = shape
    mm_per_px = cols * float(spacing_yz[0]) / width_px
    return max(1, round(rows * float(spacing_yz[1]) / mm_per_px)), width_px


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
    image_name: str = "T1",
    title: str | None = None,
    panel_width_px: int = PANEL_WIDTH_PX,
    show_modic: bool = True,
) -> Montage:
    """Sagittal slices through the spine, T1 and T2/STIR side by side, with the findings.

    Parameters
    ----------
    t1 : Volume
        The T1 image; its grid is the grid of every other input.
    fluid : Volume
        The fluid-sensitive image (STIR, or T2) on the T1 grid.
    bme_mask : Volume
        Label volume, nonzero where bone marrow edema was found (a dashed outline).
    modic_map : Volume
        Label volume: 0 none, 1/2/3 Modic type I/II/III (filled, one colour per type).
    vertebrae : Volume
        Label volume of vertebral bodies (e.g. VerSe ids); each body is named on the panels.
    level_names : mapping of int to str
        Display name of each body id (``{23: "L4"}``); ids missing here are shown as
        ``"id N"``.
    n_slices : int
        Number of sagittal slices (pairs of panels); the central slices through the
        vertebral bodies, and the slice with most findings (see :func:`select_slices`).
    fluid_name : str
        Name of the fluid-sensitive contrast in the panel captions (``"STIR"`` or ``"T2"``).
    image_name : str
        Caption of ``t1``. When it is ``fluid_name`` (no T1: ``t1`` is the fluid image
        again), each slice shows the fluid image alone.
    title : str, optional
        Title shown above the montage (e.g. the subject id).
    panel_width_px : int
        Width of each panel in pixels: the panels are drawn at the size they are shown.
    show_modic : bool
        Whether the legend lists the Modic types; False when they were not assessed (no
        T1, or a T1 that failed the contrast check), so that it does not read "(none)".

    Returns
    -------
    Montage
        Panels T1, fluid, T1, fluid... from left to right in the body (fluid, fluid...
        without a T1).

    Raises
    ------
    GridMismatchError
        An input is not on the T1 grid.
    """
    shown = _shown(image_name, fluid_name)
    canon = _canonical(
        {"image": t1, "fluid": fluid, "bme": bme_mask, "modic": modic_map, "bodies": vertebrae},
        later=("fluid",) if len(shown) == 2 else ("fluid", "image"),  # the fluid image alone
    )
    arrays = canon.arrays
    findings = (arrays["bme"] > 0) | (arrays["modic"] > 0)
    slices = select_slices(arrays["bodies"], findings, n_slices)
    crop_y, crop_z = _crop_box(arrays["bodies"], canon.spacing)
    # the fluid image is shown (and windowed) on the crop alone: read there alone
    arrays["fluid"] = _canonical_box(fluid, canon.ornt, (slice(None), crop_y, crop_z))
    spacing_yz = canon.spacing[1:]
    windows = {key: _window(arrays[key][:, crop_y, crop_z]) for key, _ in shown}
    shape = _display(arrays["bodies"][slices[0], crop_y, crop_z]).shape
    rows, cols = _panel_size(shape, spacing_yz, panel_width_px)
    pick = np.ix_(_sample(shape[0], rows), _sample(shape[1], cols))
    panels, finding_rows = [], []
    for k in slices:
        modic = _display(arrays["modic"][k, crop_y, crop_z])[pick]
        bme = _display(arrays["bme"][k, crop_y, crop_z] > 0)[pick]
        overlay = _overlay_of(modic, bme)
        finding_rows.append(np.flatnonzero(np.any((modic > 0) | bme, axis=1)))
        bodies = _display(arrays["bodies"][k, crop_y, crop_z])
        marks = _level_marks(bodies, level_names, spacing_yz)
        side = "R" if canon.x_mm[k] >= 0 else "L"
        where = f"x = {side} {abs(canon.x_mm[k]):.1f} mm"
        for n, (key, label) in enumerate(shown):
            grey = _grey(_display(arrays[key][k, crop_y, crop_z])[pick], windows[key])
            edges = _edges(bodies[pick]) if n == 0 else None
            panels.append(Panel(label, where, _paint(grey, overlay, edges), marks))
    per_slice = np.count_nonzero(findings[slices].reshape(len(slices), -1), axis=1)
    present = tuple(v for v in sorted(MODIC_COLORS) if np.any(arrays["modic"] == v))
    return Montage(
        panels=tuple(panels),
        title=title,
        fluid_name=fluid_name,
        modic_present=present,
        has_bme=bool(np.any(arrays["bme"] > 0)),
        **_key_panel(per_slice, finding_rows, len(shown)),
        contrasts=tuple(label for _, label in shown),
        show_modic=show_modic,
    )


def level_volumes(
    bme_mask: Volume,
    modic_map: Volume,
    vertebrae: Volume,
    level_names: Mapping[int, str],
) -> list[dict[str, object]]:
    """Edema and Modic volumes (mL) inside each vertebral body, cranial to caudal.

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
    ml_per_voxel = bme_mask.grid.voxel_volume_mm3 / MM3_PER_ML
    # voxels of each body per canonical S-I slice: sizes, and mean heights as exact sums
    canon_bodies = canon.arrays["bodies"]
    n = int(canon_bodies.max(initial=0)) + 1
    per_slice = np.stack(
        [
            np.bincount(canon_bodies[:, :, k].astype(np.intp).ravel(), minlength=n)
            for k in range(canon_bodies.shape[2])
        ]
    )
    size = per_slice.sum(axis=0)
    height = (np.arange(per_slice.shape[0]) @ per_slice) / np.maximum(size, 1)
    # voxels of each finding per body id (id 0: outside every body), one pass each; counts
    # do not depend on the voxel order, so the stored arrays serve
    bodies = np.asarray(vertebrae.data)
    modic = np.asarray(modic_map.data)
    found = {"bme_ml": _counts(bodies[np.asarray(bme_mask.data) > 0], n)}
    for value, roman in MODIC_NAMES.items():
        found[f"modic_{roman}_ml"] = _counts(bodies[modic == value], n)

    def row(name: str, body_id: int | None, index: int) -> dict[str, object]:
        volumes = {
            key: round(float(counts[index] * ml_per_voxel), ML_DECIMALS)
            for key, counts in found.items()
        }
        return {"level": name, "id": body_id, **volumes}

    ids = sorted((int(i) for i in np.flatnonzero(size[1:]) + 1), key=lambda i: -height[i])
    rows = [row(level_names.get(i, f"id {i}"), i, i) for i in ids]
    outside = row("outside bodies", None, 0)
    if any(outside[key] > 0 for key in found):
        rows.append(outside)
    return rows


def _counts(ids: NDArray, n: int) -> NDArray[np.intp]:
    """How many of ``ids`` (non-negative integers below ``n``) hold each value 0..n-1."""
    return np.bincount(ids.astype(np.intp, copy=False), minlength=n)


def qc_figures(
    t1: Volume,
    fluid: Volume,
    bme_mask: Volume,
    modic_map: Volume,
    vertebrae: Volume,
    level_names: Mapping[int, str],
    *,
    fluid_name: str = "STIR",
    image_name: str = "T1",
    subject: str | None = None,
    n_slices: int = 3,
    show_modic: bool = True,
) -> QCFigures:
    """The QC figures of one subject, ready for the HTML page.

    Parameters are those of :func:`sagittal_montage` and :func:`level_volumes`; ``subject``
    titles the montage.

    Returns
    -------
    QCFigures
        The montage and the per-level volumes; pass it to
        :func:`bmetoolkit.report.html.write_subject_page` as ``figures``.
    """
    labels = (bme_mask, modic_map, vertebrae, level_names)
    montage, level_rows = map_threads(  # side by side, in threads
        lambda draw: draw(),
        [
            lambda: sagittal_montage(
                t1,
                fluid,
                *labels,
                n_slices=n_slices,
                fluid_name=fluid_name,
                image_name=image_name,
                title=subject,
                show_modic=show_modic,
            ),
            lambda: level_volumes(*labels),
        ],
    )
    return QCFigures(montage=montage, level_rows=level_rows)


#: Letters of the anatomical directions, and their opposites.
_OPPOSITE = {"R": "L", "L": "R", "A": "P", "P": "A", "S": "I", "I": "S"}


def _display_axes(axcodes: Sequence[str]) -> tuple[int, bool, int, bool, str]:
    """How to show a slice of the first two grid axes: (row axis, flip rows, column axis,
    flip columns, plane name). Superior (else anterior) up; anterior (sagittal) or the
    patient's right (coronal, axial: radiological view) on the left."""
    in_plane = list(axcodes[:2])
    normal = axcodes[2]
    plane = {"R": "sagittal", "L": "sagittal", "A": "coronal", "P": "coronal"}.get(normal, "axial")
    up = "S" if plane != "axial" else "A"
    row = next((a for a in (0, 1) if in_plane[a] in (up, _OPPOSITE[up])), 0)
    column = 1 - row
    left = "A" if plane == "sagittal" else "R"
    return row, in_plane[row] == up, column, in_plane[column] != left, plane


def acquisition_montage(
    image: Volume,
    fluid: Volume,
    bme_mask: Volume,
    bones: Volume,
    bone_names: Mapping[int, str],
    *,
    image_name: str = "T1",
    fluid_name: str = "STIR",
    n_slices: int = 3,
    title: str | None = None,
    panel_width_px: int = PANEL_WIDTH_PX,
) -> Montage:
    """Slices of the study grid in its own acquisition plane, with the bones named and the
    edema outlined (an analysis with bone masks: any joint, any plane).

    Parameters
    ----------
    image : Volume
        The T1 (or, without a T1, the fluid image again); its grid is every input's grid.
    fluid : Volume
        The fluid-sensitive image on the same grid.
    bme_mask, bones : Volume
        Edema mask and bone ids on the same grid.
    bone_names : mapping of int to str
        Name of each bone id, written on the panels at the bone's centre.
    image_name, fluid_name : str
        Captions of the two contrasts; when they are the same (no T1), each slice shows the
        fluid image alone.
    n_slices : int
        Slices shown: the central ones through the bones, and the one with most edema.
    title : str, optional
        Title above the montage.
    panel_width_px : int
        Width of each panel in pixels.

    Returns
    -------
    Montage
        Panels image, fluid, image, fluid... in slice order (fluid alone without a T1);
        ``plane`` names the plane and ``sides`` the directions at the panels' left and right
        edges.
    """
    grid = image.grid
    for name, volume in (("fluid", fluid), ("bme", bme_mask), ("bones", bones)):
        if not volume.grid.same_as(grid):
            raise GridMismatchError(
                f"{name} is not on the grid of the first image",
                path=[p for p in (image.source, volume.source) if p],
                hint="put every input on the study grid (bmetoolkit.Study.from_images)",
            )
    row_axis, flip_rows, column_axis, flip_columns, plane = _display_axes(grid.axcodes)
    ids = np.asarray(bones.data)
    bme = np.asarray(bme_mask.data) > 0
    # Slices along the third grid axis, chosen as for the spine (bone area, then edema).
    slices = select_slices(np.moveaxis(ids, 2, 0), np.moveaxis(bme, 2, 0), n_slices)
    column_then_row_mm = grid.spacing[[column_axis, row_axis]]
    plane_bones = np.any(ids > 0, axis=2)
    box = [slice(None), slice(None)]
    for axis in (0, 1):
        hits = np.flatnonzero(np.any(plane_bones, axis=1 - axis))
        if hits.size:
            margin = int(np.ceil(CROP_MARGIN_MM / grid.spacing[axis]))
            box[axis] = slice(max(0, hits[0] - margin), min(ids.shape[axis], hits[-1] + margin + 1))

    def view(array: NDArray, k: int) -> NDArray:
        plane2d = np.asarray(array)[box[0], box[1], k]
        if row_axis == 1:
            plane2d = plane2d.T
        return plane2d[:: -1 if flip_rows else 1, :: -1 if flip_columns else 1]

    volumes = {"image": image, "fluid": fluid}
    shown = _shown(image_name, fluid_name)
    windows = {key: _window(np.asarray(volumes[key].data)[box[0], box[1], :]) for key, _ in shown}
    shape = view(ids, slices[0]).shape
    rows, cols = _panel_size(shape, column_then_row_mm, panel_width_px)
    pick = np.ix_(_sample(shape[0], rows), _sample(shape[1], cols))
    panels, finding_rows = [], []
    for k in slices:
        found = view(bme, k)[pick]
        overlay = _overlay_of(np.zeros(found.shape, np.uint8), found)
        finding_rows.append(np.flatnonzero(np.any(found, axis=1)))
        bone_ids = view(ids, k)[pick]
        marks = _bone_marks(bone_ids, bone_names)
        where = f"slice {k + 1} of {grid.shape[2]}"
        for n, (key, label) in enumerate(shown):
            grey = _grey(view(volumes[key].data, k)[pick], windows[key])
            edges = _edges(bone_ids) if n == 0 else None
            panels.append(Panel(label, where, _paint(grey, overlay, edges), marks))
    per_slice = np.count_nonzero(bme[:, :, slices].reshape(-1, len(slices)), axis=0)
    left = "A" if plane == "sagittal" else "R"
    return Montage(
        panels=tuple(panels),
        title=title,
        fluid_name=fluid_name,
        modic_present=(),
        has_bme=bool(bme.any()),
        **_key_panel(per_slice, finding_rows, len(shown)),
        plane=plane,
        sides=(left, _OPPOSITE[left]),
        show_modic=False,
        contrasts=tuple(label for _, label in shown),
        outlined="bone",
    )


def _shown(image_name: str, fluid_name: str) -> tuple[tuple[str, str], ...]:
    """The images each slice shows, as (key, caption): the base image and the fluid image,
    or the fluid image alone when the base image is the fluid image (no T1)."""
    if image_name == fluid_name:
        return (("fluid", fluid_name),)
    return (("image", image_name), ("fluid", fluid_name))


def _key_panel(
    per_slice: NDArray, finding_rows: Sequence[NDArray], per_slice_panels: int
) -> dict[str, Any]:
    """The thumbnail's panel (the fluid panel of the slice with most findings, the middle
    slice without any) and the rows of its findings (first, last; None without)."""
    key = int(np.argmax(per_slice)) if per_slice.max() > 0 else len(per_slice) // 2
    rows = finding_rows[key]
    return {
        "key_panel": per_slice_panels * (key + 1) - 1,
        "key_rows": (int(rows[0]), int(rows[-1])) if rows.size else None,
    }


def _bone_marks(ids: NDArray, names: Mapping[int, str]) -> tuple[LevelMark, ...]:
    """Each bone's name at its centre on a panel."""
    rows_total, cols_total = ids.shape
    marks = []
    for bone_id in np.unique(ids[ids > 0]):
        rows, cols = np.nonzero(ids == bone_id)
        if rows.size < 10:
            continue
        marks.append(
            LevelMark(
                name=names.get(int(bone_id), f"bone {int(bone_id)}"),
                x_pct=round(100.0 * (cols.mean() + 0.5) / cols_total, 2),
                y_pct=round(100.0 * (rows.mean() + 0.5) / rows_total, 2),
                align="left",
            )
        )
    return tuple(marks)


def bone_figures(
    image: Volume,
    fluid: Volume,
    bme_mask: Volume,
    bones: Volume,
    bone_rows: Sequence[Mapping[str, object]],
    *,
    image_name: str = "T1",
    fluid_name: str = "STIR",
    subject: str | None = None,
    n_slices: int = 3,
) -> QCFigures:
    """The QC figures of an analysis with bone masks: the acquisition-plane montage and one
    row per bone (edema mL and % of its marrow, lesions) for the per-bone chart."""
    names = {int(row["label"]): str(row["bone"]) for row in bone_rows}
    montage = acquisition_montage(
        image, fluid, bme_mask, bones, names, image_name=image_name, fluid_name=fluid_name,
        n_slices=n_slices, title=subject,
    )  # fmt: skip
    rows = [
        {
            "bone": row["bone"],
            "bme_ml": row["bme_ml"],
            "bme_pct": row["bme_pct"],
            "n_lesions": row["n_lesions"],
            "marrow_ml": row["marrow_ml"],
        }
        for row in bone_rows
    ]
    return QCFigures(montage=montage, level_rows=rows)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(rgb: NDArray[np.uint8]) -> bytes:
    """Encode an 8-bit RGB (rows, columns, 3) or grey (rows, columns) image as PNG.

    Each row is stored as its difference to the row above (PNG filter "Up"), which
    compresses smooth images well; no time stamp, so the same image gives the same bytes.

    Examples
    --------
    >>> data = png_bytes(np.zeros((2, 3, 3), np.uint8))
    >>> data[:8] == b"\\x89PNG\\r\\n\\x1a\\n", struct.unpack(">II", data[16:24])
    (True, (3, 2))
    """
    image = np.asarray(rgb)
    if (
        image.dtype != np.uint8
        or image.ndim not in (2, 3)
        or (image.ndim == 3 and image.shape[2] != 3)
    ):
        raise ValueError(
            f"expected a uint8 (rows, columns[, 3]) image, got {image.dtype} {image.shape}"
        )
    rows, cols = image.shape[:2]
    flat = image.reshape(rows, -1)
    filtered = np.empty((rows, flat.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2  # filter type "Up"
    filtered[:, 1:] = np.diff(flat, axis=0, prepend=np.zeros((1, flat.shape[1]), np.uint8))
    colour_type = 2 if image.ndim == 3 else 0
    header = struct.pack(">IIBBBBB", cols, rows, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(filtered.tobytes(), PNG_COMPRESSION))
        + _chunk(b"IEND", b"")
    )


def write_png(rgb: NDArray[np.uint8], path: str | os.PathLike) -> Path:
    """Write an image as PNG to ``path`` atomically (see :func:`png_bytes`); return the path.

    Examples
    --------
    >>> import tempfile
    >>> out = write_png(np.zeros((4, 4, 3), np.uint8), Path(tempfile.mkdtemp()) / "qc.png")
    >>> out.read_bytes()[:4]
    b'\\x89PNG'
    """
    target = Path(path)
    data = png_bytes(rgb)
    with atomic_write(target) as temporary:
        temporary.write_bytes(data)
    return target
