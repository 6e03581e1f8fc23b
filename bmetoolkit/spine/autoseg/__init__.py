"""Automatic vertebral bodies and levels from sagittal T1 + T2/STIR, by classical image analysis.

No model weights and no downloads: thresholds relative to the scan's own marrow, morphology
and geometry, all in millimetres. Steps (modules):

1. :mod:`.frame`: view the study grid as (anterior, superior, right) without interpolation.
2. :mod:`.canal`: the CSF column (bright on the fluid image, dark on T1, long along SI).
3. :mod:`.bodies`: the column of tissue in front of the canal; marrow bright on T1 against a
   per-row reference (coil shading cancels); opening, erosion into one seed per body (discs
   and endplates are dark on T1 and split them), regrowth, lesion fill inside each body's
   convex hull, the cortical shell added back.
4. :mod:`.levels`: order the bodies, anchor on the sacrum, name the levels (VerSe ids).

See ``docs/autoseg.md`` for the method, its parameters and its limits.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from bmetoolkit.spine.autoseg.apart import keep_apart
from bmetoolkit.spine.autoseg.bodies import (
    add_cortex,
    body_column,
    cortex_mask,
    drop_canal_fluid,
    drop_small,
    fill_lesions,
    fill_to_endplate,
    fluid_marrow_mask,
    grow_cortex,
    marrow_mask,
    near_canal,
    split_bodies,
)
from bmetoolkit.spine.autoseg.canal import Canal, find_canal
from bmetoolkit.spine.autoseg.checks import (
    TOO_LARGE,
    check_sizes,
    confine_laterally,
    drop_in_disc_spaces,
    drop_large_at_edges,
    drop_off_midline,
    drop_sharing_a_level,
    drop_tall_at_lower_edge,
    drop_too_tall,
    drop_without_room,
)
from bmetoolkit.spine.autoseg.column_fit import cut_touching_ends, drop_unfit
from bmetoolkit.spine.autoseg.cortex_check import drop_without_cortex
from bmetoolkit.spine.autoseg.cut_top import add_cut_top
from bmetoolkit.spine.autoseg.edge_disc import drop_without_disc_at_top
from bmetoolkit.spine.autoseg.edge_other import replace_dropped_at_edges
from bmetoolkit.spine.autoseg.endplate_line import extend_to_endplate_line
from bmetoolkit.spine.autoseg.endplate_reach import endplate_reach_mm
from bmetoolkit.spine.autoseg.frame import CanonicalFrame
from bmetoolkit.spine.autoseg.front import limit_to_disc_fronts
from bmetoolkit.spine.autoseg.joined import split_joined
from bmetoolkit.spine.autoseg.lateral_cortex import add_to_lateral_cortex
from bmetoolkit.spine.autoseg.lateral_half import read_outer_sections
from bmetoolkit.spine.autoseg.levels import (
    LevelAssignment,
    assign_levels,
    body_shapes,
    given_back_below_sacrum,
    kept_below_unknown_sacrum,
    withheld,
)
from bmetoolkit.spine.autoseg.midline import (
    SlabSeeds,
    add_at_empty_levels,
    any_mid_slice_seed,
    bodies_from_midline,
    seed_mid_slab,
)
from bmetoolkit.spine.autoseg.oversized import cut_back_caudal
from bmetoolkit.spine.autoseg.params import AutosegParameters
from bmetoolkit.spine.autoseg.polarity import BRIGHT, DARK, invert, marrow_polarity
from bmetoolkit.spine.autoseg.posterior import trim_posterior_band
from bmetoolkit.spine.autoseg.shell import add_dark_shell, add_half_edge
from bmetoolkit.spine.autoseg.suppressed import (
    cut_disc_ends_then_sections,
    no_brighter_than_marrow,
    trim_bright_sections,
)
from bmetoolkit.spine.autoseg.top_edge import cut_back_top
from bmetoolkit.spine.autoseg.waist import cut_beyond_walls
from bmetoolkit.spine.autoseg.wall_cortex import canal_sections, cut_beyond_wall_cortex
from bmetoolkit.spine.autoseg.wall_notches import close_si_notches
from bmetoolkit.spine.labels import VertebraLabels, verse_id
from bmetoolkit.study import Study
from bmetoolkit.volume import occupied_box

__all__ = [
    "AutosegParameters",
    "Segmentation",
    "find_vertebral_bodies",
    "segment_bodies",
]

#: Note added when the T1 shows the bodies darker than the discs.
DARK_MARROW_NOTE = (
    "on this T1 the vertebral bodies are darker than the discs (as on some gradient-echo "
    "T1s, unlike spin echo): the bodies were found on the inverted, smoothed T1; check them "
    "in the QC figure"
)

#: Without a T1, fewer bodies than this, or than half the canal's length over
#: ``BODY_PITCH_MM`` (a lumbar body and its disc), or a segment too large for a body, means
#: tissue in front may have joined them: the marrow is then cut at the discs' anterior edges.
MIN_BODIES = 3
BODY_PITCH_MM = 40.0
#: Note added when that cut was used.
FRONT_CUT_NOTE = (
    "no T1: tissue in front of the bodies has the marrow's signal on this image and joined "
    "them; the bodies were cut at the line joining the discs' anterior edges; check them in "
    "the QC figure"
)

#: Note added when levels read on bodies from a STIR alone are withheld
#: (``AutosegParameters.levels_from_stir_alone``).
STIR_ALONE_LEVELS_NOTE = (
    "no T1 and no T2: levels are not named from a STIR (or fat-suppressed T2) alone, on which "
    "marrow, muscle and discs look alike and the sacrum is often misread; the bodies are "
    "numbered 1..n from cranial to caudal (add the T1 or T2, or pass a label map)"
)

#: Polarity recorded when there is no T1 (the marrow is read from the T2 or STIR alone).
FLUID_ONLY = "no T1"

#: Method name written into the provenance.
METHOD = "bmetoolkit.spine.autoseg classical (canal-anchored T1 marrow, sacrum level anchor)"


class Segmentation(NamedTuple):
    """What :func:`segment_bodies` found, on canonical arrays (anterior, superior, right).

    Attributes
    ----------
    bodies : ndarray of int32
        Labels 1..n (in no particular order), 0 elsewhere.
    marrow : ndarray of bool
        Marrow-like voxels of the column (for the level naming).
    midline : float
        Left-right index of the canal midline.
    canal_rows : tuple of 2 ints
        First and last superior-inferior rows where CSF was found.
    polarity : str
        ``"bright"`` (marrow brighter than the discs on T1, as on spin echo) or ``"dark"``.
    polarity_evidence : dict
        What the polarity was read from (see :func:`.polarity.marrow_polarity`).
    images : tuple of str
        The images the bodies were read from: ``"t1"``, ``"fluid"`` (the STIR, else the
        T2, given as ``fluid``) and ``"t2"``.
    notes : tuple of str
        What the per-body checks dropped (see :mod:`.checks`).
    level_bodies : ndarray of int32 or None
        The bodies the levels are read on, when they differ from ``bodies``: the bodies
        before the opt-in dark shell (``dark_shell_max_mm``), whose voxels they share
        label for label. None: ``bodies``.
    """

    bodies: NDArray[np.int32]
    marrow: NDArray[np.bool_]
    midline: float
    canal_rows: tuple[int, int]
    polarity: str
    polarity_evidence: dict[str, Any]
    images: tuple[str, ...] = ("t1", "fluid")
    notes: tuple[str, ...] = ()
    level_bodies: NDArray[np.int32] | None = None


def segment_bodies(
    t1: NDArray | None,
    fluid: NDArray,
    spacing: NDArray,
    *,
    t2: NDArray | None = None,
    params: AutosegParameters | None = None,
    fat_suppressed: bool | None = None,
) -> Segmentation:
    """Vertebral bodies on canonical arrays (anterior, superior, right).

    Parameters
    ----------
    t1 : ndarray or None
        T1 intensities, canonical axes; None when the study has no T1: the canal is then
        found on ``fluid`` alone and the marrow on ``t2`` (else ``fluid``), see
        :func:`.bodies.fluid_marrow_mask`.
    fluid : ndarray
        Fluid-sensitive (STIR, else T2) intensities, canonical axes.
    spacing : array_like, shape (3,)
        Voxel size (mm) along the canonical axes.
    t2 : ndarray, optional
        T2 without fat suppression, used to leave fat out of the marrow.
    params : AutosegParameters, optional
    fat_suppressed : bool, optional
        Whether ``fluid`` suppresses fat (STIR, fat-suppressed T2). Only then are the discs
        read from it to tell the T1's polarity (on a plain T2, fat is as bright as a disc).
        By default: unless ``t2`` is the same array as ``fluid``. Without a T1 and a T2,
        only an explicit True (as :func:`find_vertebral_bodies` passes for a STIR) reads
        the bodies by the rules for a fat-suppressed image alone (step 12 of *Without a
        T1* in ``docs/autoseg.md``); a plain T2 given as ``fluid`` alone is read as a T2.

    Returns
    -------
    Segmentation
    """
    suppressed_alone = t1 is None and t2 is None and fat_suppressed is True
    if fat_suppressed is None:
        fat_suppressed = t2 is None or not np.shares_memory(np.asarray(t2), np.asarray(fluid))
    params = params or AutosegParameters()
    spacing = np.asarray(spacing, dtype=np.float64)
    fluid = np.asarray(fluid, dtype=np.float32)
    t1 = None if t1 is None else np.asarray(t1, dtype=np.float32)
    t2 = None if t2 is None else np.asarray(t2, dtype=np.float32)
    canal = find_canal(t1, fluid, spacing, params)
    column, distance = body_column(canal, fluid.shape, spacing, params)
    # Everything below happens in the column's box (a quarter of a lumbar field of view).
    ap, lr = _column_box(column)
    crop = (ap, slice(None), lr)
    inner = Canal(canal.front - ap.start, canal.midline - lr.start, canal.rows, canal.mask[crop])
    found = _segment_column(
        None if t1 is None else t1[crop],
        fluid[crop],
        None if t2 is None else t2[crop],
        inner,
        column[crop],
        distance[ap],
        spacing,
        params,
        fat_suppressed,
        suppressed_alone,
    )
    bodies = np.zeros(fluid.shape, np.int32)
    marrow = np.zeros(fluid.shape, bool)
    bodies[crop], marrow[crop] = found.bodies, found.marrow
    level_bodies = None
    if found.level_bodies is not None:
        level_bodies = np.zeros(fluid.shape, np.int32)
        level_bodies[crop] = found.level_bodies
    return found._replace(
        bodies=bodies, marrow=marrow, midline=canal.midline, level_bodies=level_bodies
    )


def _column_box(column: NDArray[np.bool_]) -> tuple[slice, slice]:
    """Anterior-posterior and left-right slices bounding a mask (the whole array if empty)."""
    box = occupied_box(column)
    if box[0].start == box[0].stop:
        return slice(0, column.shape[0]), slice(0, column.shape[2])
    return box[0], box[2]


def _segment_column(
    t1: NDArray[np.float32] | None,
    fluid: NDArray[np.float32],
    t2: NDArray[np.float32] | None,
    canal: Canal,
    column: NDArray[np.bool_],
    distance: NDArray[np.float32],
    spacing: NDArray,
    params: AutosegParameters,
    fat_suppressed: bool,
    suppressed_alone: bool = False,
) -> Segmentation:
    """Marrow and bodies inside the column (arrays cropped to its box); with
    ``suppressed_alone`` (no T1, no T2, a fat-suppressed ``fluid``) the rules of
    :mod:`.suppressed` and :mod:`.joined` apply."""
    where = (canal.midline, canal.rows)
    near = near_canal(column, distance, *where, spacing)
    if t1 is None:  # T2 or STIR alone
        image = fluid if t2 is None else t2
        if suppressed_alone:  # a fat-suppressed image alone: the marrow is the darkest tissue
            level = params.suppressed_reference_percentile
            dip = params.suppressed_reference_dip_mm  # darker rows count unless in a dip
            marrow = fluid_marrow_mask(image, column, near, spacing, params, level, dip)
            marrow = no_brighter_than_marrow(marrow, image, near, spacing, params)
        else:
            marrow = fluid_marrow_mask(image, column, near, spacing, params)
        dark = cortex_mask(image, column, near, spacing, params, 50.0)
        used: tuple[str, ...] = ("fluid",) if t2 is None else ("fluid", "t2")
        source = "fluid image" if t2 is None else "T2"
        polarity, evidence = FLUID_ONLY, {"reason": f"no T1: marrow read from the {source}"}
        # A plain T2 alone: S1 joined to the bone below it and the tissue around it is cut
        # back to S1 before the size check, when it shows S1's evidence.
        s1_cut = image if params.t2_caudal_cut and not suppressed_alone else None
        # From a STIR alone, only that cut (the cortex and endplates are dark there too).
        stir_cut = suppressed_alone and params.suppressed_caudal_cut
        caudal = image if stir_cut else s1_cut
        # A plain T2 alone: the pedicle's base behind the dark posterior wall of a body's
        # lateral sections is cut, as on a T1 (the cortex is dark on both, marrow is not).
        plain_t2 = not suppressed_alone and params.t2_posterior_band
        back = image if plain_t2 else None
        bodies, notes, grown = _bodies_from_marrow(
            marrow, dark, distance, canal, spacing, params, caudal_cut=caudal, bright_t1=back
        )
        # Bodies joined through the lateral slices to the tissue beside and in front of
        # them are dropped whole: seeds from the mid-sagittal slab, grown back by watershed,
        # keep them apart (kept when that finds more bodies).
        # From a fat-suppressed image alone, a small mid-slab seed alone at its level too.
        alone = suppressed_alone and params.suppressed_seed_alone
        # From a plain T2 alone, a body inside a seed of the tissue it joined, read on the
        # mid-sagittal slice (added where the bodies kept leave its level empty).
        mid_slice = not suppressed_alone and params.t2_mid_slice_seeds and params.t2_empty_levels
        # ... and a small segment at the column's end is the end body, not a disc or sliver.
        keep_ends = suppressed_alone and params.suppressed_end_segments

        # The mid-slab seeds of the marrow, seeded once: a plain T2 alone reads them up to
        # three times (the reading from the midline, the check for mid-slice seeds, the
        # reading with them).
        seeded = seed_mid_slab(marrow, distance, canal.front, canal.midline, spacing, params)

        def from_midline(
            region: NDArray[np.bool_], sliced: bool = False, seeds: SlabSeeds | None = None
        ) -> tuple[NDArray[np.int32], list[str], NDArray[np.bool_]]:
            return _bodies_from_marrow(
                region, dark, distance, canal, spacing, params,
                from_midline=True, caudal_cut=caudal, seed_alone=alone, ends_kept=keep_ends,
                bright_t1=back, mid_slice=sliced, seeded=seeds,
            )  # fmt: skip

        readings = [(bodies, notes, grown)]
        mid = from_midline(marrow, seeds=seeded)
        readings.append(mid)
        if int(mid[0].max()) > int(bodies.max()):
            bodies, notes, grown = mid
            evidence = {**evidence, "seeds_from_midline": True}
        if _too_few(int(bodies.max()), canal.rows, spacing) or any(TOO_LARGE in n for n in notes):
            # Tissue with the marrow's signal in front may have joined the bodies: cut it
            # off at the discs' anterior edges and keep that when it gives more bodies.
            cut = limit_to_disc_fronts(marrow, canal.front, *where, spacing)
            retry = from_midline(cut)
            readings.append(retry)
            if int(retry[0].max()) > int(bodies.max()):
                bodies, notes, grown = retry[0], [*retry[1], FRONT_CUT_NOTE], retry[2]
                evidence = {**evidence, "cut_at_disc_fronts": True}
        chosen = bodies  # the reading kept
        if not suppressed_alone and params.t2_empty_levels:
            # A plain T2 alone: a whole body another reading found, at a level the bodies
            # kept leave empty, is added; with ``t2_mid_slice_seeds`` also the bodies inside
            # a seed of the tissue they joined, read on the mid-sagittal slice.
            if mid_slice and any_mid_slice_seed(
                marrow, distance, canal.front, canal.midline, spacing, params, bodies, seeded
            ):
                readings.append(from_midline(marrow, sliced=True, seeds=seeded))
            total = 0
            for other, _, other_grown in readings:
                if other is not chosen:
                    bodies, grown, added = add_at_empty_levels(
                        bodies, grown, other, other_grown, spacing
                    )
                    total += added
            if total:
                evidence = {**evidence, "bodies_added_at_empty_levels": total}
        if suppressed_alone:  # lateral walls, bodies joined across a disc
            factor, step = params.suppressed_section_factor, params.suppressed_section_step
            bodies, sides = trim_bright_sections(
                bodies, image, canal.midline, spacing, factor, step
            )
            evidence = {**evidence, "lateral_sections_cut": sides}
            if params.split_joined_bodies:
                bodies, joined = split_joined(bodies, image, canal.midline, spacing)
                notes = [*notes, *joined]
            if params.suppressed_disc_ends:  # the disc a body took, beyond its endplate
                again = params.suppressed_sections_again  # the level without the disc
                bodies, ends, more = cut_disc_ends_then_sections(
                    bodies,
                    image,
                    canal.midline,
                    spacing,
                    factor,
                    again,
                    step,
                    whole_height=params.suppressed_ends_whole_height,
                )
                evidence = {**evidence, "disc_ends_cut": ends, "lateral_sections_cut": sides + more}
            bodies, beyond = cut_beyond_walls(  # muscle at the waist, beyond the lateral wall
                bodies,
                image,
                canal.midline,
                spacing,
                params.suppressed_wall_dark,
                params.suppressed_wall_bright,
                params.suppressed_wall_reach_mm,
                params.fluid_smooth_mm,
            )
            evidence = {**evidence, "beyond_lateral_walls": beyond}
        bodies = drop_canal_fluid(bodies, fluid, canal.mask, params.canal_fluid_fraction)
        bodies, off_midline = drop_off_midline(bodies, canal.midline, spacing)
        bodies, tall = drop_tall_at_lower_edge(
            bodies, spacing, image, canal.midline, along_columns=s1_cut is not None
        )
        bodies, strips = drop_too_tall(bodies, spacing)
        bodies, in_discs = drop_in_disc_spaces(bodies, spacing)
        if params.fluid_no_room_between:  # a slab whose partial neighbour moved away
            bodies, no_room = drop_without_room(bodies, spacing)
            in_discs = [*in_discs, *no_room]
        top_cut: list[str] = []
        if s1_cut is not None and params.t2_top_cut:
            # The top body joined to the tissue above and in front of it: cut back to it.
            bodies, top_cut = cut_back_top(
                bodies,
                image,
                canal.front,
                canal.midline,
                spacing,
                smallest=params.t2_top_cut_smallest,
                rounded=params.t2_top_cut_rounded,
            )
        checked, at_edges = drop_large_at_edges(bodies, spacing)
        if at_edges and not suppressed_alone and params.t2_edge_other_reading:
            # A plain T2 alone: the body of an edge segment dropped, read apart from the
            # tissue by another reading of the marrow, is kept in its place.
            others = [(other, mask) for other, _, mask in readings if other is not chosen]
            checked, grown, replaced = replace_dropped_at_edges(
                bodies, checked, grown, others, spacing
            )
            at_edges = [*at_edges, *replaced]
        bodies = checked
        # Tissue above the column's top, up to the image's edge, with no disc between it
        # and the top body (the T1 path tells it by its missing cortical rim).
        core = np.where(grown, 0, bodies)  # the gaps are read without the cortex growth
        # From a STIR alone the disc is read where it shows on most mid-sagittal slices.
        most = suppressed_alone and params.edge_disc_on_most_slices
        bodies, no_disc = drop_without_disc_at_top(
            bodies, canal.midline, spacing, params.edge_disc_factor, core, most
        )
        notes = [*notes, *off_midline, *tall, *strips, *in_discs, *top_cut, *at_edges, *no_disc]
        plain_cut_top = s1_cut is not None and params.t2_cut_top
        if (suppressed_alone and params.suppressed_cut_top) or plain_cut_top:
            # The top vertebra cut into its body by the image's upper edge (from a plain T2
            # the second reading skips segments at the edge too).
            bodies, sliver = add_cut_top(
                bodies,
                marrow,
                canal.midline,
                spacing,
                params.edge_disc_factor,
                front=canal.front if params.fluid_cut_top_reach else None,
            )
            evidence = {**evidence, "cut_top": sliver}
        if params.fluid_one_per_level:  # tissue beside or around a body, at its level
            bodies, same_level = drop_sharing_a_level(bodies, spacing)
            notes = [*notes, *same_level]
        # After the checks: a segment they drop may have met a body that stays.
        bodies = keep_apart(bodies, np.where(grown, 0, bodies), spacing)[0]
        if suppressed_alone and params.suppressed_column_fit:
            # A disc between two bodies, or a strip behind the sacrum, kept as a segment.
            bodies, unfit = drop_unfit(bodies, canal.midline, spacing)
            notes = [*notes, *unfit]
            # Two bodies that touch: one took the disc between them, up to a faint endplate.
            bodies, touching = cut_touching_ends(
                bodies, image, canal.midline, spacing, params.suppressed_disc_taken
            )
            evidence = {**evidence, "touching_ends_cut": touching}
        level_bodies = None
        if params.dark_shell_max_mm > 0:
            # The dark cortex the marrow mask leaves out, read on each body's own profile;
            # after the checks, which were set on the bodies without it. The levels are
            # read on the bodies without it too: it changes their tilt and height a little,
            # and the level rules were set without it.
            # From a plain T2 alone, also the cortex before an annulus darker than marrow.
            valley = s1_cut is not None and params.t2_shell_valley
            grown, shell = add_dark_shell(
                bodies, image, spacing, params.dark_shell_max_mm, valley=valley
            )
            level_bodies, bodies = bodies, keep_apart(grown, bodies, spacing)[0]
            shell["voxels_added"] = int((bodies > 0).sum() - (level_bodies > 0).sum())
            evidence = {**evidence, "dark_shell": shell}
        if suppressed_alone and params.suppressed_half_edge:
            # The edge blurred over one voxel: the layer below halfway to the tissue beyond.
            edged, half = add_half_edge(bodies, image, spacing)
            level_bodies = bodies if level_bodies is None else level_bodies
            bodies = keep_apart(edged, bodies, spacing)[0]
            evidence = {**evidence, "half_edge": half}
        trim, add = params.suppressed_outer_sections, params.suppressed_outer_added
        if suppressed_alone and (trim or add):
            # Each body's outermost lateral sections read by partial volume: the voxels
            # mostly tissue removed, those beside them mostly bone (the wall) added.
            level_bodies = bodies if level_bodies is None else level_bodies
            bodies, outer = read_outer_sections(bodies, image, spacing, trim=trim, add=add)
            evidence = {**evidence, **outer}
        if s1_cut is not None and params.t2_wall_cortex:
            # A plain T2 alone: where a thin wall shows only as a faint dark line, the
            # segment ran through it into the tissue beyond (of the marrow's signal); that
            # tissue is cut. The levels are read on the bodies without this, as the shell.
            walled, wall = cut_beyond_wall_cortex(bodies, image, spacing)
            level_bodies = bodies if level_bodies is None else level_bodies
            bodies = walled
            evidence = {**evidence, "wall_cortex": wall}
        if s1_cut is not None and params.t2_lateral_cortex:
            # A plain T2 alone: each body carried out sideways to the dark line of its
            # lateral wall, inside which the marrow mask stopped. Levels as above.
            widened, lateral = add_to_lateral_cortex(bodies, image, spacing)
            level_bodies = bodies if level_bodies is None else level_bodies
            bodies = keep_apart(widened, bodies, spacing)[0]
            evidence = {**evidence, "lateral_cortex": lateral}
        if params.fluid_endplate_fill_mm > 0:
            # A T2 or STIR alone: a bright lesion at an endplate is not marrow there, so
            # each body is carried along SI across it to the endplate's dark cortex,
            # further than the fill before the checks reaches. Levels as above.
            reach = params.fluid_endplate_fill_mm
            filled = fill_to_endplate(bodies, dark, spacing, reach)
            level_bodies = bodies if level_bodies is None else level_bodies
            before = int((bodies > 0).sum())
            bodies = keep_apart(filled, bodies, spacing)[0]
            fill = {"reach_mm": reach, "voxels_added": int((bodies > 0).sum()) - before}
            evidence = {**evidence, "endplate_fill": fill}
    else:  # with a T1
        discs_from = fluid if fat_suppressed else None
        polarity, evidence = marrow_polarity(t1, canal, spacing, discs_from)
        used = ("t1", "fluid") if t2 is None else ("t1", "fluid", "t2")
        found = _t1_bodies(t1, t2, polarity, canal, column, distance, near, spacing, params)
        if int(found[0].max()) < 2:  # the polarity may be wrong: try the other one
            other = BRIGHT if polarity == DARK else DARK
            retry = _t1_bodies(t1, t2, other, canal, column, distance, near, spacing, params)
            if int(retry[0].max()) > int(found[0].max()):
                found, polarity = retry, other
                evidence = {**evidence, "retried": f"{other}: more bodies than as read"}
        bodies, marrow, notes, grown, dark = found
        # A piece wholly beside the midline (with the pelvis in view, a lateral sliver beside
        # S1 on tuning seed 84, taken for L5 and every level above named one too low) is no body.
        bodies, off_midline = drop_off_midline(bodies, canal.midline, spacing)
        notes = (*notes, *off_midline)
        bodies = keep_apart(bodies, np.where(grown, 0, bodies), spacing)[0]
        level_bodies = None
        if dark is not None:
            # The endplates a lesion hides, after the checks; the levels are read on the
            # bodies without these voxels (the level rules were set without them).
            reached = _endplates_reached(bodies, dark, spacing, params)
            if reached is not None:
                level_bodies, bodies = bodies, keep_apart(reached, bodies, spacing)[0]
        if params.si_notch_mm > 0:
            # Notches along SI in the outline (a lesion's rim, a partial-volume voxel at
            # the wall), before the posterior wall's cut, which has the last word
            # there; the levels are read on the bodies without them, as above.
            closed, notched = close_si_notches(bodies, spacing, params.si_notch_mm)
            level_bodies = bodies if level_bodies is None else level_bodies
            bodies = closed
            evidence = {**evidence, "si_notches_filled": notched}
        if polarity == BRIGHT and params.t1_posterior_wall_cortex:
            # A thin posterior cortex seen only as a faint line: the body ran through it
            # into the epidural fat up to the canal; cut there, beside the canal only.
            walled, wall = cut_beyond_wall_cortex(
                bodies, t1, spacing, signs=(-1,), sections=canal_sections(canal.mask)
            )
            level_bodies = bodies if level_bodies is None else level_bodies
            bodies = walled
            evidence = {**evidence, "posterior_wall_cortex": wall}
        if fat_suppressed and params.fluid_outer_sections:
            # The section holding each body's lateral wall, read on the fat-suppressed image.
            level_bodies = bodies if level_bodies is None else level_bodies
            bodies, outer = read_outer_sections(bodies, fluid, spacing, trim=False, add=True)
            evidence = {**evidence, **outer}
    return Segmentation(
        bodies,
        marrow,
        canal.midline,
        canal.rows,
        polarity,
        evidence,
        used,
        tuple(notes),
        level_bodies,
    )


def _endplates_reached(
    bodies: NDArray[np.int32], dark: NDArray[np.bool_], spacing: NDArray, params: AutosegParameters
) -> NDArray[np.int32] | None:
    """The bodies extended to the endplates a lesion hides (T1 with bright marrow), or None
    when neither step acts: the endplate fill again where its reach is under
    ``endplate_fill_min_voxels`` voxels along SI (pixels over 0.83 mm; :mod:`.endplate_reach`),
    then the line of the neighbouring columns' endplate (opt-in ``endplate_line_mm``,
    :mod:`.endplate_line`)."""
    reach = endplate_reach_mm(spacing, params.endplate_fill_mm, params.endplate_fill_min_voxels)
    longer = reach > params.endplate_fill_mm
    if not longer and params.endplate_line_mm <= 0:
        return None
    out = bodies
    if longer:
        out = fill_to_endplate(out, dark, spacing, reach)
    if params.endplate_line_mm > 0:
        out = extend_to_endplate_line(
            out, dark, spacing, params.endplate_line_mm, params.endplate_line_gap_mm
        )
    return out


def _too_few(found: int, canal_rows: tuple[int, int], spacing: NDArray) -> bool:
    """Whether ``found`` bodies are too few for the canal's length (see ``MIN_BODIES``)."""
    length_mm = (canal_rows[1] - canal_rows[0] + 1) * float(spacing[1])
    return found < MIN_BODIES or found < 0.5 * length_mm / BODY_PITCH_MM


