"""Lesion specifications, their shapes in a vertebra's frame, presets and random sets.

A lesion lives in one vertebral body and only replaces marrow (never cortex). Endplate
lesions (Modic types) are half-ellipsoids hugging the concave endplate: their depth below the
endplate surface reaches ``height_frac`` of the body height at their centre. Lesions away
from the endplates (edema, haemangioma) are ellipsoids inside the body.

Each lesion has a soft membership ``m`` in [0, 1] (ill-defined margins for edema, sharp ones
for a haemangioma); the truth is binary: inside where ``m >= 0.5``.

Examples
--------
>>> Lesion("L4", "modic1", endplate="inferior", height_frac=0.3).tissues
(<Tissue.MODIC1: 12>,)
>>> Lesion("L4", "modic2/3", endplate="superior").tissues
(<Tissue.MODIC2: 13>, <Tissue.MODIC3: 14>)
>>> Lesion("L2", "haemangioma").zone
'body'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.data.phantom.anatomy import (
    Tissue,
    Vertebra,
    body_height_reference_mm,
    endplate_depth,
)

__all__ = [
    "LESION_KINDS",
    "PRESETS",
    "TRUTH_MEMBERSHIP",
    "Lesion",
    "lesion_membership",
    "preset_lesions",
    "random_lesions",
]

Array = NDArray[np.float32]


#: Kinds of lesion, with the tissue(s) they are made of (dominant first).
LESION_KINDS: dict[str, tuple[Tissue, ...]] = {
    "modic1": (Tissue.MODIC1,),
    "modic2": (Tissue.MODIC2,),
    "modic3": (Tissue.MODIC3,),
    "modic1/2": (Tissue.MODIC1, Tissue.MODIC2),
    "modic2/1": (Tissue.MODIC2, Tissue.MODIC1),
    "modic2/3": (Tissue.MODIC2, Tissue.MODIC3),
    "modic3/2": (Tissue.MODIC3, Tissue.MODIC2),
    "edema": (Tissue.EDEMA,),
    "haemangioma": (Tissue.HAEMANGIOMA,),
}

#: Membership on a lesion's true boundary: the truth is ``membership >= TRUTH_MEMBERSHIP``.
TRUTH_MEMBERSHIP = 0.5

#: Width of the soft margin (mm) per kind: where membership goes from 1 to 0.
MARGIN_MM: dict[str, float] = {
    "modic1": 2.0,
    "modic2": 1.0,
    "modic3": 1.0,
    "edema": 3.0,
    "haemangioma": 0.4,
}


@dataclass(frozen=True)
class Lesion:
    """One lesion in the body of one vertebra.

    Parameters
    ----------
    level : str
        Vertebra, e.g. ``"L4"``.
    kind : str
        One of :data:`LESION_KINDS`: ``"modic1"``, ``"modic2"``, ``"modic3"``, mixed
        ``"modic1/2"`` / ``"modic2/3"`` (dominant type first; also ``"modic2/1"``,
        ``"modic3/2"``), ``"edema"`` (bone marrow edema away from the endplates) or
        ``"haemangioma"`` (a distractor: bright on T1 and T2, not edema).
    endplate : {'superior', 'inferior'} or None
        Endplate a Modic lesion sits on; must be None for edema and haemangioma.
    height_frac : float
        Height as a fraction of the body height (the distance between the endplates at the
        body centre). For endplate lesions: maximum depth below the endplate; for others:
        full SI extent.
    ap_center, lr_center : float
        Centre as a fraction of the AP / LR semi-axis of the body (-1 posterior / left rim,
        0 middle, +1 anterior / right rim).
    si_center : float
        For lesions away from the endplates: SI centre as a fraction of half the body height.
    ap_width, lr_width : float
        Full extent as a fraction of the body's AP / LR diameter.
    minor_fraction : float
        For mixed kinds: volume fraction of the minor type, which takes the posterior part.
    margin_mm : float, optional
        Width of the soft margin (mm); by default per kind (edema ill-defined, haemangioma
        sharp).
    """

    level: str
    kind: str
    endplate: str | None = None
    height_frac: float = 0.3
    ap_center: float = 0.0
    ap_width: float = 0.6
    lr_center: float = 0.0
    lr_width: float = 0.7
    si_center: float = 0.0
    minor_fraction: float = 0.35
    margin_mm: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in LESION_KINDS:
            raise ValueError(f"unknown lesion kind {self.kind!r}; use one of {list(LESION_KINDS)}")
        if self.is_modic and self.endplate not in ("superior", "inferior"):
            raise ValueError(
                f"a {self.kind} lesion sits on an endplate: pass endplate='superior' or "
                f"'inferior', got {self.endplate!r}"
            )
        if not self.is_modic and self.endplate is not None:
            raise ValueError(f"a {self.kind} lesion lies away from the endplates: endplate=None")
        if not 0 < self.height_frac < 1:
            raise ValueError(f"height_frac must lie in (0, 1), got {self.height_frac}")
        if not 0 < self.minor_fraction < 0.5:
            raise ValueError(f"minor_fraction must lie in (0, 0.5), got {self.minor_fraction}")

    @property
    def is_modic(self) -> bool:
        """True for Modic endplate lesions (pure or mixed)."""
        return self.kind.startswith("modic")

    @property
    def tissues(self) -> tuple[Tissue, ...]:
        """Tissue classes of the lesion, dominant first."""
        return LESION_KINDS[self.kind]

    @property
    def zone(self) -> str:
        """``"superior"``/``"inferior"`` (endplate) or ``"body"``."""
        return self.endplate or "body"

    @property
    def margin(self) -> float:
        """Soft margin width in mm."""
        if self.margin_mm is not None:
            return self.margin_mm
        return MARGIN_MM[self.kind.split("/")[0]]

    def to_dict(self) -> dict:
        """The specification as a plain dict (JSON-ready)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _split_for_minor(fraction: float) -> float:
    """Normalised AP position splitting an ellipsoid so ``fraction`` of it lies beyond.

    >>> round(_split_for_minor(0.5), 6)
    0.0
    """
    # Volume fraction of a unit-sphere cap beyond t is (1 - t)²(2 + t)/4.
    roots = np.roots([1.0, 0.0, -3.0, 2.0 - 4.0 * fraction])
    real = [r.real for r in roots if abs(r.imag) < 1e-9 and -1 <= r.real <= 1]
    return float(real[0]) + 0.0


