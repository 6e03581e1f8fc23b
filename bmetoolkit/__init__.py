"""bmetoolkit: find and measure bone marrow edema and Modic endplate changes on MRI.

The main entry points:

- :func:`analyze` finds bone marrow edema and Modic changes in one subject and returns an
  :class:`~bmetoolkit.result.AnalysisResult` (tables, masks, ``save()``);
- :class:`Parameters` holds every threshold of the analysis;
- :func:`load` reads a NIfTI file, an ITK image or a DICOM series into a :class:`Volume`;
- :class:`Study` holds one subject's T1, T2 and/or STIR (and labels) on the T1 grid;
- :func:`save_nifti` writes a volume with the exact affine of its grid.
"""

__version__ = "0.1.0.dev0"

from typing import Any

from bmetoolkit.io import load, save_nifti
from bmetoolkit.params import Parameters
from bmetoolkit.study import Study
from bmetoolkit.volume import Grid, Volume

__all__ = ["Grid", "Parameters", "Study", "Volume", "__version__", "analyze", "load", "save_nifti"]


def __getattr__(name: str) -> Any:
    """Import :func:`analyze` on first use: it brings scipy and the analysis modules."""
    if name == "analyze":
        from bmetoolkit.analysis import analyze

        return analyze
    raise AttributeError(f"module 'bmetoolkit' has no attribute {name!r}")
