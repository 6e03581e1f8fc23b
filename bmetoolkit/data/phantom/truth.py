"""Ground truth of a phantom: label masks on a grid, per-endplate and per-lesion tables.

Masks come from the same samples the images are rendered from: a voxel gets a label when at
least half of its samples (through the slice thickness and within the pixel) carry it.

- ``bme_mask``: 1 where bone marrow edema is: Modic type I (also the type I part of a mixed
  lesion) and edema away from the endplates. Not Modic II or III, not a haemangioma.
- ``modic_map``: 0 none, 1 type I, 2 type II, 3 type III (endplate lesions only).
- ``vertebrae``: VerSe id of each vertebral **body** (cortex, marrow and lesions); posterior
  elements are not labelled. A rendered ``above`` vertebra (T10, see
  :attr:`~bmetoolkit.data.phantom.anatomy.AnatomyConfig.render_above`) is labelled too; it
  has no lesions and no rows in the endplate table (its upper endplate faces a disc the
  phantom does not continue above).
- ``tissue``: the most frequent :class:`~bmetoolkit.data.phantom.anatomy.Tissue` class of each
  voxel (e.g. to pick pure normal-marrow or haemangioma voxels).

The tables are measured on a fine lattice (``step_mm``) in each vertebra's own frame, so they
do not depend on any acquisition grid. Heights are relative to the body height between the
endplates at the body centre; endplate areas to the full elliptic endplate, ``π·a·b``;
location is the third of the body's AP diameter holding more than half of the lesion volume
("middle" when neither the anterior nor the posterior third does).

Grades follow :func:`bmetoolkit.modic.height_grade` and :func:`bmetoolkit.modic.area_grade`
(the published definitions, shared by the analysis and the truth).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bmetoolkit.data.phantom.anatomy import (
    N_TISSUES,
    Spine,
    Tissue,
    Vertebra,
    body_height_reference_mm,
    endplate_depth,
)
from bmetoolkit.data.phantom.lesions import TRUTH_MEMBERSHIP, Lesion
from bmetoolkit.data.phantom.scene import Samples, paint_body, reduce_samples
from bmetoolkit.modic import ENDPLATE_COLUMNS as ANALYSIS_COLUMNS
from bmetoolkit.modic import MM3_PER_ML, area_grade, height_grade
from bmetoolkit.volume import Volume

__all__ = [
    "ENDPLATE_COLUMNS",
    "PhantomTruth",
    "endplate_table",
    "endplates_of",
    "truth_masks",
]

#: A voxel carries a label when at least this fraction of its samples do.
MAJORITY = 0.5
#: Location: a lesion is anterior/posterior when more than this fraction of it lies there.
LOCATION_MAJORITY = 0.5
#: Default lattice step of the truth measurements (mm).
TRUTH_STEP_MM = 0.5

_ROMAN = {Tissue.MODIC1: "I", Tissue.MODIC2: "II", Tissue.MODIC3: "III"}
_EDEMA_TISSUES = (Tissue.MODIC1, Tissue.EDEMA)

#: Columns of the per-endplate truth table, in order: the analysis' endplate columns up to
#: ``location`` (the truth has no measured-body columns).
ENDPLATE_COLUMNS = ANALYSIS_COLUMNS[: ANALYSIS_COLUMNS.index("location") + 1]


def _majority(condition: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """True where at least :data:`MAJORITY` of a voxel's samples (last axis) hold."""
    count = reduce_samples(np.add, condition.view(np.uint8))
    return count >= MAJORITY * condition.shape[-1]


