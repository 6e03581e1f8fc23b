"""``scipy.ndimage`` imported without the modules it pulls in and bmetoolkit never uses.

Importing ``scipy.ndimage`` (scipy 1.17) costs ~0.25 s of CPU after numpy, half of it for
modules no bmetoolkit command uses: scipy's array-API layer copies numpy's namespace, and
reading each of its names imports numpy's lazily loaded submodules (``numpy.testing``,
``numpy.f2py``, ``numpy.ma``, ``numpy.random``...), and ``scipy.ndimage`` imports
``scipy.special`` for ``rotate`` alone. A whole ``analyze --no-qc`` run costs ~3x a bare read
of its files (``docs/speed.md``), so those ~0.13 s are a tenth of what it adds.

:func:`lean_scipy_imports` (called by the command line, before numpy is imported) makes the
first import of ``scipy.ndimage`` find, in place of each of those modules, a stand-in that
imports the module the first time one of its attributes is read and then reads it there.
The stand-ins are attributes of ``numpy`` and ``scipy`` only while ``scipy.ndimage`` is
imported: afterwards ``numpy.testing``, ``scipy.special``... are imported as usual by
whoever uses them (the stand-ins kept inside scipy's namespaces import the same modules, by
the import system's own locks, so any thread may use them). Nothing else changes: the
functions bmetoolkit calls are the same, so are their results.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["DEFERRED", "Deferred", "lean_scipy_imports"]

#: Modules that ``import scipy.ndimage`` imports only to copy or keep a reference to them.
DEFERRED = (
    "numpy.testing",
    "numpy.f2py",
    "numpy.ma",
    "numpy.polynomial",
    "numpy.random",
    "numpy.char",
    "numpy.rec",
    "numpy.ctypeslib",
    "numpy.strings",
    "scipy.special",
)


class Deferred(types.ModuleType):
    """Stands for the module ``name``: reading any attribute imports the module (once, by
    the import system) and reads the attribute there.

    >>> decoder = Deferred("json.decoder")
    >>> decoder.JSONDecodeError.__name__
    'JSONDecodeError'
    """

    def __getattribute__(self, attribute: str) -> Any:
        name = object.__getattribute__(self, "__dict__")["__name__"]
        return getattr(importlib.import_module(name), attribute)

    def __repr__(self) -> str:
        name = object.__getattribute__(self, "__dict__")["__name__"]
        return f"<module {name!r} (imported on first use)>"


@contextmanager
def standing_in(names: Sequence[str] = DEFERRED) -> Iterator[list[str]]:
    """While the context lasts, a :class:`Deferred` is the attribute of each module of
    ``names`` on its parent (those not imported yet, whose parent is); yields their names.

    Afterwards each stand-in that is still the parent's attribute is removed (a module that
    was imported meanwhile took its place and stays).
    """
    placed: list[tuple[types.ModuleType, str, Deferred]] = []
    try:
        for name in names:
            parent_name, _, child = name.rpartition(".")
            parent = sys.modules.get(parent_name)
            if name in sys.modules or parent is None or child in vars(parent):
                continue
            stand_in = Deferred(name)
            setattr(parent, child, stand_in)
            placed.append((parent, child, stand_in))
        yield [f"{parent.__name__}.{child}" for parent, child, _ in placed]
    finally:
        for parent, child, stand_in in placed:
            if vars(parent).get(child) is stand_in:
                delattr(parent, child)


class _NdimageLoader:
    """Executes ``scipy.ndimage`` with the stand-ins of :data:`DEFERRED` in place (a loader:
    not derived from ``importlib.abc.Loader``, whose import costs ``--help`` ~15 ms)."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # the module's own, as usual
        with standing_in(DEFERRED):
            self.loader.exec_module(module)


class _NdimageFinder:
    """Finds ``scipy.ndimage`` the first time it is imported (then leaves ``sys.meta_path``),
    to be executed by :class:`_NdimageLoader`."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "scipy.ndimage":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _NdimageLoader(spec.loader)
        return spec


def lean_scipy_imports() -> bool:
    """Have the first import of ``scipy.ndimage`` leave out :data:`DEFERRED` (see the
    module's description).

    Returns
    -------
    bool
        False when ``scipy.ndimage`` is imported already (nothing to do).
    """
    if "scipy.ndimage" in sys.modules:
        return False
    if not any(isinstance(finder, _NdimageFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _NdimageFinder())
    return True
