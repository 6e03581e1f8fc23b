"""Agreement of bmetoolkit's Modic types with SPIDER's per-disc grades.

SPIDER grades Modic **per disc**, not per endplate: the expected type of a disc level is
compared with bmetoolkit's two endplates facing that disc (:func:`disc_predictions`), then
scored by :func:`agreement` (accuracy, Cohen's kappa, per-type sensitivity and precision).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bmetoolkit.data.spider.read import MODIC_TYPES, modic_category
from bmetoolkit.metrics import cohen_kappa
from bmetoolkit.modic import NOT_ASSESSED

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["agreement", "disc_predictions"]


def _primary(modic_type: Any) -> str:
    return modic_category(modic_type) if modic_type is not None else "none"


#: Cranio-caudal order of level names, transitional T13 and L6 included.
_ANATOMICAL_ORDER = (
    *(f"C{i}" for i in range(1, 8)),
    *(f"T{i}" for i in range(1, 14)),
    *(f"L{i}" for i in range(1, 7)),
    "S1",
)


def _adjacent(upper: str, lower: str) -> bool:
    """True when only transitional levels (T13, L6) could lie between ``upper`` and ``lower``."""
    start, stop = _ANATOMICAL_ORDER.index(upper), _ANATOMICAL_ORDER.index(lower)
    return stop > start and set(_ANATOMICAL_ORDER[start + 1 : stop]) <= {"T13", "L6"}


def disc_predictions(endplates: pd.DataFrame) -> pd.DataFrame:
    """Collapse a per-endplate Modic table to one predicted type per disc level.

    A disc's type comes from the inferior endplate of the vertebra above and the superior
    endplate of the one below. Mixed types count as their dominant (first) type. When both
    endplates are changed with different types, the one with the larger ``volume_ml`` wins
    (if the table has it), else the first of I, II, III. Endplates whose type is
    ``"not assessed"`` are ignored; a disc with no other endplate gets no prediction.

    Parameters
    ----------
    endplates : pandas.DataFrame
        Columns ``level``, ``endplate`` (``superior``/``inferior``), ``modic_type``, and
        optionally ``volume_ml``.

    Returns
    -------
    pandas.DataFrame
        ``disc`` (``"L4-L5"``), ``upper_level``, ``lower_level``, ``predicted``.
    """
    import pandas as pd

    rows = {(r["level"], r["endplate"]): r for r in endplates.to_dict("records")}
    levels = sorted(
        {level for level in endplates["level"] if level in _ANATOMICAL_ORDER},
        key=_ANATOMICAL_ORDER.index,
    )
    out = []
    for upper, lower in itertools.pairwise(levels):
        if not _adjacent(upper, lower):
            continue  # a level in between is missing: no disc to name
        sides = [rows.get((upper, "inferior")), rows.get((lower, "superior"))]
        # "not assessed" (a T1 that cannot carry Modic types) is no prediction: such a
        # disc is left out and counted as unreported, not graded "none" or failed.
        sides = [s for s in sides if s is not None and s.get("modic_type") != NOT_ASSESSED]
        if not sides:
            continue
        changed = [s for s in sides if _primary(s.get("modic_type")) != "none"]
        if not changed:
            predicted = "none"
        else:
            changed.sort(
                key=lambda s: (
                    -float(s.get("volume_ml") or 0.0),
                    MODIC_TYPES.index(_primary(s["modic_type"])),
                )
            )
            predicted = _primary(changed[0]["modic_type"])
        out.append(
            {"disc": f"{upper}-{lower}", "upper_level": upper, "lower_level": lower,
             "predicted": predicted}
        )  # fmt: skip
    return pd.DataFrame(out, columns=["disc", "upper_level", "lower_level", "predicted"])


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def agreement(expected: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Agreement of predicted Modic types with reference grades, per disc level.

    Parameters
    ----------
    expected, predicted : sequences of str
        ``'none'``, ``'I'``, ``'II'`` or ``'III'`` (mixed types are reduced to the dominant).

    Returns
    -------
    dict
        ``n``; ``type``: ``accuracy`` and ``kappa`` over none/I/II/III and the
        ``confusion`` matrix (rows expected, columns predicted); ``presence`` (any Modic
        change yes/no, the task SpineNet's kappa 0.74 refers to): ``accuracy``,
        ``balanced_accuracy``, ``sensitivity``, ``specificity``, ``kappa``; ``per_type``:
        for each type, ``n_expected``, ``n_predicted``, ``sensitivity``, ``precision``.

    Examples
    --------
    >>> result = agreement(["none", "I", "II", "none"], ["none", "I", "I", "none"])
    >>> result["type"]["accuracy"], result["presence"]["accuracy"]
    (0.75, 1.0)
    """
    truth = [_primary(v) for v in expected]
    guess = [_primary(v) for v in predicted]
    if len(truth) != len(guess):
        raise ValueError(f"{len(truth)} expected grades but {len(guess)} predictions")
    n = len(truth)
    confusion = {e: {p: 0 for p in MODIC_TYPES} for e in MODIC_TYPES}
    for e, p in zip(truth, guess, strict=True):
        confusion[e][p] += 1
    present_truth = [t != "none" for t in truth]
    present_guess = [g != "none" for g in guess]
    tp = sum(t and g for t, g in zip(present_truth, present_guess, strict=True))
    tn = sum(not t and not g for t, g in zip(present_truth, present_guess, strict=True))
    positives, negatives = sum(present_truth), n - sum(present_truth)
    sensitivity, specificity = _ratio(tp, positives), _ratio(tn, negatives)
    per_type = {}
    for kind in MODIC_TYPES[1:]:
        hits = confusion[kind][kind]
        n_expected = sum(confusion[kind].values())
        n_predicted = sum(confusion[e][kind] for e in MODIC_TYPES)
        per_type[kind] = {
            "n_expected": n_expected,
            "n_predicted": n_predicted,
            "sensitivity": _ratio(hits, n_expected),
            "precision": _ratio(hits, n_predicted),
        }
    return {
        "n": n,
        "type": {
            "accuracy": _ratio(sum(confusion[t][t] for t in MODIC_TYPES), n),
            "kappa": cohen_kappa(truth, guess, MODIC_TYPES),
            "confusion": confusion,
        },
        "presence": {
            "accuracy": _ratio(tp + tn, n),
            "balanced_accuracy": float(np.nanmean([sensitivity, specificity])) if n else np.nan,
            "sensitivity": sensitivity,
            "specificity": specificity,
            "kappa": cohen_kappa(present_truth, present_guess, [False, True]),
        },
        "per_type": per_type,
    }
