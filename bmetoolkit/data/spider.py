"""SPIDER lumbar spine MRI: opt-in download, reader, and agreement with its Modic grades.

SPIDER (van der Graaf et al., Sci Data 11, 264, 2024; Zenodo record 10159290, CC BY 4.0) holds
447 sagittal T1 and T2 series of 218 patients with low back pain, vertebra / disc / canal
masks, and radiologists' per-disc gradings including the Modic type. bmetoolkit never
downloads it by itself: :func:`fetch_spider` (or ``bmetoolkit spider fetch``) does, into a
user cache.

Layout (as published; names checked against public users of the dataset)::

    overview.csv                 one row per series (new_file_name, subset, scanner...)
    radiological_gradings.csv    one row per patient x disc: Patient, IVD label, Modic,
                                 UP endplate, LOW endplate, Spondylolisthesis,
                                 Disc herniation, Disc narrowing, Disc bulging, Pfirrman grade
    images.zip -> images/<patient>_<t1|t2|t2_SPACE>.mha
    masks.zip  -> masks/<patient>_<t1|t2|t2_SPACE>.mha

Mask values: vertebrae ``1..n`` counted from the bottom (1 = L5, assuming five lumbar
vertebrae; a transitional anatomy shifts every name), ``100`` the spinal canal, discs
``201..`` counted from the bottom (201 = L5-S1). The sacrum has no vertebra label. The
gradings' ``IVD label`` uses the same count (1 = L5-S1). ``Modic`` is 0 (none), 1, 2 or 3.

SPIDER grades Modic **per disc**, not per endplate: the expected type of a disc level is
compared with bmetoolkit's two endplates facing that disc (:func:`disc_predictions`).

Download
--------
Files are listed with their MD5 checksums by the Zenodo records API; each is streamed to
``<name>.part`` beside its final name with a progress bar, resumed with an HTTP ``Range``
request when a ``.part`` exists, checked (size and checksum) and only then renamed. A
partial or corrupt download therefore never looks complete. Zip archives are extracted into a
temporary folder that is renamed when complete.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import os
import re
import shutil
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bmetoolkit.errors import BmetoolkitError, InputNotFoundError
from bmetoolkit.metrics import cohen_kappa
from bmetoolkit.modic import NOT_ASSESSED

if TYPE_CHECKING:
    import pandas as pd

    from bmetoolkit.spine.labels import VertebraLabels
    from bmetoolkit.volume import Volume

__all__ = [
    "CACHE_ENV_VAR",
    "MODIC_TYPES",
    "SPIDER_FILES",
    "SPIDER_RECORD",
    "DownloadError",
    "RemoteFile",
    "SpiderCase",
    "agreement",
    "cache_dir",
    "cohen_kappa",
    "disc_name",
    "disc_predictions",
    "download",
    "fetch_spider",
    "find_cases",
    "list_record_files",
    "read_gradings",
    "spider_level",
    "spider_mask_from_verse",
    "spider_vertebrae",
    "validate_spider",
    "write_gradings",
    "write_mha",
    "write_phantom_case",
]

#: Zenodo record of the SPIDER dataset (CC BY 4.0).
SPIDER_RECORD = "10159290"
ZENODO_API = "https://zenodo.org/api/records"
#: The files of the record, small tables first.
SPIDER_FILES = ("overview.csv", "radiological_gradings.csv", "masks.zip", "images.zip")
#: Environment variable overriding the cache folder.
CACHE_ENV_VAR = "BMETOOLKIT_CACHE"
#: Modic categories compared, in confusion-matrix order.
MODIC_TYPES = ("none", "I", "II", "III")
#: Lowest labelled vertebra of a SPIDER mask and the levels above it (label 1, 2, ...).
SPIDER_LEVELS = ("L5", "L4", "L3", "L2", "L1", "T12", "T11", "T10", "T9", "T8", "T7", "T6")
GRADING_COLUMNS = {"patient": "Patient", "ivd_label": "IVD label", "modic": "Modic"}
_CHUNK = 1 << 20
_CASE_NAME = re.compile(r"^(?P<patient>\d+)_(?P<sequence>t1|t2|t2_SPACE)\.mha$")


class DownloadError(BmetoolkitError, OSError):
    """A download failed, was cut short, or did not match its checksum."""


# --- download ---------------------------------------------------------------------------------


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


# --- reading the layout -----------------------------------------------------------------------


@dataclass(frozen=True)
class SpiderCase:
    """One SPIDER series: patient, sequence, image and mask files."""

    patient: int
    sequence: str
    image: Path
    mask: Path


def find_cases(root: str | os.PathLike) -> list[SpiderCase]:
    """Every series under ``root/images`` that has its mask in ``root/masks``.

    Raises
    ------
    InputNotFoundError
        ``root/images`` is missing (not a SPIDER folder, or not extracted yet).
    """
    folder = Path(root)
    images = folder / "images"
    if not images.is_dir():
        raise InputNotFoundError(
            "has no images/ folder",
            path=folder,
            hint="download and extract SPIDER with `bmetoolkit spider fetch` (or unzip "
            "images.zip and masks.zip there)",
        )
    cases = []
    for path in sorted(images.iterdir()):
        match = _CASE_NAME.match(path.name)
        mask = folder / "masks" / path.name
        if match and mask.exists():
            cases.append(SpiderCase(int(match["patient"]), match["sequence"], path, mask))
    return sorted(cases, key=lambda c: (c.patient, c.sequence))


def spider_level(label: int) -> str:
    """Level name of a SPIDER vertebra label (1 = L5, counted upwards).

    >>> spider_level(1), spider_level(5), spider_level(6)
    ('L5', 'L1', 'T12')
    """
    if not 1 <= int(label) <= len(SPIDER_LEVELS):
        raise ValueError(f"SPIDER vertebra label {label} is outside 1..{len(SPIDER_LEVELS)}")
    return SPIDER_LEVELS[int(label) - 1]


def disc_name(ivd_label: int) -> tuple[str, str]:
    """(upper, lower) vertebra of a SPIDER disc label (1 = L5-S1).

    >>> disc_name(1), disc_name(2)
    (('L5', 'S1'), ('L4', 'L5'))
    """
    label = int(ivd_label)
    return spider_level(label), ("S1" if label == 1 else spider_level(label - 1))


def _modic_category(value: Any) -> str:
    text = str(value).strip().upper()
    roman = {"0": "none", "1": "I", "2": "II", "3": "III", "": "none", "NONE": "none"}
    if text.endswith(".0"):
        text = text[:-2]
    primary = re.split(r"[/+,]", text)[0].strip()  # a mixed type counts as its dominant one
    category = roman.get(primary, primary)
    if category not in MODIC_TYPES:
        raise ValueError(f"unrecognised Modic grade {value!r}; expected 0-3 or I-III")
    return category


def read_gradings(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``radiological_gradings.csv`` as one row per patient and disc.

    Returns
    -------
    pandas.DataFrame
        ``patient``, ``ivd_label``, ``disc`` (``"L4-L5"``), ``upper_level``,
        ``lower_level``, ``modic_type`` (``'none'``, ``'I'``, ``'II'``, ``'III'``), then the
        original columns unchanged.
    """
    import pandas as pd

    source = Path(path)
    if not source.is_file():
        raise InputNotFoundError(
            "does not exist", path=source, hint="fetch SPIDER with `bmetoolkit spider fetch`"
        )
    raw = pd.read_csv(source)
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in GRADING_COLUMNS.values() if c not in raw.columns]
    if missing:
        raise BmetoolkitError(
            f"lacks the column(s) {missing}; it has {list(raw.columns)}",
            path=source,
            hint="is this SPIDER's radiological_gradings.csv?",
        )
    raw = raw[raw[GRADING_COLUMNS["ivd_label"]] >= 1].reset_index(drop=True)
    discs = [disc_name(v) for v in raw[GRADING_COLUMNS["ivd_label"]]]
    table = pd.DataFrame(
        {
            "patient": raw[GRADING_COLUMNS["patient"]].astype(int),
            "ivd_label": raw[GRADING_COLUMNS["ivd_label"]].astype(int),
            "disc": [f"{upper}-{lower}" for upper, lower in discs],
            "upper_level": [upper for upper, _ in discs],
            "lower_level": [lower for _, lower in discs],
            "modic_type": [_modic_category(v) for v in raw[GRADING_COLUMNS["modic"]]],
        }
    )
    return pd.concat([table, raw], axis=1)


