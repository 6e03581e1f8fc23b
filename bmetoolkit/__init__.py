"""bmetoolkit: find and measure bone marrow edema and Modic endplate changes on MRI."""

from bmetoolkit.volume import Grid, Volume

__version__ = "0.1.0.dev0"

__all__ = ["Grid", "Volume", "__version__"]
