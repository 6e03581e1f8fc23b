"""Colour tables: every format parses back to the same labels; colours stay distinct."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bmetoolkit.report.colortables import (
    LABEL_TABLES,
    read_dseg_tsv,
    read_itksnap_labels,
    read_slicer_ctbl,
    write_color_tables,
)
from bmetoolkit.spine.labels import VERSE_LEVELS

# Machado et al. 2009 dichromat simulation matrices (severity 1), on linear RGB.
DICHROMATS = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                   [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                     [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                   [0.004733, 0.691367, 0.303900]],
}  # fmt: skip


def _as_seen(rgb: tuple[int, int, int], matrix: list[list[float]] | None) -> np.ndarray:
    srgb = np.asarray(rgb, dtype=float) / 255
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    if matrix is not None:
        linear = np.clip(np.asarray(matrix) @ linear, 0, 1)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055) * 255


@pytest.mark.parametrize("map_name", sorted(LABEL_TABLES))
def test_every_format_parses_back(map_name: str, tmp_path: Path) -> None:
    table = LABEL_TABLES[map_name]
    paths = write_color_tables(map_name, tmp_path)
    slicer = read_slicer_ctbl(paths["slicer"])
    snap = read_itksnap_labels(paths["itksnap"])
    bids = read_dseg_tsv(paths["bids"])
    assert slicer[0] == ("background", (0, 0, 0, 0))
    assert snap[0] == ("Clear Label", (0, 0, 0), 0.0, 0, 0)
    assert sorted(bids) == [e.index for e in table.entries]
    for entry in table.entries:
        assert slicer[entry.index] == (entry.name.replace(" ", "_"), (*entry.rgb, 255))
        assert snap[entry.index] == (entry.name, entry.rgb, 1.0, 1, 1)
        assert bids[entry.index]["name"] == entry.name
        assert bids[entry.index]["color"] == entry.hex
    # A BIDS tool reads the dseg.tsv with a plain TSV reader.
    frame = pd.read_csv(paths["bids"], sep="\t")
    assert list(frame.columns[:2]) == ["index", "name"]
    assert frame["index"].tolist() == [e.index for e in table.entries]
    assert paths["itksnap"].read_text().startswith("####")


def test_label_values_match_the_maps_we_write() -> None:
    assert [e.index for e in LABEL_TABLES["bme_mask"].entries] == [1]
    modic = {e.index: e.name for e in LABEL_TABLES["modic_map"].entries}
    assert modic == {1: "Modic type I", 2: "Modic type II", 3: "Modic type III"}
    vertebrae = {e.index: e.abbreviation for e in LABEL_TABLES["vertebrae"].entries}
    assert vertebrae == VERSE_LEVELS
    assert vertebrae[26] == "S1" and vertebrae[28] == "T13"


def test_adjacent_vertebrae_differ_in_colour() -> None:
    colours = {e.abbreviation: e.rgb for e in LABEL_TABLES["vertebrae"].entries}
    order = [*(f"C{i}" for i in range(1, 8)), *(f"T{i}" for i in range(1, 14))]
    order += [*(f"L{i}" for i in range(1, 7)), "S1"]
    for upper, lower in itertools.pairwise(order):
        assert colours[upper] != colours[lower], (upper, lower)
    # Also across a skipped transitional level (T12 next to L1, L5 next to S1).
    assert colours["T12"] != colours["L1"] and colours["L5"] != colours["S1"]


@pytest.mark.parametrize("vision", [None, *DICHROMATS])
def test_modic_types_stay_distinct_for_colour_blind_readers(vision: str | None) -> None:
    matrix = DICHROMATS.get(vision) if vision else None
    seen = [_as_seen(e.rgb, matrix) for e in LABEL_TABLES["modic_map"].entries]
    distances = [float(np.linalg.norm(a - b)) for a, b in itertools.combinations(seen, 2)]
    # 40 of 441 (the black-white distance) is far above a just-noticeable difference.
    assert min(distances) > 40, (vision, distances)


def test_unknown_map_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="known maps"):
        write_color_tables("tissue", tmp_path)
