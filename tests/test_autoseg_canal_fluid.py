"""Fluid open to the canal stays out of the canal's wall and out of the bodies (no T1)."""

from __future__ import annotations

import numpy as np

from bmetoolkit.spine.autoseg.bodies import drop_canal_fluid
from bmetoolkit.spine.autoseg.canal import _thin_csf_added

SPACING = np.array([1.0, 1.0, 1.0])


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canal (AP 10-19), dark posterior wall (20), body (21-49) over SI 10-39, LR 0-19."""
    image = np.full((60, 50, 20), 40.0, np.float32)
    canal = np.zeros(image.shape, bool)
    canal[10:20] = True
    image[canal] = 200.0
    bodies = np.zeros(image.shape, np.int32)
    bodies[20:50, 10:40] = 1
    image[21:50, 10:40] = 90.0
    image[20, 10:40] = 15.0  # the posterior cortex
    return image, canal, bodies


def test_fluid_open_to_the_canal_leaves_the_body():
    image, canal, bodies = _scene()
    image[20:24, 12:15, 5:8] = 180.0  # CSF through the wall into the corner: open
    image[30:34, 25:28, 5:8] = 180.0  # a lesion as bright, behind the intact cortex
    out = drop_canal_fluid(bodies, image, canal, 0.7)
    assert not out[20:24, 12:15, 5:8].any()
    assert (out[30:34, 25:28, 5:8] == 1).all()
    assert (out > 0).sum() == (bodies > 0).sum() - 4 * 3 * 3


def test_fluid_darker_than_the_fraction_or_the_rule_off_stays():
    image, canal, bodies = _scene()
    image[20:24, 12:15, 5:8] = 130.0  # edema-bright (under 0.7 x 200) at the wall
    assert (drop_canal_fluid(bodies, image, canal, 0.7) == bodies).all()
    image[20:24, 12:15, 5:8] = 180.0
    assert (drop_canal_fluid(bodies, image, canal, 0.0) == bodies).all()


def test_a_short_bright_piece_in_front_of_the_tube_is_not_csf():
    """A vein in the body joined to the CSF margin is not added; a long anterior column is."""
    image = np.full((60, 80, 20), 40.0, np.float32)
    tube = np.zeros(image.shape, bool)
    tube[10:16, 5:75, 6:14] = True
    image[tube] = 200.0
    image[16:18, 5:75, 6:14] = 150.0  # the CSF margin below the brightest cut
    image[21:24, 30:42, 8:12] = 190.0  # a basivertebral vein, 12 mm tall, 5 mm in front
    image[18:21, 30:42, 8:12] = 150.0  # ... joined to the margin
    image[23:25, 50:75, 6:14] = 180.0  # CSF in front of the cord, 25 mm long
    out = _thin_csf_added(tube, image, SPACING)
    assert out[16:18, 5:75, 6:14].all()  # the margin
    assert out[23:25, 50:75, 6:14].all()  # the anterior column
    assert not out[21:24, 30:42, 8:12].any()  # the vein
