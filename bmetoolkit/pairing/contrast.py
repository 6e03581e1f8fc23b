"""Tell T1, T2 and STIR series apart from their headers.

bmetoolkit compares a fat-bright **T1** with a fluid-sensitive series: a plain **T2** and/or
a fat-nulled **STIR** (or, failing that, a fat-suppressed T2). This module decides which
series is which from header tags alone and keeps the reasons for every decision;
:mod:`bmetoolkit.pairing.pair` then picks one series per role from a study.

Classification rules (:func:`classify_series`)
-------------------------------------------------
Every series gets one of ``"T1"``, ``"T2"``, ``"STIR"`` or ``"other"``, the reasons, and a
``fat_suppressed`` flag. The text looked at is SeriesDescription and ProtocolName (and, for a
NIfTI file, its name). Keywords match whole words, also when glued to an orientation or
weighting prefix (``sT1W_TSE``, ``SAGSTIR``, ``T2FS``), but never inside another word or
number (``fse`` is not ``fs``; ``t12`` is not ``t1``). The rules apply in this order:

1. **Exclusions** make a series ``"other"`` whatever else it says: localizers and scouts
   (``localizer``, ``scout``, ``survey``, ``3-plane``, ``cal``), diffusion and EPI (``dwi``,
   ``diff``, ``adc``, ``trace``, ``ep2d``, ScanningSequence ``EP``), T2* and susceptibility
   (``t2*``, ``medic``, ``swi``), parameter maps (``t1map``, ``mapping``, ``t1rho``), bSSFP,
   angiography, myelography, MIP and subtraction images, and ImageType values such as
   ``LOCALIZER``, ``DIFFUSION``, ``ADC``.
2. **Inversion time decides when it is unambiguous.** If the series is an inversion recovery
   (``IR`` in ScanningSequence or ScanOptions; a bare InversionTime counts only when neither
   tag is present, because Philips also stores a TI for spectral SPIR/SPAIR fat
   suppression), a TI within :data:`STIR_TI_MS` (100-300 ms, the fat null point at 1.5 T and
   3 T) makes it **STIR**, and a TI of at least :data:`FLAIR_MIN_TI_MS` (1500 ms) makes it
   FLAIR, i.e. ``"other"``. This overrides any keyword: the inversion time is the physics
   that nulls fat (or fluid), while sites label STIR inconsistently (``T2 STIR``, ``tirm``,
   ``T2_IR``) and Siemens names FLAIR ``t2_tirm_dark-fluid``.
3. **Keywords** otherwise decide: ``flair``/``dark-fluid`` is FLAIR (``"other"``) unless a
   ``t1`` keyword makes it a T1-FLAIR (fat stays bright: ``"T1"``); ``stir``/``tirm`` (with
   or without ``t2``) is STIR; ``t1``/``t1w`` is T1; ``pd``/``proton density`` is proton
   density (before ``t2``: ``pd_t2`` dual echoes are read as PD); ``t2``/``t2w`` is T2.
   ``t1`` together with ``t2``, ``stir`` or ``pd`` is a conflict that timing must resolve.
   For NIfTI files the BIDS suffix or loose file name (:func:`contrast_from_name`) outranks
   words in the description.
4. **TR/TE windows** decide when no keyword does (the description says nothing, e.g.
   ``SER3``): TR < 1000 ms and TE < 30 ms is T1; TR > 1500 ms and TE > 60 ms is T2;
   TR > 1500 ms and TE < 30 ms is proton density (``"other"``); a gradient echo with
   TE >= 10 ms is T2*-weighted (``"other"``); an inversion recovery with TI 300-1500 ms and
   TE < 30 ms is an inversion-prepared T1 (T1-FLAIR, MPRAGE). These windows are coarse, so
   when they disagree with a keyword **the keyword wins** and the conflict is written into
   the reasons (choose the series explicitly if the keyword is wrong). Times are read in
   seconds as BIDS prescribes; a value too large to be seconds (TR > 100, TE > 5 or
   TI > 20) is read as milliseconds, and the reasons say so.
5. **Modifiers.** Fat suppression is recognised from ``fs``, ``fatsat``, ``fat sat``,
   ``spair``, ``spir``, ``chess``, ``proset``, ScanOptions ``FS`` and Dixon water images.
   STIR is always fat-suppressed. A fat-suppressed T2 stays ``"T2"`` with
   ``fat_suppressed=True``. A **fat-suppressed proton density** (PD FS, PD SPAIR, the
   joints' usual fluid-sensitive sequence) is fluid-sensitive like a fat-suppressed T2 and
   is called ``"T2"`` with ``fat_suppressed=True`` (its cues start with ``PD``); a PD
   without fat suppression is ``"other"``. A **T1 with fat suppression** or a **post-contrast T1**
   (``post``, ``gd``, ``+c``, ``contrast``, ``km``, BIDS ``ce-``, a ContrastBolusAgent tag;
   ``pre``/``no contrast`` cancel it) is ``"other"``: Modic and BME reading needs the native
   fat-bright T1. A T2 keyword on a gradient echo (ScanningSequence ``GR`` without ``SE``
   or ``IR``, or ``gre``/``ffe``/``fl2d`` in the text) is T2*-weighted (``"other"``).
   **Dixon** (``dixon``, ``mdixon``, ``ideal``, ``flex``, ImageType ``DIXON``) water images
   count as fat-suppressed; fat, in-phase, opposed-phase and fat-fraction images, and Dixon
   images whose component is not named, are ``"other"``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bmetoolkit.pairing.names import STIR_WORD, Contrast, contrast_from_name, strip_image_suffix
from bmetoolkit.pairing.series import SeriesInfo

__all__ = [
    "FLAIR_MIN_TI_MS",
    "STIR_TI_MS",
    "T1_MAX_TE_MS",
    "T1_MAX_TR_MS",
    "T2_MIN_TE_MS",
    "T2_MIN_TR_MS",
    "Contrast",
    "ContrastCall",
    "classify_series",
    "contrast_from_name",
]


#: Inversion times (ms, inclusive) that null fat: an inversion recovery in this range is STIR.
STIR_TI_MS = (100.0, 300.0)
#: Inversion time (ms) from which an inversion recovery nulls fluid (FLAIR).
FLAIR_MIN_TI_MS = 1500.0
#: A spin or gradient echo with TR below this (ms) and TE below :data:`T1_MAX_TE_MS` is T1.
T1_MAX_TR_MS = 1000.0
#: Longest echo time (ms) of a T1-weighted (or proton-density) acquisition.
T1_MAX_TE_MS = 30.0
#: A series with TR above this (ms) and TE above :data:`T2_MIN_TE_MS` is T2-weighted.
T2_MIN_TR_MS = 1500.0
#: Shortest echo time (ms) of a T2-weighted acquisition.
T2_MIN_TE_MS = 60.0
#: A gradient echo with at least this TE (ms) is T2*-weighted.
T2STAR_MIN_TE_MS = 10.0

# Internal classes; FLAIR, PD and T2* become "other" for the caller.
_Class = Literal["T1", "T2", "STIR", "FLAIR", "PD", "T2*"]
_PUBLIC: dict[str, Contrast] = {"T1": "T1", "T2": "T2", "STIR": "STIR"}
_CLASS_NAME = {"FLAIR": "FLAIR", "PD": "proton density", "T2*": "T2*-weighted"}


# --------------------------------------------------------------------------- keywords

_BEFORE = r"(?<![a-z0-9])"  # a keyword starts a word ...
_AFTER_WORD = r"(?![a-z0-9])"  # ... and either ends it (strict) ...
_AFTER_NUMBER = r"(?![0-9])"  # ... or may run into letters, but not into a number (loose)
_GLUE = r"(?:sag|ax|cor|tra|s|2d|3d)?"  # prefixes glued to a keyword: sagT1, sT1W, 3dT2


def _kw(core: str, *, glue: str = _GLUE, strict: bool = False) -> re.Pattern[str]:
    after = _AFTER_WORD if strict else _AFTER_NUMBER
    return re.compile(rf"{_BEFORE}{glue}(?P<kw>{core}){after}")


@dataclass(frozen=True)
class _Keyword:
    pattern: re.Pattern[str]
    what: str  # what a match means, for the reasons


_EXCLUSIONS: tuple[_Keyword, ...] = (
    _Keyword(re.compile(r"(?P<kw>locali[sz]er|scout|survey)"), "a localizer/scout"),
    _Keyword(
        _kw(
            r"loc|surv|pilot|cal|calibration|tri[-_ ]?plane|3[-_ ]?pl(?:ane)?", glue="", strict=True
        ),
        "a localizer/scout",
    ),
    _Keyword(re.compile(r"(?P<kw>diffusion|dwi|tracew)"), "diffusion-weighted"),
    _Keyword(_kw(r"diff|adc|trace|dti|epi|resolve", glue="", strict=True), "diffusion/EPI"),
    _Keyword(re.compile(r"(?P<kw>ep2d)"), "diffusion/EPI"),
    _Keyword(
        re.compile(
            rf"{_BEFORE}(?P<kw>t2[-_ ]?(?:\*|star))|(?P<kw2>medic|swan|me[23]d){_AFTER_WORD}"
        ),
        "T2*-weighted",
    ),
    _Keyword(_kw(r"swi|merge|hemo", glue="", strict=True), "susceptibility/T2*-weighted"),
    _Keyword(
        re.compile(r"(?<![a-z])(?P<kw>maps?|mapping|t[12]rho|molli|shmolli|relaxometry)(?![a-z])"),
        "a parameter map (relaxation or field map)",
    ),
    _Keyword(
        _kw(
            r"trufi|truefisp|fiesta|ciss|b[-_]?ffe|tof|angio\w*|mra|cine|perf\w*|dce|dsc|bold",
            glue="",
            strict=True,
        ),
        "not an anatomical T1/T2 (bSSFP, angiography, perfusion or functional)",
    ),
    _Keyword(re.compile(r"(?P<kw>myelo\w*)"), "a myelogram (heavily T2-weighted thick slab)"),
    _Keyword(_kw(r"mip|subtract\w*", glue="", strict=True), "a MIP or subtraction"),
)

_IMAGE_TYPE_EXCLUSIONS = {
    "LOCALIZER": "a localizer",
    "DIFFUSION": "diffusion-weighted",
    "ADC": "an ADC map",
    "TRACEW": "a diffusion trace",
    "TRACE": "a diffusion trace",
    "FA": "an FA map",
    "MIP": "a MIP",
    "PROJECTION IMAGE": "a projection (MIP)",
    "SUBTRACTION": "a subtraction",
    "SUB": "a subtraction",
    "FF": "a fat-fraction map",
    "FAT_FRACTION": "a fat-fraction map",
}

_T1 = _Keyword(_kw(r"t1(?:wi|w)?"), "T1")
_T2 = _Keyword(_kw(r"t2(?:wi|w)?"), "T2")
_PD = _Keyword(_kw(r"pdw?i?|proton[-_ ]?density"), "proton density")
_STIR = _Keyword(STIR_WORD, "STIR")  # (stir, tirm; sagSTIR, T2STIR)
_GRADIENT_ECHO = _Keyword(
    _kw(r"gre|ffe|fl[23]d|gradient|fiesta", glue="", strict=True), "gradient echo"
)
_FLAIR = _Keyword(re.compile(r"(?P<kw>flair|dark[-_ ]?fluid)"), "FLAIR")
_FAT_SAT = (
    _Keyword(
        re.compile(r"(?P<kw>fat[-_ ]?sat\w*|fat[-_ ]?supp?\w*|fatsup\w*|spair|chess|proset)"),
        "fat suppression",
    ),
    _Keyword(
        _kw(r"fs|spir", glue=r"(?:t1w?|t2w?|pdw?|tse|fse|frfse|se|stir)?", strict=True),
        "fat suppression",
    ),
)
_DIXON = _Keyword(
    re.compile(rf"(?P<kw>m?dixon|{_BEFORE}ideal{_AFTER_WORD}|{_BEFORE}flex{_AFTER_WORD})"),
    "Dixon water/fat separation",
)
_DIXON_PARTS: dict[str, re.Pattern[str]] = {
    "water": _kw(r"w|water|wateronly|water[-_ ]?only|wat", glue="", strict=True),
    "fat": _kw(r"f|fat(?![-_ ]?s(?:at|up))|fatonly|fat[-_ ]?only", glue="", strict=True),
    "in-phase": _kw(r"in|ip|inp|inphase|in[-_ ]?phase", glue="", strict=True),
    "opposed-phase": _kw(
        r"op|opp|oop|out|outphase|oppphase|(?:out|opp)[-_ ]?phase|opposed(?:[-_ ]?phase)?",
        glue="",
        strict=True,
    ),
    "fat-fraction": _kw(r"ff|fatfrac\w*|fat[-_ ]?fraction", glue="", strict=True),
}
_DIXON_IMAGE_TYPES = {
    "WATER": "water",
    "W": "water",
    "FAT": "fat",
    "F": "fat",
    "IN_PHASE": "in-phase",
    "IP": "in-phase",
    "OUT_PHASE": "opposed-phase",
    "OPP_PHASE": "opposed-phase",
    "OP": "opposed-phase",
    "FF": "fat-fraction",
    "FAT_FRACTION": "fat-fraction",
}
_POST_CONTRAST = _Keyword(
    re.compile(
        rf"{_BEFORE}(?P<kw>post(?:[-_ ]?(?:gd|gad|c|contrast|con))?(?![-_ ]?op)"
        r"|gd|gad|gado\w*|contrast|km|mdc|ce-[a-z0-9]+)"
        rf"{_AFTER_WORD}|(?P<kw2>\+[-_ ]?(?:c|gd|km)|{_BEFORE}c[-_ ]?\+){_AFTER_WORD}"
    ),
    "post-contrast",
)
_PRE_CONTRAST = re.compile(
    rf"{_BEFORE}(?:no|non|without|wo|w/o|pre)[-_ /]*(?:contrast|gd|gad|c|km){_AFTER_WORD}"
)


#: What vendor-specific words mean, added to the reasons.
_VENDOR_NOTES = {
    "tirm": "Siemens turbo inversion recovery magnitude",
    "stir": "short-tau inversion recovery",
    "spair": "Philips spectral attenuated inversion recovery",
    "spir": "Philips spectral presaturation with inversion recovery",
    "chess": "chemical-shift selective saturation",
    "proset": "Philips water excitation",
    "fs": "fat saturation",
    "mdixon": "Philips mDIXON",
    "ideal": "GE IDEAL",
    "flex": "GE Flex",
    "darkfluid": "Siemens FLAIR",
    "km": "German Kontrastmittel",
    "mdc": "Italian mezzo di contrasto",
    "gd": "gadolinium",
    "survey": "Philips localizer",
    "ep2d": "Siemens 2D EPI",
    "resolve": "Siemens readout-segmented EPI",
    "medic": "Siemens multi-echo gradient echo",
    "me2d": "Siemens MEDIC multi-echo gradient echo",
    "merge": "GE multi-echo gradient echo",
    "swan": "GE susceptibility-weighted",
}


@dataclass(frozen=True)
class _Field:
    name: str  # "SeriesDescription", "ProtocolName", "file name"
    text: str  # as found

    @property
    def short(self) -> str:
        return {"SeriesDescription": "description", "ProtocolName": "protocol"}.get(
            self.name, self.name
        )


@dataclass(frozen=True)
class _Hit:
    field: _Field
    word: str  # the matched text
    what: str

    def reason(self) -> str:
        note = _VENDOR_NOTES.get(re.sub(r"[-_ ]", "", self.word))
        what = f"{self.what} ({note})" if note else self.what
        return f"{self.field.name} {self.field.text!r} contains {self.word!r}: {what}"

    def cue(self) -> str:
        return f"{self.word!r} in {self.field.short}"


def _search(keyword: _Keyword, fields: Sequence[_Field]) -> _Hit | None:
    for fld in fields:
        match = keyword.pattern.search(fld.text.lower())
        if match:
            word = next(g for g in match.groups() if g) if match.groups() else match.group(0)
            return _Hit(fld, word, keyword.what)
    return None


def _text_fields(info: SeriesInfo) -> list[_Field]:
    fields: list[_Field] = []
    description = str(info.meta.get("SeriesDescription") or info.description or "")
    if description:
        fields.append(_Field("SeriesDescription", description))
    protocol = str(info.meta.get("ProtocolName") or "")
    if protocol and protocol.lower() != description.lower():
        fields.append(_Field("ProtocolName", protocol))
    if not info.files and info.source:
        name = strip_image_suffix(Path(info.source).name)
        if name.lower() != description.lower():
            fields.append(_Field("file name", name))
    return fields


# --------------------------------------------------------------------------- tags and timing


def _tag_tokens(value: Any) -> set[str]:
    """Codes of a multi-valued tag (``"SE\\\\IR"``, ``"SE_IR"`` or a list), upper case."""
    if value is None:
        return set()
    items = value if isinstance(value, list | tuple) else [value]
    tokens: set[str] = set()
    for item in items:
        tokens.update(t for t in re.split(r"[\\_\s,/]+", str(item).upper()) if t)
    return tokens


def _image_type(meta: dict[str, Any]) -> list[str]:
    value = meta.get("ImageType")
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip().upper() for v in value]
    return [v.strip().upper() for v in str(value).split("\\")]


@dataclass(frozen=True)
class _Timing:
    tr: float | None  # ms
    te: float | None
    ti: float | None
    notes: tuple[str, ...]


def _milliseconds(meta: dict[str, Any], key: str, max_seconds: float) -> tuple[float | None, str]:
    value = meta.get(key)
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    try:
        seconds = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None, f"{key} {value!r} is not a number; ignored"
    if seconds is None or not np.isfinite(seconds) or seconds <= 0:
        return None, ""
    if seconds > max_seconds:  # the value must already be in milliseconds
        return seconds, f"{key} {seconds:g} is too large for seconds (BIDS unit); read as ms"
    return seconds * 1000.0, ""


def _timing(meta: dict[str, Any]) -> _Timing:
    tr, note_tr = _milliseconds(meta, "RepetitionTime", 100.0)
    te, note_te = _milliseconds(meta, "EchoTime", 5.0)
    ti, note_ti = _milliseconds(meta, "InversionTime", 20.0)
    return _Timing(tr, te, ti, tuple(n for n in (note_tr, note_te, note_ti) if n))


@dataclass(frozen=True)
class _Vote:
    klass: _Class | None
    strong: bool
    reasons: tuple[str, ...]
    cue: str


def _timing_vote(meta: dict[str, Any], timing: _Timing) -> _Vote:
    scanning = _tag_tokens(meta.get("ScanningSequence"))
    options = _tag_tokens(meta.get("ScanOptions"))
    has_tags = "ScanningSequence" in meta or "ScanOptions" in meta
    inversion = "IR" in scanning or "IR" in options
    notes = list(timing.notes)
    ti, te, tr = timing.ti, timing.te, timing.tr
    if ti is not None and not inversion:
        if has_tags:
            notes.append(
                f"InversionTime {ti:g} ms ignored: no IR in ScanningSequence/ScanOptions "
                "(a spectral fat-suppression pulse also stores a TI)"
            )
            ti = None
        else:
            inversion = True
            notes.append(f"InversionTime {ti:g} ms given: taken as inversion recovery")
    if inversion and ti is not None:
        low, high = STIR_TI_MS
        if low <= ti <= high:
            notes.append(
                f"inversion recovery with TI {ti:g} ms, in the STIR range "
                f"{low:g}-{high:g} ms (fat nulled)"
            )
            return _Vote("STIR", True, tuple(notes), f"TI {ti:g} ms")
        if ti >= FLAIR_MIN_TI_MS:
            notes.append(
                f"inversion recovery with TI {ti:g} ms >= {FLAIR_MIN_TI_MS:g} ms: "
                "fluid nulled (FLAIR)"
            )
            return _Vote("FLAIR", True, tuple(notes), f"TI {ti:g} ms")
        if ti > high and te is not None and te < T1_MAX_TE_MS:
            notes.append(
                f"inversion recovery with TI {ti:g} ms and TE {te:g} ms: "
                "inversion-prepared T1 (T1-FLAIR, MPRAGE)"
            )
            return _Vote("T1", False, tuple(notes), f"TI {ti:g} ms, TE {te:g} ms")
        notes.append(f"inversion recovery with TI {ti:g} ms: no rule for this inversion time")
        return _Vote(None, False, tuple(notes), "")
    if te is None or tr is None:
        if te is not None or tr is not None:
            notes.append("TR or TE missing: timing not used")
        return _Vote(None, False, tuple(notes), "")
    cue = f"TR {tr:g} ms, TE {te:g} ms"
    if "GR" in scanning and "SE" not in scanning and te >= T2STAR_MIN_TE_MS:
        notes.append(f"gradient echo with TE {te:g} ms >= {T2STAR_MIN_TE_MS:g} ms: T2*-weighted")
        return _Vote("T2*", False, tuple(notes), cue)
    if tr < T1_MAX_TR_MS and te < T1_MAX_TE_MS:
        notes.append(f"{cue}: T1-weighted (TR < {T1_MAX_TR_MS:g} ms, TE < {T1_MAX_TE_MS:g} ms)")
        return _Vote("T1", False, tuple(notes), cue)
    if tr > T2_MIN_TR_MS and te > T2_MIN_TE_MS:
        notes.append(f"{cue}: T2-weighted (TR > {T2_MIN_TR_MS:g} ms, TE > {T2_MIN_TE_MS:g} ms)")
        return _Vote("T2", False, tuple(notes), cue)
    if tr > T2_MIN_TR_MS and te < T1_MAX_TE_MS:
        notes.append(f"{cue}: proton-density weighted (long TR, short TE)")
        return _Vote("PD", False, tuple(notes), cue)
    notes.append(f"{cue}: in no T1/T2 window")
    return _Vote(None, False, tuple(notes), "")


# --------------------------------------------------------------------------- classification


@dataclass(frozen=True)
class ContrastCall:
    """The contrast detected for one series, with the reasons for it.

    Parameters
    ----------
    contrast : {'T1', 'T2', 'STIR', 'other'}
        ``"other"`` covers everything that must not be paired automatically: localizers,
        diffusion, FLAIR, proton density, post-contrast or fat-suppressed T1, Dixon fat or
        phase images, and series nothing could be told about.
    reasons : tuple of str
        Human-readable evidence and conflicts, most decisive first.
    fat_suppressed : bool
        Fat signal is nulled (STIR, fat-saturated or Dixon-water T2). A fat-suppressed T2
        is fluid-sensitive and fat-nulled like a STIR.
    cues : tuple of str, optional
        Short forms of the decisive evidence, used by ``str()``.

    Examples
    --------
    >>> call = ContrastCall("STIR", ("TI 150 ms in STIR range",), True, ("TI 150 ms",))
    >>> str(call)
    'STIR (TI 150 ms)'
    """

    contrast: Contrast
    reasons: tuple[str, ...]
    fat_suppressed: bool
    cues: tuple[str, ...] = ()

    def __str__(self) -> str:
        name = self.contrast
        if self.contrast == "T2" and self.fat_suppressed:
            name = "T2 fat-suppressed"
        cues = self.cues or self.reasons[:1]
        return f"{name} ({'; '.join(cues)})" if cues else name


def classify_series(info: SeriesInfo) -> ContrastCall:
    """Classify a series as T1, T2, STIR or other from its header tags.

    The rules are in the module documentation (:mod:`bmetoolkit.pairing.contrast`).

    Parameters
    ----------
    info : SeriesInfo
        The series; its ``meta`` holds BIDS sidecar keys (times in seconds).

    Returns
    -------
    ContrastCall
        Contrast, reasons and whether fat is suppressed.

    Examples
    --------
    >>> info = SeriesInfo(uid="1.2.3", number=4, description="t2_tirm_sag", source="study",
    ...                   files=("a.dcm",), shape=(320, 320, 15), spacing=(1, 1, 4),
    ...                   slice_normal=(1.0, 0.0, 0.0),
    ...                   meta={"ScanningSequence": "SE\\\\IR", "InversionTime": 0.15,
    ...                         "RepetitionTime": 4.0, "EchoTime": 0.05})
    >>> call = classify_series(info)
    >>> call.contrast, call.fat_suppressed
    ('STIR', True)
    >>> str(call)
    "STIR (TI 150 ms; 'tirm' in description)"
    >>> blank = SeriesInfo(uid="1.2.4", number=5, description="SER5", source="study",
    ...                    files=("b.dcm",), shape=(320, 320, 15), spacing=(1, 1, 4),
    ...                    slice_normal=(1.0, 0.0, 0.0),
    ...                    meta={"RepetitionTime": 0.6, "EchoTime": 0.012})
    >>> str(classify_series(blank))
    'T1 (TR 600 ms, TE 12 ms)'
    """
    fields = _text_fields(info)
    meta = info.meta
    excluded = _exclusion(fields, meta)
    if excluded is not None:
        reason, cue = excluded
        return ContrastCall("other", (reason,), False, (cue,))

    timing = _timing(meta)
    vote = _timing_vote(meta, timing)
    klass, reasons, cues = _decide(_keyword_vote(info, fields), vote)
    if klass is None:
        reasons.append("no contrast keyword and no decisive timing: cannot tell the contrast")
        return ContrastCall("other", tuple(reasons), False, ("unknown",))
    return _apply_modifiers(klass, fields, meta, reasons, cues)


def _exclusion(fields: Sequence[_Field], meta: dict[str, Any]) -> tuple[str, str] | None:
    for keyword in _EXCLUSIONS:
        hit = _search(keyword, fields)
        if hit is not None:
            return f"excluded: {hit.reason()}", f"{hit.what}: {hit.cue()}"
    for item in _image_type(meta):
        if item in _IMAGE_TYPE_EXCLUSIONS:
            what = _IMAGE_TYPE_EXCLUSIONS[item]
            return f"excluded: ImageType contains {item!r}: {what}", f"{what}: ImageType {item}"
    if "EP" in _tag_tokens(meta.get("ScanningSequence")):
        return "excluded: ScanningSequence EP: echo-planar (diffusion/functional)", "EPI"
    return None


def _keyword_vote(info: SeriesInfo, fields: Sequence[_Field]) -> _Vote:
    if not info.files and info.source:
        named = contrast_from_name(info.source)
        if named is not None:
            reason = f"file name {Path(info.source).name!r} names the contrast {named}"
            return _Vote(named, False, (reason,), f"file name {named}")
    flair = _search(_FLAIR, fields)
    t1 = _search(_T1, fields)
    if flair is not None:
        if t1 is not None:
            return _Vote(
                "T1",
                False,
                (t1.reason(), flair.reason() + " (T1-FLAIR: fat stays bright)"),
                t1.cue(),
            )
        return _Vote("FLAIR", False, (flair.reason(),), flair.cue())
    stir = _search(_STIR, fields)
    t2 = _search(_T2, fields)
    pd = _search(_PD, fields)
    if t1 is not None and (stir or t2 or pd):
        other = stir or t2 or pd
        assert other is not None
        return _Vote(None, False, (f"conflicting keywords: {t1.reason()}; {other.reason()}",), "")
    for hit, klass in ((stir, "STIR"), (t1, "T1"), (pd, "PD"), (t2, "T2")):
        if hit is not None:
            return _Vote(klass, False, (hit.reason(),), hit.cue())  # type: ignore[arg-type]
    return _Vote(None, False, (), "")


def _decide(keyword: _Vote, timing: _Vote) -> tuple[_Class | None, list[str], list[str]]:
    """Combine the keyword and timing votes (inversion time > keywords > TR/TE)."""
    if timing.strong and timing.klass is not None:
        reasons = [*timing.reasons, *keyword.reasons]
        if keyword.klass is not None and keyword.klass != timing.klass:
            reasons.append(
                f"conflict: the text says {keyword.klass} but the inversion time "
                f"says {timing.klass}; the inversion time wins"
            )
        return timing.klass, reasons, [c for c in (timing.cue, keyword.cue) if c]
    if keyword.klass is not None:
        reasons = [*keyword.reasons, *timing.reasons]
        if timing.klass is not None and timing.klass != keyword.klass:
            reasons.append(
                f"conflict: the text says {keyword.klass} but the timing says "
                f"{timing.klass}; the text wins (timing windows are coarse); "
                "choose the series explicitly if the text is wrong"
            )
        return keyword.klass, reasons, [c for c in (keyword.cue, timing.cue) if c]
    reasons = [*keyword.reasons, *timing.reasons]
    return timing.klass, reasons, [timing.cue] if timing.cue else []


def _dixon_part(fields: Sequence[_Field], image_type: list[str]) -> tuple[str | None, str]:
    found = {part for item in image_type[2:] if (part := _DIXON_IMAGE_TYPES.get(item))}
    if len(found) == 1:
        part = found.pop()
        return part, f"ImageType names the {part} image"
    for fld in fields:
        text = fld.text.lower()
        parts = {part for part, pattern in _DIXON_PARTS.items() if pattern.search(text)}
        if len(parts) == 1:
            part = parts.pop()
            return part, f"{fld.name} {fld.text!r} names the {part} image"
    return None, "the Dixon component (water, fat, in/opposed phase) is not named"


def _apply_modifiers(
    klass: _Class,
    fields: Sequence[_Field],
    meta: dict[str, Any],
    reasons: list[str],
    cues: list[str],
) -> ContrastCall:
    if klass == "T2":
        gradient = _gradient_echo(fields, meta)
        if gradient is not None:
            reasons.append(f"{gradient}: a gradient echo has no spin-echo T2 weighting")
            klass = "T2*"
    if klass in _CLASS_NAME and klass != "PD":
        reasons.insert(0, f"{_CLASS_NAME[klass]} is not used for pairing")
        return ContrastCall("other", tuple(reasons), False, (_CLASS_NAME[klass], *cues))
    fat_sat = klass == "STIR"
    image_type = _image_type(meta)
    dixon = _search(_DIXON, fields)
    water = _search(_Keyword(_DIXON_PARTS["water"], ""), fields)
    if dixon is not None or "DIXON" in image_type or (water and water.word.startswith("wat")):
        part, why = _dixon_part(fields, image_type)
        reasons.append(f"Dixon series ({dixon.cue() if dixon else 'ImageType/water image'}); {why}")
        if part != "water":
            return ContrastCall(
                "other", tuple(reasons), False, (f"Dixon {part or 'component unknown'}", *cues)
            )
        fat_sat = True
        cues.append("Dixon water")
    fs_hit = next((h for k in _FAT_SAT if (h := _search(k, fields))), None)
    if fs_hit is not None:
        fat_sat = True
        reasons.append(fs_hit.reason())
        cues.append(fs_hit.cue())
    elif "FS" in _tag_tokens(meta.get("ScanOptions")):
        fat_sat = True
        reasons.append("ScanOptions contains FS: fat saturation")
        cues.append("ScanOptions FS")
    if klass == "PD":
        if not fat_sat:
            reasons.insert(0, "proton density without fat suppression is not used for pairing")
            return ContrastCall("other", tuple(reasons), False, ("proton density", *cues))
        reasons.insert(
            0,
            "proton density with fat suppression: fluid-sensitive (edema bright, fat dark), "
            "used like a fat-suppressed T2",
        )
        klass = "T2"
        cues.insert(0, "PD")
    if klass == "T1":
        post = _post_contrast(fields, meta)
        if post is not None:
            reasons.insert(0, f"post-contrast T1 is not used: {post[0]}")
            return ContrastCall("other", tuple(reasons), fat_sat, (f"post-contrast T1: {post[1]}",))
        if fat_sat:
            reasons.insert(
                0,
                "T1 with fat suppression is not used: Modic and edema reading needs "
                "the fat-bright T1",
            )
            return ContrastCall("other", tuple(reasons), True, ("fat-suppressed T1", *cues))
    return ContrastCall(_PUBLIC[klass], tuple(reasons), fat_sat, tuple(dict.fromkeys(cues)))


def _gradient_echo(fields: Sequence[_Field], meta: dict[str, Any]) -> str | None:
    scanning = _tag_tokens(meta.get("ScanningSequence"))
    if "GR" in scanning and not scanning & {"SE", "IR"}:
        return f"ScanningSequence {meta['ScanningSequence']} is a gradient echo"
    hit = _search(_GRADIENT_ECHO, fields)
    return hit.reason() if hit is not None else None


def _post_contrast(fields: Sequence[_Field], meta: dict[str, Any]) -> tuple[str, str] | None:
    agent = str(meta.get("ContrastBolusAgent") or "").strip()
    if agent and agent.lower() not in {"none", "no", "n", "0"}:
        return f"ContrastBolusAgent is {agent!r}", f"agent {agent!r}"
    if any(_PRE_CONTRAST.search(f.text.lower()) for f in fields):
        return None
    hit = _search(_POST_CONTRAST, fields)
    if hit is not None:
        return hit.reason(), hit.cue()
    return None