def _t1_bodies(
    t1: NDArray[np.float32],
    t2: NDArray[np.float32] | None,
    polarity: str,
    canal: Canal,
    column: NDArray[np.bool_],
    distance: NDArray[np.float32],
    near: NDArray[np.bool_],
    spacing: NDArray,
    params: AutosegParameters,
) -> tuple[
    NDArray[np.int32], NDArray[np.bool_], list[str], NDArray[np.bool_], NDArray[np.bool_] | None
]:
    """Bodies, marrow, notes, grown voxels and the cortex-dark mask (None with dark marrow)
    from the T1 read with the given polarity."""
    if polarity == DARK:
        t1, t2 = _dark_marrow_turned_bright(t1, t2, column, distance, canal, spacing, params)
    where = (canal.midline, canal.rows)
    marrow = marrow_mask(t1, t2, column, distance, *where, spacing, params)
    percentile = params.marrow_reference_percentile
    dark = None if polarity == DARK else cortex_mask(t1, column, near, spacing, params, percentile)
    bright_t1 = t1 if polarity == BRIGHT else None
    bodies, notes, grown = _bodies_from_marrow(
        marrow,
        dark,
        distance,
        canal,
        spacing,
        params,
        bright_t1=bright_t1,
        face_layer=params.coarse_face_layer,
        confine_rejected=True,
    )
    if dark is not None:  # soft tissue with the marrow's T1 signal has no cortical rim
        bodies, rimless = drop_without_cortex(bodies, dark, spacing, params.cortex_share_factor)
        notes = [*notes, *rimless]
    return bodies, marrow, notes, grown, dark


