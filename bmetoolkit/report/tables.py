"""Plain CSV and TSV text of table rows, written with the csv module (no pandas).

Used for the analysis' ``lesions.csv`` and ``endplates.csv`` and for the batch's group tables,
so saving a result does not import pandas.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["table_text"]


def table_text(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], sep: str = ",") -> str:
    """CSV (or TSV with ``sep="\\t"``) text of ``rows``; missing values are empty.

    Examples
    --------
    >>> print(table_text([{"a": 1, "b": None}], ["a", "b"]), end="")
    a,b
    1,
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer,
        fieldnames=list(columns),
        delimiter=sep,
        extrasaction="ignore",
        lineterminator="\n",
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
    return buffer.getvalue()
