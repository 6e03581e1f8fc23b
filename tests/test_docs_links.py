"""Every relative Markdown link in the docs points to a file that exists, and to a heading in it.

The pages checked are ``README.md``, ``docs/**/*.md`` and ``examples/README.md``. A link
``[text](path#anchor)`` (or ``[text](#anchor)`` within the page) must name an existing file or
folder relative to the page, and its anchor, when it has one and the target is a Markdown file,
must be the slug of one of that file's headings as GitHub makes it: lower case, punctuation
other than ``-`` and ``_`` removed, each space made a ``-``, and a heading whose slug was
already taken gets ``-1``, ``-2``... Links to web addresses are not checked; links inside
fenced code blocks and inline code are not links.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: ``](target)``: the target of an inline link or image, up to its closing parenthesis.
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
FENCE = re.compile(r"^ {0,3}(```|~~~)")
INLINE_CODE = re.compile(r"(`+).*?\1")


def pages(root: Path = ROOT) -> list[Path]:
    """The Markdown pages whose links are checked."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md")), root / "examples/README.md"]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The (line number, line) pairs of a Markdown text outside fenced code blocks."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        found = FENCE.match(line)
        if found and (fence is None or found.group(1) == fence):
            fence = found.group(1) if fence is None else None
        elif fence is None:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (before the duplicate suffix)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of every heading of a Markdown file, duplicates numbered as GitHub does."""
    seen: dict[str, int] = {}
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        found = HEADING.match(line)
        if found:
            base = slug(found.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            if count:
                seen.setdefault(f"{base}-{count}", 1)
    return set(seen)


def broken_links(page: Path) -> list[str]:
    """The relative links of a Markdown page whose file or anchor does not exist.

    Each is given as ``page:line: target (why)``.
    """
    broken, cache = [], {}
    for number, line in prose_lines(page.read_text(encoding="utf-8")):
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                continue
            path_part, _, anchor = target.partition("#")
            path = (page.parent / path_part).resolve() if path_part else page
            where = f"{page}:{number}: {target}"
            if not path.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and path.suffix == ".md":
                if path not in cache:
                    cache[path] = anchors(path)
                if anchor not in cache[path]:
                    broken.append(f"{where} (no such heading)")
    return broken


def test_slug_follows_github() -> None:
    assert slug("2026-12-01, session 16: a total (tried; not kept)") == (
        "2026-12-01-session-16-a-total-tried-not-kept"
    )
    assert slug("Why `--no-qc` is still not within 2.5x") == "why---no-qc-is-still-not-within-25x"
    assert slug("The sagittal montage (`qc.sagittal_montage`)") == (
        "the-sagittal-montage-qcsagittal_montage"
    )


def test_broken_file_and_anchor_are_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Title\n\n## Use\n\n## Use\n\n```\n# not a heading\n```\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[good](other.md#use-1) [good](other.md) [good](#page) [web](https://example.org/x#y)\n"
        "[gone](missing.md) and [wrong anchor](other.md#use-2)\n"
        "[in code](other.md#not-a-heading) [self](#nowhere) `[code](missing.md)`\n"
        "```\n[fenced](missing.md)\n```\n"
    )
    found = broken_links(page)
    assert [entry.split(": ", 1)[1] for entry in found] == [
        "missing.md (no such file)",
        "other.md#use-2 (no such heading)",
        "other.md#not-a-heading (no such heading)",
        "#nowhere (no such heading)",
    ]


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_docs_links_resolve(page: Path) -> None:
    assert broken_links(page) == []
