"""Where a lesion in a bone ends: at half its own contrast, measured on the bone's own signal.

:func:`bmetoolkit.segment.half_maximum` places each region's edge at half its contrast
above normal marrow, the contrast being its peak (95th percentile). In a bone the region may
reach into the partial-volume band (:func:`~bmetoolkit.bones.geometry.partial_volume_band`:
the outermost thick slice, a surface along the slices), where joint fluid mixed into the
marrow is 3-5 x normal marrow: a lesion of 1.8 x joined there to such a rim takes the rim's
peak, its half maximum rises above the lesion itself, and the lesion is cut away while the
rim stays. So here the peak is measured on the region's voxels outside the band (the signal
that is the bone's own); the band's voxels still count where they reach that edge.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.segment import Regions, half_maximum

__all__ = ["half_maximum_outside"]


def half_maximum_outside(
    mask: NDArray[np.bool_],
    ratio: NDArray[np.floating],
    fraction: float,
    band: NDArray[np.bool_],
    *,
    regions: Regions | None = None,
) -> NDArray[np.bool_]:
    """Each region of ``mask`` cut at ``fraction`` of its contrast outside ``band``
    (``regions``: the mask's own, when labelled before).

    The edge is ``1 + fraction * (peak - 1)``, ``peak`` the 95th percentile of the region's
    ratios outside ``band`` (of all its ratios when it lies wholly in the band).

    >>> mask = np.ones((1, 1, 7), bool)
    >>> ratio = np.array([[[1.3, 1.8, 1.8, 1.8, 1.6, 4.0, 4.0]]])
    >>> band = np.array([[[0, 0, 0, 0, 0, 1, 1]]], bool)  # joint fluid mixed in at the edge
    >>> half_maximum_outside(mask, ratio, 0.5, band).astype(int).tolist()
    [[[0, 1, 1, 1, 1, 1, 1]]]
    """
    return half_maximum(mask, ratio, fraction, peak_outside=band, regions=regions)
