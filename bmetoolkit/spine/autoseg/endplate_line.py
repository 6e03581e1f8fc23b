"""Bodies extended up to the endplate line of their neighbouring columns.

Where a lesion (Modic I/III or edema: dark on T1) reaches its endplate, the endplate's
cortex is often not dark in the lesion's columns (replaced, or averaged with the lesion over
a coarse pixel), and the lesion's last voxels before the disc read like the disc on the T1.
Neither the marrow mask nor the endplate fill (:func:`~bmetoolkit.spine.autoseg.bodies.
fill_to_endplate`, which needs a dark voxel) then reaches the endplate there, and the body
stops short by the lesion's rim. The endplate is a smooth surface: in the columns on either
side of the lesion the body does end at dark cortex, and the surface between them runs from
one to the other. So in each sagittal slice, for each body and each of its two endplates,
a column whose edge voxel is not cortex-dark and that lies between two columns whose edge
voxel is (at most ``max_gap_mm`` apart along AP) is extended along SI up to the line between
those two edges, rounded towards the body, by at most ``max_mm``, through voxels of no other
body. Nothing is extrapolated beyond the last dark edge (a body's rounded corners stay as
they are), and a column already reaching the line is left alone, so a concave endplate,
whose centre lies deeper than the line between its rims by less than a voxel over a lesion's
width, is not filled with disc.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.spine.autoseg.bodies import box_around

__all__ = ["extend_to_endplate_line"]


def extend_to_endplate_line(
    bodies: NDArray[np.int32],
    dark: NDArray[np.bool_],
    spacing: NDArray,
    max_mm: float,
    max_gap_mm: float,
) -> NDArray[np.int32]:
    """Each body extended along SI up to the line of its neighbouring columns' endplate.

    Parameters
    ----------
    bodies : ndarray of int32
        Labelled bodies (AP, SI, LR).
    dark : ndarray of bool
        Cortex-dark voxels (:func:`~bmetoolkit.spine.autoseg.bodies.cortex_mask`).
    spacing : ndarray
        Voxel size (mm) along AP, SI, LR.
    max_mm : float
        Longest extension (mm) of one column; 0 turns this off.
    max_gap_mm : float
        Columns whose edge is cortex-dark further apart than this (mm, along AP) are not
        joined by a line.

    Returns
    -------
    ndarray of int32
        The bodies, extended.

    Examples
    --------
    A body with a flat superior endplate (dark) bitten by a lesion in columns 3-5:

    >>> import numpy as np
    >>> bodies = np.zeros((9, 12, 1), np.int32)
    >>> bodies[1:8, 2:9] = 1
    >>> dark = np.zeros(bodies.shape, bool)
    >>> dark[1:8, 8] = dark[1:8, 2] = True
    >>> bodies[3:6, 7:9] = 0  # the lesion's rim and the endplate, left out
    >>> dark[3:6, 8] = False
    >>> out = extend_to_endplate_line(bodies, dark, np.array([1.5, 1.5, 4.0]), 4.0, 15.0)
    >>> out[:, :, 0].T[9::-1].tolist()[1:4]
    [[0, 1, 1, 1, 1, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1, 1, 1, 0]]
    """
    steps = int(np.floor(max_mm / float(spacing[1]) + 1e-6))
    if steps < 1 or int(bodies.max()) == 0:
        return bodies
    box = box_around(bodies > 0, (0, steps, 0))
    if box is None:
        return bodies
    inner, inner_dark = bodies[box], dark[box]
    out = inner.copy()
    max_gap = max_gap_mm / float(spacing[0])
    for label in (int(v) for v in np.unique(inner[inner > 0])):
        mask = inner == label
        for z in np.flatnonzero(mask.any(axis=(0, 1))):
            section = mask[:, :, z]
            for direction in (1, -1):
                _extend_section(
                    out[:, :, z], section, inner_dark[:, :, z], label, direction, steps, max_gap
                )
    result = bodies.copy()
    result[box] = out
    return result


def _extend_section(
    out: NDArray[np.int32],
    section: NDArray[np.bool_],
    dark: NDArray[np.bool_],
    label: int,
    direction: int,
    steps: int,
    max_gap: float,
) -> None:
    """:func:`extend_to_endplate_line` on one body's sagittal section, one endplate
    (``direction`` +1: towards higher SI rows), ``out`` set in place."""
    columns = np.flatnonzero(section.any(axis=1))
    if columns.size < 3:
        return
    rows = section[columns]
    n = rows.shape[1]
    if direction > 0:
        edge = n - 1 - np.argmax(rows[:, ::-1], axis=1)
    else:
        edge = np.argmax(rows, axis=1)
    anchored = dark[columns, edge]
    anchors = np.flatnonzero(anchored)
    if anchors.size < 2:
        return
    for i in np.flatnonzero(~anchored):
        right = np.searchsorted(anchors, i)
        if right == 0 or right == anchors.size:
            continue  # not between two dark edges
        left_i, right_i = anchors[right - 1], anchors[right]
        c_left, c_right = columns[left_i], columns[right_i]
        if c_right - c_left > max_gap:
            continue
        t = (columns[i] - c_left) / (c_right - c_left)
        line = edge[left_i] + t * (edge[right_i] - edge[left_i])
        target = int(np.floor(line + 1e-6)) if direction > 0 else int(np.ceil(line - 1e-6))
        reach = min((target - edge[i]) * direction, steps)
        column = columns[i]
        for k in range(1, reach + 1):
            row = edge[i] + direction * k
            if row < 0 or row >= n or out[column, row] not in (0, label):
                break
            out[column, row] = label
            if dark[column, row]:
                break
