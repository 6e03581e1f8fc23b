"""Which code produced a result: the digest of bmetoolkit's files beside its version."""

from __future__ import annotations

from pathlib import Path

from bmetoolkit import __version__
from bmetoolkit.provenance import code_digest, digest_of, running_version
from bmetoolkit.result import versions


def _package(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.py").write_text("x = 1\n")
    (root / "sub" / "b.py").write_text("y = 2\n")
    (root / "sub" / "page.j2").write_text("<p>{{ x }}</p>\n")
    return root


def test_the_digest_follows_every_file_but_not_the_byte_compiled_caches(tmp_path: Path) -> None:
    root = _package(tmp_path / "pkg")
    first = digest_of(root)
    assert len(first) == 12 and set(first) <= set("0123456789abcdef")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0\1")
    (root / "sub" / "stray.pyc").write_bytes(b"\2")
    assert digest_of(root) == first
    (root / "sub" / "page.j2").write_text("<p>{{ y }}</p>\n")  # a template shapes the QC page
    second = digest_of(root)
    assert second != first
    (root / "sub" / "b.py").rename(root / "sub" / "c.py")  # the same bytes under another name
    assert digest_of(root) not in (first, second)


def test_the_running_version_and_every_report_carry_the_digest() -> None:
    assert running_version() == f"{__version__}+code.{code_digest()}"
    found = versions()
    assert found["bmetoolkit"] == __version__
    assert found["bmetoolkit_code"] == code_digest()
    assert code_digest() == digest_of(Path(__file__).resolve().parents[1] / "bmetoolkit")
