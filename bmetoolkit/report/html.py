"""Self-contained HTML QC pages: one per subject, and a batch index.

Pages are rendered from the Jinja2 templates in ``bmetoolkit/report/templates/`` with
autoescape on: every text from a report (file names, notes, error messages) is escaped.
The stylesheets (``qc.css``, ``montage.css``) and the sorting script (``sort.js``) are
inlined, and the montage panels embedded as base64 PNG, so a page is one file that opens
anywhere, offline.

A subject page is rendered from a report dict shaped like the analysis ``report.json``
(``bme``, ``endplates``, ``lesions``, ``parameters``, ``inputs``, ``versions``, ``labels``,
``notes``) and the :class:`~bmetoolkit.report.qc.QCFigures` of :mod:`bmetoolkit.report.qc`:
first what was found and where, then the images, the tables, and the provenance folded
away. The batch index lists every subject in a sortable table, with the levels where
something was found and a thumbnail, and the subjects that failed. Its counts come from
:func:`bmetoolkit.report.summary.summarise`, as do those of the batch's ``subjects.csv``.
Pages are written atomically.

Examples
--------
>>> report = {"bme": {"volume_ml": 1.5, "lesions": []},
...           "endplates": [{"level": "L4", "endplate": "inferior", "modic_type": "I",
...                          "volume_ml": 0.8}],
...           "notes": ["T2 <resampled> onto the T1 grid"]}
>>> page = render_subject_page(report, subject="sub-01")
>>> "L4 inferior: Modic I" in page, "&lt;resampled&gt;" in page, "Volume (mL)" in page
(True, True, True)
"""

from __future__ import annotations

import base64
import functools
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bmetoolkit.io import write_text
from bmetoolkit.modic import MODIC_TYPES, is_finding
from bmetoolkit.report.colortables import LABEL_TABLES
from bmetoolkit.report.summary import COUNT_COLUMNS, summarise, type_parts

__all__ = [
    "asset",
    "column_header",
    "png_data_uri",
    "render_index_page",
    "render_montage",
    "render_page",
    "render_subject_page",
    "summarise",
    "thumbnail_path",
    "write_index_page",
    "write_subject_page",
]

