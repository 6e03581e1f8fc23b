"""Download SPIDER from Zenodo into the user cache: listed, streamed, resumed, verified.

bmetoolkit never downloads SPIDER by itself: :func:`fetch_spider` (or ``bmetoolkit spider
fetch``) does, into a user cache (:func:`cache_dir`).

Files are listed with their MD5 checksums by the Zenodo records API; each is streamed to
``<name>.part`` beside its final name with a progress bar, resumed with an HTTP ``Range``
request when a ``.part`` exists, checked (size and checksum) and only then renamed. A
partial or corrupt download therefore never looks complete. Zip archives are extracted into a
temporary folder that is renamed when complete.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bmetoolkit.errors import BmetoolkitError

__all__ = [
    "CACHE_ENV_VAR",
    "SPIDER_FILES",
    "SPIDER_RECORD",
    "ZENODO_API",
    "DownloadError",
    "RemoteFile",
    "cache_dir",
    "download",
    "fetch_spider",
    "list_record_files",
]

#: Zenodo record of the SPIDER dataset (CC BY 4.0).
SPIDER_RECORD = "10159290"
ZENODO_API = "https://zenodo.org/api/records"
#: The files of the record, small tables first.
SPIDER_FILES = ("overview.csv", "radiological_gradings.csv", "masks.zip", "images.zip")
#: Environment variable overriding the cache folder.
CACHE_ENV_VAR = "BMETOOLKIT_CACHE"
_CHUNK = 1 << 20


class DownloadError(BmetoolkitError, OSError):
    """A download failed, was cut short, or did not match its checksum."""


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Cache folder of bmetoolkit downloads.

    ``override`` if given, else ``$BMETOOLKIT_CACHE``, else ``$XDG_CACHE_HOME/bmetoolkit``,
    else ``~/.cache/bmetoolkit``.
    """
    if override is not None:
        return Path(override).expanduser()
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "bmetoolkit"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a Zenodo record.

    Parameters
    ----------
    name : str
        File name (the record's ``key``).
    url : str
        Download URL.
    size : int or None
        Size in bytes, when listed.
    checksum : str or None
        ``"<algorithm>:<hex digest>"`` as Zenodo lists it (``"md5:..."``).
    """

    name: str
    url: str
    size: int | None = None
    checksum: str | None = None


def _open(url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 60.0) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "bmetoolkit", **(headers or {})})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise DownloadError(
            f"the server answered HTTP {exc.code} {exc.reason}",
            path=url,
            hint="check the URL or try again later",
        ) from exc
    except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
        raise DownloadError(
            f"cannot be reached ({getattr(exc, 'reason', exc)})",
            path=url,
            hint="check the internet connection (and proxy settings), then run again: "
            "finished files are kept and partial ones resumed",
        ) from exc


def list_record_files(
    record: str = SPIDER_RECORD, *, api_url: str = ZENODO_API, timeout: float = 60.0
) -> list[RemoteFile]:
    """The files of a Zenodo record with their sizes and checksums (one API request)."""
    if not api_url.startswith(("https://", "http://")):
        raise ValueError(f"api_url must be an http(s) URL, got {api_url!r}")
    url = f"{api_url.rstrip('/')}/{record}"
    with _open(url, timeout=timeout) as response:
        try:
            payload = json.loads(response.read().decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DownloadError("did not return JSON", path=url) from exc
    entries = payload.get("files")
    if isinstance(entries, dict):  # some API versions nest the list under "entries"
        entries = list(entries.get("entries", {}).values())
    if not entries:
        raise DownloadError("lists no files", path=url, hint="check the record number")
    files = []
    for entry in entries:
        name = entry.get("key") or entry.get("filename")
        links = entry.get("links", {})
        link = links.get("content") or links.get("self") or links.get("download")
        if not name or not link:
            raise DownloadError(f"lists a file without a name or link: {entry}", path=url)
        files.append(RemoteFile(name, link, entry.get("size"), entry.get("checksum")))
    return files


def _verify(path: Path, remote: RemoteFile) -> str | None:
    """None when ``path`` matches ``remote``'s size and checksum, else what is wrong."""
    size = path.stat().st_size
    if remote.size is not None and size != int(remote.size):
        return f"has {size} bytes, expected {remote.size}"
    if remote.checksum:
        algorithm, _, expected = remote.checksum.partition(":")
        digest = hashlib.new(algorithm)
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(block)
        if digest.hexdigest() != expected.lower():
            return f"{algorithm} checksum {digest.hexdigest()} differs from {expected}"
    return None


def download(
    remote: RemoteFile, folder: str | os.PathLike, *, progress: bool = True, timeout: float = 60.0
) -> Path:
    """Download one file into ``folder``: resumable, verified, renamed only when complete.

    A file already under its final name that matches the size and checksum is kept as is.

    Returns
    -------
    Path
        The verified file.

    Raises
    ------
    DownloadError
        The connection failed (the ``.part`` file is kept for a resume), or the finished
        download does not match its size or checksum (the ``.part`` file is deleted).
    """
    target = Path(folder) / remote.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and _verify(target, remote) is None:
        return target
    partial = target.with_name(target.name + ".part")
    _fetch_into(remote, partial, progress=progress, timeout=timeout)
    problem = _verify(partial, remote)
    if problem:
        partial.unlink()
        raise DownloadError(
            f"download {problem}",
            path=remote.url,
            hint="the partial file was deleted; run again to download it afresh",
        )
    os.replace(partial, target)
    return target


def _fetch_into(remote: RemoteFile, partial: Path, *, progress: bool, timeout: float) -> None:
    from tqdm.auto import tqdm

    offset = partial.stat().st_size if partial.exists() else 0
    if remote.size is not None and offset > int(remote.size):
        partial.unlink()
        offset = 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with _open(remote.url, headers=headers, timeout=timeout) as response:
        if offset and response.status != 206:  # the server ignored the range: start again
            offset = 0
        mode = "ab" if offset else "wb"
        with (
            open(partial, mode) as handle,
            tqdm(
                total=remote.size,
                initial=offset,
                unit="B",
                unit_scale=True,
                desc=remote.name,
                disable=not progress,
            ) as bar,
        ):
            length = response.headers.get("Content-Length")
            expected = int(length) + offset if length is not None else remote.size
            reason = "the connection closed early"
            try:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    handle.write(block)
                    bar.update(len(block))
            except (OSError, TimeoutError, http.client.HTTPException) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if expected is None or handle.tell() >= int(expected):
                    return
            raise DownloadError(
                f"download interrupted after {handle.tell()} of {expected} bytes ({reason})",
                path=remote.url,
                hint=f"run again to resume from {partial}",
            )


def _extract(archive: Path, root: Path) -> None:
    """Extract ``archive`` into ``root`` atomically, once (a marker records the archive)."""
    marker = root / f".extracted-{archive.name}"
    if marker.exists():
        return
    staging = root / f".{uuid.uuid4().hex[:12]}.partial-extract"
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.namelist():
                if member.startswith(("/", "\\")) or ".." in Path(member).parts:
                    raise DownloadError(f"holds an unsafe member path {member!r}", path=archive)
            bundle.extractall(staging)
        for item in staging.iterdir():
            destination = root / item.name
            if destination.exists():
                shutil.rmtree(destination) if destination.is_dir() else destination.unlink()
            os.replace(item, destination)
        marker.write_text("ok\n")
    except zipfile.BadZipFile as exc:
        raise DownloadError(
            f"is not a valid zip archive ({exc})",
            path=archive,
            hint="delete it and run the download again",
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_spider(
    destination: str | os.PathLike | None = None,
    *,
    files: Sequence[str] = SPIDER_FILES,
    record: str = SPIDER_RECORD,
    api_url: str = ZENODO_API,
    extract: bool = True,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download (and unzip) the SPIDER dataset; return its folder.

    Parameters
    ----------
    destination : path, optional
        Folder to fill; ``cache_dir() / "spider"`` by default.
    files : sequence of str
        Which files of the record to fetch (all four by default; images.zip is the largest).
    record, api_url : str
        The Zenodo record and API (tests point them at a local server).
    extract : bool
        Unzip the archives into ``images/`` and ``masks/``.
    progress : bool
        Show a tqdm progress bar per file.
    timeout : float
        Seconds without data before a connection is given up.

    Returns
    -------
    Path
        The dataset folder (pass it to :func:`validate_spider`).

    Raises
    ------
    DownloadError
        A file is missing from the record, cannot be fetched, or fails its checksum.
    """
    root = Path(destination) if destination is not None else cache_dir() / "spider"
    listed = {f.name: f for f in list_record_files(record, api_url=api_url, timeout=timeout)}
    missing = [name for name in files if name not in listed]
    if missing:
        raise DownloadError(
            f"record {record} has no file(s) {missing}; it lists {sorted(listed)}",
            path=api_url,
        )
    for name in files:
        path = download(listed[name], root, progress=progress, timeout=timeout)
        if extract and path.suffix == ".zip":
            _extract(path, root)
    return root
