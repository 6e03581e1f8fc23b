"""bmetoolkit: find and measure bone marrow edema and Modic endplate changes on MRI.

The main entry points:

- :func:`analyze` finds bone marrow edema and Modic changes in one subject and returns an
  :class:`~bmetoolkit.result.AnalysisResult` (tables, masks, ``save()``);
- :func:`compare` compares two visits of one subject (change per level, lesion by lesion);
- :class:`Parameters` holds every threshold of the analysis;
- :func:`load` reads a NIfTI file, an ITK image or a DICOM series into a :class:`Volume`;
- :class:`Study` holds one subject's T1, T2 and/or STIR (and labels) on the T1 grid;
- :func:`save_nifti` writes a volume with the exact affine of its grid.

Each name is imported on first use, so ``import bmetoolkit`` (and ``bmetoolkit --help``)
loads no scientific library: scipy, pandas, SimpleITK and nibabel come with the first call
that needs them.
"""

__version__ = "0.1.0.dev0"

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bmetoolkit.analysis import analyze
    from bmetoolkit.followup.compare import compare
    from bmetoolkit.io import load, save_nifti
    from bmetoolkit.params import Parameters
    from bmetoolkit.study import Study
    from bmetoolkit.volume import Grid, Volume

__all__ = [
    "Grid",
    "Parameters",
    "Study",
    "Volume",
    "__version__",
    "analyze",
    "compare",
    "load",
    "save_nifti",
]

#: Module of each public name, imported when the name is first used.
_LAZY = {
    "analyze": "bmetoolkit.analysis",
    "compare": "bmetoolkit.followup.compare",
    "load": "bmetoolkit.io",
    "save_nifti": "bmetoolkit.io",
    "Parameters": "bmetoolkit.params",
    "Study": "bmetoolkit.study",
    "Grid": "bmetoolkit.volume",
    "Volume": "bmetoolkit.volume",
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use and keep it in the module."""
    if name not in _LAZY:
        raise AttributeError(f"module 'bmetoolkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
