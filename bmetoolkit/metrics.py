"""Agreement measures for validation: Dice overlap and Cohen's kappa.

Examples
--------
>>> import numpy as np
>>> dice(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))
0.6666666666666666
>>> round(cohen_kappa(["a", "a", "b", "b"], ["a", "b", "b", "b"]), 3)
0.5
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["cohen_kappa", "dice"]


def dice(a: ArrayLike, b: ArrayLike) -> float:
    """Dice overlap of the non-zero voxels of two masks; 1.0 when both are empty."""
    a, b = np.asarray(a) != 0, np.asarray(b) != 0
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


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