def spider_vertebrae(mask: Volume) -> VertebraLabels:
    """Vertebral labels of a SPIDER mask, renumbered to VerSe ids (1 = L5 -> 24, ...).

    Discs (201+) and the canal (100) are dropped. SPIDER segments whole vertebrae (body and
    posterior elements); the analysis finds the body within them.
    """
    from bmetoolkit.io import label_dtype
    from bmetoolkit.spine.labels import VertebraLabels, verse_id

    data = np.asarray(mask.data)
    bodies = np.zeros(data.shape, np.uint8)
    levels: dict[int, str | None] = {}
    present = sorted(int(v) for v in np.unique(data) if 1 <= v <= len(SPIDER_LEVELS))
    for label in reversed(present):  # cranial to caudal
        name = spider_level(label)
        bodies[data == label] = verse_id(name)
        levels[verse_id(name)] = name
    volume = mask.with_data(bodies.astype(label_dtype(bodies)), kind="label")
    return VertebraLabels(
        bodies=volume,
        levels=levels,
        convention="spider",
        provenance={"source": mask.source, "levels": "SPIDER label 1 = L5, counted upwards"},
    )


# --- agreement --------------------------------------------------------------------------------


def _primary(modic_type: Any) -> str:
    return _modic_category(modic_type) if modic_type is not None else "none"


