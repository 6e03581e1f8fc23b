"""Pick the T1 and the T2 and/or STIR to pair from the series of a study.

bmetoolkit compares a fat-bright **T1** with a fluid-sensitive series: a plain **T2** and/or
a fat-nulled **STIR** (or, failing that, a fat-suppressed T2). This module picks one series
per role from a study, using the contrast :func:`bmetoolkit.pairing.contrast.classify_series`
detects for each series, and keeps the reasons for every pick.

Pairing rules (:func:`pair_series`)
-----------------------------------
- Roles: ``t1`` (a T1), ``t2`` (a T2 *without* fat suppression) and ``stir`` (the
  fluid-sensitive fat-nulled series: a STIR, or a fat-suppressed T2 when the study has no
  STIR, which the reasons say). A T1 is required, and a T2 or a STIR.
- A role given explicitly (``t1=3``, ``t1="1.2.840..."`` or ``t1="T1_TSE_SAG"``: SeriesNumber
  as int or digit string, SeriesInstanceUID, file path for NIfTI, or exact SeriesDescription
  ignoring case) is taken as given, even when the series was classified otherwise; the
  reasons then carry a warning.
- Otherwise candidates are narrowed by preferences, each applied only when some candidate
  meets it: sagittal; for ``stir`` a true STIR over a fat-suppressed T2; non-derived
  (ImageType ``ORIGINAL``); for ``t2``/``stir`` the T1's FrameOfReferenceUID. If several
  candidates remain, :class:`~bmetoolkit.errors.AmbiguousSeriesError` lists them and says
  how to choose (``pair_series(..., t1=3)`` or ``--t1-series 3``).
- Series of another study than the T1 (StudyInstanceUID, read from the DICOM headers) are
  never paired unless asked for with ``allow_cross_study=True`` (``--allow-cross-study``):
  a follow-up examination, or another patient's study, in the same folder must not be
  paired silently. Without it they are passed over; when the only T2/STIR candidates, or a
  series chosen explicitly, are from another study,
  :class:`~bmetoolkit.errors.CrossStudyError` says so. With it, series of the T1's study
  are still preferred.
- The reasons record every pick, every candidate passed over and warnings: planes that
  differ from the T1's, oblique series, a different FrameOfReferenceUID or study.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bmetoolkit.errors import AmbiguousSeriesError, CrossStudyError, MissingContrastError
from bmetoolkit.pairing.contrast import ContrastCall, _image_type, classify_series
from bmetoolkit.pairing.series import SeriesInfo

__all__ = ["Pairing", "pair_series"]

_ROLE_TEXT: dict[str, str] = {
    "t1": "T1",
    "t2": "T2 (without fat suppression)",
    "stir": "STIR or fat-suppressed T2",
}


@dataclass(frozen=True)
class Pairing:
    """The series chosen for each role, and why.

    Parameters
    ----------
    t1 : SeriesInfo
        The native T1.
    t2 : SeriesInfo or None
        A T2 without fat suppression.
    stir : SeriesInfo or None
        The fluid-sensitive fat-nulled series: a STIR, or a fat-suppressed T2 when the
        study has no STIR.
    reasons : tuple of str
        Why each was chosen, what was passed over, and warnings (prefixed ``warning:``).

    Examples
    --------
    >>> def sag(number, description):
    ...     return SeriesInfo(uid=f"1.2.{number}", number=number, description=description,
    ...                       source="study", files=("x.dcm",), shape=(320, 320, 15),
    ...                       spacing=(1, 1, 4), slice_normal=(1.0, 0.0, 0.0))
    >>> pairing = pair_series([sag(3, "t1_tse_sag"), sag(4, "t2_tse_sag")])
    >>> pairing.t1.number, pairing.t2.number, pairing.stir
    (3, 4, None)
    >>> pairing.fluid.number
    4
    """

    t1: SeriesInfo
    t2: SeriesInfo | None
    stir: SeriesInfo | None
    reasons: tuple[str, ...]

    @property
    def fluid(self) -> SeriesInfo:
        """The series that drives fluid-bright decisions: the STIR slot if filled, else T2."""
        chosen = self.stir or self.t2
        assert chosen is not None  # pair_series guarantees one of them
        return chosen


@dataclass(frozen=True)
class _Entry:
    info: SeriesInfo
    call: ContrastCall


def pair_series(
    series: Sequence[SeriesInfo],
    *,
    t1: str | int | None = None,
    t2: str | int | None = None,
    stir: str | int | None = None,
    allow_cross_study: bool = False,
) -> Pairing:
    """Choose the T1 and the T2 and/or STIR to pair from the series of a study.

    The rules are in the module documentation (:mod:`bmetoolkit.pairing.pair`).

    Parameters
    ----------
    series : sequence of SeriesInfo
        Every series found in the study folder.
    t1, t2, stir : int or str, optional
        Explicit choice for a role: SeriesNumber (int or digit string), SeriesInstanceUID,
        file path (NIfTI) or exact SeriesDescription (case-insensitive).
    allow_cross_study : bool
        Pair series of different studies (StudyInstanceUID) when needed; refused otherwise.

    Returns
    -------
    Pairing

    Raises
    ------
    MissingContrastError
        No T1, no T2 or STIR, or an explicit choice that matches no series. The message
        lists every series with its detected contrast.
    AmbiguousSeriesError
        Several series fit a role equally well (or an explicit choice matches several).
        The message lists them and how to choose one.
    CrossStudyError
        The T2/STIR (found or chosen) is from another study than the T1 and
        ``allow_cross_study`` is False.

    Examples
    --------
    >>> def sag(number, description, normal=(1.0, 0.0, 0.0)):
    ...     return SeriesInfo(uid=f"1.2.{number}", number=number, description=description,
    ...                       source="study", files=("x.dcm",), shape=(320, 320, 15),
    ...                       spacing=(1, 1, 4), slice_normal=normal)
    >>> study = [sag(1, "localizer"), sag(3, "t1_tse_sag"), sag(4, "t2_tse_sag"),
    ...          sag(5, "t2_tirm_sag"), sag(6, "t2_tse_tra", normal=(0.0, 0.0, 1.0))]
    >>> pairing = pair_series(study)
    >>> [pairing.t1.number, pairing.t2.number, pairing.stir.number]
    [3, 4, 5]
    >>> pair_series(study, t2=6).t2.description
    't2_tse_tra'
    """
    entries = [_Entry(s, classify_series(s)) for s in series]
    if not entries:
        raise MissingContrastError("no series given", hint="pass the series of one study")
    reasons: list[str] = []
    explicit = {"t1": t1, "t2": t2, "stir": stir}
    chosen: dict[str, _Entry | None] = {}
    for role in ("t1", "t2", "stir"):
        if explicit[role] is not None:
            chosen[role] = _select_explicit(entries, role, explicit[role], reasons)
    _check_distinct(chosen)
    if "t1" not in chosen:
        chosen["t1"] = _choose(entries, "t1", None, chosen, reasons)
    t1_entry = chosen["t1"]
    if t1_entry is None:
        raise MissingContrastError(
            f"no T1 series among {len(entries)} series. Series found:\n"
            f"{_listing(entries, with_call=True)}\n",
            path=_common_path(e.info for e in entries),
            hint=_how_to_name("t1"),
            cli_hint=_how_to_name("t1", cli=True),
        )
    for role in ("t2", "stir"):
        if explicit[role] is not None and not allow_cross_study:
            _refuse_cross_study(t1_entry, [chosen[role]], role)
    for role in ("stir", "t2"):
        if role not in chosen:
            chosen[role] = _choose(entries, role, t1_entry, chosen, reasons, allow_cross_study)
    if chosen["t2"] is None and chosen["stir"] is None and not allow_cross_study:
        taken = {e.info.uid for e in chosen.values() if e is not None}
        fluid = [
            e
            for e in entries
            if e.info.uid not in taken and (_fits(e.call, "t2") or _fits(e.call, "stir"))
        ]
        _refuse_cross_study(t1_entry, fluid, "t2/stir")
    if chosen["t2"] is None and chosen["stir"] is None:
        raise MissingContrastError(
            f"no T2 or STIR series among {len(entries)} series. Series found:\n"
            f"{_listing(entries, with_call=True)}\n",
            path=_common_path(e.info for e in entries),
            hint=_how_to_name("t2", "stir"),
            cli_hint=_how_to_name("t2", "stir", cli=True),
        )
    reasons.extend(_warnings(t1_entry, chosen["t2"], chosen["stir"]))
    t2_entry, stir_entry = chosen["t2"], chosen["stir"]
    return Pairing(
        t1=t1_entry.info,
        t2=t2_entry.info if t2_entry else None,
        stir=stir_entry.info if stir_entry else None,
        reasons=tuple(reasons),
    )


def _check_distinct(chosen: dict[str, _Entry | None]) -> None:
    seen: dict[str, str] = {}
    for role, entry in chosen.items():
        if entry is None:
            continue
        if entry.info.uid in seen:
            raise AmbiguousSeriesError(
                f"series {entry.info.label} was chosen for both {seen[entry.info.uid]} and {role}",
                hint="choose a different series for each role",
            )
        seen[entry.info.uid] = role


def _matches(info: SeriesInfo, ident: str | int) -> bool:
    if isinstance(ident, bool):
        return False
    if isinstance(ident, int) or (isinstance(ident, str) and ident.strip().isdigit()):
        return info.number is not None and info.number == int(ident)
    text = ident.strip()
    if text == info.uid:
        return True
    if not info.files and info.source and os.path.realpath(text) == os.path.realpath(info.source):
        return True
    descriptions = {info.description, str(info.meta.get("SeriesDescription") or "")}
    return text.casefold() in {d.casefold() for d in descriptions if d}


def _select_explicit(
    entries: Sequence[_Entry], role: str, ident: str | int, reasons: list[str]
) -> _Entry:
    found = [e for e in entries if _matches(e.info, ident)]
    if not found:
        raise MissingContrastError(
            f"no series matches {role}={ident!r}. Series found:\n"
            f"{_listing(entries, with_call=True)}\n",
            path=_common_path(e.info for e in entries),
            hint="Choose by SeriesNumber, SeriesInstanceUID, NIfTI path or exact SeriesDescription",
        )
    if len(found) > 1:
        raise AmbiguousSeriesError(
            f"{role}={ident!r} matches {len(found)} series. Candidates:\n{_listing(found)}\n",
            path=_common_path(e.info for e in found),
            hint=_how_to_choose(entries, role, found[0]),
            cli_hint=_how_to_choose(entries, role, found[0], cli=True),
        )
    entry = found[0]
    reasons.append(
        f"{role}: {entry.info.label} chosen explicitly ({role}={ident!r}); detected as {entry.call}"
    )
    if not _fits(entry.call, role):
        reasons.append(
            f"warning: {entry.info.label} was detected as {entry.call}, not as "
            f"{_ROLE_TEXT[role]}; used as {role} because it was chosen explicitly"
        )
    return entry


def _refuse_cross_study(t1: _Entry, others: Sequence[_Entry | None], role: str) -> None:
    """Raise CrossStudyError when the series for ``role`` are all from another study."""
    study = _meta(t1, "StudyInstanceUID")
    present = [e for e in others if e is not None]
    elsewhere = [e for e in present if _meta(e, "StudyInstanceUID") not in (None, study)]
    if study is None or not elsewhere or len(elsewhere) < len(present):
        return
    listing = "\n".join(_line(e.info) for e in elsewhere)
    raise CrossStudyError(
        f"the T1 {t1.info.label} and the {role} series below are from different studies "
        f"(StudyInstanceUID differs): pairing across studies is refused\n{listing}\n",
        path=_common_path(e.info for e in (t1, *elsewhere)),
        hint="put each study in its own folder; if they really are one patient's same "
        "session, allow it: allow_cross_study=True in Python or --allow-cross-study on the "
        "command line",
        cli_hint="put each study in its own folder; if they really are one patient's same "
        "session, allow it with --allow-cross-study",
    )


def _fits(call: ContrastCall, role: str) -> bool:
    if role == "t1":
        return call.contrast == "T1"
    if role == "t2":
        return call.contrast == "T2" and not call.fat_suppressed
    return call.contrast == "STIR" or (call.contrast == "T2" and call.fat_suppressed)


def _meta(entry: _Entry, key: str) -> str | None:
    """An identifier (``identifiers``, where the DICOM reader keeps them) or a meta value."""
    value = entry.info.identifiers.get(key) or entry.info.meta.get(key)
    return str(value) if value else None


_Preference = tuple[str, Callable[[_Entry], bool]]


def _choose(
    entries: Sequence[_Entry],
    role: str,
    t1: _Entry | None,
    chosen: dict[str, _Entry | None],
    reasons: list[str],
    allow_cross_study: bool = False,
) -> _Entry | None:
    """The one best candidate for ``role``, None when there is none; raise when several tie."""
    pool = _candidates(entries, role, t1, chosen, reasons, allow_cross_study)
    if not pool:
        if role == "stir":
            reasons.append("stir: no STIR or fat-suppressed T2 found")
        elif role == "t2":
            reasons.append("t2: no T2 without fat suppression found")
        return None
    pool = _narrow(pool, role, _preferences(role, t1, allow_cross_study), reasons)
    if len(pool) > 1:
        studies = {_meta(e, "StudyInstanceUID") for e in pool} - {None}
        note = f" (from {len(studies)} different studies)" if len(studies) > 1 else ""
        raise AmbiguousSeriesError(
            f"{len(pool)} series could be the {_ROLE_TEXT[role]}{note}. Candidates:\n"
            f"{_listing(pool)}\n",
            path=_common_path(e.info for e in pool),
            hint=_how_to_choose(entries, role, pool[0]),
            cli_hint=_how_to_choose(entries, role, pool[0], cli=True),
        )
    entry = pool[0]
    reasons.append(f"{role}: {entry.info.label} detected as {entry.call}")
    if role == "stir" and entry.call.contrast != "STIR":
        reasons.append(
            f"stir: no STIR in the study; the fat-suppressed T2 {entry.info.label} "
            "fills the fluid-sensitive fat-nulled role"
        )
    return entry


def _candidates(
    entries: Sequence[_Entry],
    role: str,
    t1: _Entry | None,
    chosen: dict[str, _Entry | None],
    reasons: list[str],
    allow_cross_study: bool = False,
) -> list[_Entry]:
    """Series that fit ``role``, are not chosen for another role and are in the T1's study
    (any study with ``allow_cross_study``)."""
    taken = {e.info.uid for e in chosen.values() if e is not None}
    pool = [e for e in entries if _fits(e.call, role) and e.info.uid not in taken]
    study = _meta(t1, "StudyInstanceUID") if t1 else None
    if study is not None and not allow_cross_study:
        elsewhere = [e for e in pool if _meta(e, "StudyInstanceUID") not in (None, study)]
        for e in elsewhere:
            reasons.append(
                f"{role}: passed over {e.info.label}: from another study than the "
                "T1 (allow_cross_study=True or --allow-cross-study to pair across studies)"
            )
        pool = [e for e in pool if e not in elsewhere]
    return pool


def _is_derived(info: SeriesInfo) -> bool:
    image_type = _image_type(info.meta)
    return bool(image_type) and image_type[0] == "DERIVED"


def _preferences(
    role: str, t1: _Entry | None, allow_cross_study: bool = False
) -> list[_Preference]:
    """What makes a candidate for ``role`` better, in the order the preferences apply."""
    preferences: list[_Preference] = []
    study = _meta(t1, "StudyInstanceUID") if t1 else None
    if allow_cross_study and study is not None:
        preferences.append(
            ("in the T1's study", lambda e: _meta(e, "StudyInstanceUID") in (None, study))
        )
    preferences.append(("sagittal", lambda e: e.info.plane == "sagittal"))
    if role == "stir":
        preferences.append(("a true STIR", lambda e: e.call.contrast == "STIR"))
    preferences.append(("not derived (ImageType ORIGINAL)", lambda e: not _is_derived(e.info)))
    frame = _meta(t1, "FrameOfReferenceUID") if t1 else None
    if frame is not None:
        preferences.append(
            ("in the T1's frame of reference", lambda e: _meta(e, "FrameOfReferenceUID") == frame)
        )
    return preferences


def _narrow(
    pool: list[_Entry], role: str, preferences: Sequence[_Preference], reasons: list[str]
) -> list[_Entry]:
    """Keep the candidates meeting each preference that some, but not all, of them meet."""
    for what, keep in preferences:
        kept = [e for e in pool if keep(e)]
        if kept and len(kept) < len(pool):
            for e in pool:
                if e not in kept:
                    reasons.append(
                        f"{role}: passed over {e.info.label}, detected as "
                        f"{e.call}: another candidate is {what}"
                    )
            pool = kept
    return pool


def _warnings(t1: _Entry, t2: _Entry | None, stir: _Entry | None) -> list[str]:
    notes: list[str] = []
    if stir is None and t2 is not None:
        notes.append("fluid-bright decisions use the plain T2: no STIR or fat-suppressed T2")
    elif stir is not None and t2 is not None:
        notes.append(f"fluid-bright decisions use {stir.info.label}, not the plain T2")
    t1_info = t1.info
    for entry in (t1, t2, stir):
        if entry is None:
            continue
        info = entry.info
        if entry is not t1 and info.plane != t1_info.plane:
            notes.append(
                f"warning: {info.label} is {info.plane} but the T1 is {t1_info.plane}; "
                "comparing it with the T1 needs resampling"
            )
        elif info.plane != "sagittal":
            notes.append(
                f"{info.label} is {info.plane}, not sagittal: fine for bone masks (--marrow); "
                "spine endplates are read on sagittal images"
            )
        if info.is_oblique:
            notes.append(
                f"warning: {info.label} is oblique ({info.tilt_deg:.1f} deg off {info.plane})"
            )
        if entry is t1:
            continue
        for key, what in (
            ("StudyInstanceUID", "study"),
            ("FrameOfReferenceUID", "frame of reference"),
        ):
            mine, theirs = _meta(entry, key), _meta(t1, key)
            if mine and theirs and mine != theirs:
                notes.append(
                    f"warning: {info.label} is from a different {what} than the T1 "
                    f"({key} differs): patient coordinates may not match; check the "
                    "alignment"
                )
    return notes


# --------------------------------------------------------------------------- messages


def _line(info: SeriesInfo) -> str:
    ident = f"#{info.number}" if info.number is not None else info.uid
    size = "x".join(str(n) for n in info.shape)
    return f"  {ident}  {info.description}  {info.plane}  {size}"


def _listing(entries: Sequence[_Entry], *, with_call: bool = False) -> str:
    lines = []
    for e in entries:
        lines.append(f"{_line(e.info)}  -> {e.call}" if with_call else _line(e.info))
    return "\n".join(lines)


def _identifier(entries: Sequence[_Entry], info: SeriesInfo) -> str | int:
    """The shortest way to name ``info`` that matches no other series."""
    options: list[str | int] = []
    if info.number is not None:
        options.append(info.number)
    if info.description:
        options.append(info.description)
    for option in options:
        if sum(_matches(e.info, option) for e in entries) == 1:
            return option
    return info.uid


def _how_to_choose(
    entries: Sequence[_Entry], role: str, example: _Entry, *, cli: bool = False
) -> str:
    ident = _identifier(entries, example.info)
    command = ident if isinstance(ident, int) else f'"{ident}"'
    if cli:
        return f"Choose one explicitly: --{role}-series {command}"
    return (
        f"Choose one explicitly: pair_series(..., {role}={ident!r}) in Python or "
        f"--{role}-series {command} on the command line"
    )


def _how_to_name(*roles: str, cli: bool = False) -> str:
    python = " or ".join(f"pair_series(..., {r}=<SeriesNumber>)" for r in roles)
    command = " or ".join(f"--{r}-series <SeriesNumber>" for r in roles)
    what = " or ".join(_ROLE_TEXT[r] for r in roles)
    if cli:
        return f"If one of them is the {what}, choose it explicitly: {command}"
    return (
        f"If one of them is the {what}, choose it explicitly: {python} in Python or "
        f"{command} on the command line"
    )


def _common_path(infos: Any) -> str | None:
    sources = [i.source for i in infos if i.source]
    if not sources:
        return None
    try:
        common = os.path.commonpath(sources)
    except ValueError:
        return None
    return common if common not in ("", os.sep) else None
