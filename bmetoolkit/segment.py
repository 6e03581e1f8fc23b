"""Bone marrow edema: marrow that is dark on T1 and bright on STIR (or T2).

Inputs are **ratio images** (intensity over the subject's normal-marrow reference, see
:mod:`bmetoolkit.reference`) that are NaN outside the marrow. A voxel is edema when it is
T1-hypointense *and* fluid-hyperintense; STIR decides "fluid-bright" when the study has one
(fat-suppressed images separate edema from fat far better than plain T2), T2 otherwise.

The mask is cleaned by **hysteresis**: the loose thresholds
(``t1_hypo_ratio``, ``stir_hyper_ratio`` / ``t2_hyper_ratio``) define candidate regions, and
a region is kept only when it holds a voxel passing the strict ``*_seed_ratio`` thresholds
too. Regions smaller than ``min_lesion_mm3`` (physical volume, not voxels) are dropped.
Lesions are the 3D connected components (face neighbours) of the mask, never joined across
two vertebral bodies.

Examples
--------
>>> import numpy as np
>>> from bmetoolkit.params import Parameters
>>> t1 = np.ones((20, 20, 5), np.float32)
>>> stir = np.ones((20, 20, 5), np.float32)
>>> t1[5:12, 5:12, 1:4], stir[5:12, 5:12, 1:4] = 0.5, 3.0  # a 147 mm³ edema
>>> t1[15, 15, 2], stir[15, 15, 2] = 0.5, 3.0  # one noisy voxel
>>> mask = segment_bme(t1, stir, fluid="stir", voxel_mm3=1.0, params=Parameters())
>>> int(mask.sum())
147
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.params import Parameters

__all__ = ["FACE_NEIGHBOURS", "hysteresis", "label_lesions", "remove_small", "segment_bme"]

#: Connectivity of lesions: voxels sharing a face.
FACE_NEIGHBOURS = ndimage.generate_binary_structure(3, 1)

Fluid = Literal["stir", "t2"]


def hysteresis(weak: NDArray[np.bool_], strong: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The connected regions of ``weak`` that contain at least one ``strong`` voxel.

    >>> weak = np.array([[[1, 1, 0, 1, 1]]], bool)
    >>> strong = np.array([[[0, 1, 0, 0, 0]]], bool)
    >>> hysteresis(weak, strong).astype(int).tolist()
    [[[1, 1, 0, 0, 0]]]
    """
    labels, n = ndimage.label(weak, structure=FACE_NEIGHBOURS)
    if n == 0:
        return np.zeros(weak.shape, bool)
    keep = np.zeros(n + 1, bool)
    keep[np.unique(labels[strong & weak])] = True
    keep[0] = False
    return keep[labels]


def remove_small(mask: NDArray[np.bool_], *, voxel_mm3: float, min_mm3: float) -> NDArray[np.bool_]:
    """``mask`` without its connected regions smaller than ``min_mm3`` (mm³)."""
    labels, n = ndimage.label(mask, structure=FACE_NEIGHBOURS)
    if n == 0:
        return np.zeros(mask.shape, bool)
    sizes = np.bincount(labels.ravel(), minlength=n + 1) * voxel_mm3
    keep = sizes >= min_mm3
    keep[0] = False
    return keep[labels]


def segment_bme(
    t1_ratio: NDArray[np.floating],
    fluid_ratio: NDArray[np.floating],
    *,
    fluid: Fluid,
    voxel_mm3: float,
    params: Parameters,
) -> NDArray[np.bool_]:
    """Bone marrow edema mask from T1 and fluid-sensitive ratio images.

    Parameters
    ----------
    t1_ratio, fluid_ratio : ndarray
        Ratios to normal marrow, NaN outside the marrow (NaN is never edema).
    fluid : {'stir', 't2'}
        Which image ``fluid_ratio`` is: its thresholds differ.
    voxel_mm3 : float
        Volume of one voxel (mm³).
    params : Parameters
        Thresholds.

    Returns
    -------
    ndarray of bool
    """
    if fluid == "stir":
        hyper, hyper_seed = params.stir_hyper_ratio, params.stir_hyper_seed_ratio
    else:
        hyper, hyper_seed = params.t2_hyper_ratio, params.t2_hyper_seed_ratio
    with np.errstate(invalid="ignore"):
        weak = (t1_ratio <= params.t1_hypo_ratio) & (fluid_ratio >= hyper)
        strong = (t1_ratio <= params.t1_hypo_seed_ratio) & (fluid_ratio >= hyper_seed)
    return remove_small(
        hysteresis(weak, strong), voxel_mm3=voxel_mm3, min_mm3=params.min_lesion_mm3
    )


def label_lesions(
    mask: NDArray[np.bool_], bodies: NDArray[np.integer]
) -> tuple[NDArray[np.int32], int]:
    """Number the connected lesions of ``mask`` (1..n), never across two bodies.

    Lesions are numbered in the order of their first voxel (C order), so the numbering is
    reproducible.

    >>> mask = np.ones((1, 1, 4), bool)
    >>> bodies = np.array([[[1, 1, 2, 2]]])
    >>> label_lesions(mask, bodies)[0].tolist()
    [[[1, 1, 2, 2]]]
    """
    # Voxels of different bodies never share a label: label each body's part on its own.
    labels = np.zeros(mask.shape, np.int32)
    n = 0
    boxes = ndimage.find_objects(np.where(mask, bodies, 0))
    for body_id, box in enumerate(boxes, start=1):
        if box is None:
            continue
        part, count = ndimage.label(mask[box] & (bodies[box] == body_id), FACE_NEIGHBOURS)
        view = labels[box]
        view[part > 0] = part[part > 0] + n
        n += count
    if n == 0:
        return labels, 0
    first = ndimage.minimum(
        np.arange(labels.size).reshape(labels.shape), labels, index=np.arange(1, n + 1)
    )
    order = np.zeros(n + 1, np.int32)
    order[1:][np.argsort(first)] = np.arange(1, n + 1)
    return order[labels], n