def lesion_membership(
    lesion: Lesion, vertebra: Vertebra, ap: Array, lr: Array, si: Array
) -> tuple[Array, NDArray[np.int16]]:
    """Soft membership and tissue class of points given in the vertebra's local frame.

    Parameters
    ----------
    lesion : Lesion
    vertebra : Vertebra
    ap, lr, si : ndarray
        Local coordinates in mm (see :mod:`bmetoolkit.data.phantom.anatomy`).

    Returns
    -------
    membership : ndarray of float32
        In [0, 1]; 0.5 on the lesion's true boundary.
    tissue : ndarray of int16
        Tissue class at each point (meaningful where membership > 0).
    """
    height = body_height_reference_mm(vertebra)
    sa = max(lesion.ap_width * vertebra.ap_radius_mm, 1e-3)
    sl = max(lesion.lr_width * vertebra.lr_radius_mm, 1e-3)
    ca = np.float32(lesion.ap_center * vertebra.ap_radius_mm)
    cl = np.float32(lesion.lr_center * vertebra.lr_radius_mm)
    ea = (ap - ca) / np.float32(sa)
    el = (lr - cl) / np.float32(sl)
    if lesion.endplate is not None:
        sh = lesion.height_frac * height
        depth = endplate_depth(vertebra, ap, lr, si, lesion.endplate)
        es = np.maximum(depth, 0) / np.float32(sh)
    else:
        sh = lesion.height_frac * height / 2
        es = (si - np.float32(lesion.si_center * height / 2)) / np.float32(sh)
    rho = np.sqrt(ea * ea + el * el + es * es)
    scale = np.float32(min(sa, sl, sh) / lesion.margin)
    membership = np.clip(TRUTH_MEMBERSHIP + (1 - rho) * scale, 0, 1).astype(np.float32)
    tissues = lesion.tissues
    tissue = np.full(ap.shape, int(tissues[0]), dtype=np.int16)
    if len(tissues) > 1:
        split = np.float32(_split_for_minor(lesion.minor_fraction))
        tissue[-ea > split] = int(tissues[1])
    return membership, tissue


#: Named lesion sets, each a tuple of lesions; ``"healthy"`` has none.
PRESETS: dict[str, tuple[Lesion, ...]] = {
    "healthy": (),
    "modic1": (
        Lesion("L4", "modic1", endplate="inferior", height_frac=0.3, ap_center=0.3),
        Lesion("L5", "modic1", endplate="superior", height_frac=0.2, ap_center=0.3),
    ),
    "modic2": (Lesion("L3", "modic2", endplate="inferior", height_frac=0.35, ap_center=0.5),),
    "modic3": (Lesion("L5", "modic3", endplate="inferior", height_frac=0.15, ap_width=0.8),),
    "mixed": (
        Lesion("L4", "modic1/2", endplate="inferior", height_frac=0.4, ap_width=0.8),
        Lesion("L2", "modic2/3", endplate="superior", height_frac=0.2, ap_width=0.7),
    ),
    "edema": (Lesion("L2", "edema", height_frac=0.45, ap_width=0.5, lr_width=0.5, si_center=0.0),),
    "haemangioma": (
        Lesion("L1", "haemangioma", height_frac=0.35, ap_width=0.35, lr_width=0.3, ap_center=0.1),
    ),
}


