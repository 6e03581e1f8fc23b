"""bmetoolkit: find and measure bone marrow edema and Modic endplate changes on MRI.

The main entry points:

- :func:`load` reads a NIfTI file, an ITK image or a DICOM series into a :class:`Volume`;
- :class:`Study` holds one subject's T1, T2 and/or STIR (and labels) on the T1 grid;
- :func:`save_nifti` writes a volume with the exact affine of its grid.
"""

__version__ = "0.1.0.dev0"

from bmetoolkit.io import load, save_nifti
from bmetoolkit.study import Study
from bmetoolkit.volume import Grid, Volume

__all__ = ["Grid", "Study", "Volume", "__version__", "load", "save_nifti"]
