"""Which code produced a result: the digest of bmetoolkit's files beside its version."""

from __future__ import annotations

from pathlib import Path

import pytest

from bmetoolkit import __version__
from bmetoolkit.provenance import UNKNOWN, code_digest, digest_of, running_version
from bmetoolkit.result import versions

PACKAGE = Path(__file__).resolve().parents[1] / "bmetoolkit"


def _package(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.py").write_text("x = 1\n")
    (root / "sub" / "b.py").write_text("y = 2\n")
    (root / "sub" / "page.j2").write_text("<p>{{ x }}</p>\n")
    return root


def test_the_digest_follows_the_code_files_only(tmp_path: Path) -> None:
    root = _package(tmp_path / "pkg")
    first = digest_of(root)
    assert len(first) == 12 and set(first) <= set("0123456789abcdef")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0\1")
    (root / "sub" / "stray.pyc").write_bytes(b"\2")
    (root / "sub" / "notes.txt").write_text("scratch")  # not code: no redo for it
    (root / "sub" / "b.py~").write_text("an editor's backup")
    assert digest_of(root) == first
    (root / "sub" / "page.j2").write_text("<p>{{ y }}</p>\n")  # a template shapes the QC page
    second = digest_of(root)
    assert second != first
    (root / "sub" / "b.py").rename(root / "sub" / "c.py")  # the same bytes under another name
    assert digest_of(root) not in (first, second)


def test_a_linked_folder_is_read_and_nothing_readable_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _package(tmp_path / "pkg")
    elsewhere = _package(tmp_path / "templates")
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    before = digest_of(root)
    (elsewhere / "a.py").write_text("x = 3\n")
    assert digest_of(root) != before
    assert digest_of(tmp_path / "empty") == UNKNOWN  # no such folder: no code found
    (tmp_path / "no_code").mkdir()
    (tmp_path / "no_code" / "README").write_text("text")
    assert digest_of(tmp_path / "no_code") == UNKNOWN

    def unreadable(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", unreadable)
    assert digest_of(root) == UNKNOWN


def test_the_running_version_and_versions_carry_the_digest() -> None:
    assert running_version() == f"{__version__}+code.{code_digest()}"
    found = versions()
    assert found["bmetoolkit"] == __version__
    assert found["bmetoolkit_code"] == code_digest() == digest_of(PACKAGE)
    assert code_digest() != UNKNOWN