def _majority_vertebra(vertebra: NDArray[np.integer]) -> NDArray[np.int16]:
    """Index of the vertebra holding the majority of each voxel's samples, or -1.

    A voxel touches at most two bodies (a disc lies between any two), so the smallest and
    the largest index present are the only candidates.
    """
    high = reduce_samples(np.maximum, vertebra)
    low = reduce_samples(np.minimum, np.where(vertebra >= 0, vertebra, np.iinfo(np.int16).max))
    result = np.full(vertebra.shape[:-1], -1, np.int16)
    for candidate in (high, low):
        wins = (candidate >= 0) & _majority(vertebra == candidate[..., np.newaxis])
        result[wins & (result < 0)] = candidate[wins & (result < 0)]
    return result


def truth_masks(samples: Samples, spine: Spine) -> dict[str, Volume]:
    """Label volumes ``bme_mask``, ``modic_map`` and ``vertebrae`` on the samples' grid."""
    code = samples.truth_code()
    tissue = code % N_TISSUES
    bme = _majority((tissue == Tissue.MODIC1) | (tissue == Tissue.EDEMA))
    counts = np.stack(
        [reduce_samples(np.add, (tissue == t).view(np.uint8)) for t in _ROMAN], axis=-1
    )
    modic = np.where(
        counts.sum(axis=-1) >= MAJORITY * code.shape[-1], np.argmax(counts, axis=-1) + 1, 0
    ).astype(np.uint8)
    index = _majority_vertebra((code // N_TISSUES - 1).astype(np.int16))
    lookup = np.array([0] + [v.verse_id for v in spine.bodies], dtype=np.uint8)
    ids = lookup[index + 1]
    affine = samples.grid.affine
    return {
        "bme_mask": Volume(bme.astype(np.uint8), affine, kind="label", source="phantom truth"),
        "modic_map": Volume(modic, affine, kind="label", source="phantom truth"),
        "vertebrae": Volume(ids, affine, kind="label", source="phantom truth"),
        "tissue": Volume(_dominant(tissue), affine, kind="label", source="phantom truth"),
    }


def _dominant(tissue: NDArray[np.integer]) -> NDArray[np.uint8]:
    """Most frequent tissue class among each voxel's samples.

    Ties go to the higher class, so lesions win half-and-half voxels, as in the masks.
    """
    best = np.zeros(tissue.shape[:-1], np.uint8)
    best_count = np.zeros(tissue.shape[:-1], np.uint8)
    for t in Tissue:
        count = reduce_samples(np.add, (tissue == t).view(np.uint8))
        better = (count >= best_count) & (count > 0)
        best[better] = t
        best_count[better] = count[better]
    return best


@dataclass
class _Measured:
    """Lesion points of one vertebra on the truth lattice (local mm coordinates)."""

    ap: NDArray[np.float32]
    lr: NDArray[np.float32]
    si: NDArray[np.float32]
    tissue: NDArray[np.int16]
    winner: NDArray[np.int16]
    voxel_mm3: float


def _measure(
    vertebra: Vertebra, lesions: Sequence[Lesion], spine: Spine, step_mm: float
) -> _Measured:
    half = [vertebra.ap_radius_mm, vertebra.lr_radius_mm, vertebra.height_mm / 2]
    axes = [np.arange(-h + step_mm / 2, h, step_mm, dtype=np.float32) for h in half]
    ap, lr, si = np.meshgrid(*axes, indexing="ij")
    _, code, weight, winner = paint_body(
        vertebra,
        lesions,
        ap,
        lr,
        si,
        cortex_mm=spine.config.cortex_thickness_mm,
        endplate_mm=spine.config.endplate_thickness_mm,
    )
    keep = weight >= TRUTH_MEMBERSHIP
    return _Measured(
        ap=ap[keep],
        lr=lr[keep],
        si=si[keep],
        tissue=(code[keep] % N_TISSUES).astype(np.int16),
        winner=winner[keep],
        voxel_mm3=step_mm**3,
    )


def _location(ap: NDArray, ap_radius_mm: float) -> str:
    third = ap_radius_mm / 3
    if np.mean(ap > third) > LOCATION_MAJORITY:
        return "anterior"
    if np.mean(ap < -third) > LOCATION_MAJORITY:
        return "posterior"
    return "middle"


def _none_row(vertebra: Vertebra, endplate: str) -> dict[str, Any]:
    return {
        "level": vertebra.level,
        "verse_id": vertebra.verse_id,
        "endplate": endplate,
        "modic_type": "none",
        "volume_ml": 0.0,
        "volume_ml_I": 0.0,
        "volume_ml_II": 0.0,
        "volume_ml_III": 0.0,
        "height_pct": 0.0,
        "height_grade": None,
        "area_pct": 0.0,
        "area_grade": None,
        "location": None,
    }


def _endplate_row(
    vertebra: Vertebra, endplate: str, measured: _Measured, members: list[int], step_mm: float
) -> dict[str, Any]:
    row = _none_row(vertebra, endplate)
    pick = np.isin(measured.winner, members)
    if not pick.any():
        return row
    ap, lr, si = measured.ap[pick], measured.lr[pick], measured.si[pick]
    tissue = measured.tissue[pick]
    volumes = {
        roman: float(np.count_nonzero(tissue == t) * measured.voxel_mm3 / MM3_PER_ML)
        for t, roman in _ROMAN.items()
    }
    present = sorted((v, r) for r, v in volumes.items() if v > 0)[::-1]
    depth = endplate_depth(vertebra, ap, lr, si, endplate)
    height_pct = 100 * float(depth.max() + step_mm / 2) / body_height_reference_mm(vertebra)
    columns = np.unique(np.round(np.stack([ap, lr]) / step_mm).astype(np.int64), axis=1)
    endplate_area = np.pi * vertebra.ap_radius_mm * vertebra.lr_radius_mm
    area_pct = 100 * columns.shape[1] * step_mm**2 / endplate_area
    row.update(
        modic_type="/".join(r for _, r in present),
        volume_ml=round(sum(volumes.values()), 4),
        volume_ml_I=round(volumes["I"], 4),
        volume_ml_II=round(volumes["II"], 4),
        volume_ml_III=round(volumes["III"], 4),
        height_pct=round(height_pct, 2),
        height_grade=height_grade(height_pct),
        area_pct=round(area_pct, 2),
        area_grade=area_grade(area_pct),
        location=_location(ap, vertebra.ap_radius_mm),
    )
    return row


def endplates_of(spine: Spine, vertebra: Vertebra) -> tuple[str, ...]:
    """Endplates facing a disc: the fused S1 inferior end is not an endplate."""
    if vertebra.level == "S1" and vertebra is spine.vertebrae[-1]:
        return ("superior",)
    return ("superior", "inferior")


def endplate_table(
    spine: Spine, lesions: Sequence[Lesion], *, step_mm: float = TRUTH_STEP_MM
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-endplate and per-lesion truth, measured on a fine lattice per vertebra.

    Returns
    -------
    endplates : list of dict
        One row per endplate of every body (``"none"`` rows included), keys
        :data:`ENDPLATE_COLUMNS`. ``modic_type`` lists the types present, largest volume
        first (``"I"``, ``"II/III"``...).
    lesions : list of dict
        One row per lesion: kind, level, zone, volume_ml (its own truth voxels),
        bme_volume_ml (its edema part), volume by type, centroid_ras_mm.
    """
    endplates: list[dict[str, Any]] = []
    per_lesion: dict[int, dict[str, Any]] = {}
    for vertebra in spine.vertebrae:
        own = [n for n, lesion in enumerate(lesions) if lesion.level == vertebra.level]
        measured = _measure(vertebra, lesions, spine, step_mm) if own else None
        for endplate in endplates_of(spine, vertebra):
            members = [n for n in own if lesions[n].endplate == endplate]
            if measured is None or not members:
                endplates.append(_none_row(vertebra, endplate))
            else:
                endplates.append(_endplate_row(vertebra, endplate, measured, members, step_mm))
        for n in own:
            assert measured is not None
            per_lesion[n] = _lesion_row(n, lesions[n], vertebra, measured)
    missing = [lesion.level for n, lesion in enumerate(lesions) if n not in per_lesion]
    if missing:
        raise ValueError(f"lesions at levels {missing} are not in the phantom ({spine.levels})")
    return endplates, [per_lesion[n] for n in range(len(lesions))]


def _lesion_row(n: int, lesion: Lesion, vertebra: Vertebra, measured: _Measured) -> dict:
    n_self = measured.winner == n
    tissue = measured.tissue[n_self]
    mm3 = measured.voxel_mm3
    by_type = {
        t.name.lower(): round(float(np.count_nonzero(tissue == t) * mm3 / MM3_PER_ML), 4)
        for t in (Tissue.MODIC1, Tissue.MODIC2, Tissue.MODIC3, Tissue.EDEMA, Tissue.HAEMANGIOMA)
    }
    if n_self.any():
        centroid = vertebra.to_world(
            measured.ap[n_self].mean(), measured.lr[n_self].mean(), measured.si[n_self].mean()
        )[0]
    else:
        centroid = np.full(3, np.nan)
    bme = np.isin(tissue, [int(t) for t in _EDEMA_TISSUES])
    return {
        "kind": lesion.kind,
        "level": lesion.level,
        "zone": lesion.zone,
        "volume_ml": round(float(tissue.size * mm3 / MM3_PER_ML), 4),
        "bme_volume_ml": round(float(np.count_nonzero(bme) * mm3 / MM3_PER_ML), 4),
        "volume_ml_by_tissue": by_type,
        "centroid_ras_mm": [round(float(c), 3) for c in centroid],
        "spec": lesion.to_dict(),
    }


@dataclass
class PhantomTruth:
    """Everything known about a phantom.

    Attributes
    ----------
    masks : dict of str to Volume
        ``bme_mask``, ``modic_map``, ``vertebrae`` and ``tissue`` label volumes on the T1
        grid.
    endplates : list of dict
        Per-endplate truth table (see :func:`endplate_table`).
    lesions : list of dict
        Per-lesion truth.
    grid_masks : dict of str to dict of str to Volume
        The same masks on the grid of each contrast (``"t1"``, ``"t2"``, ``"stir"``).
    """

    masks: dict[str, Volume]
    endplates: list[dict[str, Any]] = field(default_factory=list)
    lesions: list[dict[str, Any]] = field(default_factory=list)
    grid_masks: dict[str, dict[str, Volume]] = field(default_factory=dict)

    @property
    def bme_mask(self) -> Volume:
        """Bone marrow edema label volume (uint8, 1 = edema) on the T1 grid."""
        return self.masks["bme_mask"]

    @property
    def modic_map(self) -> Volume:
        """Modic type label volume (uint8, 0 none, 1/2/3 type) on the T1 grid."""
        return self.masks["modic_map"]

    @property
    def vertebrae(self) -> Volume:
        """Vertebral-body label volume (uint8 VerSe ids) on the T1 grid."""
        return self.masks["vertebrae"]

    @property
    def tissue(self) -> Volume:
        """Dominant tissue class per voxel (uint8, :class:`Tissue` values) on the T1 grid."""
        return self.masks["tissue"]

    def endplates_csv(self) -> str:
        """The per-endplate table as CSV text (empty cells for missing values)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(ENDPLATE_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for row in self.endplates:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        return buffer.getvalue()

    def endplates_dataframe(self) -> Any:
        """The per-endplate table as a pandas DataFrame (needs pandas, not a dependency)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError(
                "endplates_dataframe needs pandas; install it (pip install pandas) or use "
                "the plain list of dicts in PhantomTruth.endplates"
            ) from exc
        return pd.DataFrame(self.endplates, columns=list(ENDPLATE_COLUMNS))
