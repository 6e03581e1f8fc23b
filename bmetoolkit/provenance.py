"""Which bmetoolkit code produced a result: its version and a digest of its files.

The version alone does not say which code ran: between releases (an install from the
repository, ``0.1.0.dev0``) every change to an algorithm or a default keeps it, so a batch
rerun would take results of the old code for up to date and a comparison of two visits
would not notice that they were analysed by different code. A short SHA-256 digest of the
package's own files (its modules and the QC page's templates, not the byte-compiled
caches) tells one code from another: :func:`running_version` is the version with it
(``0.1.0.dev0+code.0b349af5beb6``), recorded in every batch manifest and, as
``bmetoolkit_code``, in every report's ``versions``.

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
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

__all__ = ["code_digest", "digest_of", "running_version"]

#: Hexadecimal digits of the SHA-256 kept: enough to tell versions of the code apart.
DIGEST_DIGITS = 12


def digest_of(folder: str | Path) -> str:
    """Digest of the files under ``folder`` (names and contents, in a fixed order), leaving
    out byte-compiled caches (``__pycache__``, ``*.pyc``), which differ between machines
    for the same code."""
    root = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        if "__pycache__" in relative.parts or path.suffix == ".pyc":
            continue
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:DIGEST_DIGITS]


@functools.cache
def code_digest() -> str:
    """Digest of the running bmetoolkit package's files (:func:`digest_of`), computed once
    per process (about 10 ms)."""
    return digest_of(Path(__file__).parent)


def running_version() -> str:
    """bmetoolkit's version with the digest of its code, as a PEP 440 local label.

    >>> from bmetoolkit import __version__
    >>> running_version() == f"{__version__}+code.{code_digest()}"
    True
    """
    from bmetoolkit import __version__

    return f"{__version__}+code.{code_digest()}"
