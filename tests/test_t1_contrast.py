"""The T1 contrast check: Modic types are only assessed where marrow is brighter than discs."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bmetoolkit as bt
from bmetoolkit.data.phantom import PhantomConfig, make_phantom, render
from bmetoolkit.modic import NOT_ASSESSED
from bmetoolkit.spine.t1_contrast import disc_to_marrow_ratio, marrow_darker_than_discs
from tests.helpers import DARK_MARROW_T1


def _phantom(dark: bool):
    if not dark:
        return make_phantom(seed=5, lesions="random", config=PhantomConfig.small())
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(render.SIGNALS, "t1", {**render.SIGNALS["t1"], **DARK_MARROW_T1})
        return make_phantom(seed=5, lesions="random", config=PhantomConfig.small())


@pytest.fixture(scope="module")
def results():
    out = {}
    for dark in (False, True):
        ph = _phantom(dark)
        # The dark-marrow T1 (marrow darker than every soft tissue, discs brighter than
        # fat) is refused by the tissue-based role check; this module tests what the
        # analysis does with such a T1 once the user overrides the check.
        out[dark] = bt.analyze(
            ph.t1, t2=ph.t2, stir=ph.stir, vertebrae=ph.truth.vertebrae, verify_roles=not dark
        )
    return out


def test_spin_echo_t1_discs_darker_than_marrow(results):
    result = results[False]
    assert result.checks["modic_assessed"] is True
    assert result.checks["t1_disc_to_marrow"] < 0.8
    assert NOT_ASSESSED not in set(result.endplates["modic_type"])


def test_dark_marrow_t1_modic_not_assessed(results, tmp_path):
    result = results[True]
    assert result.checks["modic_assessed"] is False
    assert result.checks["t1_disc_to_marrow"] > 2.0
    assert set(result.endplates["modic_type"]) == {NOT_ASSESSED}
    assert result.modic_counts() == {}
    assert not result.modic_map.data.any()
    assert any("Modic types are defined on spin-echo" in note for note in result.notes)
    assert "Modic changes: not assessed" in result.summary()
    assert "Modic changes: none" not in result.summary()
    result.save(tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["checks"]["modic_assessed"] is False
    assert report["modic_counts"] == {}


def test_ratio_needs_two_neighbouring_bodies(results):
    result = results[False]
    one = result.bodies[:1]
    ratio, evidence = disc_to_marrow_ratio(
        result.study.t1.data, result.vertebrae.bodies.data, one, result.study.grid
    )
    assert ratio is None and "fewer than two" in evidence["reason"]
    assert not marrow_darker_than_discs(ratio)


def test_noisy_marrow_is_noted(results):
    """A noise note appears when the marrow's log spread exceeds the limit, not before."""
    from bmetoolkit.ratios import NOISY_LOG_SPREAD

    result = results[False]
    spreads = result.checks["marrow_log_spread"]
    assert max(spreads.values()) < NOISY_LOG_SPREAD
    assert not any("expect spurious" in note for note in result.notes)
    rng = np.random.default_rng(0)
    t1 = result.study.t1
    noisy = t1.with_data((t1.data * rng.lognormal(0, 0.6, t1.shape)).astype(np.float32))
    # multiplicative noise this strong is no MR image's: the role check (not this test's
    # subject) is left out
    again = bt.analyze(
        noisy,
        t2=result.study.t2,
        stir=result.study.stir,
        vertebrae=result.vertebrae,
        verify_roles=False,
    )
    assert again.checks["marrow_log_spread"]["t1"] > NOISY_LOG_SPREAD
    assert any("T1 varies by about" in note for note in again.notes)