def _bodies_from_marrow(
    marrow: NDArray[np.bool_],
    dark: NDArray[np.bool_] | None,
    distance: NDArray[np.float32],
    canal: Canal,
    spacing: NDArray,
    params: AutosegParameters,
    from_midline: bool = False,
    bright_t1: NDArray[np.float32] | None = None,
    face_layer: bool = False,
    confine_rejected: bool = False,
    caudal_cut: NDArray[np.float32] | None = None,
    seed_alone: bool = False,
    ends_kept: bool = False,
    mid_slice: bool = False,
    seeded: SlabSeeds | None = None,
) -> tuple[NDArray[np.int32], list[str], NDArray[np.bool_]]:
    """Seeds split and grown back, lesions filled, cortex added, then checked per body.

    ``from_midline`` (without a T1): seeds from the mid-sagittal slab grown back by
    watershed, with a second pass for bodies joined to the tissue in front
    (:mod:`.midline`). ``bright_t1`` (a T1 whose marrow is bright, or a plain T2 alone with
    ``t2_posterior_band``: an image on which the cortex is darker than the marrow on both
    sides of it): the dark band of posterior elements along the lateral sections'
    posterior edge is cut after the lesion fill (:mod:`.posterior`). ``face_layer`` (the
    T1 path, opt-in ``coarse_face_layer``): on pixels coarser than ``cortex_mm`` the shell
    takes the face neighbours with dark cortex in or right beyond them
    (:func:`.bodies.add_cortex`); without a T1 the shell is read per body instead
    (``dark_shell_max_mm``). ``confine_rejected`` (the T1 path): seeds that
    cannot be one body are cut back to the column and checked again
    (:func:`.bodies.split_bodies`). ``caudal_cut`` (a plain T2 alone, the image): the
    caudal-most segment too large for a body is cut back to S1 before the size check when
    it shows S1's evidence (:func:`.oversized.cut_back_caudal`; opt-out
    ``t2_caudal_cut``). ``seed_alone`` (a fat-suppressed image alone, with
    ``from_midline``): a mid-slab seed under the volume floor alone at its level is kept
    (:func:`.midline.alone_at_level`). ``ends_kept`` (a fat-suppressed image alone): the
    size check keeps a small segment at the column's either end (:func:`.checks.check_sizes`).
    ``mid_slice`` (a plain T2 alone, with ``from_midline``): a seed far larger than the
    others is also read on the mid-sagittal slice (:func:`.midline.mid_slice_seeds`).
    ``seeded`` (with ``from_midline``): the mid-slab seeds of ``marrow`` when the caller
    has them (:func:`.midline.seed_mid_slab`). Returns the bodies (labels 1..n), the notes
    of the checks (bodies dropped) and the voxels the cortex steps grew (for
    :func:`.apart.keep_apart`).
    """
    if from_midline:
        bodies = bodies_from_midline(
            marrow, distance, canal.front, canal.midline, spacing, params, seed_alone,
            mid_slice, seeded,
        )  # fmt: skip
    else:
        midline = canal.midline if confine_rejected else None
        bodies = split_bodies(marrow, distance, canal.front, spacing, params, midline)
    bodies = confine_laterally(bodies, canal.midline, spacing, params)
    bodies = fill_lesions(bodies, spacing, params)
    if bright_t1 is not None:
        bodies = trim_posterior_band(bodies, bright_t1, canal.midline, spacing)
    before = bodies
    bodies = add_cortex(bodies, spacing, params, marrow if face_layer else None, dark)
    if dark is not None and params.endplate_fill_mm > 0:
        bodies = fill_to_endplate(bodies, dark, spacing, params.endplate_fill_mm)
    if dark is not None:
        bodies = grow_cortex(bodies, dark, spacing, params, face_layer)
    # Grown from both endplates through a disc's dark annulus, neighbours may meet: the
    # grown voxels are returned so that the caller keeps the bodies apart after its checks.
    grown = (bodies > 0) & (before == 0)
    bodies = drop_small(bodies, spacing, params)
    cut_notes: list[str] = []
    if caudal_cut is not None:
        bodies, cut_notes = cut_back_caudal(
            bodies, caudal_cut, canal.midline, spacing, params, grown
        )
    # A plain T2 alone, the bodies read on the mid-sagittal slice: a segment as tall as a
    # body, alone at its level, is kept under the volume floor.
    tall = params.t2_whole_height_fraction if mid_slice else 0.0
    over = params.t2_whole_height_over_tissue  # what is too large for a body covers no level
    bodies, notes = check_sizes(
        bodies, spacing, params, ends_kept=ends_kept, tall_kept=tall, tall_over_large=over
    )
    return bodies, [*cut_notes, *notes], grown


