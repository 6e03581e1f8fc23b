"""How far along SI the endplate fill looks for the endplate on a T1 with bright marrow.

:func:`~bmetoolkit.spine.autoseg.bodies.fill_to_endplate` extends each body, column by
column, across lesion signal up to the first cortex-dark voxel within its reach, counted
from the centre of the body's edge voxel to the dark voxel's centre. On pixels of 1-2 mm
along SI (the bundled sample study: 1.6 mm) a reach of 2.5 mm is then a single voxel, so a
lesion voxel and the endplate cortex right beyond it (1 voxel of lesion between the body and
the cortex, 1.6 mm) are out of reach, and a lesion touching its endplate leaves its rim and
the endplate out of the body. Counted from the body's surface (the far side of its edge
voxel) to the near side of the dark voxel, the reach is one voxel longer whatever the pixel:
the cortex is taken where at most ``endplate_fill_mm`` of non-dark tissue lies between the
body and it. A disc of normal height (8-12 mm) still keeps the next body's endplate out of
reach.
"""

from __future__ import annotations

from numpy.typing import NDArray

__all__ = ["endplate_reach_mm"]


def endplate_reach_mm(spacing: NDArray, fill_mm: float, from_surface: bool) -> float:
    """The reach (mm, voxel centre to voxel centre) to give ``fill_to_endplate``.

    Parameters
    ----------
    spacing : ndarray
        Voxel size (mm) along AP, SI, LR.
    fill_mm : float
        ``endplate_fill_mm``: the non-dark tissue (mm) the fill may cross.
    from_surface : bool
        Count ``fill_mm`` from the body's surface to the dark voxel's near side (one
        voxel more than from centre to centre); False gives ``fill_mm`` unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> spacing = np.array([1.4, 1.6, 4.4])
    >>> endplate_reach_mm(spacing, 2.5, False), endplate_reach_mm(spacing, 2.5, True)
    (2.5, 4.1)
    >>> int(2.5 // 1.6), int(4.1 // 1.6)  # the steps fill_to_endplate takes
    (1, 2)
    """
    if not from_surface or fill_mm <= 0:
        return fill_mm
    return round(fill_mm + float(spacing[1]), 6)