#: Colours of the Modic types, as in the figures and colour tables; a mixed type shows both.
_TYPE_COLOURS = {
    roman: entry.hex
    for roman, entry in zip(MODIC_TYPES, LABEL_TABLES["modic_map"].entries, strict=True)
}
#: Headers of the report's columns; other keys get :func:`column_header`'s generic form.
HEADERS = {
    "level": "Level",
    "verse_id": "VerSe id",
    "endplate": "Endplate",
    "modic_type": "Modic type",
    "volume_ml": "Volume (mL)",
    "volume_ml_I": "Type I (mL)",
    "volume_ml_II": "Type II (mL)",
    "volume_ml_III": "Type III (mL)",
    "height_pct": "Height (%)",
    "height_grade": "Height grade",
    "area_pct": "Area (%)",
    "area_grade": "Area grade",
    "location": "Location",
    "body_height_mm": "Body height (mm)",
    "body_partly_outside": "Body partly outside the image",
    "lesion": "Lesion",
    "zone": "Zone",
    "finding": "Finding",
    "bme_volume_ml": "Edema (mL)",
    "centroid_ras_mm": "Centroid (RAS, mm)",
    "bbox_ras_mm": "Bounding box (RAS, mm)",
    "bbox_voxels": "Bounding box (voxel index ranges)",
    "mean_t1_ratio": "T1 / normal marrow",
    "mean_t2_ratio": "T2 / normal marrow",
    "mean_stir_ratio": "STIR / normal marrow",
    "bme_ml": "BME (mL)",
    "bme_pct": "BME (% of marrow)",
    "bme_t1_dark_ml": "BME also T1-dark (mL)",
    "subchondral_bme_ml": "Subchondral BME (mL)",
    "fluid_like_ml": "Free fluid, cysts (mL)",
    "n_lesions": "Lesions",
    "marrow_ml": "Marrow (mL)",
    "bone": "Bone",
    "reference_confidence": "Reference confidence",
    "articular_distance_mm": "From the joint (mm)",
    "articular_depth_mm": "Reaches into the bone (mm)",
    "modic_I_ml": "Modic I (mL)",
    "modic_II_ml": "Modic II (mL)",
    "modic_III_ml": "Modic III (mL)",
    "subject": "Subject",
    "stage": "Stage",
    "error": "Error",
}
#: Unit suffixes of report keys and how a header shows them.
_UNITS = (("_ml", "mL"), ("_mm3", "mm³"), ("_mm", "mm"), ("_pct", "%"), ("_s", "s"))
#: Columns of the tables shown first; the full tables are folded away below them.
ENDPLATE_COLUMNS = (
    "level",
    "endplate",
    "modic_type",
    "volume_ml",
    "height_pct",
    "height_grade",
    "area_pct",
    "area_grade",
    "location",
)
LESION_COLUMNS = ("lesion", "level", "zone", "finding", "volume_ml", "bme_volume_ml")
LEVEL_COLUMNS = ("level", "bme_ml", "modic_I_ml", "modic_II_ml", "modic_III_ml")
#: Columns of the bone table shown (the rest is in ``bones.csv`` and the provenance).
BONE_SHOWN = (
    "bone", "marrow_ml", "bme_ml", "bme_pct", "n_lesions", "subchondral_bme_ml",
    "fluid_like_ml", "reference_confidence",
)  # fmt: skip
#: Lesion columns shown with bone masks (all of them under "all columns").
BONE_LESION_SHOWN = (
    "lesion", "bone", "volume_ml", "subchondral", "articular_distance_mm",
    "articular_depth_mm", "mean_stir_ratio", "mean_t2_ratio", "mean_t1_ratio",
)  # fmt: skip
FAILURE_COLUMNS = ("subject", "stage", "error")
#: Report sections shown under "Provenance", folded, in this order; other unknown sections
#: follow them.
PROVENANCE = (
    ("inputs", "Inputs and pairing decisions"),
    ("labels", "Vertebra labels"),
    ("checks", "Checks of the images"),
    ("parameters", "Parameters"),
    ("reference", "Normal-marrow reference"),
    ("timings_s", "Timings (s)"),
    ("versions", "Versions"),
)
#: Sections already shown as tables or in the summary (not repeated under Provenance).
_SHOWN = {
    "anatomy", "bme", "bones", "endplates", "lesions", "modic_counts", "notes", "report_version",
}  # fmt: skip
#: A list whose items are all short scalars (at most this many characters) stays on one line.
SHORT_ITEM_CHARS = 24
#: Notes shown before the others are folded, so the findings stay near the top of the page.
NOTES_SHOWN = 3


def column_header(key: str) -> str:
    """The header of a report column: known names, else words with the unit in brackets.

    Examples
    --------
    >>> column_header("volume_ml"), column_header("gap_mm"), column_header("ratio_to_disc")
    ('Volume (mL)', 'Gap (mm)', 'Ratio to disc')
    """
    if key in HEADERS:
        return HEADERS[key]
    words, unit = key, None
    for suffix, shown in _UNITS:
        if key.endswith(suffix):
            words, unit = key[: -len(suffix)], shown
            break
    text = re.sub(r"_+", " ", words).strip().capitalize() or key
    return f"{text} ({unit})" if unit else text


def _text(value: Any) -> str:
    """Display text of a value: 3 decimals at most, lists joined, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != 0 else "0"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _is_long_list(value: Any) -> bool:
    """A non-empty list shown one item per line: sentences or nested items."""
    if not isinstance(value, list | tuple) or not value:
        return False
    return not all(
        isinstance(v, int | float | str | None) and len(_text(v)) <= SHORT_ITEM_CHARS for v in value
    )


def _swatch_fill(modic_type: Any) -> str:
    """CSS background of a Modic type's swatch: its colour, both halves for a mixed type."""
    colours = [_TYPE_COLOURS[p] for p in type_parts(modic_type)]
    if not colours:
        return ""
    if len(colours) == 1:
        return colours[0]
    return f"linear-gradient(90deg,{colours[0]} 50%,{colours[1]} 50%)"


