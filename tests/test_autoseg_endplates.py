"""Bodies reach their endplate across a lesion, and stop at the discs' anterior edges.

Small synthetic arrays on canonical axes (anterior, superior, right): fast, no phantom.
"""

from __future__ import annotations

import numpy as np

from bmetoolkit.spine.autoseg.bodies import fill_to_endplate
from bmetoolkit.spine.autoseg.front import disc_fronts, limit_to_disc_fronts

SPACING = np.array([1.0, 1.0, 4.0])


def _two_bodies_and_a_disc(disc_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Body 1 below (rows 2-11), a disc of ``disc_rows``, body 2 above; cortex rows dark."""
    n_si = 12 + disc_rows + 2 + 10 + 2
    bodies = np.zeros((20, n_si, 3), np.int32)
    dark = np.zeros(bodies.shape, bool)
    bodies[:, 2:12] = 1
    dark[:, 12] = True  # body 1's superior endplate cortex
    top_cortex = 13 + disc_rows
    dark[:, top_cortex] = True  # body 2's inferior endplate cortex
    bodies[:, top_cortex + 1 : top_cortex + 11] = 2
    return bodies, dark


def test_a_lesion_rim_is_filled_up_to_the_endplate_cortex():
    bodies, dark = _two_bodies_and_a_disc(disc_rows=8)
    # A lesion left row 11 of body 1 out of the marrow in columns 5-9.
    bodies[5:10, 11] = 0
    filled = fill_to_endplate(bodies, dark, SPACING, reach_mm=2.5)
    assert (filled[5:10, 11:13] == 1).all()  # the rim and the cortex row
    assert (filled[:, 13:21] == 0).all()  # the disc stays out


def test_the_fill_never_crosses_a_disc_of_normal_height():
    bodies, dark = _two_bodies_and_a_disc(disc_rows=4)
    bodies[:, 12] = 1  # body 1 already holds its cortex: beyond it is disc
    filled = fill_to_endplate(bodies, dark, SPACING, reach_mm=2.5)
    assert (filled[:, 13:17] == 0).all()
    assert (filled[:, 17] == 2).all()  # body 2 takes its own cortex, body 1 does not


def test_a_column_without_dark_cortex_in_reach_is_left_alone():
    bodies, dark = _two_bodies_and_a_disc(disc_rows=8)
    bodies[5:10, 9:12] = 0  # a 3-row bite: the cortex is out of reach
    filled = fill_to_endplate(bodies, dark, SPACING, reach_mm=2.5)
    assert (filled[5:10, 9:12] == 0).all()


def _comb(with_tissue: bool) -> tuple[np.ndarray, np.ndarray]:
    """Marrow of three bodies in front of a canal at AP 5, with discs between them.

    With ``with_tissue`` the tissue in front (AP 35-60) is marrow-like too and joins them.
    """
    marrow = np.zeros((60, 90, 5), bool)
    for top in (10, 40, 70):
        marrow[6:34, top : top + 20] = True  # bodies 28 mm deep, 20 mm tall, discs 10 mm
    if with_tissue:
        marrow[34:60, 10:90] = True
    front = np.full(90, 5.0)
    return marrow, front


def test_disc_fronts_are_the_anterior_edges_of_the_discs():
    marrow, front = _comb(with_tissue=True)
    centres, edges = disc_fronts(marrow, front, 2.0, (0, 89), SPACING)
    assert np.allclose(centres, [34.5, 64.5])
    assert np.allclose(edges, [34.0, 34.0])


def test_tissue_in_front_of_the_discs_is_cut_off():
    marrow, front = _comb(with_tissue=True)
    cut = limit_to_disc_fronts(marrow, front, 2.0, (0, 89), SPACING)
    assert not cut[37:].any()  # beyond the line + 2 mm
    assert cut[6:34, 10:30].all() and cut[6:34, 70:90].all()  # bodies untouched


def test_without_two_discs_the_marrow_is_unchanged():
    marrow, front = _comb(with_tissue=True)
    marrow[:, 30:90] = False  # one body, no disc
    assert (limit_to_disc_fronts(marrow, front, 2.0, (0, 89), SPACING) == marrow).all()
