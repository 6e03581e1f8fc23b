"""Every threshold of the analysis, with its unit and default, in one object.

:class:`Parameters` is frozen: change a value with :meth:`Parameters.replace`. It is saved in
every report (``report.json`` → ``"parameters"``), so a result can always be reproduced, and
read back with :meth:`Parameters.from_dict`, :meth:`Parameters.from_file` (a JSON file
holding any subset of the fields) or :meth:`Parameters.from_argument` (the CLI's ``--params``:
such a file, or the JSON object itself).

The thresholds of the automatic vertebral-body segmentation sit in the nested section
``autoseg`` (:class:`bmetoolkit.spine.autoseg.AutosegParameters`, any of its fields):
``{"autoseg": {"<name>": value}}`` in a file or dict, ``Parameters(autoseg={...})`` or
``replace(autoseg={...})`` in Python (values not given keep their defaults). Left at its
defaults the section is ``None`` and the segmentation (and scipy.stats, which it imports) is
not imported: a run with vertebra labels does not pay for it.

Intensity thresholds are **ratios to the subject's normal marrow** of the same sequence
(see :mod:`bmetoolkit.reference`): 1.0 is normal marrow, 0.8 is 20 % darker.

Examples
--------
>>> params = Parameters()
>>> params.t1_hypo_ratio, params.min_lesion_mm3
(0.8, 50.0)
>>> Parameters.from_dict({"min_lesion_mm3": 100}).min_lesion_mm3
100.0
>>> Parameters.from_dict({"min_lesion": 1})
Traceback (most recent call last):
...
ValueError: unknown parameter 'min_lesion' (did you mean 'min_lesion_mm3'?); known parameters: ...
>>> Parameters.from_argument('{"stir_hyper_ratio": 1.3}').stir_hyper_ratio
1.3
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bmetoolkit.errors import BmetoolkitError

if TYPE_CHECKING:
    from bmetoolkit.spine.autoseg.params import AutosegParameters

__all__ = ["AREA_GRADE_LIMITS_PCT", "HEIGHT_GRADE_LIMITS_PCT", "T1_CRITERIA", "Parameters"]

#: Roles the T1 can play in the edema decision (see ``Parameters.t1_criterion``).
T1_CRITERIA = ("auto", "required", "supporting", "ignored")
#: Parameters of earlier versions that no longer exist; a file naming them (an old
#: ``report.json``) still reads, without them.
RETIRED_PARAMETERS = frozenset({"central_fraction"})

#: What ``--params`` takes, for the messages.
_PARAMS_HINT = (
    "give a JSON object such as '{\"stir_hyper_ratio\": 1.3}', or a JSON file of parameters "
    "or a report.json"
)


def _autoseg_class() -> type:
    """:class:`AutosegParameters`, imported on first use (its package imports scipy)."""
    from bmetoolkit.spine.autoseg.params import AutosegParameters

    return AutosegParameters


#: Nested sections of :class:`Parameters`: field name -> the dataclass of its values.
_SECTIONS = {"autoseg": _autoseg_class}

#: Height grade limits, % of the vertebral body height: A below 25, B 25-50, C above 50
#: (Udby et al., J Orthop Res 2022).
HEIGHT_GRADE_LIMITS_PCT = (25.0, 50.0)
#: Endplate area limits, % of the endplate: small below 25, medium 25-<50, large from 50.
AREA_GRADE_LIMITS_PCT = (25.0, 50.0)


@dataclass(frozen=True)
class Parameters:
    """Thresholds and settings of marrow masks, reference, BME and Modic classification.

    Marrow
    ------
    cortex_mm : float
        Marrow starts this far (mm) beyond the outermost voxel layer of a vertebral body
        (that layer is never marrow: it straddles the surface); cortex and endplates are
        excluded. Default 0.5.
    body_opening_mm : float
        Radius (mm) of the morphological opening that separates a vertebral body from its
        posterior elements when a label map covers whole vertebrae (SPINEPS,
        TotalSegmentator). Default 5.0.
    shell_ratio, max_shell_mm : float
        The dark bone left inside the marrow mask (thick or domed endplates, cortex smeared
        by thick slices) is measured on each scan: marrow starts where the median of the
        brighter of the T1 and fluid ratios, over all bodies, first reaches ``shell_ratio``
        of normal marrow, at most ``max_shell_mm`` below the endplates and inside the
        walls (see :mod:`bmetoolkit.spine.cortex`). Defaults 0.85 / 4.0.

    Intensity reference (normal marrow)
    -----------------------------------
    reference_degree : int
        Degree of the polynomial (in RAS mm) fitted robustly to log marrow intensity; it
        absorbs coil shading across and within the vertebrae. 0 gives one value per
        subject. Default 2.
    reference_inlier_z : float
        Normal marrow, on which the reference is fitted, is the marrow whose log signal lies
        within this many robust SDs of a first robust fit on *every* sequence: edema bright on
        STIR is left out of the T1 reference too. Default 2.5.
    reference_per_body : bool
        Give each body its own factor on top of the field (robust location of its normal
        marrow), for the marrow differences between vertebrae. Default True.
    max_body_offset : float
        Largest per-body factor departure from the field (0.2: between 0.8 and 1.2).
        Default 0.2.
    min_normal_fraction : float
        A body gets its own factor only when at least this fraction of its marrow is normal
        on every sequence; otherwise the field alone is its reference and its reference
        confidence is low. Default 0.4.
    reference_mask_degree : int
        Degree of the reference field fitted inside a user's normal-marrow mask
        (``reference_mask=``): 0, one value per sequence, as readers take the mean of a
        reference region; higher degrees only when the region spans the marrow. Default 0.
    reference_bias_correction : bool
        Run SimpleITK's N4 bias field correction on each image before the reference fit.
        Default False (the polynomial already models smooth shading).
    reference_region_mm, reference_region_z : float
        With marrow masks (any bone; the spine's bodies are small and keep their own
        factor per body, so there the reference is estimated voxel by voxel). Voxel by
        voxel a faint edema filling much of a bone lies within the reference's window of
        mottled marrow: the polynomial field bends towards it and its voxels widen the
        spread the decision levels come from (half a bone at 1.35-1.5 x: nothing found).
        So the first field is fitted to the marrow averaged over ``reference_region_mm``
        (each bone at its own level), where the mottle shrinks and the edema does not,
        with the biweight's scale held to the densest half of the averages and the field's
        level set by the voxels; and normal marrow must also be normal averaged so, within
        ``reference_region_z`` robust SDs of normal marrow's own averages (a trimmed
        estimate) on every sequence. 0 estimates the reference voxel by voxel, as before
        session 26 (docs/log/bones.md). Defaults 15 / 3.0.

    Decisions (adapted to each scan)
    --------------------------------
    Every intensity decision is made on the ratio images smoothed within the marrow
    (``decision_smoothing_mm``), at a level set by the scan's own normal marrow: a decision
    level is ``exp(z * sd)`` above (or ``exp(-z * sd)`` below) normal, where ``sd`` is the
    robust SD of the smoothed log ratio of that sequence's normal marrow (noise and
    texture), and never closer to normal than the minimum contrast ratio given below.

    decision_smoothing_mm : float
        Width (mm) of the box average within the marrow before decisions; an axis whose
        voxels are coarser than this is not smoothed. 0 disables. Default 2.0.
    grow_z, seed_z : float
        Robust z-scores of the grow and seed levels of every hysteresis (edema, type II,
        type III). Defaults 2.5 / 4.0.
    t1_criterion : str
        Role of the T1 in the edema decision: ``"required"`` (T1-dark as well as
        fluid-bright), ``"supporting"`` (fluid-bright and not T1-bright, i.e. not fat; the
        T1-dark part is reported apart), ``"ignored"``, or ``"auto"`` (the default):
        supporting with a STIR or fat-suppressed image, which separates edema from fat,
        required with a plain T2, on which fat is bright too.

    Bone marrow edema (minimum contrast ratios to normal marrow)
    ------------------------------------------------------------
    t1_hypo_ratio, t1_hypo_seed_ratio : float
        T1-dark means at or below the scan's level and at most this ratio (grow / seed of
        the hysteresis; also the T1-dark part of the edema, and type III). With the T1
        criterion ``supporting``, a fluid-bright region (grow level) whose median T1 ratio
        is at the seed level is edema without a fluid seed (two criteria at once; real
        edema is often only 1.2-1.5x normal marrow on STIR where the T1 shows it clearly).
        Defaults 0.80 / 0.70.
    stir_hyper_ratio, stir_hyper_seed_ratio : float
        STIR (or fat-suppressed T2) bright means at or above the scan's level and at least
        this ratio. Defaults 1.20 / 1.40.
    t2_hyper_ratio, t2_hyper_seed_ratio : float
        The same for plain T2, used only when there is no STIR. Defaults 1.15 / 1.30.
    edema_t1_max_ratio : float
        With the T1 criterion ``supporting``, an edema region whose median T1 ratio is above
        this is fatty or a haemangioma, not edema, and is dropped. Default 1.05.
    lesion_edge_fraction : float
        Each edema region ends where its fluid ratio falls to this fraction of its own
        contrast above normal (0.5: half maximum, where partial volume puts a boundary;
        the peak is the region's 95th percentile). 0 keeps everything above the grow
        level. Default 0.5.
    grow_into_wall : bool
        Edema that reaches a bone's wall continues into the bone's outermost voxel layer
        (left out of the marrow: it straddles the surface) where that layer is as bright as
        the lesion's edge (see ``lesion_edge_fraction``); on thick slices the side slice of a
        body holds a sizeable part of a lesion touching the wall. Not at the endplates
        (their layer mixes in the disc). Default True.
    min_lesion_mm3 : float
        Connected lesions smaller than this (mm³) are dropped. mm³, not voxels: grids are
        anisotropic. Default 50.
    focal_max_mm, focal_max_ratio : float
        A *focal spot* is a round edema region (no longer than ``focal_max_mm`` along any
        axis, and its shortest extent at least half its longest) whose fluid decision image
        stays below ``focal_max_ratio`` of normal marrow, times the scan's own spread at
        the 95th percentile (``exp(1.645 sd)``: the region's peak is its 95th percentile).
        Islands of red (haematopoietic) marrow look like this: round, up to about 1.5 cm,
        at most mildly bright on STIR (about 1.1-1.5 x), and readers do not score them as
        edema. Such spots are left out of the edema (and of Modic type I) and reported apart
        (``checks.focal_spots`` and a note). Edema, even faint, spreads wider or flatter
        (along an endplate or an articular surface, around a fracture), and small edema
        brighter than this is kept. With bone masks (:mod:`bmetoolkit.bones.spots`) a faint
        region (its median fluid ratio below ``focal_max_ratio``) up to twice
        ``focal_max_mm``, less than half of which lies within ``subchondral_mm`` of an
        articular surface (or within ``spot_base_fraction`` of its extent), is left out,
        whatever its shape.
        ``focal_max_ratio`` 0 keeps every spot. Defaults 15 / 1.5.
    vein_max_height_frac : float
        An edema region that is thin in SI (at most this fraction of its body's height),
        runs forward from the posterior edge of the marrow in the midline at mid-height,
        away from both endplates, and reaches at most 60 % of the body's depth is the
        basivertebral vein (blood, bright on STIR and T2, iso- to hypointense on T1), not
        edema: left out of the edema and reported apart (``checks.basivertebral_veins`` and
        a note; :mod:`bmetoolkit.veins`). 0 keeps it as edema. Default 0.3 (a vein of up to
        4 mm, widened by the decision smoothing, in a body of 24-30 mm).

    Modic classification
    --------------------
    t1_hyper_ratio, t1_hyper_seed_ratio : float
        T1-bright (type II, fatty) means at or above the scan's level and at least this
        ratio: grow / seed. Defaults 1.12 / 1.20.
    fluid_hypo_ratio, fluid_hypo_seed_ratio : float
        T2/STIR-dark (type III, sclerosis, with T1-dark) means at or below the scan's level
        and at most this ratio: grow / seed. Defaults 0.80 / 0.70.
    stir_fat_max_ratio : float
        With a STIR, type II needs STIR at or below this ratio (fat nulled). Default 1.0.
    endplate_contact_mm : float
        A finding is an endplate (Modic) change when it comes within this distance (mm) of
        the endplate's first marrow voxels (below the endplate's rim voxel layer);
        otherwise it is BME away from the endplates. Default 2.5.
    mixed_min_fraction : float
        A second type is reported (mixed, e.g. ``"I/II"``) when it makes up at least this
        fraction of the endplate's changed volume. Default 0.2.
    min_modic_mm3 : float
        Type II and III regions smaller than this (mm³) are dropped: small dark or bright
        spots along the cortex are partial volume, more so on coarse grids. Default 200.
    modic_core_mm : float
        Type II and III regions must reach deeper than this (mm) beyond the outermost voxel
        layer of the body; thinner ones along the cortex look the same (dark cortex mixed
        with marrow in one voxel) and are dropped. Voxels of this wall layer also do not
        count towards a Modic band's reach (``modic_min_depth_mm``). Default 1.5.
    modic_min_depth_mm : float
        A changed region is a Modic change only when its typical reach (75th percentile
        over its endplate columns) below where the marrow starts under the endplate (beyond
        the measured dark shell) is at least this (mm, and one voxel): thinner bands are
        normal fatty marrow or bone, which no signal tells from a thin Modic II. Chosen on
        the randomised phantom's tuning seeds (3 mm: 20 false endplates, 4 mm: 12, 5 mm: 11;
        type accuracy 93.6, 94.0, 93.8 %). Changes thinner than about this plus the shell
        (grade A changes of 4-6 mm) are missed. Default 4.0.
    modic_min_edema_depth_mm : float
        The same for a region mostly of edema (type I): no fatty band or thickened bone is
        fluid-bright, so a thinner band of edema along an endplate is a Modic I. On the
        randomised tuning seeds (regions logged by a throwaway script, 2026-11-30): 3 mm
        turns 4 missed type I bands into Modic I and no other region; 2.5 mm 7 and one edema
        band that is not in the truth. Default 3.0.
    modic_min_area_pct : float
        A type II or III region must cover at least this % of its endplate's columns: a
        focal fat spot or a small dark island next to an endplate is not a Modic change
        (which spreads along the endplate). Default 10.
    modic_min_attached, modic_attach_mm : float
        A Modic change is attached to its endplate: in at least ``modic_min_attached`` of
        the endplate columns it covers, its shallowest voxel ends within ``modic_attach_mm``
        (and two voxels) below where the marrow starts. Edema centred in the body (around a
        fracture, bone marrow edema syndrome) that reaches an endplate somewhere is BME,
        not Modic I. Not applied on voxels coarser than 2 mm along the spine. On the
        randomised tuning seeds' candidate regions (logged by a throwaway script,
        2026-11-30), true Modic bands are attached over 0.67-1.0 of their columns (median
        0.93), edema that is not Modic over 0-0.60 (median 0). Defaults 0.6 and 2.0.
    modic_anchor_fraction : float
        A Modic change is also anchored at its endplate: the median depth of its voxels
        below the nearer endplate is at most this fraction of the body height. A band from
        the endplate down to 70 % of the height (grade C) has a median depth of about 0.35;
        edema whose bulk lies deeper is BME. With attachment, 0.35 rather than the former
        0.3 (median depth alone): on the tuning seeds' candidate regions the pair rejects
        the 3 edema regions the former rule called Modic and accepts the one tall type II
        (56 % of the height, median 0.31) it missed. Default 0.35.
    region_median_margin : float
        A type II or III region's median ratio must pass its grow level by this fraction of
        the distance from normal (e.g. 0.5: half-way between normal and the level beyond
        the level): a region of noise or texture that merely touches the level is dropped.
        Default 0.25.
    modic_spot_mm : float
        Opt-in (0, the default, finds none). A changed region at an endplate, mostly of fat
        or sclerosis, that spans at most this (mm) along every axis of its body (between
        voxel centres) and along SI at least half as far as along the endplate is a focal
        spot (focal fat: round, up to about 1.5 cm, as edema's ``focal_max_mm``), not a
        Modic change, which spreads along the endplate. Regions mostly of edema are left
        to the edema's own focal-spot rule. At 15 on the randomised tuning seeds
        (docs/log/validation.md, session 15): 4 false Modic endplates removed (seeds 0-59,
        healthy 60-89, mixed-Modic sweep 0-29) and 3 true ones lost (mixed-Modic sweep:
        type III and mixed changes found in round fragments); held-out seeds 5000-5059 and
        the held-out healthy sweep: 1 false endplate removed, 1 true one lost. So it is not
        the default; it is for real marrow whose focal fat gives scattered small Modic II
        calls.

    Any bone (marrow masks)
    -----------------------
    articular_gap_mm : float
        A bone's surface voxels closer than this (mm) to another bone of the mask form its
        articular surface, from which lesion depths are measured (cartilage and joint space
        are 2-8 mm in the knee, hip and sacroiliac joints). Default 10.
    subchondral_mm : float
        A lesion reaching within this distance (mm) of the articular surface is
        subchondral (the subchondral plate and the voxel layer at the bone surface, never
        analysed, lie in between). Default 5.
    spot_base_fraction : float
        In bones with a joint, a faint region counts as based on the subchondral bone
        (edema, not red marrow) when half of it lies within ``subchondral_mm`` of the
        articular surface or within this fraction of its own extent (its longest side along
        the grid axes): a faint dome 3 cm across seated on the surface is edema (a third of
        its extent holds 85 % of a dome; only 48 % lies within 5 mm), a round island
        touching the surface with its edge is not (26 %). 0 judges by ``subchondral_mm``
        alone. Default 0.333.
    cyst_fluid_fraction : float
        A fluid-bright region whose core reaches this fraction of the scan's free-fluid
        signal (joint fluid, cysts, CSF: measured on the scan, see :mod:`bmetoolkit.bones`)
        is fluid (a subchondral cyst), not edema: edema is marrow holding water, well below
        free fluid. Default 0.6.
    coarse_seed_mm : float
        A lesion may also start where the fluid ratio averaged over this width (mm, within
        the marrow) reaches ``seed_z`` SDs of normal marrow averaged the same way: a faint
        but large lesion stands out once the noise is averaged away. 0 disables. Default 6.
    region_seed_mm : float
        A second, wider scale of the same test (mm): a faint lesion of a few millilitres
        stands out of marrow whose mottle (patches of a few mm, brighter and darker than the
        reference) lifts the ``coarse_seed_mm`` level above it, because the mottle averages
        out over a region far larger than its patches and the lesion does not (15 for
        that). Opt-in: averaged over 15 mm the mottle's spread is read on few independent
        patches, and a healthy tuning knee got 0.18 mL of edema from it. 0 disables.
        Default 0.
    extent_seed_factor : float
        Marrow mask (any bone) only. A region above the fluid grow level that holds no seed
        starts a lesion when it is more than this many times as large as the largest region
        of the same marrow below the mirrored level (``1 / grow``): normal marrow's mottle
        and noise make dark patches as large as bright ones, edema only brightens, so the
        scan's own largest dark patch is the size a bright one reaches by chance; a large
        faint edema in mottled marrow is found though none of its voxels reaches the seed
        levels (:func:`bmetoolkit.ratios.extent_seed_mask`; never less than this many times
        ``min_lesion_mm3``). 2 leaves room for the bright tail real marrow has and its
        mirror lacks (red-marrow islands). 0 disables. Default 2.
    coarse_seed_articular_mm : float
        Such faint evidence counts only within this distance (mm) of an articular surface,
        where subchondral edema, bruises and sacroiliitis lie (red-marrow islands, as faint,
        lie in the metaphyses); not applied to a mask without a joint. Default 15.
    band_at_grid_edge : bool
        Marrow mask (any bone) only. Whether the edge of the study grid counts as outside
        the bone for the partial-volume band (where a lesion may not start) also for an
        image acquired on the study grid's own voxels (the fluid image of a study without
        a T1). Within the grid, a bone voxel next to a voxel outside the bone is in the
        band, because the bone's surface may lie within its slice; at the grid's edge the
        mask cannot show whether the bone goes on beyond the last slice, so the last
        slice may hold the bone's surface (its side cut by a tight field of view) and mix
        what lies around it into the marrow. An image on another grid, resampled, always
        counts the edge as outside (it reaches beyond it). False: the edge slice of an
        image on the study grid is the bone's own marrow (before session 30). Default True.
    fainter_joined_mm : float
        A fainter lesion joined at the grow level to a brighter one (a bruise beside an
        edema) is cut away with the brighter one's margin by its half maximum; a part cut
        away that holds a seed of its own farther than this (mm) from what was kept is a
        lesion, cut at half its own contrast (the width of ``coarse_seed_mm``: a seed
        nearer may be lifted by the bright lesion's signal). 0 disables. Default 6.
    lesion_core_reach_mm : float
        Opt-in. How far (mm) a region's edge may move out from its half maximum (at its
        95th percentile) to half the contrast of the lesion that cut kept, read as its
        median (never below the 95th percentile lowered by the share the scan's noise
        explains): on a noisy plateau the 95th percentile lies above the plateau and the
        first edge above the lesion's half maximum. Not into the partial-volume band; the
        any-bone analysis only (:func:`bmetoolkit.bones.edges.half_maximum_of_core`). At 2
        (the width of ``decision_smoothing_mm``) the tuning joint phantoms' volume error
        falls (signed median -12 -> -8 %), but the change error of tuning joint follow-up
        pairs 16-31 rises (median 0.23 -> 0.62 mL): the median's share of ramp grows as a
        lesion shrinks, so the correction is not the same at both visits
        (docs/log/bones.md, session 29). 0 (the default) disables.
    band_decided_jointly : bool
        Marrow mask (any bone), follow-up only. Whether a comparison decides the
        partial-volume band (the outermost thick slice, where a lesion may not start and
        is kept only near its voxels outside the band) of both visits together: the
        other visit's edema outside its own band, brought onto this visit's grid through
        the registration, counts as a lesion's own voxels there, so a lesion one visit's
        slice placement put in its band is not cut or dropped there while the other
        visit keeps it (:mod:`bmetoolkit.followup.joint_bones`). It only keeps band voxels
        the visit's own analysis grew. Both visits must have it on. Default True.
    spots_decided_jointly : bool
        Marrow mask (any bone), follow-up only, with ``band_decided_jointly``. Whether a
        comparison decides the focal-spot rule of both visits together, as the spine's
        comparison does: a region one visit leaves out as a focal spot is kept there when
        it holds some of the other visit's edema (brought onto its grid through the
        registration), so a lesion is a spot only when it is one at both visits; a lesion
        that shrank under the spot rule's size is not reported resolved while it is still
        seen. It only keeps regions the visit's own analysis grew. Default True.

    Automatic vertebral bodies
    --------------------------
    autoseg : AutosegParameters or None
        Thresholds of the automatic segmentation, used when no vertebra labels are given
        (:class:`bmetoolkit.spine.autoseg.AutosegParameters`; ``docs/autoseg.md``). A dict
        gives some of its values, the others keep their defaults. None (the default, and
        what values equal to the defaults become) means the defaults. :meth:`to_dict` lists
        the values that differ from the defaults; the segmentation records all the values it
        used in the report's ``labels.provenance.parameters``.
    """

    cortex_mm: float = 0.5
    body_opening_mm: float = 5.0
    shell_ratio: float = 0.85
    max_shell_mm: float = 4.0
    reference_degree: int = 2
    reference_inlier_z: float = 2.5
    reference_per_body: bool = True
    max_body_offset: float = 0.2
    min_normal_fraction: float = 0.4
    reference_mask_degree: int = 0
    reference_bias_correction: bool = False
    reference_region_mm: float = 15.0
    reference_region_z: float = 3.0
    decision_smoothing_mm: float = 2.0
    grow_z: float = 2.5
    seed_z: float = 4.0
    t1_criterion: str = "auto"
    t1_hypo_ratio: float = 0.80
    t1_hypo_seed_ratio: float = 0.70
    stir_hyper_ratio: float = 1.20
    stir_hyper_seed_ratio: float = 1.40
    t2_hyper_ratio: float = 1.15
    t2_hyper_seed_ratio: float = 1.30
    edema_t1_max_ratio: float = 1.05
    lesion_edge_fraction: float = 0.5
    grow_into_wall: bool = True
    min_lesion_mm3: float = 50.0
    focal_max_mm: float = 15.0
    focal_max_ratio: float = 1.5
    vein_max_height_frac: float = 0.3
    t1_hyper_ratio: float = 1.12
    t1_hyper_seed_ratio: float = 1.20
    fluid_hypo_ratio: float = 0.80
    fluid_hypo_seed_ratio: float = 0.70
    stir_fat_max_ratio: float = 1.0
    endplate_contact_mm: float = 2.5
    mixed_min_fraction: float = 0.2
    min_modic_mm3: float = 200.0
    modic_core_mm: float = 1.5
    modic_min_depth_mm: float = 4.0
    modic_min_edema_depth_mm: float = 3.0
    modic_min_area_pct: float = 10.0
    modic_anchor_fraction: float = 0.35
    modic_attach_mm: float = 2.0
    modic_min_attached: float = 0.6
    region_median_margin: float = 0.25
    modic_spot_mm: float = 0.0
    articular_gap_mm: float = 10.0
    subchondral_mm: float = 5.0
    spot_base_fraction: float = 0.333
    cyst_fluid_fraction: float = 0.6
    coarse_seed_mm: float = 6.0
    region_seed_mm: float = 0.0
    extent_seed_factor: float = 2.0
    coarse_seed_articular_mm: float = 15.0
    band_at_grid_edge: bool = True
    fainter_joined_mm: float = 6.0
    lesion_core_reach_mm: float = 0.0
    band_decided_jointly: bool = True
    spots_decided_jointly: bool = True
    autoseg: AutosegParameters | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name in _SECTIONS:
                section = _section(f.name, getattr(self, f.name))
                object.__setattr__(self, f.name, section)
                continue
            value = getattr(self, f.name)
            expected = {"bool": bool, "int": int, "str": str}.get(f.type, float)
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))
            elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ValueError(f"parameter {f.name} must be {expected.__name__}, got {value!r}")
            value = getattr(self, f.name)
            if expected is float and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"parameter {f.name} must be a finite number >= 0, got {value}")
        self._check_order("t1_hypo_seed_ratio", "t1_hypo_ratio")
        self._check_order("stir_hyper_ratio", "stir_hyper_seed_ratio")
        self._check_order("t2_hyper_ratio", "t2_hyper_seed_ratio")
        self._check_order("t1_hyper_ratio", "t1_hyper_seed_ratio")
        self._check_order("fluid_hypo_seed_ratio", "fluid_hypo_ratio")
        for name in ("reference_degree", "reference_mask_degree"):
            if getattr(self, name) not in (0, 1, 2, 3):
                raise ValueError(f"parameter {name} must be 0, 1, 2 or 3")
        if self.t1_criterion not in T1_CRITERIA:
            raise ValueError(
                f"parameter t1_criterion must be one of {', '.join(T1_CRITERIA)}, "
                f"got {self.t1_criterion!r}"
            )
        self._check_order("grow_z", "seed_z")
        if not 0 < self.mixed_min_fraction <= 0.5:
            raise ValueError("parameter mixed_min_fraction must lie in (0, 0.5]")

    def _check_order(self, low: str, high: str) -> None:
        low_value, high_value = getattr(self, low), getattr(self, high)
        if low_value > high_value:
            raise ValueError(
                f"parameter {low} ({low_value}) must not exceed {high} ({high_value}): "
                f"set {high} to at least {low_value} too, or lower {low}"
            )

    def replace(self, **changes: Any) -> Parameters:
        """A copy with some values changed (checked like the constructor).

        A section given as a dict (``autoseg={...}``) starts from that section's defaults.
        """
        return dataclasses.replace(self, **changes)

    def t1_role(self, fluid: str) -> str:
        """The T1 criterion in force with fluid image ``fluid`` (``"stir"`` or ``"t2"``).

        >>> Parameters().t1_role("stir"), Parameters().t1_role("t2")
        ('supporting', 'required')
        """
        if self.t1_criterion != "auto":
            return self.t1_criterion
        return "supporting" if fluid == "stir" else "required"

    def to_dict(self) -> dict[str, Any]:
        """All values by name (JSON-serialisable); a section is a nested dict of its values
        that differ from the section's defaults (``{}`` when none do)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in _SECTIONS:
            values[name] = _changed(values[name])
        return values

    def digest(self) -> str:
        """Short hash of the values: equal digests, equal parameters."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Parameters:
        """Parameters from a (partial) dict; unknown names are an error, not ignored.

        A section (``"autoseg"``) is a nested dict of some of its values.
        """
        values = {k: v for k, v in values.items() if k not in RETIRED_PARAMETERS}
        _check_names(values, [f.name for f in fields(cls)], "parameter")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Parameters:
        """Parameters from a JSON file holding an object of (some) parameter values.

        A ``report.json`` written by bmetoolkit works too: its ``"parameters"`` are used.
        """
        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BmetoolkitError(
                "parameter file does not exist",
                path=path,
                hint="check the path, or give the values inline: --params '{\"name\": value}'",
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BmetoolkitError(
                f"cannot read parameters ({exc})", path=path, hint=_PARAMS_HINT
            ) from None
        if isinstance(values, dict) and isinstance(values.get("parameters"), dict):
            values = values["parameters"]
        return cls._from_json(values, path=path, hint="fix the parameter file")

    @classmethod
    def from_argument(cls, value: str | os.PathLike) -> Parameters:
        """Parameters from the command line's ``--params``: a JSON object or a file's path.

        Text starting with ``{`` is read as the JSON object itself
        (``--params '{"stir_hyper_ratio": 1.3}'``); anything else is a path for
        :meth:`from_file`.

        Raises
        ------
        BmetoolkitError
            The JSON cannot be read, is not an object, names an unknown parameter or holds
            a bad value (the command line exits with 1).
        """
        text = os.fspath(value)
        if not text.lstrip().startswith("{"):
            return cls.from_file(text)
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BmetoolkitError(
                f"cannot read the parameters given as JSON ({exc})", hint=_PARAMS_HINT
            ) from None
        return cls._from_json(values, path=None, hint="fix the JSON given to --params")

    @classmethod
    def _from_json(cls, values: Any, *, path: Path | None, hint: str) -> Parameters:
        if not isinstance(values, dict):
            raise BmetoolkitError("parameters must be a JSON object", path=path, hint=hint)
        try:
            return cls.from_dict(values)
        except (TypeError, ValueError) as exc:
            raise BmetoolkitError(str(exc), path=path, hint=hint) from None


def _check_names(values: Mapping[str, Any], known: list[str], what: str) -> None:
    """Raise ValueError naming the first unknown name of ``values`` (and the closest known)."""
    for name in values:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1)
            guess = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"unknown {what} {name!r}{guess}; known {what}s: {', '.join(sorted(known))}"
            )


def _section(name: str, value: Any) -> Any:
    """The section ``name`` as its dataclass, or None when it holds the defaults.

    ``value`` is None, an instance of the section's dataclass, or a dict of some of its
    values; those are checked against the type of the field's default (a number for a number,
    finite; a bool for a bool; text for text), with the field's dotted name in the message,
    so a section needs no checks of its own. The section's module is imported only when
    values are given.
    """
    if value is None or (isinstance(value, Mapping) and not value):
        return None
    kind = _SECTIONS[name]()
    if not isinstance(value, kind | Mapping):
        raise ValueError(
            f"parameter {name} must be a JSON object of {kind.__name__} values, got {value!r}"
        )
    defaults = kind()
    if isinstance(value, Mapping):
        _check_names(value, [f.name for f in fields(kind)], f"{name} parameter")
        checked = {
            key: _like(getattr(defaults, key), item, f"{name}.{key}") for key, item in value.items()
        }
        value = kind(**checked)
    return None if value == defaults else value


def _changed(section: Any) -> dict[str, Any]:
    """The values of a section that differ from its defaults (``{}`` for None)."""
    if section is None:
        return {}
    defaults = type(section)()
    return {
        f.name: getattr(section, f.name)
        for f in fields(section)
        if getattr(section, f.name) != getattr(defaults, f.name)
    }


def _like(default: Any, value: Any, name: str) -> Any:
    """``value`` checked against the type of ``default`` (ints given for floats become floats)."""
    if isinstance(default, bool) or isinstance(value, bool):
        if not isinstance(default, bool) or not isinstance(value, bool):
            raise ValueError(f"parameter {name} must be {type(default).__name__}, got {value!r}")
        return value
    if isinstance(default, int | float):
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"parameter {name} must be a finite number, got {value!r}")
        if isinstance(default, int) and not isinstance(value, int):
            raise ValueError(f"parameter {name} must be int, got {value!r}")
        return float(value) if isinstance(default, float) else value
    if isinstance(default, str) and not isinstance(value, str):
        raise ValueError(f"parameter {name} must be str, got {value!r}")
    return value