#: Cranio-caudal order of level names, transitional T13 and L6 included.
_ANATOMICAL_ORDER = (
    *(f"C{i}" for i in range(1, 8)),
    *(f"T{i}" for i in range(1, 14)),
    *(f"L{i}" for i in range(1, 7)),
    "S1",
)


def _adjacent(upper: str, lower: str) -> bool:
    """True when only transitional levels (T13, L6) could lie between ``upper`` and ``lower``."""
    start, stop = _ANATOMICAL_ORDER.index(upper), _ANATOMICAL_ORDER.index(lower)
    return stop > start and set(_ANATOMICAL_ORDER[start + 1 : stop]) <= {"T13", "L6"}


def disc_predictions(endplates: pd.DataFrame) -> pd.DataFrame:
    """Collapse a per-endplate Modic table to one predicted type per disc level.

    A disc's type comes from the inferior endplate of the vertebra above and the superior
    endplate of the one below. Mixed types count as their dominant (first) type. When both
    endplates are changed with different types, the one with the larger ``volume_ml`` wins
    (if the table has it), else the first of I, II, III. Endplates whose type is
    ``"not assessed"`` are ignored; a disc with no other endplate gets no prediction.

    Parameters
    ----------
    endplates : pandas.DataFrame
        Columns ``level``, ``endplate`` (``superior``/``inferior``), ``modic_type``, and
        optionally ``volume_ml``.

    Returns
    -------
    pandas.DataFrame
        ``disc`` (``"L4-L5"``), ``upper_level``, ``lower_level``, ``predicted``.
    """
    import pandas as pd

    rows = {(r["level"], r["endplate"]): r for r in endplates.to_dict("records")}
    levels = sorted(
        {level for level in endplates["level"] if level in _ANATOMICAL_ORDER},
        key=_ANATOMICAL_ORDER.index,
    )
    out = []
    for upper, lower in itertools.pairwise(levels):
        if not _adjacent(upper, lower):
            continue  # a level in between is missing: no disc to name
        sides = [rows.get((upper, "inferior")), rows.get((lower, "superior"))]
        # "not assessed" (a T1 that cannot carry Modic types) is no prediction: such a
        # disc is left out and counted as unreported, not graded "none" or failed.
        sides = [s for s in sides if s is not None and s.get("modic_type") != NOT_ASSESSED]
        if not sides:
            continue
        changed = [s for s in sides if _primary(s.get("modic_type")) != "none"]
        if not changed:
            predicted = "none"
        else:
            changed.sort(
                key=lambda s: (
                    -float(s.get("volume_ml") or 0.0),
                    MODIC_TYPES.index(_primary(s["modic_type"])),
                )
            )
            predicted = _primary(changed[0]["modic_type"])
        out.append(
            {"disc": f"{upper}-{lower}", "upper_level": upper, "lower_level": lower,
             "predicted": predicted}
        )  # fmt: skip
    return pd.DataFrame(out, columns=["disc", "upper_level", "lower_level", "predicted"])


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def agreement(expected: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Agreement of predicted Modic types with reference grades, per disc level.

    Parameters
    ----------
    expected, predicted : sequences of str
        ``'none'``, ``'I'``, ``'II'`` or ``'III'`` (mixed types are reduced to the dominant).

    Returns
    -------
    dict
        ``n``; ``type``: ``accuracy`` and ``kappa`` over none/I/II/III and the
        ``confusion`` matrix (rows expected, columns predicted); ``presence`` (any Modic
        change yes/no, the task SpineNet's kappa 0.74 refers to): ``accuracy``,
        ``balanced_accuracy``, ``sensitivity``, ``specificity``, ``kappa``; ``per_type``:
        for each type, ``n_expected``, ``n_predicted``, ``sensitivity``, ``precision``.

    Examples
    --------
    >>> result = agreement(["none", "I", "II", "none"], ["none", "I", "I", "none"])
    >>> result["type"]["accuracy"], result["presence"]["accuracy"]
    (0.75, 1.0)
    """
    truth = [_primary(v) for v in expected]
    guess = [_primary(v) for v in predicted]
    if len(truth) != len(guess):
        raise ValueError(f"{len(truth)} expected grades but {len(guess)} predictions")
    n = len(truth)
    confusion = {e: {p: 0 for p in MODIC_TYPES} for e in MODIC_TYPES}
    for e, p in zip(truth, guess, strict=True):
        confusion[e][p] += 1
    present_truth = [t != "none" for t in truth]
    present_guess = [g != "none" for g in guess]
    tp = sum(t and g for t, g in zip(present_truth, present_guess, strict=True))
    tn = sum(not t and not g for t, g in zip(present_truth, present_guess, strict=True))
    positives, negatives = sum(present_truth), n - sum(present_truth)
    sensitivity, specificity = _ratio(tp, positives), _ratio(tn, negatives)
    per_type = {}
    for kind in MODIC_TYPES[1:]:
        hits = confusion[kind][kind]
        n_expected = sum(confusion[kind].values())
        n_predicted = sum(confusion[e][kind] for e in MODIC_TYPES)
        per_type[kind] = {
            "n_expected": n_expected,
            "n_predicted": n_predicted,
            "sensitivity": _ratio(hits, n_expected),
            "precision": _ratio(hits, n_predicted),
        }
    return {
        "n": n,
        "type": {
            "accuracy": _ratio(sum(confusion[t][t] for t in MODIC_TYPES), n),
            "kappa": cohen_kappa(truth, guess, MODIC_TYPES),
            "confusion": confusion,
        },
        "presence": {
            "accuracy": _ratio(tp + tn, n),
            "balanced_accuracy": float(np.nanmean([sensitivity, specificity])) if n else np.nan,
            "sensitivity": sensitivity,
            "specificity": specificity,
            "kappa": cohen_kappa(present_truth, present_guess, [False, True]),
        },
        "per_type": per_type,
    }


# --- validation -------------------------------------------------------------------------------

Analyzer = Callable[..., Any]


def _default_analyzer() -> Analyzer:
    from bmetoolkit.analysis import analyze

    return analyze


def validate_spider(
    root: str | os.PathLike,
    *,
    analyze: Analyzer | None = None,
    params: Any = None,
    patients: Iterable[int] | None = None,
    limit: int | None = None,
    on_error: Callable[[int, Exception], None] | None = None,
    progress: bool = False,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run the analysis on every SPIDER patient with a T1 and a T2 and score it per disc.

    For each patient: the T1 and T2 images, the vertebrae of the T1 mask renumbered to
    VerSe ids (:func:`spider_vertebrae`), ``analyze(t1, t2=t2, vertebrae=..., params=...)``,
    its endplates collapsed per disc (:func:`disc_predictions`) and joined with the graded
    discs. Discs graded but not reported by the analysis are scored as ``'none'`` predicted
    and counted in ``metrics["n_unreported"]``.

    Parameters
    ----------
    root : path
        The SPIDER folder (``images/``, ``masks/``, ``radiological_gradings.csv``).
    analyze : callable, optional
        ``bmetoolkit.analysis.analyze`` by default; anything with its signature returning an
        object with an ``endplates`` DataFrame.
    params : optional
        Passed to ``analyze``.
    patients : iterable of int, optional
        Only these patients.
    limit : int, optional
        At most this many patients (in patient order).
    on_error : callable, optional
        Called with (patient, exception) when a patient fails; without it errors propagate.
    progress : bool
        Show a progress bar over patients.

    Returns
    -------
    per_disc : pandas.DataFrame
        ``patient``, ``disc``, ``expected``, ``predicted``, ``reported``.
    metrics : dict
        :func:`agreement` of all scored discs, plus ``n_patients``, ``n_failed`` and
        ``n_unreported``.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from bmetoolkit.io import load

    folder = Path(root)
    run = analyze or _default_analyzer()
    gradings = read_gradings(folder / "radiological_gradings.csv")
    by_patient: dict[int, dict[str, SpiderCase]] = {}
    for case in find_cases(folder):
        by_patient.setdefault(case.patient, {})[case.sequence] = case
    chosen = sorted(p for p, c in by_patient.items() if {"t1", "t2"} <= set(c))
    if patients is not None:
        wanted = {int(p) for p in patients}
        chosen = [p for p in chosen if p in wanted]
    chosen = chosen[:limit] if limit is not None else chosen
    rows, failed = [], 0
    for patient in tqdm(chosen, desc="SPIDER", unit="patient", disable=not progress):
        cases = by_patient[patient]
        try:
            t1 = load(cases["t1"].image)
            t2 = load(cases["t2"].image)
            labels = spider_vertebrae(load(cases["t1"].mask, kind="label"))
            result = run(t1, t2=t2, vertebrae=labels, params=params)
            predicted = disc_predictions(result.endplates)
        except Exception as exc:
            if on_error is None:
                raise
            on_error(patient, exc)
            failed += 1
            continue
        found = dict(zip(predicted["disc"], predicted["predicted"], strict=True))
        for graded in gradings[gradings["patient"] == patient].itertuples():
            rows.append(
                {
                    "patient": patient,
                    "disc": graded.disc,
                    "expected": graded.modic_type,
                    "predicted": found.get(graded.disc, "none"),
                    "reported": graded.disc in found,
                }
            )
    per_disc = pd.DataFrame(rows, columns=["patient", "disc", "expected", "predicted", "reported"])
    metrics = agreement(per_disc["expected"].tolist(), per_disc["predicted"].tolist())
    metrics |= {
        "n_patients": len(chosen) - failed,
        "n_failed": failed,
        "n_unreported": int((~per_disc["reported"]).sum()) if len(per_disc) else 0,
    }
    return per_disc, metrics


# --- a SPIDER-layout folder from phantom studies (to test the pipeline without the data) ----


def write_mha(volume: Volume, path: str | os.PathLike) -> Path:
    """Write a volume as an ITK MetaImage (``.mha``; RAS+ affine converted to ITK's LPS+)."""
    import SimpleITK as sitk

    from bmetoolkit.io import atomic_write
    from bmetoolkit.volume import LPS_TO_RAS

    affine = LPS_TO_RAS @ volume.affine
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(volume.data).T))
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection([float(v) for v in (affine[:3, :3] / spacing).ravel()])
    image.SetOrigin([float(v) for v in affine[:3, 3]])
    target = Path(path)
    with atomic_write(target) as temporary:
        sitk.WriteImage(image, str(temporary), useCompression=True)
    return target


def spider_mask_from_verse(vertebrae: Volume) -> Volume:
    """A SPIDER-numbered mask (1 = L5 upwards) from VerSe ids; the sacrum is left out."""
    from bmetoolkit.spine.labels import VERSE_LEVELS

    data = np.asarray(vertebrae.data)
    out = np.zeros(data.shape, np.int16)
    for label, name in enumerate(SPIDER_LEVELS, start=1):
        ids = [i for i, n in VERSE_LEVELS.items() if n == name]
        out[np.isin(data, ids)] = label
    return vertebrae.with_data(out, kind="label")


def write_phantom_case(study: Any, root: str | os.PathLike, patient: int) -> list[dict[str, Any]]:
    """Write a phantom study into ``root`` in SPIDER's layout; return its gradings rows.

    Images ``images/<patient>_t1.mha`` and ``_t2.mha``, masks of each grid in ``masks/``
    (vertebrae only, SPIDER numbering). The gradings rows (SPIDER's columns) give each disc
    the type of its two endplates in the phantom's truth, by :func:`disc_predictions`'s
    rule; append them to ``radiological_gradings.csv`` (see :func:`write_gradings`).
    """
    import pandas as pd

    folder = Path(root)
    for name, image in (("t1", study.t1), ("t2", study.t2)):
        write_mha(image, folder / "images" / f"{patient}_{name}.mha")
        mask = spider_mask_from_verse(study.truth.grid_masks[name]["vertebrae"])
        write_mha(mask, folder / "masks" / f"{patient}_{name}.mha")
    discs = disc_predictions(pd.DataFrame(study.truth.endplates))
    rows = []
    for disc in discs.itertuples():
        if disc.upper_level not in SPIDER_LEVELS:
            continue
        code = MODIC_TYPES.index(disc.predicted)
        rows.append(
            {"Patient": patient, "IVD label": SPIDER_LEVELS.index(disc.upper_level) + 1,
             "Modic": code, "UP endplate": 0, "LOW endplate": 0, "Spondylolisthesis": 0,
             "Disc herniation": 0, "Disc narrowing": 0, "Disc bulging": 0, "Pfirrman grade": 1}
        )  # fmt: skip
    return rows


def write_gradings(rows: Sequence[Mapping[str, Any]], root: str | os.PathLike) -> Path:
    """Write gradings rows as ``root/radiological_gradings.csv`` (atomically)."""
    import pandas as pd

    from bmetoolkit.io import write_text

    return write_text(
        Path(root) / "radiological_gradings.csv", pd.DataFrame(list(rows)).to_csv(index=False)
    )
