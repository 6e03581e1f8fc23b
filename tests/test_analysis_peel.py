"""The analysis peels the dark endplate shell per body: a body whose voxels are long along its
own SI axis is left as it is, and does not switch the peel off for the other bodies."""

from __future__ import annotations

import dataclasses

import numpy as np

from bmetoolkit import analysis
from bmetoolkit.analysis import analyze_study
from bmetoolkit.data.phantom import make_phantom
from bmetoolkit.spine.vertebra import COARSE_SI_MM
from bmetoolkit.study import Study


def _marrow_of(result, name: str) -> np.ndarray:
    body = next(b for b in result.bodies if b.name == name)
    return np.asarray(result.marrow.data).reshape(-1)[body.index] > 0


def test_one_body_with_a_coarse_si_axis_leaves_the_others_peeled(monkeypatch):
    p = make_phantom(0, lesions="healthy")
    study = Study.from_images(p.t1, stir=p.stir)
    plain = analyze_study(study, p.truth.vertebrae)
    assert plain.checks["dark_shell_mm"]["endplate_mm"] > 0  # this phantom has a shell

    geometries = analysis.body_geometries

    def odd_l5(*args, **kwargs):  # as an automatic body whose SI axis runs across slices
        bodies = geometries(*args, **kwargs)
        return [
            dataclasses.replace(b, si_extent_mm=1.6 * COARSE_SI_MM) if b.name == "L5" else b
            for b in bodies
        ]

    monkeypatch.setattr(analysis, "body_geometries", odd_l5)
    odd = analyze_study(study, p.truth.vertebrae)

    shell = odd.checks["dark_shell_mm"]
    assert abs(shell["endplate_mm"] - plain.checks["dark_shell_mm"]["endplate_mm"]) <= 0.5
    assert shell["endplate_mm"] > 0
    for name in ("T12", "L4", "S1"):  # peeled as before (4, 15 and 67 voxels)
        np.testing.assert_array_equal(_marrow_of(odd, name), _marrow_of(plain, name))
    before, after = _marrow_of(plain, "L5"), _marrow_of(odd, "L5")
    assert np.all(after[before]) and after.sum() > before.sum()  # L5 alone is not peeled