def png_data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI embedding PNG bytes.

    Examples
    --------
    >>> png_data_uri(b"\\x89PNG")
    'data:image/png;base64,iVBORw=='
    """
    if not png.startswith(b"\x89PNG"):
        raise ValueError("expected PNG bytes (starting with the PNG signature)")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


#: Options of the template environment (they shape the compiled templates, so they are part
#: of the name of the compiled-template cache files).
_TEMPLATE_OPTIONS = {
    "autoescape": True,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": True,
}


@functools.cache
def _environment() -> Any:
    """The Jinja2 environment of the templates (autoescape on, undefined names fail).

    Compiled templates are cached on disk (:func:`_template_cache`), so a new process renders
    a page without compiling the templates again.
    """
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bmetoolkit.report", "templates"),
        undefined=jinja2.StrictUndefined,
        bytecode_cache=_template_cache(),
        **_TEMPLATE_OPTIONS,
    )
    env.filters["text"] = _text
    env.globals.update(
        is_finding=is_finding,
        is_long_list=_is_long_list,
        swatch_fill=_swatch_fill,
        png_uri=lambda panel: png_data_uri(panel.png()),
    )
    return env


def _template_cache(directory: str | None = None) -> Any:
    """A cache of the compiled templates in ``directory``, by default in a private folder of
    the temporary directory.

    Jinja2's :class:`~jinja2.FileSystemBytecodeCache` (its per-user folder, created with
    owner-only permissions, files written under a temporary name and renamed). An entry is
    used only for the same template file with the same source (Jinja2 checks both) and the
    same options (their digest is in the file names); one that cannot be read or written is
    skipped, the template is then compiled as without a cache. None when there is no usable
    folder.
    """
    import hashlib

    import jinja2

    class _TolerantCache(jinja2.FileSystemBytecodeCache):
        def load_bytecode(self, bucket: Any) -> None:
            try:
                super().load_bytecode(bucket)
            except Exception:  # a damaged entry: compile the template instead
                bucket.reset()

        def dump_bytecode(self, bucket: Any) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError:
                pass

    digest = hashlib.sha1(repr(sorted(_TEMPLATE_OPTIONS.items())).encode()).hexdigest()[:8]
    try:
        return _TolerantCache(directory, pattern=f"__bmetoolkit_{digest}_%s.cache")
    except (OSError, RuntimeError):
        return None


def asset(name: str) -> Any:
    """A template file inlined as is (the stylesheet, the script), marked safe."""
    from markupsafe import Markup

    env = _environment()
    return Markup(env.loader.get_source(env, name)[0])


def render_page(template: str, **context: Any) -> str:
    """Render one of the page templates (``templates/*.html.j2``) with the shared stylesheet.

    ``context`` holds the template's names (a page extending ``base.html.j2`` needs ``title``
    and ``script``, None for no script); undefined names fail.
    """
    return (
        _environment()
        .get_template(template)
        .render(css=asset("qc.css"), montage_css=asset("montage.css"), **context)
    )


def _columns(keys: Sequence[str]) -> list[tuple[str, str]]:
    return [(key, column_header(key)) for key in keys]


def _all_columns(rows: Sequence[Mapping[str, Any]], first: Sequence[str]) -> list[tuple[str, str]]:
    """``first`` then every other key of the rows, in order of appearance."""
    keys = list(dict.fromkeys([*first, *(k for row in rows for k in row)]))
    return _columns(keys)


def _summary_sentence(summary: Mapping[str, Any]) -> str:
    volume = summary["bme_volume_ml"]
    if volume is None:
        bme = "BME: not measured"
    else:
        lesions = summary["bme_lesions"]
        bme = f"BME {_text(float(volume))} mL in {lesions} lesion{'s' * (lesions != 1)}"
        if summary["bme_locations"]:
            bme += f" ({', '.join(summary['bme_locations'])})"
    found = summary["modic_endplates"]
    if summary.get("anatomy") == "bones":
        return f"{bme}."
    if not summary.get("modic_assessed", True):
        modic = "Modic types not assessed (see the notes)"
    elif not found:
        modic = "No Modic change"
    else:
        modic = "Modic changes at " + "; ".join(found)
    return f"{bme}. {modic}."


def render_montage(montage: Any) -> str:
    """HTML of a :class:`~bmetoolkit.report.qc.Montage` (legend, panels, level names).

    With its own stylesheet (``montage.css``), so a notebook shows it as the QC page does.
    """
    module = _environment().get_template("macros.html.j2").module
    return f"<div><style>{asset('montage.css')}</style>{module.montage(montage)}</div>"


def render_subject_page(
    report: Mapping[str, Any],
    *,
    subject: str,
    figures: Any = None,
    status: str = "ok",
    index_href: str | None = None,
) -> str:
    """HTML of the QC page of one subject.

    Parameters
    ----------
    report : mapping
        Shaped like the analysis ``report.json``: ``bme`` (``volume_ml``, ``lesions``),
        ``endplates``, ``lesions``, ``parameters``, ``inputs``, ``versions``, ``labels``,
        ``notes``; missing sections are shown as absent. Unknown sections are shown under
        "Provenance", unknown columns in the full tables.
    subject : str
        Subject id, shown as the title.
    figures : QCFigures, optional
        The montage and per-level volumes (:func:`bmetoolkit.report.qc.qc_figures`).
    status : str
        Processing status shown next to the title.
    index_href : str, optional
        Link back to the batch index page.

    Returns
    -------
    str
        A complete, self-contained HTML document.
    """
    summary = summarise(report)
    bones = list(report["bones"]) if report.get("anatomy") == "bones" else None
    titles = dict(PROVENANCE) | ({"labels": "Bone masks"} if bones is not None else {})
    endplates = list(report.get("endplates") or [])
    lesions = list(report.get("lesions") or (report.get("bme") or {}).get("lesions") or [])
    known = [key for key, _ in PROVENANCE]
    provenance = [(key, titles[key]) for key, _ in PROVENANCE if report.get(key)]
    provenance += [(key, column_header(key)) for key in report if key not in {*_SHOWN, *known}]
    return render_page(
        "subject.html.j2",
        title=f"bmetoolkit QC: {subject}",
        script=None,
        subject=subject,
        status=status,
        index_href=index_href,
        sentence=_summary_sentence(summary),
        summary=summary,
        notes=[str(n) for n in report.get("notes") or []],
        notes_shown=NOTES_SHOWN,
        figures=figures,
        findings=[row for row in endplates if is_finding(row.get("modic_type"))],
        endplates=endplates,
        lesions=lesions,
        endplate_columns=_columns(ENDPLATE_COLUMNS),
        all_endplate_columns=_all_columns(endplates, ENDPLATE_COLUMNS),
        lesion_columns=_columns(BONE_LESION_SHOWN if bones is not None else LESION_COLUMNS),
        all_lesion_columns=_all_columns(
            lesions, BONE_LESION_SHOWN if bones is not None else LESION_COLUMNS
        ),
        bones=bones,
        bone_columns=_columns(BONE_SHOWN),
        level_columns=_columns(LEVEL_COLUMNS),
        provenance=provenance,
        report=_for_display(report),
    )


def _for_display(report: Mapping[str, Any]) -> Mapping[str, Any]:
    """The report as its provenance is shown: a parameter section left at its defaults
    (``{}`` in ``report.json``, see :meth:`bmetoolkit.params.Parameters.to_dict`) reads
    "defaults", not "none"."""
    parameters = report.get("parameters")
    if not isinstance(parameters, Mapping):
        return report
    shown = {k: ("defaults" if v == {} else v) for k, v in parameters.items()}
    return {**report, "parameters": shown}


def thumbnail_path(page: str | os.PathLike) -> Path:
    """Where the thumbnail of a subject page is written: beside it, ``<page>_thumb.png``.

    >>> thumbnail_path("out/sub-01_qc.html").as_posix()
    'out/sub-01_qc_thumb.png'
    """
    page = Path(page)
    return page.with_name(f"{page.stem}_thumb.png")


def write_subject_page(
    path: str | os.PathLike,
    report: Mapping[str, Any],
    *,
    subject: str,
    figures: Any = None,
    status: str = "ok",
    index_href: str | None = None,
) -> Path:
    """Write :func:`render_subject_page` to ``path`` atomically; return the path.

    With ``figures``, the montage's thumbnail is written beside the page
    (:func:`thumbnail_path`) for the batch index.
    """
    page = render_subject_page(
        report, subject=subject, figures=figures, status=status, index_href=index_href
    )
    if figures is not None:
        from bmetoolkit.report.qc import write_png

        write_png(figures.montage.thumbnail(), thumbnail_path(path))
    return write_text(path, page)


def render_index_page(
    subjects: Sequence[Mapping[str, Any]],
    failures: Sequence[Mapping[str, Any]] = (),
    *,
    title: str = "bmetoolkit batch QC",
    links: Sequence[tuple[str, str]] = (),
) -> str:
    """HTML of the batch index: a sortable summary table and the list of failures.

    Parameters
    ----------
    subjects : sequence of mapping
        One entry per processed subject: ``subject`` (id), ``page`` (href of its page,
        relative to the index), ``report`` (the report dict), optionally ``status``
        (default ``"ok"``), ``thumbnail`` (href of its thumbnail) and ``participant`` (the
        subject without its session, when entries are subject-sessions: the summary line
        then counts both).
    failures : sequence of mapping
        One entry per failed subject: ``subject``, ``stage``, ``error`` (and ``participant``).
    title : str
        Page title.
    links : sequence of (str, str)
        Other pages of the batch, ``(href, text)``, listed under the title (e.g. the
        follow-up comparisons).

    Returns
    -------
    str
        A complete, self-contained HTML document; clicking a column header sorts by it.
    """
    rows = [
        {
            "subject": entry.get("subject"),
            "page": entry.get("page"),
            "thumbnail": entry.get("thumbnail"),
            "status": entry.get("status", "ok"),
            "summary": summarise(entry.get("report") or {}),
        }
        for entry in subjects
    ]
    return render_page(
        "index.html.j2",
        title=title,
        script=asset("sort.js"),
        rows=rows,
        processed=_processed_text(subjects, failures),
        failures=list(failures),
        failure_columns=_columns(FAILURE_COLUMNS),
        count_columns=COUNT_COLUMNS,
        links=list(links),
    )


def _processed_text(
    subjects: Sequence[Mapping[str, Any]], failures: Sequence[Mapping[str, Any]]
) -> str:
    """``"3 subjects processed, 1 failed"``, or with sessions ``"6 subject-sessions (3
    subjects) processed, 1 failed"``: each row of the index is a subject-session then."""
    done, failed = len(subjects), len(failures)
    participants = {e["participant"] for e in [*subjects, *failures] if e.get("participant")}
    keys = {str(e.get("subject")) for e in [*subjects, *failures]}
    if not participants or len(participants) == len(keys):
        return f"{_count(done, 'subject')} processed, {failed} failed"
    people = {e["participant"] for e in subjects if e.get("participant")}
    return (
        f"{_count(done, 'subject-session')} ({_count(len(people), 'subject')}) processed, "
        f"{failed} failed"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def write_index_page(
    path: str | os.PathLike,
    subjects: Sequence[Mapping[str, Any]],
    failures: Sequence[Mapping[str, Any]] = (),
    *,
    title: str = "bmetoolkit batch QC",
    links: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write :func:`render_index_page` to ``path`` atomically; return the path."""
    return write_text(path, render_index_page(subjects, failures, title=title, links=links))
