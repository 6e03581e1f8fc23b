"""The dark cortical shell outside a body segmented from a T2 or STIR alone, read per body.

Without a T1 the bodies are grown from marrow-like signal, and the dark cortex and endplate
around the marrow (0.5-2.5 mm, dark on every contrast) is left out wherever it is not as
dark as a signal void: on the randomized phantoms the bodies came out about 10 % small,
the truth (as SPINEPS's outlines on real scans) holding the shell. A fixed wider shell grew
the real TPTBox bodies past SPINEPS's outlines, so here the shell is measured on each body,
per face (the endplates above and below, the anterior wall, the posterior wall), from the
profile of the image along the in-plane distance from the body:

- ring 0 is the body's own outermost voxel layer on that face, rings 1, 2, ... the layers
  outside it (one in-plane voxel each, sagittal plane only, as :func:`~.bodies.add_cortex`);
  each ring's signal is its median over the face, relative to the body's median (its
  marrow);
- the *outside* is the first ring that is at least halfway back from the darkest ring so
  far to the marrow's level: the tissue beyond the shell (CSF, disc nucleus, fat, muscle);
  when no ring up to :data:`REACH_MM` rises so far (a dark degenerated disc, a ligament,
  air), the face gets nothing;
- the face has a shell outside the body when ring 1 is darker than the outside by at least
  :data:`MIN_CONTRAST` of the marrow and no brighter than the body's outer layer
  (+ :data:`FLAT_TOLERANCE`): the dark run goes on past the body's edge instead of the
  signal rising from it (where the body already holds its shell, ring 0 is the darkest and
  ring 1 brighter, and nothing is added);
- the voxels of the rings before the outside, darker than halfway between the darkest
  ring and the outside, connected in-plane to the body through such voxels, are added, up
  to ``cap_mm`` from the body (cortical bone is a few mm thick at most).

Every level is read on the body itself (its marrow, its shell, the tissue beyond it), so a
scan whose cortex is thin, bright or already inside the bodies gets nothing, and the bright
canal and discs stop the growth by their signal.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.segment import region_medians
from bmetoolkit.spine.autoseg.bodies import box_around
from bmetoolkit.spine.autoseg.geometry import in_plane_distance

__all__ = ["FACES", "add_dark_shell", "face_profiles", "shell_thresholds", "valley_thresholds"]

#: The faces of a body, by the direction (in the sagittal plane) from the body.
FACES = ("superior", "anterior", "posterior", "inferior")
#: Rings are read this far (mm) from the body to find where the signal rises again.
REACH_MM = 6.0
#: Fewest voxels for a ring's median to count.
MIN_RING_VOXELS = 20
#: Ring 1 may be this much (fraction of the marrow) brighter than the body's outer layer
#: and still continue its dark run (noise between two medians).
FLAT_TOLERANCE = 0.05
#: The shell is darker than the tissue beyond it by at least this (fraction of the marrow).
MIN_CONTRAST = 0.2
#: The signal rises from the shell's last ring to the outside within this many rings.
RISE_RINGS = 2


def _rings(
    bodies: NDArray[np.int32], spacing: NDArray, reach_mm: float
) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.int8]]:
    """Ring index, nearest body label and face of every voxel within ``reach_mm`` in-plane.

    Ring 0 is each body's own outer layer, ring k >= 1 the voxels k in-plane voxels outside
    it (rounded distance over the mean in-plane spacing); -1 elsewhere.
    """
    step = float(np.mean(spacing[:2]))
    inside = bodies > 0
    far, nearest = in_plane_distance(~inside, spacing, return_indices=True)
    ring = np.where(inside, -1, np.floor(far / step + 0.5)).astype(np.int32)
    ring[~inside & (far > reach_mm)] = -1
    label = bodies[tuple(nearest)]
    d_ap = np.arange(bodies.shape[0])[:, None, None] - nearest[0]
    d_si = np.arange(bodies.shape[1])[None, :, None] - nearest[1]
    # The body's outer layer takes the face of the nearest voxel outside it.
    depth, outside = in_plane_distance(
        np.pad(inside, ((1, 1), (1, 1), (0, 0))), spacing, return_indices=True
    )
    depth = depth[1:-1, 1:-1]
    # Along the coarser in-plane axis the outer layer lies that axis' pixel side deep.
    outer = inside & (depth <= float(np.max(spacing[:2])) * 1.01)
    ring[outer] = 0
    label = np.where(outer, bodies, label)
    d_ap = np.where(
        outer, outside[0][1:-1, 1:-1] - 1 - np.arange(bodies.shape[0])[:, None, None], d_ap
    )
    d_si = np.where(
        outer, outside[1][1:-1, 1:-1] - 1 - np.arange(bodies.shape[1])[None, :, None], d_si
    )
    along_si = np.abs(d_si) * spacing[1] >= np.abs(d_ap) * spacing[0]
    face = np.where(along_si, np.where(d_si > 0, 0, 3), np.where(d_ap > 0, 1, 2))
    return ring, label, face.astype(np.int8)


def face_profiles(
    bodies: NDArray[np.int32], image: NDArray, spacing: NDArray, reach_mm: float = REACH_MM
) -> tuple[
    dict[tuple[int, int], NDArray[np.float64]],
    NDArray[np.float64],
    tuple[NDArray, NDArray, NDArray],
]:
    """Median signal of each ring of each body's faces, relative to the body's median.

    Returns ``{(label, face): profile}`` (rings 0, 1, ...; NaN where a ring holds fewer
    than :data:`MIN_RING_VOXELS` voxels), each body's median signal (its marrow; indexed
    by label) and the ring, label and face arrays.
    """
    ring, label, face = _rings(bodies, spacing, reach_mm)
    n_rings = int(ring.max()) + 1
    # each body's median in one sort of all bodies' voxels (0 for an absent label)
    marrow = np.nan_to_num(region_medians(bodies, image, int(bodies.max(initial=0))))
    counted = ring >= 0
    key = (label[counted].astype(np.int64) * 4 + face[counted]) * n_rings + ring[counted]
    values = image[counted].astype(np.float64)
    order = np.argsort(key, kind="stable")
    key, values = key[order], values[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], key.size]
    profiles: dict[tuple[int, int], NDArray[np.float64]] = {}
    for start, end in zip(starts, ends, strict=True):
        k = int(key[start])
        body, rest = divmod(k, 4 * n_rings)
        side, r = divmod(rest, n_rings)
        if marrow[body] <= 0:
            continue
        profile = profiles.setdefault((body, side), np.full(n_rings, np.nan))
        if end - start >= MIN_RING_VOXELS:
            profile[r] = float(np.median(values[start:end])) / marrow[body]
    return profiles, marrow, (ring, label, face)


def shell_thresholds(
    profile: NDArray[np.float64], step_mm: float, cap_mm: float
) -> tuple[int, float]:
    """Outermost ring and signal threshold of the dark shell outside one face (0, 0 if none).

    See the module's description: the shell runs from ring 1 to the ring before the
    outside (the first ring at least halfway from the darkest ring so far back to the
    marrow), at most ``cap_mm`` from the body; it exists when ring 1 continues the body's
    outer layer's dark run and is darker than the outside by :data:`MIN_CONTRAST`.
    """
    if profile.size < 3 or not np.isfinite(profile[:2]).all():
        return 0, 0.0
    darkest = float(profile[0])
    outside = None
    for r in range(1, profile.size):
        if not np.isfinite(profile[r]):
            return 0, 0.0
        if profile[r] >= (darkest + 1.0) / 2:
            outside = r
            break
        darkest = min(darkest, float(profile[r]))
    if outside is None or outside < 2:
        return 0, 0.0
    level = float(profile[outside])
    if level - profile[1] < MIN_CONTRAST:
        return 0, 0.0
    # The dark run goes on past the body's edge (ring 1 no brighter than the body's outer
    # layer), or it is a band at least two rings wide before the rise: the edge between
    # marrow and the tissue beyond, blurred by partial volume, is one ring wide.
    continued = profile[1] <= profile[0] + FLAT_TOLERANCE
    band = outside >= 3 and level - profile[2] >= MIN_CONTRAST
    if not (continued or band):
        return 0, 0.0
    threshold = (darkest + level) / 2
    # The shell ends where the rise begins: its last ring still darker than halfway from
    # the darkest ring to the outside (the rise itself is blurred over a ring or two).
    last = int(np.flatnonzero(profile[1:outside] < threshold).max(initial=-1)) + 1
    # A rise spread over more than the ring it starts in is a ramp (a disc's graded
    # signal, partial volume along a tilted surface), not the edge of a shell.
    if last < 1 or outside - last > RISE_RINGS or last > int(np.ceil(cap_mm / step_mm - 1e-6)):
        return 0, 0.0  # a dark run wider than cortex can be: a dark disc, a ligament, air
    return last, threshold


def valley_thresholds(
    profile: NDArray[np.float64], step_mm: float, cap_mm: float
) -> tuple[int, float, float, int]:
    """The dark cortex as a valley before tissue darker than the marrow (0, 0, 0, 0 if none).

    :func:`shell_thresholds` asks the signal beyond the shell to come at least halfway back
    to the marrow's level. Beside an endplate, the disc's annulus (and on some T2s the tissue
    in front) is darker than marrow: the signal falls from the body into the endplate's
    cortex, the darkest ring, and rises from it within :data:`RISE_RINGS` rings to a level
    (the tissue beyond) that stays below that halfway point, so no shell was found. Here the
    darkest ring within ``cap_mm`` is the cortex when it is darker than the body's own outer
    layer (ring 0) and than the tissue beyond (the brightest of the :data:`RISE_RINGS` rings
    after it) by :data:`MIN_CONTRAST` each. Each side of the cortex is cut at its own half
    maximum (partial volume blurs both edges): the rings before the valley take their
    voxels darker than halfway between the marrow (1) and the valley, the ring after it its
    voxels darker than halfway between the valley and the tissue beyond (when that ring's
    median is).

    Returns
    -------
    last : int
        The outermost ring of the shell (0: none).
    outer : float
        Signal threshold (times the body's marrow) of the rings after the valley.
    inner : float
        Signal threshold of the rings up to the valley.
    valley : int
        The valley's ring.
    """
    rings = int(np.ceil(cap_mm / step_mm - 1e-6))
    if rings < 1 or profile.size < rings + 1 + RISE_RINGS:
        return 0, 0.0, 0.0, 0
    near = profile[1 : rings + 1]
    if not np.isfinite(profile[0]) or not np.isfinite(near).all():
        return 0, 0.0, 0.0, 0
    valley = int(np.argmin(near)) + 1
    beyond = profile[valley + 1 : valley + 1 + RISE_RINGS]
    if not np.isfinite(beyond).all():
        return 0, 0.0, 0.0, 0
    floor, level = float(profile[valley]), float(beyond.max())
    if profile[0] - floor < MIN_CONTRAST or level - floor < MIN_CONTRAST:
        return 0, 0.0, 0.0, 0
    outer, inner = (floor + level) / 2, (floor + 1.0) / 2
    last = valley + 1 if valley < rings and profile[valley + 1] < outer else valley
    return last, outer, inner, valley


def add_dark_shell(
    bodies: NDArray[np.int32],
    image: NDArray,
    spacing: NDArray,
    cap_mm: float,
    valley: bool = False,
) -> tuple[NDArray[np.int32], dict[str, float]]:
    """Grow each body through the dark shell outside it, read per body and face.

    Parameters
    ----------
    bodies : ndarray of int32
        Body labels on the canonical (AP, SI, LR) grid.
    image : ndarray
        The T2 (or STIR) the bodies were segmented from, same grid.
    spacing : ndarray
        Voxel size (mm) along (AP, SI, LR).
    cap_mm : float
        The shell reaches at most this far (mm) from the body.
    valley : bool
        Faces without a shell by :func:`shell_thresholds` are read again by
        :func:`valley_thresholds` (the cortex before tissue darker than marrow; a plain T2
        alone, ``AutosegParameters.t2_shell_valley``).

    Returns
    -------
    bodies : ndarray of int32
        The bodies with their shell.
    evidence : dict
        ``faces_with_shell`` (how many body faces got one) and ``voxels_added``; with
        ``valley`` also ``faces_with_valley`` (how many of them by the valley).
    """
    if cap_mm <= 0:
        return bodies, {"faces_with_shell": 0, "voxels_added": 0}
    step = float(np.mean(spacing[:2]))
    reach = max(REACH_MM, cap_mm + 2 * step)
    if not valley:
        result, faces, added = _grow_through_faces(
            bodies, image, spacing, reach, lambda profile: shell_thresholds(profile, step, cap_mm)
        )
        return result, {"faces_with_shell": faces, "voxels_added": added}
    valleys = [0]

    def read_face(profile: NDArray) -> tuple[int, float, float, int]:
        last, level = shell_thresholds(profile, step, cap_mm)
        if last > 0:
            return last, level, level, 0
        found = valley_thresholds(profile, step, cap_mm)
        valleys[0] += found[0] > 0
        return found

    result, faces, added = _grow_through_faces(bodies, image, spacing, reach, read_face)
    return result, {
        "faces_with_shell": faces,
        "faces_with_valley": valleys[0],
        "voxels_added": added,
    }


def add_half_edge(
    bodies: NDArray[np.int32], image: NDArray, spacing: NDArray
) -> tuple[NDArray[np.int32], dict[str, int]]:
    """Add the voxel layer just outside each body face whose signal lies below halfway to
    the tissue beyond (the edge blurred over one voxel), on a fat-suppressed image alone.

    Per body and face (:func:`face_profiles`): when ring 2 (the tissue beyond) is brighter
    than ring 0 (the body's own outer layer, its dark cortex) by :data:`MIN_CONTRAST` of
    the marrow and ring 1 is darker than halfway between them, the ring-1 voxels darker
    than that halfway level are added: the boundary between two tissues lies where the
    signal, blurred by partial volume, crosses halfway. Returns the bodies and
    ``{"faces": ..., "voxels_added": ...}``.
    """

    def one_ring(profile: NDArray) -> tuple[int, float]:
        if profile.size < 3 or not np.isfinite(profile[:3]).all():
            return 0, 0.0
        half = (profile[0] + profile[2]) / 2
        if profile[2] - profile[0] >= MIN_CONTRAST and profile[1] < half:
            return 1, float(half)
        return 0, 0.0

    step = float(np.mean(spacing[:2]))
    result, faces, added = _grow_through_faces(bodies, image, spacing, 3 * step, one_ring)
    return result, {"faces": faces, "voxels_added": added}


def _grow_through_faces(
    bodies: NDArray[np.int32],
    image: NDArray,
    spacing: NDArray,
    reach_mm: float,
    read_face: Callable[[NDArray], tuple[int, float] | tuple[int, float, float, int]],
) -> tuple[NDArray[np.int32], int, int]:
    """Grow each body, face by face, through the rings outside it that ``read_face``
    gives for that face's profile (:func:`face_profiles` out to ``reach_mm``): up to its
    ring ``last``, over the voxels darker than its ``level`` (times the body's marrow),
    one ring at a time. ``read_face`` may also give ``(last, level, inner, valley)``: the
    rings up to ``valley`` then take ``inner`` as their level. Returns the bodies, the
    faces grown and the voxels added."""
    margin = [int(np.ceil(reach_mm / float(s))) + 1 for s in spacing[:2]] + [0]
    box = box_around(bodies > 0, margin)
    if box is None:
        return bodies, 0, 0
    inner, picture = bodies[box], np.asarray(image[box], dtype=np.float32)
    profiles, marrow, (ring, label, face) = face_profiles(inner, picture, spacing, reach_mm)
    last = np.zeros((marrow.size, 4), np.int32)
    level = np.zeros((marrow.size, 4), np.float64)
    inner_level = np.zeros((marrow.size, 4), np.float64)
    valley = np.zeros((marrow.size, 4), np.int32)
    for (body, side), profile in profiles.items():
        read = read_face(profile)
        last[body, side], level[body, side] = read[0], read[1]
        if len(read) == 4:
            inner_level[body, side], valley[body, side] = read[2], read[3]
    threshold = (level * marrow[:, None])[label, face]
    if valley.any():  # the rings up to a valley take their own level
        before = ring <= valley[label, face]
        threshold = np.where(before, (inner_level * marrow[:, None])[label, face], threshold)
    candidate = (ring >= 1) & (ring <= last[label, face]) & (picture < threshold)
    cross = ndimage.generate_binary_structure(2, 1)[:, :, None]
    out = inner.copy()
    for _ in range(int(last.max(initial=0))):
        grown = ndimage.grey_dilation(out, footprint=cross)
        new = (out == 0) & candidate & (grown == label)
        if not new.any():
            break
        out[new] = grown[new]
    result = bodies.copy()
    result[box] = out
    return result, int((last > 0).sum()), int((out != inner).sum())
