"""Every threshold of the automatic vertebral-body segmentation, with its unit and default."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["AutosegParameters"]


@dataclass(frozen=True)
class AutosegParameters:
    """Thresholds and sizes of :func:`bmetoolkit.spine.autoseg.find_vertebral_bodies`.

    Intensities are relative to a reference measured on the same scan (no absolute units);
    lengths are in millimetres, angles in degrees, volumes in cubic millimetres.

    Parameters
    ----------
    tissue_fraction : float
        A voxel is tissue (not air) above this fraction of the image's 99th percentile.
    csf_ratio_min : float
        Fluid/T1 ratio, relative to the median ratio of tissue, above which a voxel may be
        CSF (CSF is very bright on T2/STIR and dark on T1; marrow and muscle are not).
    csf_fluid_min : float
        Fluid signal, relative to the median fluid signal of tissue, above which a voxel may
        be CSF.
    canal_min_length_mm : float
        Shortest superior-inferior extent (mm) of the CSF column taken as the spinal canal.
    canal_max_width_mm : float
        The CSF column is at most this wide (mm, left-right and anterior-posterior, median
        over SI rows): without a T1 in the search for the bright tube; with one, a deeper
        CSF-like component is tissue merged with the canal and is skipped.
    canal_min_depth_mm : float
        Without a T1: the CSF column is at least this deep (mm, anterior-posterior, median
        over SI rows); subcutaneous fat, bright on T2 too, is a thinner sheet.
    canal_smooth_mm : float
        Length (mm) of the running median that smooths the canal's anterior wall along SI.
    band_posterior_mm : float
        The body column starts this far anterior (mm) of the CSF's anterior wall; negative
        values reach behind it (the posterior longitudinal ligament and epidural fat sit
        in between).
    band_anterior_mm : float
        The body column ends this far anterior (mm) of the CSF's anterior wall.
    band_half_width_mm : float
        Half-width (mm, left-right) of the body column around the canal's midline.
    marrow_t1_min : float
        Marrow is brighter on T1 than this fraction of the local marrow reference (discs,
        endplates, muscle and Modic I/III lesions are darker and are filled in later).
    marrow_t2_max : float
        When a T2 is present, marrow is darker on T2 than this multiple of the marrow's
        own T2 reference (fat, bright on T2, is left out).
    marrow_fluid_low, marrow_fluid_high : float
        Without a T1: marrow lies between these multiples of the marrow level of the T2
        (or STIR), the median of the strip just in front of the canal per SI row (discs and
        CSF are brighter, endplates, cortex and degenerated discs darker).
    marrow_fluid_raw_low : float
        Without a T1: marrow is also above this multiple of the marrow level on the
        unsmoothed image (smoothing blurs the thin dark cortex that separates a body from
        marrow-like tissue in front of it).
    fluid_smooth_mm : float
        Without a T1: sigma (mm) of the Gaussian applied to the T2/STIR before the band
        (mottled marrow, noise).
    marrow_reference_percentile : float
        Percentile of T1 inside the column near the canal taken as the marrow reference.
    reference_smooth_mm : float
        Length (mm) over which the marrow reference may vary along SI (coil shading).
    opening_mm : float
        Radius (mm, in the sagittal plane) of the opening that cuts thin bridges between a
        body and its neighbours (epidural fat, partial volume across a disc).
    seed_erosion_mm : float
        Depth (mm) of the erosion that separates touching bodies into seeds.
    max_body_height_mm : float
        A seed longer than this (mm) along the spine's axis holds several bodies joined
        across a disc; it is eroded further until it splits.
    max_split_erosion_mm : float
        Deepest erosion (mm) tried when splitting a tall seed.
    min_body_volume_mm3 : float
        Smallest volume (mm^3) of a body; smaller blobs are dropped.
    max_posterior_gap_mm : float
        A body's posterior wall lies within this distance (mm) of the CSF's anterior wall.
    max_body_depth_mm : float
        Largest anterior-posterior depth (mm) of a body.
    cortex_mm : float
        Thickness (mm) of the cortical shell, dark on every contrast, added around the
        marrow of each body in the sagittal plane (about 1 mm of endplate and wall). A
        thicker shell reaches into the disc, and the analysis then keeps the dark endplate
        cortex inside the marrow (false type III calls at the steep S1 endplate with 1.5).
    lateral_margin_mm : float
        A body's lateral sections lie within its mid-sagittal outline grown by this much
        (mm); what grew further across slices (tissue beside the spine) is cut off.
    lateral_half_width_ratio : float
        A body reaches no further from the canal midline than this multiple of its
        mid-sagittal depth (vertebral bodies are at most about 1.6 times as wide as deep).
    small_body_fraction : float
        A body under this fraction of the median body volume, away from the field of
        view's edges, is dropped (a disc or a sliver), with a note.
    large_body_factor : float
        A body over this multiple of the median body volume is dropped, with a note.
    cortex_share_factor : float
        On a T1 with bright marrow, a segment whose outline is cortex-dark (see
        ``cortex_dark_fraction``) on under this fraction of the median segment's share is
        dropped, with a note: a vertebral body is enclosed in cortical bone whatever its
        marrow holds, soft tissue is not (:mod:`bmetoolkit.spine.autoseg.cortex_check`).
        0 turns this off.
    edge_disc_factor : float
        Without a T1, the cranial-most segment reaching the image's upper edge is
        dropped, with a note, when the gap between it and the segment below it (central
        height on their mid-sagittal sections, without the cortex growth) is under this
        fraction of the median of the other discs: vertebral bodies are separated by
        discs, tissue above the column's top that passed the marrow threshold lies right
        against the top body
        (:mod:`bmetoolkit.spine.autoseg.edge_disc`). 0 turns this off.
    edge_disc_on_most_slices : bool
        From a fat-suppressed image alone (STIR, no T1 and no T2), the check of
        ``edge_disc_factor`` reads every gap on the pixels each segment holds on over half
        of the mid-sagittal slab's slices, not on any of them: a reader sees the disc below
        the top body on the mid-sagittal slices, and a body below that reaches into the
        disc on one thick slice beside the midline (partial volume, tissue at a corner)
        leaves it showing on the others, while tissue lying against the top body does so on
        most slices too (tuning seeds 200 and 223: T11, cut by the upper edge, dropped at a
        gap of 2.7 and 4.5 mm read on any slice, 11.4 and 12.1 mm on most; the other discs
        about 16 mm). Since 2026-12-03 (session 35). False reads them on any slice (as
        before); the T1 and T2 paths always do.
    max_body_volume_mm3 : float
        A body over this volume (mm^3) is dropped, with a note (the largest lumbar bodies
        hold about 60 mL).
    cortex_max_mm : float
        Beyond ``cortex_mm``, each body grows through voxels as dark as cortical bone
        (see ``cortex_dark_fraction``) up to this total thickness (mm): real cortices and
        endplates are 0.5-2.5 mm thick.
    endplate_fill_mm : float
        After the lesion fill and the shell, each body is extended along SI, in each
        column, up to the first cortex-dark voxel within this distance (mm) of its edge:
        the endplate, which a lesion touching it (dark on T1) had kept the body from
        reaching. A disc is taller, so the next body's endplate is out of reach; 0 turns
        this off.
    cortex_dark_fraction : float
        Cortical bone is darker than this fraction of the marrow reference on the image
        the marrow is read from (discs, muscle and lesions are brighter).
    coarse_face_layer : bool
        On the T1 path, on in-plane pixels coarser than ``cortex_mm`` but at most twice it
        (no voxel centre within ``cortex_mm`` of the body, so the fixed shell adds nothing),
        a body's face neighbour joins it where it, or the voxel right beyond it, is
        cortex-dark (:func:`bmetoolkit.spine.autoseg.bodies.add_cortex`). Opt-in (False):
        on coarse tuning phantoms (1.2-1.9 mm pixels) it raises the body Dice 0.930 -> 0.942
        and lowers the BME volume error 28.0 -> 25.2 %, and on the bundled sample study
        (1.4 x 1.6 mm) it finds the label map's T12 Modic II; but on the default held-out
        phantoms (0.5-1.2 mm pixels, acting on those of 1-1.2 mm) the BME Dice with
        automatic bodies fell 0.839 -> 0.827 and two true Modic endplates were lost
        (``docs/log/autoseg.md``, session 19).
    dark_shell_max_mm : float
        Without a T1: each body then grows through the dark shell read on its own profile
        of the T2 (or STIR), per face, up to where the signal rises again and at most this
        far (mm, rounded up to whole in-plane voxels) from the body
        (:mod:`bmetoolkit.spine.autoseg.shell`); 0 turns this off. The default since
        2026-12-01, session 21 (opt-in before): on tuning phantoms with a basivertebral
        vein it raises the T2-alone body Dice 0.881 -> 0.902 with the same levels (they
        are read on the bodies before it); the one false finding it had added on the real
        SCT lumbar T2 was that body's basivertebral vein, which the analysis now
        recognises (:mod:`bmetoolkit.veins`; ``docs/autoseg.md``, Without a T1, step 10).
    min_body_height_mm : float
        Smallest superior-inferior extent (mm) of a body.
    fill_rim_mm : float
        Lesion fill: voxels of a body's convex hull (per sagittal slice) deeper than this
        inside the hull are added to the body; the shallower rim is left out, so concave
        endplates are not filled with disc.
    sacrum_min_angle_deg : float
        The caudal-most body is the sacrum when its endplate is tilted at least this much
        more (anterior-down) than the body above it (the lumbosacral angle).
    disc_search_mm : float
        How far (mm) below the caudal-most body the image must go on, showing no further
        marrow-bright bone, for it to be the sacrum.
    gap_factor : float
        Consecutive body centres further apart than this multiple of the median spacing
        mean a body may be missing: a note is added and the level confidence drops.
    transitional_disc_ratio : float
        A disc between the sacrum and the body above narrower than this fraction of the
        discs above it (central heights) is rudimentary or collapsed: a possible
        lumbosacral transitional vertebra is flagged and the level confidence drops.
    canal_fluid_fraction : float
        Without a T1: body voxels brighter than this fraction of the canal's median fluid
        signal, connected to the canal through such voxels, are left out of the bodies
        (CSF partial-volumed into a posterior wall, the epidural veins at its corners, a
        basivertebral vein opening into the canal: fluid, not marrow, which the analysis
        would call edema). 0 turns this off.
    dark_marrow_smooth_mm : float
        When the marrow is darker than the discs on the T1 (see
        :mod:`bmetoolkit.spine.autoseg.polarity`), T1 and T2 are smoothed with a Gaussian of this
        sigma (mm) before the T1 is inverted (such gradient-echo T1s are noisy).
    dark_marrow_floor : float
        On such a T1, voxels darker than this fraction of the marrow level are air or
        noise, not marrow.
    endplate_fill_min_voxels : int
        On a T1 with bright marrow, the endplate fill's reach (``endplate_fill_mm``) is at
        least this many voxels along SI: two voxels that are neither marrow nor cortex-dark
        (the lesion's rim the lesion fill leaves out, and the voxel straddling the lesion
        and a thin cortex) and the cortex beyond them. Where 2.5 mm is fewer voxels (pixels
        over 0.83 mm along SI; 1.6 mm on the bundled sample study) the fill stopped short
        of a bitten endplate. Applied after the checks (the levels are read on the bodies
        without it); it changes nothing on pixels up to 0.83 mm, and gives at most 5 mm
        (:mod:`bmetoolkit.spine.autoseg.endplate_reach`). 2 is the reach before session 46;
        0 or 1 turns this off.
    endplate_line_mm : float
        On a T1 with bright marrow, after the checks, a body column whose edge is not
        cortex-dark, between two columns whose edge is (at most
        ``endplate_line_gap_mm`` apart), is extended along SI up to the line between their
        edges, by at most this much (mm): the endplate a lesion hides
        (:mod:`bmetoolkit.spine.autoseg.endplate_line`). 0 turns this off.
    endplate_line_gap_mm : float
        See ``endplate_line_mm``.
    si_notch_mm : float
        With a T1, after the checks: each body's gaps along SI of at most this much (mm)
        within one (AP, LR) column are filled, unless another body's voxel lies in the gap:
        notches in its outline where the marrow mask left out a lesion's rim or a
        partial-volume voxel at the wall (:mod:`bmetoolkit.spine.autoseg.wall_notches`). 0
        turns this off. Default 4.0 since session 47 (tuning analysis on automatic bodies,
        BME volume error 0-59 10.5 % both, 60-99 24.0 -> 20.0 %, 200-259 14.3 -> 12.1 %,
        300-359 20.9 -> 19.7 %; body Dice 0.932 -> 0.936; held-out 15.8 -> 14.5 %;
        docs/log/autoseg.md).
    levels_from_stir_alone : bool
        Name the levels when the bodies were read from a STIR (or fat-suppressed T2) alone,
        without a T1 or a T2. On by default since 2026-12-03 (session 31), with
        ``fluid_disc_below``: on 200 tuning phantoms (``bench_autoseg.py --images stir
        --seeds 60 ... 99``, ``160 ... 319``) right on 121 of the 150 with the sacrum in
        view, 23 unknown, 6 wrong (on three of them every body found is named right and a
        T11 or T12 missed whole is scored against the next body), never named on the 50
        cut above the sacrum. Off from
        session 21 to 30: on such images marrow, muscle and discs are alike and the
        sacrum's evidence was weak (tuning seeds 60-119 in session 21: 17 named right, 12
        wrong, 3 of 15 named without the sacrum; session 29: 73 of 90 right, 6 wrong, 7 of
        30 named without it). False: the bodies are numbered 1..n with a note, and segments
        left out below the sacrum are bodies again.
    fluid_disc_below : bool
        Read what lies below the caudal-most body on the fluid image (STIR, fat-suppressed
        T2 or T2) before taking it for the sacrum: along the column (the line from the
        centre of the body above through its centre, within 5 mm of it, on the
        mid-sagittal slab), a stretch outside the marrow band (``marrow_fluid_low`` to
        ``marrow_fluid_high`` times the body's own median signal there: endplate cortex, a
        bright nucleus or a dark degenerated disc) at least 5 mm tall
        (``levels.LUMBARISED_DISC_MIN_MM``) and no taller than 1.5 times the scan's discs
        (``levels.DISC_LIKE_FACTOR``; the larger of the median central gap between the
        segments above and the median of the same stretch below them), followed by 3 mm of
        signal back in the marrow band, is a disc with the next vertebra's marrow below it:
        the body is no sacrum (S1 is fused to S2, with at most a thin remnant between them)
        and the levels stay unknown (``level_evidence["disc_and_marrow_below_mm"]``). The marrow
        mask alone misses this on a STIR, where a disc's annulus has the marrow's signal and
        a lost L5's marrow may not be in the mask (since 2026-12-03, session 31).
    count_missing_levels : bool
        Count a level the segmentation missed when the gap between two consecutive bodies
        is as tall as the scan's disc plus a body and a disc (a reader counts discs and
        bodies; a missed T12 between T11 and L1 otherwise named T11 as T12): each gap's
        central height over the scan's disc (the median central gap), in units of one
        level (the median body height plus that disc), rounded, is the number of levels
        missing there (``level_evidence["gap_levels"]``, ``["missing_levels"]``; the
        confidence times 0.75, ``levels.MISSING_LEVEL_CONFIDENCE``). Every path; since
        2026-12-03 (session 33). False: no level is counted in a gap (before session 33).
    missing_level_tolerance : float
        Levels (a body plus a disc, as a fraction): a gap's excess over the scan's disc
        must lie within this of a whole number of levels to be counted; a gap in between
        (a half-found body, or a missing body its neighbours took part of) leaves every
        level unknown (``level_evidence["levels_withheld"]``). On the STIR-alone tuning
        phantoms (seeds 60-99, 160-239; 658 gaps) gaps with no body missing measured up to
        0.35 of a level (an S1 segment holding half its body), those with one or two bodies
        missed whole 1.01-1.02 and 2.01, a missed T12 whose neighbours took part of it 0.53
        and a missed L4 with a sliver of tissue below it 0.62; 0.4 leaves the middle fifth
        of a level undecided.
    missing_body_tolerance : float
        The same for a gap taller than a whole number of one or more missing levels: it
        must lie within this above that number. Bodies missed whole measure within 0.02 of
        a whole number, and a missed body its neighbours took part of leaves a shorter gap
        (0.53-0.63 of a level: 0.61-0.63 counted as one within ``missing_level_tolerance``,
        0.53 left unknown), never a taller one; a gap 1.33 levels tall (STIR alone, fresh
        tuning seed 252: two bodies joined and dropped, the discs around them uneven) was
        counted as one level and every level above it named one too low. Since 2026-12-05
        (session 44); before, ``missing_level_tolerance`` on both sides.
    suppressed_marrow_high : float
        From a STIR (or fat-suppressed T2) alone: marrow voxels whose signal, smoothed
        in-plane over ``suppressed_smooth_mm``, is above this many times the marrow's own
        level (per SI row, the median of the first marrow mask near the canal) are left out:
        muscle beside and in front of the bodies, brighter than suppressed fatty marrow
        (:mod:`bmetoolkit.spine.autoseg.suppressed`). 0 turns this off.
    suppressed_smooth_mm : float
        See ``suppressed_marrow_high``: sigma (mm) of the in-plane Gaussian.
    suppressed_reference_percentile : float
        From a STIR (or fat-suppressed T2) alone: the percentile, over the strip in front
        of the canal per SI row, taken as the marrow level of the marrow band
        (``marrow_fluid_low`` ... ``marrow_fluid_high``; 50 with a T2). Suppressed marrow
        is the darkest large tissue there; discs, muscle and the tissue in front of
        narrower (thoracic) bodies are brighter and pulled the median up to twice the
        marrow's level on some tuning phantoms, where no marrow was then found.
    suppressed_reference_dip_mm : float
        From a STIR (or fat-suppressed T2) alone: the marrow band's per-row reference
        (:func:`bmetoolkit.spine.autoseg.bodies.fluid_marrow_mask`) counts the rows darker
        than 0.85 of the column's level too where a stretch of at least this length (mm
        along SI) is that dark as a whole, its dips narrower than this (endplates, dark
        discs) still set aside (:func:`bmetoolkit.spine.autoseg.bodies._row_reference`):
        the top bodies' marrow, a fifth darker towards the coil's edge on some tuning
        phantoms, was set aside as disc rows and lost. Over a disc with its endplates and
        under a body's height (at 30 mm the bodies between bright discs are filled and
        nothing changes on tuning). 0 turns this off.
    suppressed_sections_again : bool
        From a STIR (or fat-suppressed T2) alone: once the bodies are cut at their endplate
        lines (``suppressed_disc_ends``), each body that lost an end has its lateral
        sections walked again against ``suppressed_section_factor`` times its own level,
        read without the disc it had taken (whose annulus and nucleus, brighter than
        suppressed marrow, had raised it and let the muscle beside its wall pass;
        :func:`bmetoolkit.spine.autoseg.suppressed.cut_disc_ends_then_sections`).
    suppressed_section_factor : float
        From a STIR (or fat-suppressed T2) alone: a body is cut at its first lateral
        sagittal slice (beyond the mid-sagittal slab) whose median signal is above this
        many times the body's own mid-sagittal median: muscle beside the lateral wall
        (:func:`bmetoolkit.spine.autoseg.suppressed.trim_bright_sections`). On tuning seed
        64 the sections wholly outside the true bodies read 1.13-1.46, those mostly inside
        0.80-1.09. 0 turns this off.
    suppressed_section_step : float
        From a STIR (or fat-suppressed T2) alone, with ``suppressed_section_factor``: a
        body's outermost lateral section on either side (beyond the mid-sagittal slab)
        whose median is above the body's own mid-sagittal median and above the median of
        the section just inside it (towards the midline) by this fraction of the body's
        own median is beside the lateral wall too, and is taken out of the body (a
        fraction of the body's own level, no unit; the signal steps up where the muscle
        beside the wall takes the section's place, while the body's own sections stay at
        its level or darken towards the wall;
        :func:`bmetoolkit.spine.autoseg.suppressed.trim_bright_sections`). 0 reads
        ``suppressed_section_factor`` alone.
    split_joined_bodies : bool
        From a STIR (or fat-suppressed T2) alone: a segment over 1.6 times as tall as the
        median body is split at the dark endplate line across it, when one shows near the
        midline (:mod:`bmetoolkit.spine.autoseg.joined`).
    suppressed_disc_ends : bool
        From a STIR (or fat-suppressed T2) alone: each body is cut at the dark endplate
        line near its superior and inferior ends, when one crosses it on the mid-sagittal
        slice with part of the segment beyond it (the disc's annulus and nucleus, which
        the marrow mask and the lesion fill put inside the body;
        :mod:`bmetoolkit.spine.autoseg.disc_ends`).
    suppressed_ends_whole_height : float
        From a STIR (or fat-suppressed T2) alone, with ``suppressed_disc_ends``: a segment
        taller than 1.3 times the median segment's SI extent (``levels.BODY_WITH_DISC_FACTOR``:
        a body with a disc, or with both) is cut at its endplate lines even where the cut
        keeps under ``disc_ends.MIN_KEPT`` (0.55) of its voxels, when what it keeps is at
        least this many times the median segment's SI extent tall (a whole body of the
        column is left; what goes is its discs). 0 turns this off. Since 2026-12-03
        (session 33): on tuning seed 67 T12 held both its discs (47.7 mm against a median
        of 29.2 mm, 1.87 times its true body's voxels); the cut keeps 50 % of it, 21.5-23.1
        mm tall (0.74-0.79 of the median), 90-96 % inside T12, and had not been made. 0.7
        allows a body a third shorter than the median (T11 and T12 are smaller than the
        lumbar bodies).
    suppressed_wall_dark : float
        From a STIR (or fat-suppressed T2) alone: on each body's lateral sagittal sections
        (beyond the mid-sagittal slab), along each anterior-posterior row walked in from
        its ends, the first voxel darker than this many times the body's mid-sagittal
        median (smoothed in-plane over ``fluid_smooth_mm``) is the body's cortical wall,
        and the voxels before it are left out when their median is above
        ``suppressed_wall_bright`` times that median: muscle at the body's waist, beyond
        its concave lateral wall (:mod:`bmetoolkit.spine.autoseg.waist`). 0 turns this off.
    suppressed_wall_bright : float
        See ``suppressed_wall_dark``.
    suppressed_wall_reach_mm : float
        See ``suppressed_wall_dark``: the wall is looked for within this many mm of the
        row's end.
    suppressed_endplate_window_mm : float
        From a STIR (or fat-suppressed T2) alone: the tilt of each body's two surfaces, which
        the sacrum test reads (the lumbosacral angle, ``sacrum_min_angle_deg``), is read on
        the image, not on the segment's outline: in each AP column of the surface's central
        part, the darkest pixel within this many mm of the segment's face (inside and
        outside it) is the endplate's cortex when it is darker than 0.7 times the body's
        median signal (``geometry.CORTEX_DARK_FRACTION``), and a robust line through them
        is the endplate (:func:`~bmetoolkit.spine.autoseg.geometry.image_endplate_angles`);
        the outline is used where the cortex shows in under half of the columns. A reader
        measures the lumbosacral angle on the endplates he sees; the outlines of segments
        read from a STIR alone stop short of an endplate or run past it (S1 half found,
        its promontory cut, L5 joined to tissue at a corner). Since 2026-12-03 (session
        34): on the tuning seeds 60-99 and 160-239 levels right on 86 of the 90 cases with
        the sacrum in view (79 before), none wrong, never named on the 30 cut above it;
        280-319 (a check) 26 of 30 right (23 before), 1 wrong (2 before). 0 turns this off
        (the outline, as before session 34).
    unknown_levels_keep_below_sacrum : bool
        When the sacrum was recognised but the count from it fails (a gap that fits neither
        a disc nor a missing body, a body that may be missing, two bodies that may be
        joined: the levels are left unknown), the segments left out below it (S2 and
        below, ``level_evidence["left_out_below_sacrum"]``) are bodies again, numbered
        after the others (``level_evidence["given_back_below_sacrum"]``), except one at the
        image's lower edge over 1.3 times the voxels of the segment above it
        (:func:`~bmetoolkit.spine.autoseg.levels.given_back_below_sacrum`, as when a STIR
        alone's levels are withheld). The segment read as S1 was read against whichever
        segment lies above it; across a gap that may hold a level, the step in tilt spans
        more than the lumbosacral angle, and what lies below it may be L5 (tuning seed 191
        from a STIR alone: a segment of soft tissue after a missed L4 read as the sacrum,
        the real L5 below it left out). Every path; since 2026-12-03 (session 34). False
        leaves them out (as before).
    joined_height_on_most_slices : bool
        The check that leaves the levels unknown when one body is over 1.6 times as tall as
        the median body (two bodies joined across a disc, ``levels.JOINED_HEIGHT_FACTOR``,
        ``level_evidence["tallest_body_ratio"]``) reads each body's height where it lies on
        over half of the mid-sagittal slab's slices (``BodyShape.central_height_mm``), not
        on any of them: two bodies joined across a disc are joined on the mid-sagittal
        slices a reader measures on, while a segment reaching into its discs or tissue at
        a corner on one slice of the slab holds one body (tuning seed 220 from a STIR
        alone: L3 1.84 times the median on any slice, 1.24 on most). Every path; since
        2026-12-03 (session 34). False reads it on any slice (as before).
    t2_caudal_cut : bool
        From a plain T2 alone: the caudal-most segment too large for a body (S1 joined to
        the bone below it and the tissue around it) is cut back at the column's front, its
        lateral walls and its inferior endplate before the size check, and kept when what
        is left is a body below a disc, tilted like the sacrum
        (:mod:`bmetoolkit.spine.autoseg.oversized`).
    suppressed_caudal_cut : bool
        From a fat-suppressed image alone (STIR, no T1 and no T2): the same cut of the
        caudal-most segment too large for a body (``t2_caudal_cut``'s, with its evidence
        of S1: a body's size inside a dark cortical rim, a disc above it like the
        column's, the sacrum's tilt), read on the STIR, where the cortex and the endplates
        are dark as on a T2 (tuning seed 376: S1 joined to the tissue around it into a
        99 mL segment dropped by the size check, the levels unknown). Only the cut: the
        T2 path's other rules read with it are not used. Since 2026-12-03 (session 35).
    suppressed_cut_top : bool
        From a fat-suppressed image alone: when the cranial-most segment does not reach
        the image's upper edge, the marrow above it, within its section and reaching the
        edge, is added as the top vertebra cut by the field of view when it is under the
        segment's height (half of it until session 43), covers half of that section
        and a disc like the column's lies between them (a taller candidate is split at a
        disc inside it: a whole body and the sliver above it) (the check of
        ``edge_disc_factor``, read on most mid-sagittal slices;
        :mod:`bmetoolkit.spine.autoseg.cut_top`; tuning seeds 160, 172, 212: a top body
        with 5-12 mm in view whose seed was too thin to keep). Since 2026-12-03
        (session 35).
    t2_s1_line : bool
        With ``t2_caudal_cut``: on the caudal segment's mid-sagittal section, a faint
        straight line across it 0.5-1.5 median body heights below its top whose median is
        darker than the marrow's on both sides of it by at least twice the marrow's robust
        pixel spread there (the S1-S2 line: a remnant disc and its endplates, partial
        volumed, lighter than 0.7 of the marrow) is read as part of S1's rim, so that S1
        joined to the lower sacrum through it is cut there
        (:func:`bmetoolkit.spine.autoseg.sacral_line.valley_line`). Since 2026-12-03,
        session 34.
    t2_top_cut : bool
        From a plain T2 alone: the cranial-most segment at the image's upper edge too large
        for a body (the top body joined to the tissue above and in front of it) is cut back
        at its caudal body's superior endplate and to the depth and width of the body below
        it, and kept when what is left is a whole body no larger than the upper-edge size
        check allows (:mod:`bmetoolkit.spine.autoseg.top_edge`); else it is dropped.
    t2_top_cut_smallest : bool
        With ``t2_top_cut``: the depth in front of the canal and the half-width from the
        midline the cut-back top body may reach are the smallest of the three whole
        bodies' next below it (each on its own mid-sagittal slice), not the body below's
        alone: the bodies grow from one level to the next down the column, so the top body
        is no deeper and no wider than those, and the body below may itself hold tissue
        in front of or beside it (the sacrum at the column's foot, tilted, is not read as
        a depth). Since 2026-12-03, session 36.
    t2_top_cut_rounded : bool
        With ``t2_top_cut``: the cut-back top body, once kept, is cut to a body's rounded
        front: in front of the middle of the depth it may reach, to the half-ellipse of that
        depth and its half-width (a vertebral body's front is an arc; the box's corners in
        front of it hold the tissue beside it). Only the outline of a body already kept
        changes, so no segment the size check would drop is kept
        (:func:`bmetoolkit.spine.autoseg.top_edge.rounded_front`). Off by default: on the
        tuning and check ranges it moved no summary figure (a few top bodies 0.02-0.06
        better, two bodies below 0.013-0.031 worse) and the held-out plain T2's worst
        decile fell 0.817 -> 0.812. Since 2026-12-03, session 37.
    t2_shell_valley : bool
        From a plain T2 alone: a body face that gets no dark shell (``dark_shell_max_mm``)
        because the tissue beyond its cortex is darker than the marrow (the disc's annulus
        beside an endplate) is read again: the darkest ring within ``dark_shell_max_mm``,
        darker than the body's outer layer and than the tissue beyond by 0.2 of the marrow,
        is the cortex, and it is added with each side cut at its own half maximum
        (:func:`bmetoolkit.spine.autoseg.shell.valley_thresholds`). Since 2026-12-03,
        session 30.
    t2_posterior_band : bool
        From a plain T2 alone: on each body's lateral sagittal sections, a dark wall in the
        section's back with tissue that is not dark behind it (the body's posterior cortex
        with the pedicle's base behind it) is cut with what lies behind it, as on a T1
        (:func:`bmetoolkit.spine.autoseg.posterior.trim_posterior_band`, read on the T2).
        Since 2026-12-03, session 30.
    t2_empty_levels : bool
        From a plain T2 alone: of the readings of the marrow (seeds labelled in 3D, seeds of
        the mid-sagittal slab, the marrow cut at the discs' anterior edges), the one with
        the most segments is kept as before, and each segment of the others that the
        image's upper and lower edges do not cut, at a level where the kept one has no
        whole segment (SI ranges overlapping by at most half) and mostly outside its
        segments, is added (:func:`bmetoolkit.spine.autoseg.midline.add_at_empty_levels`).
        Since 2026-12-03, session 31.
    t2_mid_slice_seeds : bool
        From a plain T2 alone: a seed of the mid-sagittal slab holding over
        ``large_body_factor`` times the median seed's voxels (a body joined to the
        marrow-like tissue around it through one lateral slice) is also read on the
        sagittal slice nearest the canal's midline, and each part there shaped like a
        body's section, alone at its level and not cut by the image's edges is a seed of
        its own (:func:`bmetoolkit.spine.autoseg.midline.mid_slice_seeds`); the bodies it
        gives are added as ``t2_empty_levels`` says (only with it). Since 2026-12-03,
        session 31.
    t2_edge_other_reading : bool
        From a plain T2 alone: a segment at the image's upper or lower edge that
        :func:`bmetoolkit.spine.autoseg.checks.drop_large_at_edges` drops (the cut body
        joined to the tissue around it) is replaced by the segment of another reading of
        the marrow (3D seeds, mid-sagittal seeds, the marrow cut at the discs' fronts) that
        the same edge cuts, lying at least half inside it, when the same check keeps that
        one: the body where another reading kept it apart from the tissue
        (:func:`bmetoolkit.spine.autoseg.edge_other.replace_dropped_at_edges`). Since
        2026-12-03, session 32; off by default (opt-in): on its held-out run it found no
        body and kept a false one, tissue above a missed top body.
    t2_whole_height_fraction : float
        From a plain T2 alone, in the reading of bodies found on the mid-sagittal slice
        (``t2_mid_slice_seeds``): a segment under ``small_body_fraction`` of the median body
        is kept when its SI extent is at least this fraction of the median segment's and no
        larger segment shares more than half of its SI rows (a body as tall as the others,
        alone at its level, whose lateral sections the tissue around it took; a disc is a
        third to a half of a body's height). 0 turns it off. Unitless (a ratio of SI
        extents). Since 2026-12-03, session 32.
    t2_whole_height_over_tissue : bool
        With ``t2_whole_height_fraction``: a segment the size check drops as too large for
        a body (over ``large_body_factor`` times the median body or ``max_body_volume_mm3``:
        the marrow-like tissue around the column, which the mid-sagittal slice's body
        joined on the other slices) neither covers the level of a segment as tall as a body
        nor counts in the median segment's SI extent
        (:func:`bmetoolkit.spine.autoseg.checks.check_sizes`, ``tall_over_large``). Since
        2026-12-03, session 33.
    t2_mid_slice_reach_mm : float
        With ``t2_mid_slice_seeds``: the body's section is read on the sagittal slice
        nearest the canal's midline and then on the slices within this distance (mm, left
        to right) of the midline, nearest first; a level found on a nearer slice is not read
        again. On the midline a basivertebral vein or a lesion band across the body can cut
        its eroded marrow into pieces each too small to pass for a body's section, while a
        slice or two beside it the section is whole. 0 reads the nearest slice only (as
        before session 33). Since 2026-12-03, session 33.
    t2_wall_cortex : bool
        From a plain T2 alone, after the dark shell: along each anterior-posterior line
        through a body's anterior or posterior wall (where its face runs within 45 degrees
        of the column's axis), a voxel up to 8 mm inside the face, no brighter than its
        neighbours and darker than the segment's median signal outside it and within 3 mm
        inside it by at least the body's robust pixel spread (each line read as the median
        profile of the lines within 5 mm of it on the face, 5 x 5 at 1 mm; since session 41
        in mm: on sections over 2.5 mm thick, 13 lines along the wall on its own section),
        is the wall's cortex (thin, partial volumed
        to a faint line lighter than 0.7 of the marrow), and what lies beyond it, tissue of
        the marrow's signal the segment ran into, is cut where more than half of those
        lines agree within a voxel. The levels are read on the bodies
        before this cut (:mod:`bmetoolkit.spine.autoseg.wall_cortex`). Since 2026-12-03,
        session 35.
    t2_lateral_cortex : bool
        From a plain T2 alone, last: along each left-right line through a body, the
        darkest voxel within 7 mm beyond its edge is its lateral wall's cortex when the
        signal falls to it from the edge, it lies below the edge by 0.10 of the body's
        median and below the tissue 2 mm beyond it (by 0.03 of the median and 0.1 of the
        edge's contrast to that tissue), and most of the 5 x 5 lines around find it at the
        same place (the image smoothed over a 3.5-5 mm in-plane box); the voxels between
        the edge and it are added: the marrow mask stops inside the blurred wall. The
        levels are read on the bodies before this (:mod:`bmetoolkit.spine.autoseg.lateral_cortex`).
        Since 2026-12-04, session 41.
    t2_cut_top : bool
        From a plain T2 alone: ``suppressed_cut_top``'s reading of the top vertebra cut by
        the image's upper edge, the candidate up to the top segment's whole height (the
        body above is no taller than the one below; the second reading of the marrow
        skips every segment the edge cuts). Measured on the
        phantom family that draws T10 above T11, as every real spine has
        (``bench_autoseg.py --vertebra-above``; :mod:`bmetoolkit.spine.autoseg.cut_top`).
        Since 2026-12-04, session 42.
    fluid_no_room_between : bool
        From a T2 or a STIR alone: a segment under half the mean volume of the segments
        either side of it is dropped when those two lie under 1.5 bodies' pitches apart
        (no level fits between them): a slab of tissue in a disc space that
        ``drop_in_disc_spaces`` kept because a partial neighbour moved its centroid
        (:func:`bmetoolkit.spine.autoseg.checks.drop_without_room`; tuning seeds 82 and
        118 read on the image's own grid, every level above the slab one too high).
        Since 2026-12-04, session 43.
    fluid_one_per_level : bool
        From a T2 or a STIR alone, after the top vertebra cut by the upper edge is read: a
        segment more than half of whose SI rows a larger segment also covers is dropped,
        tissue beside or around that body at its level
        (:func:`bmetoolkit.spine.autoseg.checks.drop_sharing_a_level`; tuning seed 103 with
        the pelvis in view, read on the T2's own grid: 10 mL of tissue around T12 named T11).
        Since 2026-12-04, session 43.
    fluid_cut_top_reach : bool
        The top vertebra added by ``suppressed_cut_top`` / ``t2_cut_top`` keeps only the
        voxels within the top segment's reach in front of the canal (plus 2 mm): the
        column's curve moves the vertebrae above backwards, and the top segment's section
        they are read in then holds the tissue in front of them (tuning seed 73, a plain
        T2: T10 added half tissue). Since 2026-12-05, session 43.
    t2_endplate_window_mm : float
        From a T2 alone (no T1): each body's two surface tilts, which the sacrum test
        reads (the lumbosacral angle, ``sacrum_min_angle_deg``), are read on the image's
        endplate cortex within this many mm of the segment's face, as
        ``suppressed_endplate_window_mm`` reads them from a STIR alone
        (:func:`~bmetoolkit.spine.autoseg.geometry.image_endplate_angles`; the outline
        where the cortex shows in under half of the columns). The cortex is dark on a T2
        too, against the marrow and the disc; the outline of an S1 segment read from a T2
        alone stops short of its endplate or runs past it (a cut across the body, tissue
        joined at a corner) and read the lumbosacral angle under 8 degrees where the true
        one was 12. A face closer than this to the next segment is read on its outline
        (``levels.body_shapes(..., neighbour_faces_outline=True)``): the dark line beyond
        it may be that segment's endplate (a body that took its disc reaches the next
        one). Since 2026-12-03 (session 37). 0 turns this off (the outline).
    canal_longer_mm : float
        Without a T1 (and with one when its CSF thresholds found no canal): a canal tube at
        a lower cut of the image replaces the brighter cut's when its caudal end reaches at
        least this many mm further down while its cranial end stays within
        ``canal.CAUDAL_TOP_TOLERANCE_MM`` (10 mm) of the brighter tube's, even where it is
        under ``canal.LONGER_FACTOR`` (1.3) times as long
        (:func:`~bmetoolkit.spine.autoseg.canal._replaces`). A factor makes the dimmer
        sacral sac at the canal's lower end (about 60 mm) count less the longer the canal
        above it: a canal running to the image's upper edge, as on every real spine, was
        kept short of it, and the canal's wall extrapolated below its end cut S1 and L5
        (tuning seed 98, T10 rendered above T11: the sac 65 mm lower, 293 mm against 228,
        under the 296 the factor needs; S1 Dice 0.919 -> 0.293). Only the caudal extension
        counts: counted as any extra length (session 38), the pelvis tuning case 107
        (without T10) took the lower cut's 61 mm *above* the canal's top and lost T11
        (0.649 -> 0). On the T2-alone tuning runs 60-99 against the factor alone it changes
        only 96 (its sac, both families) and, with T10 above T11, 98 (S1 0.293 -> found):
        worst decile 0.787 -> 0.791 and 0.660 -> 0.705; pelvis 90-119 (107 keeps T11), STIR
        160-199 and T2 160-199 line for line the same. 0 turns it off (the factor alone).
        Since 2026-12-04 (session 39; opt-in as a total length in session 38).
    suppressed_column_fit : bool
        From a STIR (or fat-suppressed T2) alone: after the checks, a segment lying against
        the segments above and below it with no disc between them, shorter than a body and
        between two segments one pitch apart (a disc), or, below the cranial-most segment,
        under 0.65 times the median segment's mid-sagittal depth (a strip of muscle below
        the sacrum), is dropped with a note; then two segments that touch are cut at the
        faint dark endplate line near the ends that face each other
        (:mod:`bmetoolkit.spine.autoseg.column_fit`).
    suppressed_disc_taken : bool
        From a STIR (or fat-suppressed T2) alone, with ``suppressed_column_fit``: the ends
        cut at the faint endplate line also where the gap between two segments is under a
        tenth of the median segment's height (the column's median disc is no reference when
        half the bodies took one) and at both ends of a segment over 1.3 times that height
        (a body with a disc; :func:`bmetoolkit.spine.autoseg.column_fit.touching_ends`).
    suppressed_seed_alone : bool
        From a STIR (or fat-suppressed T2) alone: a mid-sagittal seed under the volume floor
        is kept when no other seed covers its level and it is about as deep as the others
        (a body whose mid-slab marrow a vein or a lesion band took;
        :func:`bmetoolkit.spine.autoseg.midline.alone_at_level`).
    suppressed_end_segments : bool
        From a STIR (or fat-suppressed T2) alone: the size check keeps a segment under
        ``small_body_fraction`` of the median body when it is the column's cranial-most or
        caudal-most segment (no body beyond it, so not a disc or a sliver between two
        bodies: the end body, most of whose marrow the body next to it took across the disc;
        :func:`bmetoolkit.spine.autoseg.checks.end_segments`).
    suppressed_half_edge : bool
        From a STIR (or fat-suppressed T2) alone: after the dark shell, the voxel layer just
        outside each body face darker than halfway from the body's outer layer to the tissue
        beyond (the edge blurred over one voxel) is added, where that tissue is brighter by
        0.2 of the marrow (:func:`bmetoolkit.spine.autoseg.shell.add_half_edge`).
    suppressed_outer_sections : bool
        From a STIR (or fat-suppressed T2) alone: last, each body's outermost lateral
        section is read voxel by voxel against the section inside it and the one beyond,
        and the voxels nearer the tissue beyond than the marrow (mostly tissue, the thick
        slice crossing the lateral wall) are removed
        (:func:`bmetoolkit.spine.autoseg.lateral_half.trim_outer_sections`).
    suppressed_outer_added : bool
        From a STIR (or fat-suppressed T2) alone, after ``suppressed_outer_sections``: beside
        each body's outermost lateral section, the voxels the image shows as mostly bone
        (at least halfway from the tissue two sections out to the darker of the marrow and
        the body's cortex) are added, the section holding the lateral wall
        (:func:`bmetoolkit.spine.autoseg.lateral_half.add_outer_sections`).
    fluid_endplate_fill_mm : float
        From a T2 or a STIR (or fat-suppressed T2) alone: last, each body is extended along
        SI, column by column, up to its endplate's dark cortex when that lies within this
        many mm of its edge (:func:`bmetoolkit.spine.autoseg.bodies.fill_to_endplate`, the
        fill the checks run before at ``endplate_fill_mm``, 2.5 mm). Edema is brighter than
        marrow on these images, so the marrow mask leaves a lesion at an endplate out of
        its body, and the analysis then misses it (STIR tuning seeds 0 and 1: 10 and 14 %
        of the true edema inside the bodies, 52 and 88 % with it). The levels are read on
        the bodies without it. Since 2026-12-05 (session 44). Tuning body Dice, STIR alone:
        0.942 (0.828) -> 0.947 (0.850) (seeds 0-59), 0.941 (0.866) -> 0.949 (0.874)
        (60-99), 0.935 (0.852) -> 0.943 (0.872) (160-199), 0.943 (0.869) -> 0.949 (0.890)
        (200-259); T2 alone: 0.921 (0.852) -> 0.929 (0.875) (0-59), 0.915 (0.817) -> 0.924
        (0.829) (60-99), 0.907 (0.830) -> 0.919 (0.866) (160-199), with the pelvis in view
        0.900 (0.730) -> 0.905 (0.732) (90-119); levels and false bodies unchanged. The
        analysis on them (0-59): BME Dice 0.416 -> 0.472 (STIR), 0.212 -> 0.380 (T2). A
        disc of 8 mm or more keeps the next body's endplate out of reach where the body's
        own cortex shows; a thinner one (thoracic, or narrowed) may not, and where the
        next body's cortex is not part of it the fill can cross the disc (not seen on the
        tuning seeds; :func:`bmetoolkit.spine.autoseg.apart.keep_apart` returns what two
        bodies share). **Opt-in** (0, off, by default; 8 is the reach measured above): on
        the bundled real TPTBox T2 it grew the bodies into the discs (its QC page; the
        Dice of its two whole bodies against SPINEPS 0.852 -> 0.833 and 0.898 -> 0.872,
        the top vertebra 0.598 -> 0.676: ``python benchmarks/qc_autoseg_real.py
        --autoseg-param fluid_endplate_fill_mm=8``), where the thin endplate's dark line
        is broken by partial volume and the nucleus beyond it is as bright as edema; the
        phantom draws that line whole. No real STIR is bundled to check the STIR path.
    fluid_outer_sections : bool
        With a T1 and a fat-suppressed image (STIR, fat-suppressed T2): last, beside each
        body's outermost lateral section the voxels the fat-suppressed image shows as
        mostly bone (at least halfway from the tissue beyond to the marrow inside) are
        added, the section holding the lateral wall that the T1 shows dark
        (:func:`bmetoolkit.spine.autoseg.lateral_half.add_outer_sections`). Opt-in: the
        bodies come closer to the truth (tuning seeds 160-199: Dice 0.923 (0.861) -> 0.949
        (0.915)), but the analysis on them measures the edema worse (tuning 0-39: volume
        error 14.3 -> 23.9 %, basivertebral veins fewer recognised: the body frame
        of :func:`bmetoolkit.spine.vertebra.body_geometries`, from the body's least extent,
        tilts on some bodies once their lateral sections are added).
    t1_posterior_wall_cortex : bool
        With a T1 whose marrow is bright, after the checks: the faint-wall cut of
        ``t2_wall_cortex`` (:func:`bmetoolkit.spine.autoseg.wall_cortex.cut_beyond_wall_cortex`)
        read on the T1 at each body's posterior face only, on the sagittal sections where
        the CSF column is at least half as wide as at its widest
        (:func:`bmetoolkit.spine.autoseg.wall_cortex.canal_sections`): where a thin
        posterior cortex shows only as a faint line, the body ran through it into the
        epidural fat behind it (brighter than marrow on a T1) up to the canal, and what
        lies beyond the line is cut. The analysis then measures a basivertebral vein from
        the true wall (seed 6 of the tuning phantoms: a T11 outline 2-4 mm behind its wall
        held the dark cortex, called Modic III at both endplates, and kept its vein as
        edema). The levels are read on the bodies without it. Since 2026-12-05 (session
        45): tuning analysis (``bench_autoseg.py --analysis``) seeds 0-59 BME Dice 0.831
        (0.246) -> 0.834 (0.444), volume error 13.2 -> 12.2 %, pooled endplate types
        95.0 -> 95.2 %, vein volume reported as edema 6.4 -> 4.8 mL; seeds 60-99 7.1 ->
        5.3 mL, the rest unchanged. Lateral sections are left alone: there the lateral
        wall's partial volume draws dark bands along SI inside the body (seed 28's L5,
        cut by a version reading every section).
    """

    tissue_fraction: float = 0.05
    csf_ratio_min: float = 2.5
    csf_fluid_min: float = 1.8
    canal_min_length_mm: float = 40.0
    canal_max_width_mm: float = 30.0
    canal_min_depth_mm: float = 5.0
    canal_smooth_mm: float = 12.0
    band_posterior_mm: float = 1.0
    band_anterior_mm: float = 70.0
    band_half_width_mm: float = 35.0
    marrow_t1_min: float = 0.65
    marrow_t2_max: float = 1.6
    marrow_fluid_low: float = 0.7
    marrow_fluid_high: float = 1.35
    marrow_fluid_raw_low: float = 0.6
    fluid_smooth_mm: float = 0.75
    marrow_reference_percentile: float = 70.0
    reference_smooth_mm: float = 60.0
    opening_mm: float = 1.5
    seed_erosion_mm: float = 2.0
    max_body_height_mm: float = 40.0
    max_split_erosion_mm: float = 8.0
    min_body_volume_mm3: float = 2500.0
    max_posterior_gap_mm: float = 10.0
    max_body_depth_mm: float = 65.0
    cortex_mm: float = 1.0
    min_body_height_mm: float = 8.0
    cortex_max_mm: float = 2.5
    cortex_dark_fraction: float = 0.3
    coarse_face_layer: bool = False
    dark_shell_max_mm: float = 2.5
    endplate_fill_mm: float = 2.5
    lateral_margin_mm: float = 2.0
    lateral_half_width_ratio: float = 0.9
    small_body_fraction: float = 0.35
    large_body_factor: float = 2.5
    cortex_share_factor: float = 0.2
    edge_disc_factor: float = 0.35
    edge_disc_on_most_slices: bool = True
    max_body_volume_mm3: float = 100000.0
    fill_rim_mm: float = 1.0
    sacrum_min_angle_deg: float = 8.0
    disc_search_mm: float = 15.0
    gap_factor: float = 1.6
    transitional_disc_ratio: float = 0.5
    canal_fluid_fraction: float = 0.7
    dark_marrow_smooth_mm: float = 1.0
    dark_marrow_floor: float = 0.3
    endplate_fill_min_voxels: int = 3
    endplate_line_mm: float = 0.0
    endplate_line_gap_mm: float = 15.0
    si_notch_mm: float = 4.0
    levels_from_stir_alone: bool = True
    fluid_disc_below: bool = True
    count_missing_levels: bool = True
    missing_level_tolerance: float = 0.4
    missing_body_tolerance: float = 0.25
    suppressed_marrow_high: float = 1.2
    suppressed_smooth_mm: float = 1.5
    suppressed_reference_percentile: float = 30.0
    suppressed_reference_dip_mm: float = 20.0
    suppressed_sections_again: bool = True
    suppressed_section_factor: float = 1.15
    suppressed_section_step: float = 0.1
    split_joined_bodies: bool = True
    suppressed_disc_ends: bool = True
    suppressed_ends_whole_height: float = 0.7
    suppressed_wall_dark: float = 0.85
    suppressed_wall_bright: float = 1.05
    suppressed_wall_reach_mm: float = 8.0
    suppressed_endplate_window_mm: float = 4.0
    unknown_levels_keep_below_sacrum: bool = True
    joined_height_on_most_slices: bool = True
    t2_caudal_cut: bool = True
    suppressed_caudal_cut: bool = True
    suppressed_cut_top: bool = True
    t2_s1_line: bool = True
    suppressed_column_fit: bool = True
    suppressed_disc_taken: bool = True
    suppressed_seed_alone: bool = True
    suppressed_end_segments: bool = True
    suppressed_half_edge: bool = True
    suppressed_outer_sections: bool = True
    suppressed_outer_added: bool = True
    fluid_endplate_fill_mm: float = 0.0
    fluid_outer_sections: bool = False
    t2_top_cut: bool = True
    t2_top_cut_smallest: bool = True
    t2_top_cut_rounded: bool = False
    t2_shell_valley: bool = True
    t2_posterior_band: bool = True
    t2_empty_levels: bool = True
    t2_mid_slice_seeds: bool = True
    t2_edge_other_reading: bool = False
    t2_whole_height_fraction: float = 0.8
    t2_whole_height_over_tissue: bool = True
    t2_mid_slice_reach_mm: float = 3.0
    t2_wall_cortex: bool = True
    t2_lateral_cortex: bool = True
    t2_cut_top: bool = True
    fluid_no_room_between: bool = True
    fluid_one_per_level: bool = True
    fluid_cut_top_reach: bool = True
    t2_endplate_window_mm: float = 4.0
    canal_longer_mm: float = 60.0
    t1_posterior_wall_cortex: bool = True

    def to_dict(self) -> dict[str, Any]:
        """All parameters as a JSON-ready dict (for provenance).

        Examples
        --------
        >>> AutosegParameters().to_dict()["marrow_t1_min"]
        0.65
        """
        return asdict(self)
