"""Tissue signals and headers of the joint series: T1, STIR, fat-suppressed T2 and PD.

Signals are relative to normal (fatty) marrow of the same sequence (DOMAIN.md, "Signal
patterns"): on T1 marrow is bright (1.0) and fluid dark; on the fluid-sensitive images fat
and marrow are suppressed and fluid is bright. Fat-suppressed PD keeps cartilage brighter
and fluid a little less bright than a fat-suppressed T2 or a STIR. Each case jitters every
non-marrow tissue (:data:`TISSUE_JITTER`), so no fixed table can be learnt from the phantom.

Examples
--------
>>> table = SIGNALS["stir"]
>>> bool(table[JointTissue.FLUID] > 5 * table[JointTissue.MARROW])
True
"""

from __future__ import annotations

from typing import Any

from bmetoolkit.data.phantom.joint.knee import JointTissue
from bmetoolkit.data.phantom.render import acquisition_meta

__all__ = ["FLUID_KINDS", "SIGNALS", "TISSUE_JITTER", "series_meta"]

T = JointTissue
#: Fluid-sensitive sequences.
FLUID_KINDS = ("stir", "t2fs", "pdfs")
#: Relative multiplicative jitter of each non-marrow tissue per case (uniform +/-).
TISSUE_JITTER = 0.15

SIGNALS: dict[str, dict[JointTissue, float]] = {
    "t1": {
        T.AIR: 0.0, T.FAT: 1.1, T.MUSCLE: 0.4, T.TENDON: 0.06, T.MENISCUS: 0.06,
        T.VESSEL: 0.08, T.FLUID: 0.28, T.CARTILAGE: 0.5, T.CORTEX: 0.05, T.MARROW: 1.0,
    },
    "stir": {
        T.AIR: 0.0, T.FAT: 0.08, T.MUSCLE: 0.4, T.TENDON: 0.05, T.MENISCUS: 0.05,
        T.VESSEL: 0.12, T.FLUID: 2.0, T.CARTILAGE: 0.7, T.CORTEX: 0.04, T.MARROW: 0.25,
    },
    "t2fs": {
        T.AIR: 0.0, T.FAT: 0.12, T.MUSCLE: 0.35, T.TENDON: 0.05, T.MENISCUS: 0.05,
        T.VESSEL: 0.15, T.FLUID: 2.0, T.CARTILAGE: 0.5, T.CORTEX: 0.04, T.MARROW: 0.3,
    },
    "pdfs": {
        T.AIR: 0.0, T.FAT: 0.15, T.MUSCLE: 0.5, T.TENDON: 0.06, T.MENISCUS: 0.06,
        T.VESSEL: 0.2, T.FLUID: 1.8, T.CARTILAGE: 0.9, T.CORTEX: 0.05, T.MARROW: 0.35,
    },
}  # fmt: skip

#: Repetition, echo and inversion times (s) and the name stem of each sequence.
_TIMING: dict[str, tuple[str, float, float, float | None]] = {
    "t1": ("T1_TSE", 0.6, 0.012, None),
    "stir": ("STIR", 4.5, 0.04, 0.16),
    "t2fs": ("T2_TSE_FS", 3.5, 0.07, None),
    "pdfs": ("PD_TSE_FS", 3.0, 0.03, None),
}
_PLANE_TAG = {"sagittal": "SAG", "coronal": "COR", "axial": "TRA", "oblique": "OBL"}


def series_meta(kind: str, plane: str) -> dict[str, Any]:
    """BIDS sidecar fields of a series (fat-suppressed ones with ``ScanOptions`` FS).

    >>> meta = series_meta("pdfs", "coronal")
    >>> meta["SeriesDescription"], meta["ScanOptions"]
    ('PD_TSE_FS_COR', 'FS')
    """
    stem, repetition, echo, inversion = _TIMING[kind]
    meta = acquisition_meta(
        f"{stem}_{_PLANE_TAG[plane]}", repetition_s=repetition, echo_s=echo, inversion_s=inversion
    )
    if kind in ("t2fs", "pdfs"):
        meta["ScanOptions"] = "FS"
    return meta
