"""Self-contained HTML QC pages: one per subject, and a batch index.

A subject page is rendered from a report dict shaped like the analysis ``report.json``
(``bme``, ``endplates``, ``parameters``, ``inputs``, ``versions``, ``labels``, ``notes``)
and the QC figures of :mod:`bmetoolkit.report.qc`, embedded as base64 PNG so the page is one file
that opens anywhere, offline. The batch index lists every subject in a sortable table
(plain inline JavaScript, no external resources) linking to the subject pages, and the
subjects that failed with the stage and the error.

All text from reports (file names, notes, error messages) is HTML-escaped. Pages are written
atomically.

Examples
--------
>>> report = {"bme": {"volume_ml": 1.5, "lesions": []},
...           "endplates": [{"level": "L4", "endplate": "inferior", "modic_type": "I",
...                          "volume_ml": 0.8}],
...           "notes": ["T2 <resampled> onto the T1 grid"]}
>>> page = render_subject_page(report, subject="sub-01")
>>> "L4 inferior: Modic I" in page, "&lt;resampled&gt;" in page
(True, True)
>>> summarise(report)["modic_counts"]["I"]
1
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bmetoolkit.io import write_text
from bmetoolkit.modic import is_finding as _is_finding
from bmetoolkit.report.colortables import LABEL_TABLES

__all__ = [
    "MODIC_TYPES",
    "png_data_uri",
    "png_display_width",
    "render_index_page",
    "render_subject_page",
    "summarise",
    "write_index_page",
    "write_subject_page",
]

#: Modic type strings of the report, in the order of the summary columns.
MODIC_TYPES = ("I", "II", "III", "I/II", "II/III")
#: Colours of the types, as in the figures and colour tables; a mixed type shows both.
_TYPE_COLOURS = {
    roman: entry.hex
    for roman, entry in zip(("I", "II", "III"), LABEL_TABLES["modic_map"].entries, strict=True)
}
_ENDPLATE_COLUMNS = (
    ("level", "Level"),
    ("endplate", "Endplate"),
    ("modic_type", "Modic type"),
    ("volume_ml", "Volume (ml)"),
    ("height_pct", "Height (%)"),
    ("height_grade", "Height grade"),
    ("area_pct", "Area (%)"),
    ("area_grade", "Area grade"),
    ("location", "Location"),
)
_LESION_COLUMNS = (
    ("level", "Level"),
    ("zone", "Zone"),
    ("volume_ml", "Volume (ml)"),
    ("centroid_ras_mm", "Centroid (RAS mm)"),
)

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5em;
       color: #111; background: #fff; line-height: 1.4; max-width: 1700px; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em;
     border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.finding td { background: #fff7e0; }
.summary { font-size: 1.1em; padding: 0.6em 0.9em; border-left: 6px solid #0072B2;
           background: #eef5fb; }
.status-ok { color: #006b4f; font-weight: bold; } .status-failed { color: #a33d00;
             font-weight: bold; }
.notes { border-left: 6px solid #E69F00; background: #fdf3e1; padding: 0.4em 0.9em; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; border: 1px solid #000;
          vertical-align: -0.1em; margin-right: 0.3em; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #ccc; }
figcaption { font-size: 0.9em; color: #333; }
th.sortable { cursor: pointer; user-select: none; } th.sortable::after { content: " \\2195";
              color: #777; }
th[aria-sort="ascending"]::after { content: " \\2191"; color: #000; }
th[aria-sort="descending"]::after { content: " \\2193"; color: #000; }
pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; }
@media print { body { margin: 0.5cm; } figure { break-inside: avoid; }
               a { color: #000; } }
"""

_SORT_SCRIPT = """
(function () {
  function key(cell) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) { raw = cell.textContent.trim(); }
    var number = parseFloat(raw);
    return (raw !== "" && !isNaN(number) && isFinite(raw)) ? number : raw.toLowerCase();
  }
  function compare(a, b) {
    if (typeof a === typeof b) { return a < b ? -1 : (a > b ? 1 : 0); }
    return typeof a === "number" ? -1 : 1;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var headers = table.querySelectorAll("th");
    headers.forEach(function (th, column) {
      th.classList.add("sortable");
      th.setAttribute("tabindex", "0");
      function sort() {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var c = compare(key(r1.cells[column]), key(r2.cells[column]));
          return ascending ? c : -c;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sort(); } });
    });
  });
})();
"""