def _dark_marrow_turned_bright(
    t1: NDArray[np.float32],
    t2: NDArray[np.float32] | None,
    column: NDArray[np.bool_],
    distance: NDArray[np.float32],
    canal: Canal,
    spacing: NDArray,
    params: AutosegParameters,
) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
    """Smooth T1 (and T2) and invert the T1 so that dark marrow becomes bright marrow."""
    sigma = params.dark_marrow_smooth_mm / spacing
    t1 = ndimage.gaussian_filter(t1, sigma)
    t2 = None if t2 is None else ndimage.gaussian_filter(t2, sigma)
    near = near_canal(column, distance, canal.midline, canal.rows, spacing)
    inverted = invert(t1, near, params.marrow_reference_percentile, params.dark_marrow_floor)
    return inverted, t2


def find_vertebral_bodies(study: Study, params: AutosegParameters | None = None) -> VertebraLabels:
    """Segment the vertebral bodies of a sagittal study and name their levels.

    Parameters
    ----------
    study : Study
        T1 plus T2 and/or STIR on the T1 grid (sagittal or near-sagittal).
    params : AutosegParameters, optional
        Thresholds; the defaults when omitted.

    Returns
    -------
    VertebraLabels
        ``bodies`` on the study grid (uint8): VerSe ids when the sacrum anchors the levels,
        else ids ``1..n`` cranial to caudal with every level None. ``convention`` is
        ``"automatic"``; ``provenance`` holds the method, parameters, anchor, confidence and
        the evidence behind it.

    Raises
    ------
    BmetoolkitError
        No spinal canal was found (no CSF column on the fluid image).

    Examples
    --------
    >>> from bmetoolkit.data.phantom import PhantomConfig, make_phantom
    >>> ph = make_phantom(seed=3, config=PhantomConfig.small())
    >>> labels = find_vertebral_bodies(Study.from_images(ph.t1, t2=ph.t2, stir=ph.stir))
    >>> labels.convention, labels.bodies.data.dtype.name
    ('automatic', 'uint8')
    """
    params = params or AutosegParameters()
    started = time.perf_counter()
    frame = CanonicalFrame.of(study.grid)
    box = _covered_box(study)
    view = lambda volume: frame.view(volume.data[box])  # noqa: E731
    found = segment_bodies(
        None if study.t1 is None else view(study.t1),
        view(study.fluid),
        frame.spacing,
        t2=None if study.t2 is None else view(study.t2),
        params=params,
        fat_suppressed=study.stir is not None,
    )
    # The levels are read on the bodies without the opt-in dark shell (same labels).
    named = found.bodies if found.level_bodies is None else found.level_bodies
    ap, lr = _column_box(named > 0)  # the level naming reads only around the bodies
    crop = (ap, slice(None), lr)
    # The fluid image too: what lies below the caudal-most body (a disc, then marrow).
    fluid = view(study.fluid)[crop]
    # From a fat-suppressed image alone (a study without a T1 and a T2 has a STIR) the
    # segments' outlines are not always the endplates: each surface's tilt is read on the
    # image's cortex instead.
    stir_alone = study.t1 is None and study.t2 is None
    # From a T2 alone too (the cortex is dark on a T2), since session 37.
    window = params.suppressed_endplate_window_mm if stir_alone else 0.0
    t2_alone = study.t1 is None and study.t2 is not None
    if t2_alone:
        window = params.t2_endplate_window_mm
    shapes = body_shapes(
        named[crop],
        found.midline - lr.start,
        frame.spacing,
        fluid=fluid,
        endplate_window_mm=window,
        neighbour_faces_outline=t2_alone,
    )
    assignment = assign_levels(
        shapes, found.marrow[crop], frame.spacing, params, canal_end_row=found.canal_rows[0]
    )
    # A count from the sacrum that failed: the segments left out below it are bodies.
    assignment = kept_below_unknown_sacrum(assignment, shapes, named[crop], params)
    if stir_alone and not params.levels_from_stir_alone:
        # The segments left out below the sacrum were left out on the same weak evidence.
        back = given_back_below_sacrum(assignment, shapes, named[crop])
        assignment = withheld(
            assignment, "bodies from a STIR alone", STIR_ALONE_LEVELS_NOTE, given_back=back
        )
    shapes = [s for s in shapes if s.label in assignment.levels]  # segments below S1 left out
    ids = _output_ids(assignment, [s.label for s in shapes])
    lookup = np.zeros(int(found.bodies.max()) + 1, np.uint8)
    for label, new in ids.items():
        lookup[label] = new
    data = np.zeros(study.grid.shape, np.uint8)
    data[box] = frame.to_grid(lookup[found.bodies])
    notes = [*found.notes, *assignment.notes]
    if found.polarity == DARK:
        notes.insert(0, DARK_MARROW_NOTE)
    if study.t1 is None:
        notes.insert(0, _fluid_only_note(study))
    provenance = _provenance(assignment, params, frame, time.perf_counter() - started)
    provenance["contrasts"] = _contrasts(study)
    provenance["images_used"] = _images_used(study, found.images)
    provenance["t1_marrow"] = found.polarity
    provenance["t1_marrow_evidence"] = found.polarity_evidence
    return VertebraLabels(
        bodies=study.fluid.with_data(data, kind="label", source="bmetoolkit.spine.autoseg"),
        levels={ids[s.label]: assignment.levels[s.label] for s in shapes},
        convention="automatic",
        provenance=provenance,
        notes=tuple(notes),
    )


