"""The spinal canal found with a T1 (bmetoolkit.spine.autoseg.canal.find_canal), on small
synthetic canonical arrays (anterior, superior, right; 1 mm voxels)."""

from __future__ import annotations

import numpy as np

from bmetoolkit.spine.autoseg.canal import find_canal
from bmetoolkit.spine.autoseg.params import AutosegParameters

SPACING = np.ones(3)
SHAPE = (120, 150, 40)
#: The CSF tube: 15 mm deep, 15 mm wide, rows 10-139.
TUBE = (slice(30, 45), slice(10, 140), slice(13, 28))


def _tissue() -> tuple[np.ndarray, np.ndarray]:
    """T1 and fluid images of plain tissue (1.0 on both) with the CSF tube (dark on T1,
    three times the tissue on the fluid image)."""
    t1 = np.ones(SHAPE, np.float32)
    fluid = np.ones(SHAPE, np.float32)
    t1[TUBE], fluid[TUBE] = 0.2, 3.0
    return t1, fluid


def test_a_fluid_bright_region_too_wide_for_the_canal_is_not_taken_for_it():
    """A region 45 mm deep and 30 mm wide, brighter on the fluid image and darker on T1 than
    the CSF (fluid in front of the spine), passes the CSF thresholds; the thecal sac is
    the tube, not the brighter region."""
    t1, fluid = _tissue()
    t1[70:115, :, 5:35], fluid[70:115, :, 5:35] = 0.1, 4.0
    canal = find_canal(t1, fluid, SPACING, AutosegParameters())
    assert canal.mask[TUBE].all()
    assert not canal.mask[70:115].any()
    assert np.allclose(canal.front[10:140], 44.0, atol=1.0)


def test_csf_with_a_lower_fluid_to_t1_ratio_continues_the_canal():
    """Above row 75 the CSF is partial-volumed: as bright on T1 as tissue and twice the
    tissue on the fluid image (its ratio 0.8 of ``csf_ratio_min``). The canal's wall is
    read through it instead of held at row 74's; its rows (where the marrow reference is
    measured) stay those of the CSF found by the thresholds."""
    t1, fluid = _tissue()
    upper = (TUBE[0], slice(75, 140), TUBE[2])
    t1[upper], fluid[upper] = 1.0, 2.0
    shifted = (slice(40, 55), slice(110, 140), TUBE[2])  # the upper CSF 10 mm further forward
    t1[upper][:, 35:], fluid[upper][:, 35:] = 1.0, 1.0
    t1[shifted], fluid[shifted] = 1.0, 2.0
    canal = find_canal(t1, fluid, SPACING, AutosegParameters())
    assert canal.mask[shifted].all()
    assert np.allclose(canal.front[115:140], 54.0, atol=1.0)
    assert canal.rows == (10, 74)


def test_partial_volumed_csf_is_not_followed_into_a_wide_region():
    """The continuation stops where following the lower ratio would make the column deeper
    than a canal (here a 35 mm deep layer of such signal touching the tube's front)."""
    t1, fluid = _tissue()
    t1[45:80], fluid[45:80] = 1.0, 2.0
    canal = find_canal(t1, fluid, SPACING, AutosegParameters())
    assert not canal.mask[45:80].any()
    assert np.allclose(canal.front[10:140], 44.0, atol=1.0)


def test_a_short_fluid_filled_loop_brighter_than_the_csf_is_not_the_canal():
    """A fluid-filled bowel loop 40 mm tall (at least ``canal_min_length_mm``) in front of
    the spine, brighter on the fluid image than the CSF and as dark on T1, passes the CSF
    thresholds; the canal is the 130 mm tube, not the brighter but far shorter loop."""
    t1, fluid = _tissue()
    loop = (slice(85, 115), slice(60, 101), slice(5, 35))
    t1[loop], fluid[loop] = 0.2, 3.5
    canal = find_canal(t1, fluid, SPACING, AutosegParameters())
    assert canal.mask[TUBE].all()
    assert not canal.mask[loop].any()
    assert np.allclose(canal.front[10:140], 44.0, atol=1.0)


def test_the_csf_is_read_against_the_tissue_the_fluid_image_covers():
    """The fluid image resampled onto the T1 grid beforehand is 0 (no signal) over the part
    of the T1 slab it does not cover, here more than half of it. Those voxels are not
    tissue for the CSF thresholds (counted, they made the fluid image's median 0 and every
    covered voxel passed), so the CSF candidates are the tube alone and it is the canal."""
    from bmetoolkit.spine.autoseg.canal import _csf_candidates, _fluid_ratio

    t1, fluid = _tissue()
    fluid[:, :, 30:] = 0.0
    fluid[60:] = 0.0
    params = AutosegParameters()
    tissue, ratio = _fluid_ratio(t1, fluid, params)
    assert np.array_equal(
        np.flatnonzero(_csf_candidates(tissue, ratio, fluid, params)), np.flatnonzero(fluid == 3.0)
    )
    canal = find_canal(t1, fluid, SPACING, params)
    assert canal.mask[TUBE].all()
    assert np.allclose(canal.front[10:140], 44.0, atol=1.0)


def test_a_fluid_image_of_zeros_is_refused_cleanly():
    """No tissue on the fluid image (all 0): the no-canal error, without a numpy warning."""
    import warnings

    import pytest

    from bmetoolkit.errors import BmetoolkitError

    t1, fluid = _tissue()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(BmetoolkitError, match="no spinal canal"):
            find_canal(t1, np.zeros_like(fluid), SPACING, AutosegParameters())