def _e(value: Any) -> str:
    """Escaped display text of any value."""
    return html.escape(_text(value), quote=True)


def _text(value: Any) -> str:
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


def png_display_width(png: bytes) -> int | None:
    r"""Width (CSS px, 96 per inch) at which a PNG shows at its physical size, when known.

    Matplotlib records its dpi in the PNG's ``pHYs`` chunk; showing the image at that
    physical size keeps the figure's text at the point size it was drawn with (a wide
    montage still shrinks to the page width). None when the PNG holds no resolution.

    Examples
    --------
    >>> import struct, zlib
    >>> ihdr = struct.pack(">IIBBBBB", 300, 10, 8, 2, 0, 0, 0)
    >>> phys = struct.pack(">IIB", 5906, 5906, 1)  # 150 dpi in pixels per metre
    >>> chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data
    ...                             + struct.pack(">I", zlib.crc32(kind + data)))
    >>> png_display_width(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"pHYs", phys))
    192
    """
    import struct

    if len(png) < 24 or png[12:16] != b"IHDR":
        return None
    width = struct.unpack(">I", png[16:20])[0]
    at = png.find(b"pHYs", 0, 4096)
    if at < 0 or len(png) < at + 13:
        return None
    per_metre, _, unit = struct.unpack(">IIB", png[at + 4 : at + 13])
    if unit != 1 or per_metre == 0:
        return None
    return round(width * 96 / (per_metre * 0.0254))


def _png_of(figure: Any) -> bytes:
    """PNG bytes of a matplotlib Figure, of PNG bytes, or of a PNG file path."""
    if isinstance(figure, bytes | bytearray):
        return bytes(figure)
    if isinstance(figure, str | os.PathLike):
        return Path(figure).read_bytes()
    from bmetoolkit.report.qc import figure_png_bytes

    return figure_png_bytes(figure)


def summarise(report: Mapping[str, Any]) -> dict[str, Any]:
    """The at-a-glance numbers of a report: BME volume, lesion count, Modic counts by type.

    Parameters
    ----------
    report : mapping
        A report dict shaped like the analysis ``report.json``.

    Returns
    -------
    dict
        ``bme_volume_ml`` (float or None), ``n_lesions``, ``bme_locations`` (``"L4
        inferior"`` per lesion), ``modic_counts`` (endplates per
        type in :data:`MODIC_TYPES`), ``modic_endplates`` (``"L4 inferior: Modic I"`` ...),
        ``modic_assessed`` (False when the T1 failed the contrast check), ``n_notes``.
    """
    bme = report.get("bme") or {}
    endplates = report.get("endplates") or []
    counts = dict.fromkeys(MODIC_TYPES, 0)
    found = []
    for row in endplates:
        kind = row.get("modic_type")
        if _is_finding(kind):
            counts[str(kind)] = counts.get(str(kind), 0) + 1
            found.append(f"{row.get('level', '?')} {row.get('endplate', '?')}: Modic {kind}")
    lesions = list(bme.get("lesions") or [])
    where = [" ".join(str(p) for p in (r.get("level"), r.get("zone")) if p) for r in lesions]
    return {
        "bme_volume_ml": bme.get("volume_ml"),
        "n_lesions": len(lesions),
        "bme_locations": [w or "unknown level" for w in where],
        "modic_counts": counts,
        "modic_endplates": found,
        "modic_assessed": (report.get("checks") or {}).get("modic_assessed", True),
        "n_notes": len(report.get("notes") or []),
    }


def _summary_sentence(summary: Mapping[str, Any]) -> str:
    volume = summary["bme_volume_ml"]
    if volume is None:
        bme = "BME: not measured"
    else:
        lesions = summary["n_lesions"]
        bme = f"BME {_text(float(volume))} ml in {lesions} lesion{'s' * (lesions != 1)}"
        if summary["bme_locations"]:
            bme += f" ({', '.join(summary['bme_locations'])})"
    found = summary["modic_endplates"]
    if not summary.get("modic_assessed", True):
        modic = "Modic types not assessed on this T1 (see the notes)"
    elif not found:
        modic = "no Modic change"
    else:
        modic = "Modic changes at " + "; ".join(found)
    return f"{bme}. {modic}."


def _swatch(modic_type: Any) -> str:
    if not _is_finding(modic_type):
        return ""
    parts = [p for p in str(modic_type).split("/") if p in _TYPE_COLOURS]
    if not parts:
        return ""
    colours = [_TYPE_COLOURS[p] for p in parts]
    fill = (
        colours[0]
        if len(colours) == 1
        else f"linear-gradient(90deg,{colours[0]} 50%,{colours[1]} 50%)"
    )
    return f'<span class="swatch" style="background:{fill}" aria-hidden="true"></span>'


