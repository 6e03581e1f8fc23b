"""Agreement measures for validation: Dice overlap, volume error, Cohen's kappa, endplates.

Examples
--------
>>> import numpy as np
>>> dice(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))
0.6666666666666666
>>> volume_error(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))
1.0
>>> round(cohen_kappa(["a", "a", "b", "b"], ["a", "b", "b", "b"]), 3)
0.5
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from bmetoolkit.modic import MODIC_TYPES

__all__ = [
    "MISSING",
    "MODIC_TYPES",
    "cohen_kappa",
    "dice",
    "endplate_types",
    "is_modic_call",
    "volume_error",
]

#: Found type of a truth endplate that the analysis did not report.
MISSING = "missing"


def dice(a: ArrayLike, b: ArrayLike) -> float:
    """Dice overlap of the non-zero voxels of two masks; 1.0 when both are empty."""
    a, b = np.asarray(a) != 0, np.asarray(b) != 0
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def volume_error(found: ArrayLike, expected: ArrayLike) -> float:
    """Relative volume error ``|found - expected| / expected`` of two masks (non-zero voxels).

    NaN when ``expected`` is empty (no reference volume to compare with).
    """
    n_found = int(np.count_nonzero(np.asarray(found)))
    n_expected = int(np.count_nonzero(np.asarray(expected)))
    return float("nan") if n_expected == 0 else abs(n_found - n_expected) / n_expected


def endplate_types(
    expected: Iterable[Mapping[str, Any]], found: Iterable[Mapping[str, Any]]
) -> tuple[list[str], list[str]]:
    """Modic types of every expected endplate and of the same endplate as found.

    Endplates are matched on ``(level, endplate)``; an expected endplate that ``found`` lacks
    gets :data:`MISSING`.

    >>> truth = [{"level": "L4", "endplate": "inferior", "modic_type": "I"}]
    >>> endplate_types(truth, [])
    (['I'], ['missing'])
    """
    rows = {(row["level"], row["endplate"]): row["modic_type"] for row in found}
    pairs = [
        (row["modic_type"], rows.get((row["level"], row["endplate"]), MISSING)) for row in expected
    ]
    return [t for t, _ in pairs], [f for _, f in pairs]


def is_modic_call(modic_type: object) -> bool:
    """Whether an endplate type, as scored, is a Modic change (pure or mixed).

    Decided from the type's own vocabulary, so that scoring does not depend on how an
    analysis names what is not a change (``"none"``, ``"not assessed"``, :data:`MISSING`).

    >>> is_modic_call("II/III"), is_modic_call("none"), is_modic_call("not assessed")
    (True, False, False)
    """
    return isinstance(modic_type, str) and set(modic_type.split("/")) <= set(MODIC_TYPES)


def cohen_kappa(
    expected: Sequence[Any], predicted: Sequence[Any], labels: Sequence[Any] | None = None
) -> float:
    """Cohen's (unweighted) kappa between two raters.

    ``labels`` are the categories (all values seen, by default). Returns NaN when chance
    agreement is total (one category only for both raters).
    """
    if labels is None:
        labels = sorted(set(expected) | set(predicted), key=str)
    index = {label: n for n, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)))
    for e, p in zip(expected, predicted, strict=True):
        matrix[index[e], index[p]] += 1
    total = matrix.sum()
    if total == 0:
        return float("nan")
    observed = np.trace(matrix) / total
    chance = float(matrix.sum(axis=1) @ matrix.sum(axis=0)) / total**2
    return float("nan") if chance == 1.0 else float((observed - chance) / (1.0 - chance))