def preset_lesions(name: str) -> list[Lesion]:
    """The lesions of a named preset (see :data:`PRESETS`).

    >>> [lesion.kind for lesion in preset_lesions("mixed")]
    ['modic1/2', 'modic2/3']
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; use one of {sorted(PRESETS)} or 'random'")
    return list(PRESETS[name])


#: Random lesion sets: number of endplate lesions drawn from this range (inclusive).
RANDOM_N_ENDPLATE_LESIONS = (1, 3)
#: Probability that an endplate lesion has a partner across the disc.
RANDOM_MIRROR_PROBABILITY = 0.6
#: Probabilities of adding one edema blob and one haemangioma.
RANDOM_EDEMA_PROBABILITY = 0.5
RANDOM_HAEMANGIOMA_PROBABILITY = 0.5
#: Kinds of endplate lesion drawn, with their weights.
RANDOM_MODIC_KINDS = ("modic1", "modic2", "modic3", "modic1/2", "modic2/3")
RANDOM_MODIC_WEIGHTS = (0.35, 0.3, 0.1, 0.15, 0.1)
#: Ranges (low, high) of the random shape fractions.
RANDOM_HEIGHT_RANGE = (0.1, 0.6)
RANDOM_AP_WIDTH_RANGE = (0.3, 0.9)
RANDOM_AP_CENTER_RANGE = (-0.5, 0.5)
RANDOM_LR_WIDTH_RANGE = (0.4, 0.9)
RANDOM_BLOB_HEIGHT_RANGE = (0.2, 0.4)
RANDOM_BLOB_WIDTH_RANGE = (0.2, 0.45)
RANDOM_BLOB_AP_CENTER_RANGE = (-0.3, 0.3)
RANDOM_BLOB_SI_CENTER_RANGE = (-0.2, 0.2)


def random_lesions(rng: np.random.Generator, levels: tuple[str, ...]) -> list[Lesion]:
    """A random, plausible set of lesions at the given levels, drawn from ``rng``.

    Endplate lesions sit at distinct endplates facing a disc (often on both sides of it);
    edema and haemangioma go to bodies without endplate lesions.

    >>> lesions = random_lesions(np.random.default_rng(1), ("L3", "L4", "L5", "S1"))
    >>> all(lesion.level in ("L3", "L4", "L5", "S1") for lesion in lesions)
    True
    """
    endplates = [(lv, "superior") for lv in levels] + [
        (lv, "inferior") for lv in levels if lv != "S1"
    ]
    n_lesions = int(rng.integers(RANDOM_N_ENDPLATE_LESIONS[0], RANDOM_N_ENDPLATE_LESIONS[1] + 1))
    chosen: dict[tuple[str, str], str] = {}
    for _ in range(n_lesions):
        free = [e for e in endplates if e not in chosen]
        level, endplate = free[int(rng.integers(len(free)))]
        kind = str(rng.choice(RANDOM_MODIC_KINDS, p=RANDOM_MODIC_WEIGHTS))
        chosen[(level, endplate)] = kind
        partner = _across_disc(level, endplate, levels)
        if partner and partner not in chosen and rng.random() < RANDOM_MIRROR_PROBABILITY:
            chosen[partner] = kind
    lesions = [
        Lesion(
            level,
            kind,
            endplate=endplate,
            height_frac=float(rng.uniform(*RANDOM_HEIGHT_RANGE)),
            ap_center=float(rng.uniform(*RANDOM_AP_CENTER_RANGE)),
            ap_width=float(rng.uniform(*RANDOM_AP_WIDTH_RANGE)),
            lr_width=float(rng.uniform(*RANDOM_LR_WIDTH_RANGE)),
        )
        for (level, endplate), kind in chosen.items()
    ]
    # Endplate lesions reaching past mid-body may meet; keep blobs in other bodies.
    free_levels = [lv for lv in levels if all(lv != key[0] for key in chosen)]
    for kind, probability in (
        ("edema", RANDOM_EDEMA_PROBABILITY),
        ("haemangioma", RANDOM_HAEMANGIOMA_PROBABILITY),
    ):
        if free_levels and rng.random() < probability:
            level = free_levels.pop(int(rng.integers(len(free_levels))))
            lesions.append(
                Lesion(
                    level,
                    kind,
                    height_frac=float(rng.uniform(*RANDOM_BLOB_HEIGHT_RANGE)),
                    ap_width=float(rng.uniform(*RANDOM_BLOB_WIDTH_RANGE)),
                    lr_width=float(rng.uniform(*RANDOM_BLOB_WIDTH_RANGE)),
                    ap_center=float(rng.uniform(*RANDOM_BLOB_AP_CENTER_RANGE)),
                    si_center=float(rng.uniform(*RANDOM_BLOB_SI_CENTER_RANGE)),
                )
            )
    return lesions


def _across_disc(level: str, endplate: str, levels: tuple[str, ...]) -> tuple[str, str] | None:
    """The endplate facing ``(level, endplate)`` across its disc, if it is in ``levels``."""
    k = levels.index(level)
    if endplate == "inferior" and k + 1 < len(levels):
        return levels[k + 1], "superior"
    if endplate == "superior" and k > 0:
        return levels[k - 1], "inferior"
    return None