def _table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[tuple[str, str]],
    *,
    css_class: str = "",
    highlight: str | None = None,
) -> str:
    """An HTML table of ``rows`` with the given (key, header) columns, plus any extra keys."""
    if not rows:
        return "<p>None.</p>"
    keys = [key for key, _ in columns]
    extra = sorted({k for row in rows for k in row} - set(keys))
    headers = [title for _, title in columns] + extra
    out = [f'<table class="{_e(css_class)}"><thead><tr>']
    out += [f'<th scope="col">{_e(h)}</th>' for h in headers]
    out.append("</tr></thead><tbody>")
    for row in rows:
        marked = highlight is not None and _is_finding(row.get(highlight))
        out.append('<tr class="finding">' if marked else "<tr>")
        for key in keys + extra:
            value = row.get(key)
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            cell = _e(value)
            if key == "modic_type":
                cell = _swatch(value) + cell
            out.append(f'<td class="num">{cell}</td>' if numeric else f"<td>{cell}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _mapping_html(value: Any, depth: int = 0) -> str:
    """Nested dicts and lists as nested definition tables; scalars as escaped text."""
    if isinstance(value, Mapping):
        if not value:
            return "<em>none</em>"
        cells = "".join(
            f'<tr><th scope="row">{_e(k)}</th><td>{_mapping_html(v, depth + 1)}</td></tr>'
            for k, v in value.items()
        )
        return f"<table>{cells}</table>"
    if isinstance(value, list | tuple) and value:
        short = all(isinstance(v, int | float | str | None) and len(_text(v)) <= 24 for v in value)
        if not short:  # sentences (e.g. pairing decisions) and nested items: one per line
            items = "".join(f"<li>{_mapping_html(v, depth + 1)}</li>" for v in value)
            return f"<ul>{items}</ul>"
    return _e(value)


def _count_cell(count: int) -> str:
    """A count cell of the index; nonzero counts in bold so findings stand out."""
    style = ' style="font-weight:bold"' if count else ""
    return f'<td class="num"{style}>{count}</td>'


def _page(title: str, body: str, *, script: str = "") -> str:
    script_tag = f"<script>{script}</script>" if script else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'  # no favicon request: the page needs no server
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}{script_tag}</body></html>\n"
    )