def _contrasts(study: Study) -> str:
    """The study's images, e.g. ``"T1 + STIR"`` or ``"T2"``."""
    images = (("T1", study.t1), ("T2", study.t2), ("STIR", study.stir))
    return " + ".join(name for name, image in images if image is not None)


def _images_used(study: Study, used: tuple[str, ...]) -> list[str]:
    """Names of the images the bodies were read from (``fluid`` is the STIR, else the T2)."""
    fluid = "STIR" if study.stir is not None else "T2"
    names = {"t1": "T1", "fluid": fluid, "t2": "T2"}
    return list(dict.fromkeys(names[u] for u in used))


def _fluid_only_note(study: Study) -> str:
    """Note for a study without a T1: what the bodies were read from."""
    source = "T2" if study.t2 is not None else "STIR"
    return (
        f"no T1: the bodies were segmented from the {source} alone (canal and discs from "
        "their fluid signal, marrow as the intermediate signal in front of the canal); "
        "check them in the QC figure"
    )


def _covered_box(study: Study) -> tuple[slice, slice, slice]:
    """Bounding box (grid voxels) of the part of the T1 grid every other image covers.

    Outside it the T2/STIR are zeros from resampling, which would pass for dark tissue.
    """
    box = occupied_box(study.analysable())
    return box if box[0].start != box[0].stop else (slice(None),) * 3


def _output_ids(assignment: LevelAssignment, order: list[int]) -> dict[int, int]:
    """VerSe id of each label when levels are known, else 1..n cranial to caudal."""
    if assignment.anchor is None:
        return {label: k for k, label in enumerate(order, start=1)}
    return {label: verse_id(assignment.levels[label]) for label in order}


def _provenance(
    assignment: LevelAssignment,
    params: AutosegParameters,
    frame: CanonicalFrame,
    elapsed: float,
) -> dict[str, Any]:
    return {
        "method": METHOD,
        "parameters": params.to_dict(),
        "anchor": assignment.anchor,
        "level_confidence": assignment.confidence,
        "level_evidence": assignment.evidence,
        "grid_obliquity_deg": round(frame.obliquity_deg, 1),
        "seconds": round(elapsed, 2),
    }
