"""How far along SI the endplate fill looks for the endplate on a T1 with bright marrow.

:func:`~bmetoolkit.spine.autoseg.bodies.fill_to_endplate` extends each body, column by
column, across lesion signal up to the first cortex-dark voxel within ``endplate_fill_mm``
(2.5 mm) of its edge voxel, centre to centre: where a lesion touches its endplate, its last
voxels before the disc are not marrow and the cortex beyond them is not reached by the
cortex growth, which only follows dark voxels. On pixels of 0.5-1.25 mm along SI that reach
is 2-5 voxels, so at least one voxel of lesion rim is crossed. On coarser pixels (the bundled
sample study: 1.6 mm) it is a single voxel: the fill can then only add a dark voxel right
next to the body, which the cortex growth adds anyway, and a lesion touching its endplate
keeps its rim and the endplate out of the body whatever its size. So the reach is at least
``min_voxels`` (2) voxels: one voxel of rim and the cortex beyond it. On pixels up to 1.25 mm
nothing changes; at 1.6 mm the reach is 3.2 mm (one voxel of non-dark tissue crossed, as at
1.25 mm), and a disc of normal height (8-12 mm, five or more such voxels) still keeps the
next body's endplate out of reach.
"""

from __future__ import annotations

from numpy.typing import NDArray

__all__ = ["endplate_reach_mm"]


def endplate_reach_mm(spacing: NDArray, fill_mm: float, min_voxels: int) -> float:
    """The reach (mm, voxel centre to voxel centre) to give ``fill_to_endplate``.

    Parameters
    ----------
    spacing : ndarray
        Voxel size (mm) along AP, SI, LR.
    fill_mm : float
        ``endplate_fill_mm``: 0 turns the fill off (0 is returned).
    min_voxels : int
        The reach is at least this many voxels along SI (``endplate_fill_min_voxels``).

    Examples
    --------
    >>> import numpy as np
    >>> endplate_reach_mm(np.array([1.4, 1.6, 4.4]), 2.5, 2)  # the sample study
    3.2
    >>> endplate_reach_mm(np.array([1.0, 1.2, 4.0]), 2.5, 2)  # two voxels already
    2.5
    >>> int(2.5 // 1.6), int(3.2 // 1.6)  # the steps fill_to_endplate takes
    (1, 2)
    """
    if fill_mm <= 0:
        return 0.0
    return round(max(fill_mm, int(min_voxels) * float(spacing[1])), 6)
