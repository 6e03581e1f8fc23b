"""Which bmetoolkit code produced a result: its version and a digest of its files.

The version alone does not say which code ran: between releases (an install from the
repository, ``0.1.0.dev0``) every change to an algorithm or a default keeps it, so a batch
rerun would take results of the old code for up to date and a comparison of two visits
would not notice that they were analysed by different code. A short SHA-256 digest of the
package's own files (its modules and the QC page's templates, :data:`CODE_SUFFIXES`; not
the byte-compiled caches nor stray files beside them) tells one code from another:
:func:`running_version` is the version with it (``0.1.0.dev0+code.0b349af5beb6``),
recorded in every batch manifest and printed by ``bmetoolkit --version``, and
:func:`code_digest` is recorded as ``bmetoolkit_code`` in the ``versions`` of every
``report.json``. Any edit of those files changes it, comments and line endings included:
a batch then redoes its subjects once.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "a.py").write_text("x = 1")
>>> before = digest_of(folder)
>>> len(before)
12
>>> _ = (folder / "a.py").write_text("x = 2")
>>> digest_of(folder) == before
False
>>> after = digest_of(folder)
>>> _ = (folder / "notes.txt").write_text("not code")
>>> digest_of(folder) == after
True
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

__all__ = ["CODE_SUFFIXES", "UNKNOWN", "code_digest", "digest_of", "running_version"]

#: Hexadecimal digits of the SHA-256 kept: enough to tell versions of the code apart.
DIGEST_DIGITS = 12
#: Files that are the package's code: its modules and the QC page's templates (the package
#: data ``pyproject.toml`` ships).
CODE_SUFFIXES = (".py", ".j2", ".css", ".js")
#: The digest when the files cannot be read (a zipped or frozen install, a permission).
UNKNOWN = "unknown"


def digest_of(folder: str | os.PathLike) -> str:
    """Digest of the code files under a folder.

    Parameters
    ----------
    folder : str or path
        The package's folder; symbolic links to folders are followed.

    Returns
    -------
    str
        The first :data:`DIGEST_DIGITS` hexadecimal digits of a SHA-256 over the relative
        path and the bytes of every file whose suffix is in :data:`CODE_SUFFIXES`, in a
        fixed order (``__pycache__`` folders left out); :data:`UNKNOWN` when there are
        none or one cannot be read.
    """
    root = Path(folder)
    paths = []
    for base, folders, files in os.walk(root, followlinks=True):
        folders[:] = [name for name in folders if name != "__pycache__"]
        paths += [Path(base, name) for name in files if name.endswith(CODE_SUFFIXES)]
    if not paths:
        return UNKNOWN
    digest = hashlib.sha256()
    try:
        for path in sorted(paths, key=lambda p: p.relative_to(root).as_posix()):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    except OSError:
        return UNKNOWN
    return digest.hexdigest()[:DIGEST_DIGITS]


@functools.cache
def code_digest() -> str:
    """Digest of the running bmetoolkit package's code (:func:`digest_of`), computed once
    per process (5-10 ms).

    Returns
    -------
    str
        Twelve hexadecimal digits, or :data:`UNKNOWN`.
    """
    return digest_of(Path(__file__).parent)


def running_version() -> str:
    """bmetoolkit's version with the digest of its code, as a PEP 440 local label.

    Returns
    -------
    str
        ``<version>+code.<digest>`` (``.code.<digest>`` appended to a version that already
        has a local label).

    Examples
    --------
    >>> from bmetoolkit import __version__
    >>> running_version() == f"{__version__}+code.{code_digest()}"
    True
    """
    from bmetoolkit import __version__

    separator = "." if "+" in __version__ else "+"
    return f"{__version__}{separator}code.{code_digest()}"
