"""The dark shell's isotonic fit: scipy's numbers to the last bit, without importing
``scipy.optimize`` on every run."""

import subprocess
import sys

import numpy as np
import pytest

from bmetoolkit.spine.cortex import isotonic_increasing


def _cases() -> list[tuple[list[float], list[float]]]:
    rng = np.random.default_rng(17)
    cases = [([1.0], [3.0]), ([2.0, 2.0], [1.0, 5.0]), ([3.0, 2.0, 1.0], [1.0, 1.0, 1.0])]
    for n in range(1, 60):
        for ties in (False, True):
            values = rng.normal(0.8, 0.3, n).cumsum() * rng.choice([-1, 1]) / n
            if ties:  # bin medians at the same level, and bins of equal counts
                values = np.round(values, 1)
            counts = rng.integers(30, 3000, n).astype(float)
            cases.append((values.tolist(), counts.tolist()))
    return cases


@pytest.mark.parametrize("case", range(len(_cases())))
def test_isotonic_fit_equals_scipys_bit_for_bit(case):
    optimize = pytest.importorskip("scipy.optimize")
    values, weights = _cases()[case]
    expected = optimize.isotonic_regression(values, weights=weights, increasing=True).x
    fitted = isotonic_increasing(values, weights)
    assert fitted.dtype == np.float64
    assert fitted.tobytes() == expected.tobytes()
    assert np.all(np.diff(fitted) >= 0)


def test_the_analysis_does_not_import_scipy_optimize():
    code = "import sys, bmetoolkit.analysis, bmetoolkit.cli\nprint('scipy.optimize' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"
