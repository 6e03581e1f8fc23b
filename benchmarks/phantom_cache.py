"""Built phantoms kept on disk between benchmark runs (shared by the benchmark scripts).

A phantom is stored under a key that starts with a digest of its generator's source, so
phantoms built by other code are never reused; files are written under a temporary name
and renamed, so an interrupted run leaves no half-written phantom.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def source_digest(generator: Callable[..., Any]) -> str:
    """A digest (16 hex digits) of the ``.py`` files beside ``generator``'s source."""
    folder = Path(generator.__code__.co_filename).parent
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cached(cache: Path | None, key: str, build: Callable[[], T]) -> T:
    """``build()``, or what it returned before for ``key`` when ``cache`` holds it."""
    if cache is None:
        return build()
    path = cache / f"{key}.pkl"
    if path.exists():
        with path.open("rb") as stream:
            return pickle.load(stream)
    phantom = build()
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.part")
    with partial.open("wb") as stream:
        pickle.dump(phantom, stream, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(path)
    return phantom
