"""Run the analysis over a SPIDER folder and score it against the radiologists' grades."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bmetoolkit.data.spider.read import SpiderCase, find_cases, read_gradings, spider_vertebrae
from bmetoolkit.data.spider.score import agreement, disc_predictions

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Analyzer", "validate_spider"]

#: ``analyze(t1, t2=, vertebrae=, params=)`` returning a result with an ``endplates`` table.
Analyzer = Callable[..., Any]


def _default_analyzer() -> Analyzer:
    from bmetoolkit.analysis import analyze

    return analyze


def validate_spider(
    root: str | os.PathLike,
    *,
    analyze: Analyzer | None = None,
    params: Any = None,
    patients: Iterable[int] | None = None,
    limit: int | None = None,
    on_error: Callable[[int, Exception], None] | None = None,
    progress: bool = False,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run the analysis on every SPIDER patient with a T1 and a T2 and score it per disc.

    For each patient: the T1 and T2 images, the vertebrae of the T1 mask renumbered to
    VerSe ids (:func:`spider_vertebrae`), ``analyze(t1, t2=t2, vertebrae=..., params=...)``,
    its endplates collapsed per disc (:func:`disc_predictions`) and joined with the graded
    discs. Discs graded but not reported by the analysis are scored as ``'none'`` predicted
    and counted in ``metrics["n_unreported"]``.

    Parameters
    ----------
    root : path
        The SPIDER folder (``images/``, ``masks/``, ``radiological_gradings.csv``).
    analyze : callable, optional
        ``bmetoolkit.analysis.analyze`` by default; anything with its signature returning an
        object with an ``endplates`` DataFrame.
    params : optional
        Passed to ``analyze``.
    patients : iterable of int, optional
        Only these patients.
    limit : int, optional
        At most this many patients (in patient order).
    on_error : callable, optional
        Called with (patient, exception) when a patient fails; without it errors propagate.
    progress : bool
        Show a progress bar over patients.

    Returns
    -------
    per_disc : pandas.DataFrame
        ``patient``, ``disc``, ``expected``, ``predicted``, ``reported``.
    metrics : dict
        :func:`agreement` of all scored discs, plus ``n_patients``, ``n_failed`` and
        ``n_unreported``.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from bmetoolkit.io import load

    folder = Path(root)
    run = analyze or _default_analyzer()
    gradings = read_gradings(folder / "radiological_gradings.csv")
    by_patient: dict[int, dict[str, SpiderCase]] = {}
    for case in find_cases(folder):
        by_patient.setdefault(case.patient, {})[case.sequence] = case
    chosen = sorted(p for p, c in by_patient.items() if {"t1", "t2"} <= set(c))
    if patients is not None:
        wanted = {int(p) for p in patients}
        chosen = [p for p in chosen if p in wanted]
    chosen = chosen[:limit] if limit is not None else chosen
    rows, failed = [], 0
    for patient in tqdm(chosen, desc="SPIDER", unit="patient", disable=not progress):
        cases = by_patient[patient]
        try:
            t1 = load(cases["t1"].image)
            t2 = load(cases["t2"].image)
            labels = spider_vertebrae(load(cases["t1"].mask, kind="label"))
            result = run(t1, t2=t2, vertebrae=labels, params=params)
            predicted = disc_predictions(result.endplates)
        except Exception as exc:
            if on_error is None:
                raise
            on_error(patient, exc)
            failed += 1
            continue
        found = dict(zip(predicted["disc"], predicted["predicted"], strict=True))
        for graded in gradings[gradings["patient"] == patient].itertuples():
            rows.append(
                {
                    "patient": patient,
                    "disc": graded.disc,
                    "expected": graded.modic_type,
                    "predicted": found.get(graded.disc, "none"),
                    "reported": graded.disc in found,
                }
            )
    per_disc = pd.DataFrame(rows, columns=["patient", "disc", "expected", "predicted", "reported"])
    metrics = agreement(per_disc["expected"].tolist(), per_disc["predicted"].tolist())
    metrics |= {
        "n_patients": len(chosen) - failed,
        "n_failed": failed,
        "n_unreported": int((~per_disc["reported"]).sum()) if len(per_disc) else 0,
    }
    return per_disc, metrics
