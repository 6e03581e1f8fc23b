"""Do the images look like the roles they were given? Judged from the pixels, not the names.

Headers and file names can lie (a series exported under the wrong name, files swapped by
hand), so before any voxel-wise comparison :class:`~bmetoolkit.study.Study` checks:

1. **one image, one role**: the same file, or identical pixel data, given for two roles is
   refused (:class:`~bmetoolkit.errors.DuplicateInputError`);
2. **each role by its tissue relations** (:func:`judge_roles` on the measures of
   :func:`bmetoolkit.pairing.tissue.measure_roles`, for the T1 against each fluid image): a
   T1 shows fat bright and fluid dark, a STIR or fat-suppressed image fat dark and fluid
   brightest, a plain T2 fat and fluid bright. A pair is refused
   (:class:`~bmetoolkit.errors.ContrastMismatchError`) when

   - *fat is suppressed on the image given as T1*: the body's surface fat is dark on it
     (median rank below :data:`SUPPRESSED_FAT_RANK`) and its T1-to-fluid log ratio lies
     :data:`SUPPRESSED_FAT_CONTRAST` or more below the interior's: a STIR or fat-suppressed
     image given as the T1 (with a plain T2, or swapped with the T1);
   - *fluid is bright on the image given as T1*: fewer than :data:`MIN_FLUID_DARK_FRACTION`
     of the fluid image's brightest voxels are dark on the image given as T1 and at least
     :data:`MIN_FLUID_BRIGHT_FRACTION` are among its brightest: a T2 or PD given as the T1;
   - *marrow is dark on the image given as T1* (when a vertebra or bone mask is given): its
     median rank there is below :data:`MAX_DARK_MARROW_RANK` and :data:`MARROW_RANK_GAP`
     below its rank on the fluid image: a STIR given as the T1;
   - *marrow looks less fatty on the image given as T1 than on the fluid image* (with a
     mask): at least :data:`MARROW_REVERSED_NEEDED` of the three relations of fatty marrow
     of :func:`marrow_fat_relations`, which each flip sign when the two images are swapped,
     lie more than :data:`MARROW_REVERSED_BY` below their balance point. Adult marrow
     is fatty, bright on a T1 and dark on a fat-suppressed image, which is the evidence a
     swap check needs in joints where no air is in view;
   - *a tissue outshines fat on the image given as T1*: where the surface layer is fat
     (median rank :data:`BRIGHT_FAT_RANK` or more on either image), the T1-to-fluid log ratio
     of the tissues lit on either image reaches more than :data:`BRIGHTER_THAN_FAT` above
     fat's: on a real T1 fat is the brightest tissue relative to any fluid image, while a T2
     or STIR in the T1's role brings its fluid (T1 and T2 swapped, a STIR as the T1, T1 and
     STIR swapped); not when the surface fat is clearly a T1's beside a fat-suppressed
     image (``fat_contrast`` above :data:`CLEAR_T1_FAT_CONTRAST`);
   - *fat looks scarce on the image given as T1* (an image in the STIR role): the
     T1-to-fluid log ratio's lower tail reaches far further than its upper one
     (``ratio_tails`` below :data:`MIN_RATIO_TAILS`). With a fat-suppressed image the upper
     tail is fat and fatty marrow, the lower one fluid; fat fills more of a spine, pelvis
     or joint than free fluid. Not applied in the T2 role: a plain T2 shows fat bright too,
     and its fluid makes the lower tail long. Only where the check finds the body's surface
     fat (air around the body in view, the surface layer and the interior measured: the
     ``fat_contrast`` of the surface rules), or where a marrow mask shows marrow making at
     most :data:`MAX_MARROW_LIT_SHARE` of the lit tissue: a view cut inside the body
     and filled by fatty marrow (a tight field of view in a joint) has its median at fat, so
     its lower tail is the long one on a genuine pair and the tails mirror a swap's. There the
     relation gives a note (:data:`FAT_SCARCE_UNJUDGED`, one of :data:`NOTE_RULES`), never a
     refusal. Nor where the surface fat itself shows a T1 beside a fat-suppressed image
     (:func:`surface_fat_shows_t1`): a view whose bulk is fat (an axial pelvis) has the
     ratio's median at fat, and its lower tail is the long one on a genuine pair.
   - *the surface fat shows the two swapped* (:data:`FAT_SHOWS_SWAP`, an image in the STIR
     role): the body's surface fat is dark on the image given as T1, brighter in rank on
     the fluid image and lower than the interior in the T1-to-fluid ratio
     (:func:`surface_fat_shows_swap`, the mirror of :func:`surface_fat_shows_t1`): a view
     whose interior is mostly fat (an axial pelvis) keeps the fat contrast of a swap short
     of the suppressed-fat rule's margin, and its tails long on the fat side.

   - *the names say the two are swapped, and the images lean so* (:data:`NAMED_SWAP`): the
     image given as T1 is named (file name or series description) a T2 or STIR and the
     fluid image a T1, and the images agree, however weakly: fluid is less dark and
     brighter on the image given as T1 than the other image's brightest tissue is on the
     fluid image (:func:`leans_swapped`). For crops without air around the body, fat
     layer or marrow mask (the real SCT cervical pair), where no rule above can judge.

   The marrow rules alone (:data:`MARROW_RULES`) give a note instead of a refusal when the
   T1's name or header says T1 (a gradient-echo T1 shows marrow darker than the discs).
   Bone masks given to ``analyze(..., marrow=...)`` are read after the study is built:
   :func:`check_bone_roles` applies the marrow rules then.

   The surface rules need the layer to hold signal on both images (its median at least
   :data:`MIN_TISSUE_OVER_AIR` times the air's): images out of register are not judged by
   it. Measures that cannot be made (no air around the body in view, no marrow mask) are left
   out; with none of them the pair is judged on fluid alone.

Measured with ``python benchmarks/bench_role_check.py`` (see ``docs/validation.md``, "Role
check"). The contrast told by the names and headers is reported in a note when it disagrees
with the role.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.concurrency import map_threads
from bmetoolkit.errors import ContrastMismatchError, DuplicateInputError
from bmetoolkit.pairing.tissue import MIN_VOXELS, RoleEvidence, measure_marrow, measure_roles
from bmetoolkit.spine.labels import DISC_OFFSET
from bmetoolkit.volume import Volume

if TYPE_CHECKING:
    from bmetoolkit.study import Study

__all__ = [
    "BRIGHTER_THAN_FAT",
    "BRIGHT_FAT_RANK",
    "CLEAR_T1_FAT_CONTRAST",
    "FAT_SHOWS_SWAP",
    "MARROW_RANK_GAP",
    "MARROW_REVERSED_BY",
    "MARROW_REVERSED_NEEDED",
    "MAX_DARK_MARROW_RANK",
    "MAX_MARROW_LIT_SHARE",
    "MIN_FLUID_BRIGHT_FRACTION",
    "MIN_FLUID_DARK_FRACTION",
    "MIN_RATIO_TAILS",
    "MIN_TISSUE_OVER_AIR",
    "NOTE_RULES",
    "SUPPRESSED_FAT_CONTRAST",
    "SUPPRESSED_FAT_RANK",
    "RoleVerdict",
    "check_bone_roles",
    "check_roles",
    "judge_roles",
    "leans_swapped",
    "marrow_fat_relations",
    "names_say_swapped",
    "refuse_duplicates",
    "same_input",
    "surface_fat_shows_swap",
    "surface_fat_shows_t1",
]

#: Below this fraction of the fluid image's brightest voxels dark on the T1, fluid is bright on
#: it (genuine T1s: see ``docs/validation.md``).
MIN_FLUID_DARK_FRACTION = 0.02
#: ... while at least this fraction of them lies in its brightest quarter (on joints whose
#: brightest tissue on the STIR is muscle, intermediate on a T1, it does not).
MIN_FLUID_BRIGHT_FRACTION = 0.5
#: Marrow (from a given mask) with a median rank below this on the image given as T1 ...
MAX_DARK_MARROW_RANK = 0.4
#: ... and at least this much higher on the fluid image is dark on it: not a T1.
MARROW_RANK_GAP = 0.3
#: The T1-to-fluid log ratio of surface fat this far below the interior's: fat is suppressed
#: on the image given as T1 (a plain T2 with a real T1 stays near 0, a STIR near +2).
SUPPRESSED_FAT_CONTRAST = -1.0
#: Surface fat with a median rank below this on the image given as T1 is dark on it.
SUPPRESSED_FAT_RANK = 0.5
#: The surface layer is judged only where it holds signal on both images: its median at
#: least this many times the surrounding air's on each (not so when the two images are out of
#: register and the layer is air on one of them).
MIN_TISSUE_OVER_AIR = 2.0
#: Surface layer with a median rank of at least this on either image: it is fat.
BRIGHT_FAT_RANK = 0.7
#: No tissue lit on either image reaches more than this above surface fat in the T1-to-fluid
#: log ratio on a real T1 (marrow and muscle with a plain T2: about 0.6; fluid when the roles
#: are swapped: 1.3 and more).
BRIGHTER_THAN_FAT = 1.0
#: ... but not when the surface fat itself clearly shows a T1 beside a fat-suppressed image:
#: fat that much brighter, relative to the fluid image, than the tissue inside (the mirror
#: of :data:`SUPPRESSED_FAT_CONTRAST`; a swap turns the sign). A tissue far darker on the
#: fluid image than fat (cortex, tendon, air at a boundary) then makes the bright tail, not
#: fluid: a genuine moved and tilted thin-slab phantom reached 1.03 so.
CLEAR_T1_FAT_CONTRAST = -SUPPRESSED_FAT_CONTRAST
#: A relation of :func:`marrow_fat_relations` is reversed when it lies this far below its
#: balance point 0 (a tenth of its half-range) ...
MARROW_REVERSED_BY = 0.05
#: ... and the marrow looks less fatty on the image given as T1 when this many of the three
#: are: each can fail alone on a genuine pair in some view, a swap reverses all three.
MARROW_REVERSED_NEEDED = 2
#: Below this ``ratio_tails`` (with an image in the STIR role) fat looks scarce on the image
#: given as T1 (genuine tuning pairs: -0.17 and more; T1 and STIR swapped: -0.5 and less).
MIN_RATIO_TAILS = -0.35

#: Without the body's surface fat, the fat-scarce rule still refuses where a marrow mask
#: shows marrow makes at most this share of the tissue lit on either image: well under the
#: half at which marrow would hold the tails' median (tight genuine knee views: 0.6-0.9;
#: sacroiliac views without air: 0.1-0.35; tuning seeds).
MAX_MARROW_LIT_SHARE = 0.4

#: The rules of :func:`judge_roles`, as :attr:`RoleVerdict.rule` names them.
SUPPRESSED_FAT = "suppressed_fat"
FLUID_BRIGHT = "fluid_bright"
DARK_MARROW = "dark_marrow"
MARROW_NOT_FATTY = "marrow_not_fatty"
OUTSHINES_FAT = "outshines_fat"
#: The surface fat shows the image given as T1 and the fat-suppressed image swapped.
FAT_SHOWS_SWAP = "fat_shows_swap"
FAT_SCARCE = "fat_scarce"
#: The fat-scarce relation in a view without the body's surface: a note, never a refusal.
FAT_SCARCE_UNJUDGED = "fat_scarce_unjudged"
NAMED_SWAP = "named_swap"
#: Rules that judge the marrow alone: weak evidence when the T1's name says T1 (a
#: gradient-echo T1 shows marrow darker than discs): a note instead of a refusal.
MARROW_RULES = (DARK_MARROW, MARROW_NOT_FATTY)
#: Verdicts that only ever give a note (the roles could not be judged by their rule).
NOTE_RULES = (FAT_SCARCE_UNJUDGED,)
_ROLE_NAMES = {"t1": "T1", "t2": "T2", "stir": "STIR", "labels": "label map"}


def same_input(first: Volume, second: Volume) -> str | None:
    """Why two volumes are one and the same input (same file, same pixel data), or None.

    Examples
    --------
    >>> vol = Volume(np.arange(8, dtype=np.int16).reshape(2, 2, 2), np.eye(4))
    >>> same_input(vol, vol.with_data(vol.data.copy()))
    'identical pixel data'
    >>> same_input(vol, vol.with_data(vol.data + 1)) is None
    True
    """
    shared = _files(first) & _files(second)
    if shared:
        return "the same file" if len(shared) == 1 else f"the same {len(shared)} files"
    if (
        first.shape == second.shape
        and first.data.size
        and first.data.min() != first.data.max()  # a constant array identifies no image
        and np.array_equal(first.data, second.data)
    ):
        return "identical pixel data"
    return None


def _files(volume: Volume) -> set[str]:
    """The files a volume was read from (a DICOM series' files, or its one file), resolved."""
    from bmetoolkit.io import SOURCE_FILES

    files = volume.meta.get(SOURCE_FILES) or (
        [volume.source] if volume.source and os.path.isfile(volume.source) else []
    )
    return {os.path.realpath(f) for f in files}


@dataclass(frozen=True)
class RoleVerdict:
    """Why an image cannot be in the T1's role: the rule that says so, and why in words.

    Attributes
    ----------
    rule : str
        :data:`SUPPRESSED_FAT`, :data:`FLUID_BRIGHT`, :data:`DARK_MARROW`,
        :data:`MARROW_NOT_FATTY`, :data:`OUTSHINES_FAT`, :data:`FAT_SCARCE`,
        :data:`FAT_SHOWS_SWAP`, :data:`NAMED_SWAP` or (a note only)
        :data:`FAT_SCARCE_UNJUDGED`.
    reason : str
        What the images show, for the user (starts with the finding, e.g. "fat is
        suppressed on it: ...").
    """

    rule: str
    reason: str


def marrow_fat_relations(evidence: RoleEvidence) -> dict[str, float] | None:
    """Three signs that the marrow is fattier on the image given as T1 than on the fluid
    image, each centred on 0 and flipping sign when the two images are swapped.

    From :func:`~bmetoolkit.pairing.tissue.measure_roles`, on one scale (-0.5 to 0.5):
    ``position`` (``marrow_ratio_position - 0.5``: its T1-to-fluid ratio nearer fat's than
    fluid's), ``rank`` (``marrow_ratio_rank - 0.5``: above most other tissue's ratio) and
    ``level`` (``marrow_level_gap / 2``: nearer the top of the T1 than of the fluid image).
    Each can fail on a genuine pair in a known kind of view: ``rank`` where fat fills most
    of the soft tissue (around a knee), ``position`` where free fluid is scarce (the
    pelvis: muscle is then the fluid image's brightest tissue), ``level`` where the T1's
    brightest tissue outshines marrow far. None without a marrow mask.

    >>> from bmetoolkit.pairing.tissue import RoleEvidence
    >>> evidence = RoleEvidence(5000, marrow_ratio_position=0.6, marrow_ratio_rank=0.3,
    ...                         marrow_level_gap=0.4)
    >>> {k: round(v, 2) for k, v in marrow_fat_relations(evidence).items()}
    {'position': 0.1, 'rank': -0.2, 'level': 0.2}
    """
    position, rank, gap = (
        evidence.marrow_ratio_position,
        evidence.marrow_ratio_rank,
        evidence.marrow_level_gap,
    )
    if position is None or rank is None or gap is None:
        return None
    return {"position": position - 0.5, "rank": rank - 0.5, "level": gap / 2}


def leans_swapped(evidence: RoleEvidence) -> bool:
    """Whether the fluid measures speak, however weakly, for the two images swapped.

    Fluid (the fluid image's brightest voxels) is less often dark and more often bright on
    the image given as T1 than the brightest voxels of that image are on the fluid image:
    with a real T1 and a plain T2 it is the other way round, and a swap trades the two
    pairs of fractions (``fluid_dark`` with ``swapped_fluid_dark``, ``fluid_bright`` with
    ``swapped_fluid_bright``). Weak alone (with a fat-suppressed image the T1's brightest
    tissue, fat, is dark on it), so used only where the names say the roles are swapped.

    >>> from bmetoolkit.pairing.tissue import RoleEvidence
    >>> real_swap = RoleEvidence(134125, fluid_dark=0.234, fluid_bright=0.442,
    ...                          swapped_fluid_dark=0.311, swapped_fluid_bright=0.154)
    >>> leans_swapped(real_swap)
    True
    >>> leans_swapped(RoleEvidence(134125, fluid_dark=0.311, fluid_bright=0.154,
    ...                            swapped_fluid_dark=0.234, swapped_fluid_bright=0.442))
    False
    """
    given = (evidence.fluid_dark, evidence.fluid_bright)
    traded = (evidence.swapped_fluid_dark, evidence.swapped_fluid_bright)
    if None in given or None in traded:
        return False
    return given[0] < traded[0] and given[1] > traded[1]


def surface_fat_shows_t1(evidence: RoleEvidence) -> bool:
    """Whether the body's surface fat itself shows a T1 beside a fat-suppressed image.

    The mirror of the suppressed-fat rule: the layer is dark on the fluid image (median
    rank below :data:`SUPPRESSED_FAT_RANK`), brighter in rank on the image given as T1,
    and its T1-to-fluid log ratio lies above the interior's (``fat_contrast`` above 0).
    A swap turns all three round, and a plain T2 in the STIR role shows the fat bright
    (its rank at least that bound). Where the fat is measured so, the fat-scarce
    relation (the ratio's tails) is not evidence against the roles: a view whose bulk is
    fat (an axial pelvis, its subcutaneous and deep fat) has its median at fat, so the
    lower tail (muscle, fluid) is the long one on a genuine pair.

    >>> from bmetoolkit.pairing.tissue import RoleEvidence
    >>> genuine = RoleEvidence(5000, fat_t1_rank=0.61, fat_fluid_rank=0.22, fat_contrast=0.74)
    >>> surface_fat_shows_t1(genuine)
    True
    >>> swapped = RoleEvidence(5000, fat_t1_rank=0.25, fat_fluid_rank=0.61, fat_contrast=-0.29)
    >>> surface_fat_shows_t1(swapped)
    False
    """
    ranks, contrast = (evidence.fat_t1_rank, evidence.fat_fluid_rank), evidence.fat_contrast
    if None in ranks or contrast is None:
        return False
    return ranks[0] > ranks[1] and ranks[1] < SUPPRESSED_FAT_RANK and contrast > 0


def surface_fat_shows_swap(evidence: RoleEvidence) -> bool:
    """Whether the body's surface fat shows the T1 and a fat-suppressed image swapped.

    :func:`surface_fat_shows_t1` with the two images traded: the layer is dark on the
    image given as T1 (median rank below :data:`SUPPRESSED_FAT_RANK`), brighter in rank
    on the fluid image, and its T1-to-fluid log ratio lies below the interior's
    (``fat_contrast`` below 0). Fat is bright on a T1 and dark on a STIR or fat-suppressed
    T2 or PD whatever the patient, so a genuine pair turns all three round; no genuine
    pair of the tuning phantoms comes near (the layer at least 0.29 higher in rank on the
    T1, fat contrast 0.38 and more). It needs no margin like the suppressed-fat rule's
    :data:`SUPPRESSED_FAT_CONTRAST`: that rule reads the contrast alone, which a view
    whose interior is mostly fat (an axial pelvis: fat behind the sacrum and around the
    muscles) keeps near 0 (swapped -0.29 to -0.99 at full size), while here the ranks of
    the layer on both images say it too. Judged in the STIR role only (a plain T2 shows
    fat bright as a T1 does).

    >>> from bmetoolkit.pairing.tissue import RoleEvidence
    >>> swapped = RoleEvidence(5000, fat_t1_rank=0.252, fat_fluid_rank=0.608, fat_contrast=-0.293)
    >>> surface_fat_shows_swap(swapped)
    True
    >>> genuine = RoleEvidence(5000, fat_t1_rank=0.607, fat_fluid_rank=0.22, fat_contrast=0.739)
    >>> surface_fat_shows_swap(genuine)
    False
    """
    ranks, contrast = (evidence.fat_t1_rank, evidence.fat_fluid_rank), evidence.fat_contrast
    if None in ranks or contrast is None:
        return False
    return ranks[0] < ranks[1] and ranks[0] < SUPPRESSED_FAT_RANK and contrast < 0


def names_say_swapped(t1: Volume, fluid: Volume) -> bool:
    """Whether the image given as T1 is named a T2 or STIR and the fluid image a T1 (file
    names or series descriptions, :func:`~bmetoolkit.pairing.names.contrast_from_name`)."""
    return _contrast_of(t1) in ("T2", "STIR") and _contrast_of(fluid) == "T1"


def judge_roles(
    evidence: RoleEvidence, role: str, names_swapped: bool = False
) -> RoleVerdict | None:
    """Why the image given as T1 and the fluid image in ``role`` cannot be in those roles.

    Parameters
    ----------
    evidence : RoleEvidence
        The measures of :func:`~bmetoolkit.pairing.tissue.measure_roles`.
    role : {'t2', 'stir'}
        The fluid image's role (for the message; the fat-scarce rule needs a STIR role).
    names_swapped : bool
        The names of the two images say they are swapped (:func:`names_say_swapped`):
        then the images need only lean so (:func:`leans_swapped`).

    Returns
    -------
    RoleVerdict or None
        The rule that refuses the roles and why; a verdict whose rule is in
        :data:`NOTE_RULES` when a relation speaks against the roles but cannot be judged in
        this view (a note, not a refusal); None when the roles fit (or cannot be judged).

    Examples
    --------
    >>> from bmetoolkit.pairing.tissue import RoleEvidence
    >>> judge_roles(RoleEvidence(5000, fluid_dark=0.3, fluid_bright=0.1), "stir") is None
    True
    >>> verdict = judge_roles(RoleEvidence(5000, fluid_dark=0.004, fluid_bright=0.6), "stir")
    >>> verdict.rule, verdict.reason[:21]
    ('fluid_bright', 'fluid is bright on it')
    """
    if evidence.fluid_dark is None:
        return None
    name = _ROLE_NAMES[role]
    surface_is_tissue = (
        evidence.fat_t1_over_air is not None
        and min(evidence.fat_t1_over_air, evidence.fat_fluid_over_air) >= MIN_TISSUE_OVER_AIR
    )
    if (
        surface_is_tissue
        and evidence.fat_contrast < SUPPRESSED_FAT_CONTRAST
        and evidence.fat_t1_rank < SUPPRESSED_FAT_RANK
    ):
        return RoleVerdict(
            SUPPRESSED_FAT,
            f"fat is suppressed on it: the body's surface fat is dark on it (median rank "
            f"{evidence.fat_t1_rank:.2f}) and {np.exp(-evidence.fat_contrast):.1f} times darker, "
            f"relative to the {name}, than the tissue inside (a T1 shows fat bright)",
        )
    if (
        evidence.fluid_dark < MIN_FLUID_DARK_FRACTION
        and evidence.fluid_bright is not None
        and evidence.fluid_bright >= MIN_FLUID_BRIGHT_FRACTION
    ):
        return RoleVerdict(
            FLUID_BRIGHT,
            f"fluid is bright on it: of the voxels brightest on the {name} (fluid: CSF, discs, "
            f"joint fluid), {100 * evidence.fluid_dark:.1f} % are dark on it and "
            f"{100 * evidence.fluid_bright:.0f} % among its brightest (a T1 shows fluid dark)",
        )
    if (
        evidence.marrow_t1_rank is not None
        and evidence.marrow_t1_rank < MAX_DARK_MARROW_RANK
        and evidence.marrow_fluid_rank - evidence.marrow_t1_rank >= MARROW_RANK_GAP
    ):
        return RoleVerdict(
            DARK_MARROW,
            f"marrow is dark on it: the marrow's median rank is {evidence.marrow_t1_rank:.2f} "
            f"on it and {evidence.marrow_fluid_rank:.2f} on the {name} (fatty marrow is bright "
            "on a T1, darker on a T2 or STIR)",
        )
    relations = marrow_fat_relations(evidence)
    reversed_ = [k for k, v in (relations or {}).items() if v < -MARROW_REVERSED_BY]
    if len(reversed_) >= MARROW_REVERSED_NEEDED:
        return RoleVerdict(
            MARROW_NOT_FATTY,
            f"marrow looks less fatty on it than on the {name} ({' and '.join(reversed_)} "
            f"reversed: its T1-to-{name} ratio is above that of "
            f"{100 * evidence.marrow_ratio_rank:.0f} % of the other tissue and "
            f"{100 * evidence.marrow_ratio_position:.0f} % of the way from the fluid's to the "
            f"fat's, and it lies {evidence.marrow_level_gap:+.2f} nearer the top of it than of "
            f"the {name}; adult marrow is fatty, bright on a T1 and dark on a fat-suppressed "
            "image)",
        )
    if (
        surface_is_tissue
        and max(evidence.fat_t1_rank, evidence.fat_fluid_rank) >= BRIGHT_FAT_RANK
        and evidence.brighter_on_t1 > BRIGHTER_THAN_FAT
        and evidence.fat_contrast < CLEAR_T1_FAT_CONTRAST
    ):
        return RoleVerdict(
            OUTSHINES_FAT,
            f"tissue is brighter on it than fat is, relative to the {name}, by a factor of "
            f"{np.exp(evidence.brighter_on_t1):.1f} (on a T1 nothing outshines fat so: it is the "
            f"fluid of a T2 or STIR, dark on a T1)",
        )
    unjudged = None
    if (
        role == "stir"
        and evidence.ratio_tails is not None
        and evidence.ratio_tails < MIN_RATIO_TAILS
        and not (surface_is_tissue and surface_fat_shows_t1(evidence))
    ):
        tails = (
            "of the tissues it and the STIR show, those darker on it than on the STIR reach "
            f"much further than those brighter (tails {evidence.ratio_tails:.2f})"
        )
        marrow_not_bulk = (
            evidence.marrow_lit_share is not None
            and evidence.marrow_lit_share <= MAX_MARROW_LIT_SHARE
        )
        if evidence.fat_contrast is not None or marrow_not_bulk:
            # the body's surface fat was found, or the mask shows marrow does not fill it
            return RoleVerdict(
                FAT_SCARCE,
                f"fat looks scarce on it: {tails}; with a fat-suppressed image, fat and fatty "
                "marrow, bright on a T1, fill more of the view than fluid does. Either the image "
                "given as T1 is fat-suppressed, or the image given as STIR is not (a plain T2 "
                "belongs in the T2 role)",
            )
        # no surface fat found, no mask to say marrow does not fill the view: the tails of a
        # view filled by marrow (a tight field of view inside a joint) mirror a swap's
        filled = (
            "a view filled by fatty marrow shows the same"
            if evidence.marrow_lit_share is None
            else f"marrow fills {100 * evidence.marrow_lit_share:.0f} % of the lit tissue"
        )
        unjudged = RoleVerdict(
            FAT_SCARCE_UNJUDGED,
            f"fat may be scarce on it ({tails}), but the view shows no body surface (air and "
            f"the fat beneath the skin) to tell fat by, and {filled}; not refused",
        )
    if role == "stir" and surface_is_tissue and surface_fat_shows_swap(evidence):
        return RoleVerdict(
            FAT_SHOWS_SWAP,
            f"fat is dark on it and brighter on the STIR: the body's surface fat has a median "
            f"rank of {evidence.fat_t1_rank:.2f} on it and {evidence.fat_fluid_rank:.2f} on the "
            f"STIR, and is {np.exp(-evidence.fat_contrast):.1f} times darker, relative to the "
            "STIR, than the tissue inside (a T1 shows fat bright, a STIR or fat-suppressed "
            "image dark: the two look swapped)",
        )
    if names_swapped and leans_swapped(evidence):
        return RoleVerdict(
            NAMED_SWAP,
            f"it is named a T2 or STIR and the {name} a T1, and the images agree: of the "
            f"{name}'s brightest voxels {100 * evidence.fluid_dark:.0f} % are dark on it and "
            f"{100 * evidence.fluid_bright:.0f} % among its brightest, while of its brightest "
            f"{100 * evidence.swapped_fluid_dark:.0f} % are dark on the {name} and "
            f"{100 * evidence.swapped_fluid_bright:.0f} % among the {name}'s brightest (a T1 "
            "shows fluid dark)",
        )
    return unjudged


def check_roles(
    t1: Volume,
    given: Mapping[str, Volume],
    aligned: Mapping[str, Volume],
    covered: Mapping[str, NDArray[np.bool_]],
) -> tuple[dict[str, RoleEvidence], list[str]]:
    """Refuse images in the wrong role; return what was measured and notes.

    Parameters
    ----------
    t1 : Volume
        The image given as T1.
    given : mapping of role to Volume
        The other images as given (before resampling): ``t2``, ``stir``, ``labels``.
    aligned, covered : mapping of role to Volume / bool array
        The T2, STIR and labels on the T1 grid, and where the T2 and STIR have data. A label
        map's non-zero voxels are taken as marrow.

    Returns
    -------
    evidence : dict
        The measures (:class:`~bmetoolkit.pairing.tissue.RoleEvidence`) per fluid role; its
        ``fluid_dark`` is None when there were too few voxels to judge.
    notes : list of str
        Checks that could not be made, contrasts that names or headers disagree on.

    Raises
    ------
    DuplicateInputError
        One file or identical pixel data in two roles.
    ContrastMismatchError
        The images do not show the tissue relations of their roles.
    """
    refuse_duplicates({"t1": t1, **given})
    notes: list[str] = []
    labels = aligned.get("labels")
    marrow = None if labels is None else _marrow(labels)
    roles = [role for role in ("t2", "stir") if role in aligned]
    measured = map_threads(  # each image measured in its own thread, judged in order below
        lambda role: measure_roles(t1.data, aligned[role], covered[role], t1.grid.spacing, marrow),
        roles,
    )
    for role, evidence in zip(roles, measured, strict=True):
        if evidence.fluid_dark is None:
            notes.append(
                f"the T1 was not checked against the {_ROLE_NAMES[role]} ({evidence.voxels} "
                f"voxels with signal where both have data; {MIN_VOXELS} needed)"
            )
            continue
        swapped = names_say_swapped(t1, given[role])
        notes += _act_on(judge_roles(evidence, role, swapped), t1, given[role], role)
    notes += _name_notes({"t1": t1, **given})
    return dict(zip(roles, measured, strict=True)), notes


def check_bone_roles(study: Study, marrow: NDArray[np.bool_]) -> Study:
    """Judge a study's roles again on bone masks known only after it was built.

    :meth:`~bmetoolkit.study.Study.from_images` judges the roles before the bone masks of
    ``analyze(..., marrow=...)`` are read; this adds their marrow rules (fatty marrow bright
    on a T1, dark on a fat-suppressed image), measured cheaply on the grid the check judges
    (:func:`~bmetoolkit.pairing.tissue.measure_marrow`). Studies whose roles were not
    checked (``verify_roles=False``, no T1: an empty ``role_checks``) are returned as they are.

    Parameters
    ----------
    study : Study
    marrow : ndarray of bool
        The bones on the study grid.

    Returns
    -------
    Study
        The study, its ``role_evidence`` with the marrow measures added, and a note when the
        marrow rules are overruled by the T1's name.

    Raises
    ------
    ContrastMismatchError
        The marrow does not look fatty on the image given as T1.
    """
    if all(fluid_dark is None for fluid_dark in study.role_checks.values()):
        return study  # not judged: nothing to add
    notes: list[str] = []
    recorded = {role: dict(measures) for role, measures in study.role_evidence.items()}
    for role, fluid_dark in study.role_checks.items():
        if fluid_dark is None:
            continue
        fluid = getattr(study, role)
        measures = measure_marrow(
            study.t1.data, fluid, study.covered[role], marrow, study.grid.spacing
        )
        evidence = RoleEvidence(int(np.count_nonzero(marrow)), fluid_dark=fluid_dark, **measures)
        rounded = evidence.to_dict()
        recorded.setdefault(role, {}).update({name: rounded[name] for name in measures})
        notes += _act_on(judge_roles(evidence, role), study.t1, fluid, role)
    return replace(
        study,
        notes=tuple(dict.fromkeys((*study.notes, *notes))),
        role_evidence=recorded,
    )


def _marrow(labels: Volume) -> NDArray[np.bool_]:
    """Marrow in a vertebra label map: its non-zero ids below 100 (SPINEPS discs are 100+
    and its endplates 200+: discs are fluid-bright, not marrow)."""
    data = np.asarray(labels.data)
    return (data > 0) & (data < DISC_OFFSET)


def _act_on(verdict: RoleVerdict | None, t1: Volume, fluid: Volume, role: str) -> list[str]:
    """Refuse the roles on ``verdict``, or return a note when only a marrow rule speaks
    against a T1 whose name says T1."""
    if verdict is None:
        return []
    if verdict.rule in NOTE_RULES:
        return [
            f"the T1 was not fully checked against the {_ROLE_NAMES[role]}: {verdict.reason}"
            "; check the roles (a vertebra or bone mask lets the check judge the marrow)"
        ]
    if verdict.rule in MARROW_RULES and _contrast_of(t1) == "T1":
        # Marrow alone is weak evidence: gradient-echo T1s show marrow darker than discs (the
        # SCT cervical T1 with its vertebrae given). Its name says T1: a note.
        return [
            f"the T1's {verdict.reason}; its name or header says T1, so it is used as the T1 "
            "(a gradient-echo T1?): check the roles"
        ]
    _refuse_contrast(t1, fluid, role, verdict.reason)
    return []


def refuse_duplicates(images: Mapping[str, Volume]) -> None:
    """Refuse one file, or identical pixel data, given in two roles (keys of ``images``)."""
    roles = list(images)
    for n, first in enumerate(roles):
        for second in roles[n + 1 :]:
            why = same_input(images[first], images[second])
            if why is not None:
                raise DuplicateInputError(
                    f"{why} was given as the {_ROLE_NAMES[first]} and as the {_ROLE_NAMES[second]}",
                    path=sorted({p for p in (images[first].source, images[second].source) if p}),
                    hint="give each role its own image: a T1, and a T2 and/or STIR of the "
                    "same session",
                )


def _refuse_contrast(t1: Volume, fluid: Volume, role: str, reason: str) -> None:
    name = _ROLE_NAMES[role]
    raise ContrastMismatchError(
        f"the image given as T1 does not look like a T1 next to the {name}: {reason}. One "
        f"image is in the wrong role{_called(t1, fluid)}",
        path=[p for p in (t1.source, fluid.source) if p],
        hint=f"{_CHECK_ADVICE}; if you are sure of the roles, pass verify_roles=False",
        cli_hint=f"{_CHECK_ADVICE}; if you are sure of the roles, add --no-role-check",
    )


_CHECK_ADVICE = (
    "check which file is which (`bmetoolkit info FILE` shows what the header and name say) "
    "and give the T1 as the T1"
)


def _called(t1: Volume, fluid: Volume) -> str:
    pairs = (("T1", _contrast_of(t1)), ("fluid", _contrast_of(fluid)))
    calls = [f"{role}: {call}" for role, call in pairs if call]
    return f" (names and headers say {', '.join(calls)})" if calls else ""


def _contrast_of(volume: Volume) -> str | None:
    """The contrast a volume's file name or series description names, if any."""
    from bmetoolkit.pairing.names import contrast_from_name

    for text in (volume.meta.get("SeriesDescription"), volume.source):
        if text:
            call = contrast_from_name(os.path.basename(str(text)))
            if call is not None:
                return call
    return None


def _name_notes(images: Mapping[str, Volume]) -> list[str]:
    notes = []
    for role, volume in images.items():
        if role == "labels":
            continue
        call = _contrast_of(volume)
        fits = call is None or call == _ROLE_NAMES[role] or (role == "stir" and call == "T2")
        if not fits:
            notes.append(
                f"the image given as {_ROLE_NAMES[role]} is named as a {call} "
                f"({os.path.basename(volume.source or '')}); check the roles"
            )
    return notes
