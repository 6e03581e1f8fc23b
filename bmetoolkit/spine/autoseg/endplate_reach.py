"""How far along SI the endplate fill looks for the endplate on a T1 with bright marrow.

:func:`~bmetoolkit.spine.autoseg.bodies.fill_to_endplate` extends each body, column by
column, across lesion signal up to the first cortex-dark voxel within ``endplate_fill_mm``
(2.5 mm) of its edge voxel, centre to centre: where a lesion touches its endplate, its last
voxels before the disc are not marrow and the cortex beyond them is not reached by the
cortex growth, which only follows dark voxels. Between the body's edge and the cortex lie
two voxels that are neither marrow nor cortex-dark: the lesion's rim, which the lesion fill
leaves out (``fill_rim_mm``, 1 mm: one voxel on pixels of about 1 mm), and the voxel that
straddles the lesion and a thin cortex (0.5-2.5 mm; a voxel holding only part of it is not
cortex-dark). So the reach is at least ``min_voxels`` (3) voxels: two voxels crossed and
the cortex beyond them. On pixels up to 0.83 mm along SI 2.5 mm is three voxels or more
and nothing changes; on pixels of 0.83-1.25 mm it was two voxels, which crossed one voxel
only and left the rest of a bitten endplate's lesion outside the body (tuning seed 52's
L1, 1.06 mm pixels: two voxels of lesion at 2.0-2.6 times the marrow on the STIR before the
cortex); on the bundled sample study (1.6 mm) it was two (3.2 mm, the minimum of two voxels
since session 21; 2.5 mm alone is one voxel there). The fill stops at the first cortex-dark
voxel outside every body, which is the body's own endplate wherever that is dark; where it
is not, the next body's endplate must stay out of reach across the disc, so the reach the
minimum adds is at most :data:`MAX_REACH_MM` (5 mm: half a normal lumbar disc of 8-12 mm; a
degenerated disc of 4-6 mm next to a Modic change can be crossed only where the body's own
endplate shows no dark voxel). Three voxels fit under it on rows up to 1.66 mm apart.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_REACH_MM", "endplate_reach_mm", "reach_steps"]

#: The longest reach (mm) ``min_voxels`` may give the fill (a longer ``endplate_fill_mm``
#: is kept as given).
MAX_REACH_MM = 5.0


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
    >>> endplate_reach_mm(np.array([1.4, 1.6, 4.4]), 2.5, 3)  # the sample study
    4.8
    >>> endplate_reach_mm(np.array([1.0, 1.06, 4.0]), 2.5, 3)  # tuning seed 52
    3.18
    >>> endplate_reach_mm(np.array([0.8, 0.8, 4.0]), 2.5, 3)  # three voxels already
    2.5
    >>> endplate_reach_mm(np.array([2.0, 2.0, 4.0]), 2.5, 3)  # at most MAX_REACH_MM
    5.0
    >>> reach_steps(2.5, 1.06), reach_steps(3.18, 1.06), reach_steps(4.8, 1.6)
    (2, 3, 3)
    """
    if fill_mm <= 0:
        return 0.0
    longer = min(int(min_voxels) * float(spacing[1]), MAX_REACH_MM)
    return round(max(fill_mm, longer), 6)


def reach_steps(reach_mm: float, si_mm: float) -> int:
    """The voxels along SI a reach of ``reach_mm`` spans on rows ``si_mm`` apart (centre to
    centre, at least one): the steps :func:`~bmetoolkit.spine.autoseg.bodies.fill_to_endplate`
    takes."""
    return max(1, int(np.floor(reach_mm / float(si_mm) + 1e-6)))
