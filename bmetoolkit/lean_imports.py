"""``scipy.ndimage`` and nibabel imported without the modules they pull in and bmetoolkit
never uses.

Importing ``scipy.ndimage`` (scipy 1.17) costs ~0.25 s of CPU after numpy, half of it for
modules no bmetoolkit command uses: scipy's array-API layer copies numpy's namespace, and
reading each of its names imports numpy's lazily loaded submodules (``numpy.testing``,
``numpy.f2py``, ``numpy.ma``, ``numpy.random``...), and ``scipy.ndimage`` imports
``scipy.special`` for ``rotate`` alone. A whole ``analyze --no-qc`` run costs ~3x a bare read
of its files (``docs/log/speed.md``), so those ~0.13 s are a tenth of what it adds.

:func:`lean_scipy_imports` (called by the command line, before numpy is imported) makes the
first import of ``scipy.ndimage`` find, in place of each of those modules, a stand-in that
imports the module the first time one of its attributes is read and then reads it there.
The stand-ins are attributes of ``numpy`` and ``scipy`` only while ``scipy.ndimage`` is
imported: afterwards ``numpy.testing``, ``scipy.special``... are imported as usual by
whoever uses them (the stand-ins kept inside scipy's namespaces import the same modules, by
the import system's own locks, so any thread may use them). Nothing else changes: the
functions bmetoolkit calls are the same, so are their results.

:func:`lean_nibabel_imports` does the same for nibabel: ``nibabel.nifti1`` imports pydicom
(~0.1 s of CPU, with its pixel decoders and ``urllib``) for one thing, its class of the
NIfTI header extension with code 2 (a DICOM data set), which parses such an extension when
a file has one. The first import of ``nibabel.nifti1`` gets a stand-in for pydicom instead
(nibabel's ``optional_package("pydicom")`` answers it, pydicom being a dependency of
bmetoolkit): an extension of code 2 is still read as that class, and pydicom is imported
when one is parsed, or by whoever imports it (the DICOM reader). ``nibabel.filebasedimages``
likewise gets a stand-in for ``urllib.request`` (with ``http.client``, ``email``, ``ssl``:
~0.02 s of CPU), which it uses only to read an image from a URL.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

__all__ = ["DEFERRED", "NIBABEL_DEFERRED", "Deferred", "lean_nibabel_imports", "lean_scipy_imports"]

#: Modules that nibabel imports (``from urllib import request``) only for ``from_url``.
NIBABEL_DEFERRED = ("urllib.request",)
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


class _TypeDeferred(Deferred):
    """A :class:`Deferred` whose attributes of ``placeholders`` read as those values until
    :func:`_release` (what a module being imported reads only to annotate types with)."""

    def __init__(self, name: str, placeholders: dict[str, Any]) -> None:
        super().__init__(name)
        object.__getattribute__(self, "__dict__")["_placeholders"] = placeholders

    def __getattribute__(self, attribute: str) -> Any:
        placeholders = object.__getattribute__(self, "__dict__").get("_placeholders", {})
        if attribute in placeholders:
            return placeholders[attribute]
        return super().__getattribute__(attribute)


def _release(stand_in: _TypeDeferred) -> None:
    """From now on every attribute of ``stand_in`` is the real module's."""
    object.__getattribute__(stand_in, "__dict__").pop("_placeholders", None)


@contextmanager
def pydicom_deferred() -> Iterator[None]:
    """While the context lasts, nibabel's ``optional_package("pydicom")`` returns a stand-in
    for pydicom (when pydicom is installed and not imported yet) instead of importing it.

    ``pydicom.Dataset``, which ``nibabel.nifti1`` reads at import to annotate its DICOM
    extension class, reads as ``typing.Any`` while the context lasts (nibabel's own value
    without pydicom); afterwards every attribute of the stand-in is pydicom's.
    """
    optpkg = importlib.import_module("nibabel.optpkg")
    original = optpkg.optional_package
    stand_ins: list[_TypeDeferred] = []

    def optional_package(name: str, *args: Any, **kwargs: Any) -> Any:
        if name != "pydicom" or args or kwargs or "pydicom" in sys.modules:
            return original(name, *args, **kwargs)
        if importlib.util.find_spec("pydicom") is None:
            return original(name, *args, **kwargs)
        stand_ins.append(_TypeDeferred("pydicom", {"Dataset": typing.Any}))
        return stand_ins[-1], True, lambda: None

    optpkg.optional_package = optional_package
    try:
        yield
    finally:
        optpkg.optional_package = original
        for stand_in in stand_ins:
            _release(stand_in)


class _LeanLoader:
    """Executes a module inside a context (a loader: not derived from
    ``importlib.abc.Loader``, whose import costs ``--help`` ~15 ms)."""

    def __init__(self, loader: Any, context: Callable[[], AbstractContextManager]) -> None:
        self.loader = loader
        self.context = context

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # the module's own, as usual
        with self.context():
            self.loader.exec_module(module)


class _LeanFinder:
    """Finds the module ``name`` the first time it is imported (then leaves
    ``sys.meta_path``), to be executed inside ``context`` by :class:`_LeanLoader`."""

    def __init__(self, name: str, context: Callable[[], AbstractContextManager]) -> None:
        self.name = name
        self.context = context

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != self.name:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _LeanLoader(spec.loader, self.context)
        return spec


def _lean_first_import(name: str, context: Callable[[], AbstractContextManager]) -> bool:
    """Have the first import of ``name`` run inside ``context``; False when it is imported
    already (nothing to do)."""
    if name in sys.modules:
        return False
    if not any(isinstance(f, _LeanFinder) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _LeanFinder(name, context))
    return True


def lean_scipy_imports() -> bool:
    """Have the first import of ``scipy.ndimage`` leave out :data:`DEFERRED` (see the
    module's description).

    Returns
    -------
    bool
        False when ``scipy.ndimage`` is imported already (nothing to do).
    """
    return _lean_first_import("scipy.ndimage", lambda: standing_in(DEFERRED))


def lean_nibabel_imports() -> bool:
    """Have the first import of nibabel leave pydicom (:func:`pydicom_deferred`) and
    ``urllib.request`` out (see the module's description).

    Returns
    -------
    bool
        False when ``nibabel.nifti1`` is imported already (nothing to do).
    """
    _lean_first_import("nibabel.filebasedimages", lambda: standing_in(NIBABEL_DEFERRED))
    return _lean_first_import("nibabel.nifti1", pydicom_deferred)