def render_subject_page(
    report: Mapping[str, Any],
    *,
    subject: str,
    figures: Mapping[str, Any] | None = None,
    status: str = "ok",
    index_href: str | None = None,
) -> str:
    """HTML of the QC page of one subject.

    Parameters
    ----------
    report : mapping
        Shaped like the analysis ``report.json``: ``bme`` (``volume_ml``, ``lesions``),
        ``endplates``, ``parameters``, ``inputs``, ``versions``, ``labels``, ``notes``;
        missing sections are shown as absent. Keys not listed are shown in the tables too.
    subject : str
        Subject id, shown as the title.
    figures : mapping of str to Figure, PNG bytes or PNG path, optional
        Figures to embed (base64 PNG), by caption, in order.
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
    bme = report.get("bme") or {}
    endplates = list(report.get("endplates") or [])
    findings = [row for row in endplates if _is_finding(row.get("modic_type"))]
    notes = [str(n) for n in report.get("notes") or []]
    status_class = "status-ok" if status == "ok" else "status-failed"
    parts = []
    if index_href is not None:
        parts.append(f'<p><a href="{_e(index_href)}">&larr; all subjects</a></p>')
    parts.append(
        f'<h1>{_e(subject)} <small class="{status_class}">{_e(status)}</small></h1>'
        f'<p class="summary" id="summary">{_e(_summary_sentence(summary))}</p>'
    )
    if notes:
        items = "".join(f"<li>{_e(n)}</li>" for n in notes)
        parts.append(f'<h2>Warnings and notes</h2><div class="notes"><ul>{items}</ul></div>')
    for caption, figure in (figures or {}).items():
        png = _png_of(figure)
        width = png_display_width(png)
        size = f' style="width:{width}px"' if width else ""
        parts.append(
            f'<figure><img src="{png_data_uri(png)}" alt="{_e(caption)}"{size}>'
            f"<figcaption>{_e(caption)}</figcaption></figure>"
        )
    parts.append(f"<h2>Modic changes ({len(findings)} endplate{'s' * (len(findings) != 1)})</h2>")
    parts.append(_table(findings, _ENDPLATE_COLUMNS, css_class="findings"))
    parts.append(
        f"<details><summary>All {len(endplates)} endplates</summary>"
        f"{_table(endplates, _ENDPLATE_COLUMNS, css_class='endplates', highlight='modic_type')}"
        "</details>"
    )
    lesions = list(bme.get("lesions") or [])
    volume = bme.get("volume_ml")
    parts.append(
        f"<h2>Bone marrow edema: {_e(volume)} ml, {len(lesions)} "
        f"lesion{'s' * (len(lesions) != 1)}</h2>"
    )
    parts.append(_table(lesions, _LESION_COLUMNS, css_class="lesions"))
    for key, title in (
        ("inputs", "Inputs and pairing decisions"),
        ("labels", "Vertebra labels"),
        ("parameters", "Parameters"),
        ("versions", "Versions"),
    ):
        parts.append(f"<h2>{title}</h2>{_mapping_html(report.get(key) or {})}")
    known = {"bme", "endplates", "notes", "inputs", "labels", "parameters", "versions"}
    other = {k: v for k, v in report.items() if k not in known}
    if other:
        parts.append(f"<h2>Other report fields</h2>{_mapping_html(other)}")
    return _page(f"bmetoolkit QC: {subject}", "".join(parts))


def write_subject_page(
    path: str | os.PathLike,
    report: Mapping[str, Any],
    *,
    subject: str,
    figures: Mapping[str, Any] | None = None,
    status: str = "ok",
    index_href: str | None = None,
) -> Path:
    """Write :func:`render_subject_page` to ``path`` atomically; return the path."""
    page = render_subject_page(
        report, subject=subject, figures=figures, status=status, index_href=index_href
    )
    return write_text(path, page)


def render_index_page(
    subjects: Sequence[Mapping[str, Any]],
    failures: Sequence[Mapping[str, Any]] = (),
    *,
    title: str = "bmetoolkit batch QC",
) -> str:
    """HTML of the batch index: a sortable summary table and the list of failures.

    Parameters
    ----------
    subjects : sequence of mapping
        One entry per processed subject: ``subject`` (id), ``page`` (href of its page,
        relative to the index), ``report`` (the report dict) and optionally ``status``
        (default ``"ok"``).
    failures : sequence of mapping
        One entry per failed subject: ``subject``, ``stage``, ``error``.
    title : str
        Page title.

    Returns
    -------
    str
        A complete, self-contained HTML document; clicking a column header sorts by it.
    """
    headers = ["Subject", "Status", "BME volume (ml)", "BME lesions"]
    headers += [f"Modic {t}" for t in MODIC_TYPES] + ["Notes"]
    rows = []
    for entry in subjects:
        summary = summarise(entry.get("report") or {})
        name = _e(entry.get("subject"))
        page = entry.get("page")
        link = f'<a href="{_e(page)}">{name}</a>' if page else name
        volume = summary["bme_volume_ml"]
        sort_volume = "" if volume is None else f' data-sort="{float(volume)!r}"'
        cells = [
            f"<td>{link}</td>",
            f"<td>{_e(entry.get('status', 'ok'))}</td>",
            f'<td class="num"{sort_volume}>{_e(volume)}</td>',
            f'<td class="num">{summary["n_lesions"]}</td>',
            *(_count_cell(summary["modic_counts"][t]) for t in MODIC_TYPES),
            f'<td class="num">{summary["n_notes"]}</td>',
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="summary">{len(subjects)} subject{"s" * (len(subjects) != 1)} processed, '
        f"{len(failures)} failed. Click a column header to sort.</p>",
        f'<table class="sortable" id="subjects"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>",
        f"<h2>Failures ({len(failures)})</h2>",
        _table(
            list(failures),
            (("subject", "Subject"), ("stage", "Stage"), ("error", "Error")),
            css_class="failures",
        ),
    ]
    return _page(title, "".join(body), script=_SORT_SCRIPT)


def write_index_page(
    path: str | os.PathLike,
    subjects: Sequence[Mapping[str, Any]],
    failures: Sequence[Mapping[str, Any]] = (),
    *,
    title: str = "bmetoolkit batch QC",
) -> Path:
    """Write :func:`render_index_page` to ``path`` atomically; return the path."""
    return write_text(path, render_index_page(subjects, failures, title=title))
