"""HTML QC pages: content, escaping, embedded images, headers, index table, atomic writes."""

from __future__ import annotations

import base64
import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bmetoolkit.data.phantom import Lesion, PhantomConfig, PhantomStudy, make_phantom
from bmetoolkit.report import html as report_html
from bmetoolkit.report import qc
from bmetoolkit.spine.labels import level_name
from bmetoolkit.study import Study

LESIONS = [
    Lesion("L4", "modic1/2", endplate="inferior", height_frac=0.4),
    Lesion("L5", "modic1", endplate="superior", height_frac=0.25),
    Lesion("L2", "modic3", endplate="superior", height_frac=0.2),
    Lesion("L1", "edema", height_frac=0.45, ap_width=0.5, lr_width=0.5),
]
HOSTILE = '<script>alert("x")</script> & "quotes"'


def shown(volume_ml: float) -> str:
    """How the pages show a volume: 3 decimals (1 mm³), trailing zeros dropped."""
    return f"{volume_ml:.3f}".rstrip("0").rstrip(".")


def phantom_report(study: PhantomStudy, *, notes: tuple[str, ...] = ()) -> dict[str, Any]:
    """A report dict shaped like the analysis report.json, filled from the phantom's truth."""
    lesions = [
        {
            "volume_ml": row["bme_volume_ml"],
            "centroid_ras_mm": row["centroid_ras_mm"],
            "level": row["level"],
            "zone": row["zone"],
        }
        for row in study.truth.lesions
        if row["bme_volume_ml"] > 0
    ]
    keys = ("level", "endplate", "modic_type", "volume_ml", "height_pct", "height_grade")
    keys += ("area_pct", "area_grade", "location")
    return {
        "bme": {"volume_ml": round(sum(r["volume_ml"] for r in lesions), 4), "lesions": lesions},
        "endplates": [{k: row[k] for k in keys} for row in study.truth.endplates],
        "parameters": {"fluid_contrast": "stir", "t1_dark_z": -2.0, "min_lesion_ml": 0.05},
        "inputs": {
            "t1": "sub-01/t1.nii.gz",
            "stir": "sub-01/stir.nii.gz",
            "pairing": ["T1 series 2 paired with STIR series 4 (same frame of reference)"],
        },
        "versions": {"bmetoolkit": "0.1.0.dev0", "numpy": np.__version__},
        "labels": {"convention": "verse", "levels": list(study.spine.levels)},
        "notes": list(notes),
    }


def phantom_figures(study: PhantomStudy) -> qc.QCFigures:
    """The QC figures of a phantom study, truth masks standing in for results."""
    fluid = Study.from_images(study.t1, stir=study.stir).stir
    masks = study.truth.masks
    names = {int(i): level_name(int(i)) for i in np.unique(masks["vertebrae"].data) if i}
    return qc.qc_figures(
        study.t1, fluid, masks["bme_mask"], masks["modic_map"], masks["vertebrae"], names
    )


class _Collector(HTMLParser):
    """Start tags with their attributes, and whether every non-void tag was closed."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, (tag, self.open[-5:])
        self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> _Collector:
    collector = _Collector()
    collector.feed(page)
    collector.close()
    assert collector.open == [], collector.open
    return collector


@pytest.fixture(scope="module")
def study() -> PhantomStudy:
    return make_phantom(seed=11, lesions=LESIONS, config=PhantomConfig.small())


def test_subject_page_tells_what_was_found_and_where(study):
    report = phantom_report(study, notes=("L6 present: levels counted from the sacrum",))
    page = report_html.render_subject_page(report, subject="sub-01")
    doc = parse(page)
    summary = "".join(doc.text)
    assert "L4 inferior: Modic I/II" in summary
    assert "L5 superior: Modic I" in summary
    assert "L2 superior: Modic III" in summary
    assert "L6 present: levels counted from the sacrum" in summary
    assert f"BME {shown(report['bme']['volume_ml'])} mL in 3 lesions" in summary  # L1, L4, L5
    tables = [attrs.get("class") for tag, attrs in doc.tags if tag == "table"]
    assert {"findings", "endplates", "lesions"} <= set(tables)
    rows_in_findings = page.split('class="findings"')[1].split("</table>")[0].count("<tr")
    assert rows_in_findings == 1 + 3  # header + the three Modic endplates
    places = page.split('id="findings-at"')[1].split("</ul>")[0]
    assert [p.split("</b>")[0] for p in places.split("<b>")[1:]] == ["L1", "L2", "L4", "L5"]
    for section in ("Inputs and pairing decisions", "Parameters", "Versions", "Vertebra labels"):
        assert section in summary
    assert "t1_dark_z" in summary
    assert "<li>T1 series 2 paired with STIR series 4 (same frame of reference)</li>" in page
    assert "T11, T12, L1, L2, L3, L4, L5, S1" in summary  # short lists inline, no Python repr
    sentence = doc.text[[t.strip().startswith("BME") for t in doc.text].index(True)]
    assert sentence.count("(") == 1 and "L1 body" in sentence and "L4 inferior" in sentence


def test_subject_page_embeds_the_figures_as_png(study):
    figures = phantom_figures(study)
    page = report_html.render_subject_page(phantom_report(study), subject="s", figures=figures)
    images = [attrs for tag, attrs in parse(page).tags if tag == "img"]
    assert len(images) == len(figures.montage.panels) == 6
    for img, panel in zip(images, figures.montage.panels, strict=True):
        assert img["alt"] == f"{panel.contrast}, sagittal slice at {panel.position}"
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix)
        assert base64.b64decode(img["src"][len(prefix) :]) == panel.png()
    text = "".join(parse(page).text)
    assert "Modic III (none)" not in text and "L4" in text  # legend and level names as text
    assert "http://" not in page and "https://" not in page  # self-contained


def test_a_page_without_a_t1_names_the_fluid_image_once(study):
    paired = phantom_figures(study)
    fluid = paired.montage.panels[1]
    montage = dataclasses.replace(
        paired.montage, panels=paired.montage.panels[1::2], key_panel=1, contrasts=("STIR",)
    )
    figures = dataclasses.replace(paired, montage=montage)
    page = report_html.render_subject_page(phantom_report(study), subject="s", figures=figures)
    headings = [t.strip() for t in parse(page).text if t.strip().startswith("Sagittal")]
    assert headings == ["Sagittal STIR"]
    assert fluid.contrast == "STIR" and page.count('alt="STIR, sagittal') == 3
    assert "T1, sagittal" not in page
    paired_page = report_html.render_subject_page(
        phantom_report(study), subject="s", figures=paired
    )
    assert "Sagittal T1 and STIR" in "".join(parse(paired_page).text)


def test_all_report_text_is_escaped(study):
    report = phantom_report(study, notes=(HOSTILE,))
    report["inputs"]["t1"] = HOSTILE
    report["endplates"][0]["location"] = HOSTILE
    page = report_html.render_subject_page(report, subject=HOSTILE)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;quotes&#34;" in page
    assert "".join(parse(page).text).count(HOSTILE) >= 5  # title, h1, note, input, endplate


def test_a_report_without_findings_or_sections_still_renders():
    page = report_html.render_subject_page({}, subject="sub-empty", status="failed")
    text = "".join(parse(page).text)
    assert "BME: not measured. No Modic change." in text
    assert "failed" in text


def test_png_data_uri_refuses_other_bytes():
    with pytest.raises(ValueError, match="PNG"):
        report_html.png_data_uri(b"GIF89a")


def test_index_lists_subjects_with_links_and_failures(study):
    report = phantom_report(study)
    subjects = [
        {"subject": "sub-01", "page": "sub-01/qc.html", "report": report, "thumbnail": "t.png"},
        {"subject": "sub-02", "page": "sub-02/qc.html", "report": {"bme": {"volume_ml": 0.0}}},
    ]
    failures = [{"subject": "sub-03", "stage": "pairing", "error": HOSTILE}]
    page = report_html.render_index_page(subjects, failures)
    doc = parse(page)
    links = [attrs["href"] for tag, attrs in doc.tags if tag == "a"]
    assert links == ["sub-01/qc.html", "sub-02/qc.html"]
    assert [attrs["src"] for tag, attrs in doc.tags if tag == "img"] == ["t.png"]
    assert "<script>alert" not in page and "pairing" in "".join(doc.text)
    cells = _index_cells(page)[0]
    # subject, findings at, BME mL, lesions, Modic I, II, III, mixed, notes, status
    assert cells[2:] == [shown(report["bme"]["volume_ml"]), "3", "2", "1", "1", "1", "0", "ok"]
    assert "L2" in cells[1] and "sup III" in cells[1] and "L1" in cells[1] and "BME" in cells[1]
    assert sum(1 for tag, _ in doc.tags if tag == "script") == 1


def test_index_counts_subjects_and_their_sessions():
    visit = {"report": {"bme": {"volume_ml": 0.0}}}
    plain = [{"subject": "sub-01", **visit}, {"subject": "sub-02", **visit}]
    failed = [{"subject": "sub-03", "stage": "discover", "error": "no T1"}]
    assert "2 subjects processed, 1 failed." in report_html.render_index_page(plain, failed)
    sessions = [
        {"subject": f"sub-{p}_ses-{v}", "participant": p, **visit} for p in "12" for v in "ab"
    ]
    failed = [{"subject": "sub-3_ses-a", "participant": "3", "stage": "discover", "error": "x"}]
    page = report_html.render_index_page(sessions, failed)
    assert "4 subject-sessions (2 subjects) processed, 1 failed." in page
    one = report_html.render_index_page(sessions[:1])
    assert "1 subject processed, 0 failed." in one  # one session of one subject: no need to say


def _index_cells(page: str) -> list[list[str]]:
    """Text of every cell of the index table, row by row."""
    body = page.split('id="subjects"')[1].split("<tbody>")[1].split("</tbody>")[0]
    rows = body.split("</tr>")[:-1]
    return [[_text_of(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows]


def _text_of(fragment: str) -> str:
    collector = _Collector()
    collector.feed(f"<div>{fragment}</div>")
    return re.sub(r"\s+", " ", "".join(collector.text)).strip()


def test_a_mixed_type_counts_in_the_modic_columns_of_index_and_tables():
    """A subject whose only finding is "II/I" is no zero on the index nor in subjects.csv."""
    from types import SimpleNamespace

    from bmetoolkit.batch.outputs import SUBJECT_COLUMNS, summary_of

    endplate = {"level": "L4", "verse_id": 23, "endplate": "inferior", "modic_type": "II/I"}
    lesion = {"lesion": 1, "level": "L4", "verse_id": 23, "zone": "inferior endplate"}
    report = {"bme": {"volume_ml": 0.5, "lesions": [lesion]}, "endplates": [endplate]}
    report["lesions"] = [lesion, {**lesion, "lesion": 2, "zone": "central", "finding": "BME"}]
    cells = _index_cells(report_html.render_index_page([{"subject": "s", "report": report}]))[0]
    assert cells[3:8] == ["2", "1", "1", "0", "1"]  # lesions, I, II, III, mixed
    assert cells[1] == "L4 inf II/I, BME"
    result = SimpleNamespace(to_dict=lambda: report, bme_volume_ml=0.5)
    row = summary_of(result)
    assert set(row) <= set(SUBJECT_COLUMNS)
    assert (row["n_lesions"], row["modic_I"], row["modic_II"], row["modic_mixed"]) == (2, 1, 1, 1)
    assert row["n_modic"] == 1 and row["modic_III"] == 0


def test_headers_are_formatted_with_units(study):
    report = phantom_report(study)
    report["lesions"] = [
        {"lesion": 1, "volume_ml": 0.5, "bbox_voxels": "1:2,3:4,5:6", "mean_t1_ratio": 0.7}
    ]
    page = report_html.render_subject_page(report, subject="s", figures=phantom_figures(study))
    headers = [h.split(">", 1)[1] for h in page.split('<th scope="col"')[1:]]
    headers = [h.split("</th>")[0] for h in headers]
    assert "Volume (mL)" in headers and "Bounding box (voxel index ranges)" in headers
    assert "T1 / normal marrow" in headers and "BME (mL)" in headers
    assert not [h for h in headers if "_" in h or "ml)" in h]
    assert report_html.column_header("spread_mm") == "Spread (mm)"


def test_notes_beyond_the_first_few_are_folded(study):
    notes = tuple(f"note {i}" for i in range(report_html.NOTES_SHOWN + 2))
    page = report_html.render_subject_page(phantom_report(study, notes=notes), subject="s")
    section = page.split("Warnings and notes")[1].split("<h2>")[0]
    shown_part, folded = section.split("<details>")
    assert all(f"<li>{n}</li>" in shown_part for n in notes[: report_html.NOTES_SHOWN])
    assert all(f"<li>{n}</li>" in folded for n in notes[report_html.NOTES_SHOWN :])
    assert "2 more notes" in folded


def test_provenance_is_folded_away(study):
    report = phantom_report(study)
    report["reference"] = {"fields": {"t1": {"degree": 2}}}
    page = report_html.render_subject_page(report, subject="s")
    details = page.split("<h2>Provenance</h2>")[1]
    for key in ("inputs", "labels", "parameters", "versions", "reference"):
        block = details.split(f'id="provenance-{key}"')[1].split("</details>")[0]
        assert block.startswith(">") and "<summary>" in block
    assert page.index("<h2>Provenance</h2>") > page.index('id="summary"')
    assert "t1_dark_z" in details and "t1_dark_z" not in page.split("<h2>Provenance</h2>")[0]


def test_pages_are_written_atomically(study, tmp_path: Path):
    out = report_html.write_subject_page(
        tmp_path / "sub-01" / "qc.html",
        phantom_report(study),
        subject="sub-01",
        index_href="../index.html",
    )
    index = report_html.write_index_page(
        tmp_path / "index.html", [{"subject": "sub-01", "page": "sub-01/qc.html", "report": {}}]
    )
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["index.html", "qc.html"]
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert 'href="../index.html"' in out.read_text(encoding="utf-8")
    assert "sub-01/qc.html" in index.read_text(encoding="utf-8")
    figures = phantom_figures(study)
    report_html.write_subject_page(tmp_path / "two" / "qc.html", {}, subject="2", figures=figures)
    thumbnail = report_html.thumbnail_path(tmp_path / "two" / "qc.html")
    assert sorted(p.name for p in thumbnail.parent.iterdir()) == ["qc.html", "qc_thumb.png"]
    assert thumbnail.read_bytes() == qc.png_bytes(figures.montage.thumbnail())


def test_panels_are_shown_at_the_size_they_were_drawn(study):
    figures = phantom_figures(study)
    page = report_html.render_subject_page({}, subject="s", figures=figures)
    images = [attrs for tag, attrs in parse(page).tags if tag == "img"]
    for img, panel in zip(images, figures.montage.panels, strict=True):
        png = base64.b64decode(img["src"].split(",", 1)[1])
        assert int.from_bytes(png[16:20], "big") == int(img["width"]) == qc.PANEL_WIDTH_PX
        assert int.from_bytes(png[20:24], "big") == int(img["height"]) == panel.rgb.shape[0]


def test_a_parameter_section_at_its_defaults_reads_defaults():
    report = {"parameters": {"grow_z": 2.5, "autoseg": {}}}
    page = report_html.render_subject_page(report, subject="s")
    section = page[page.index('id="provenance-parameters"') :]
    section = section[: section.index("</details>")]
    assert re.search(r"<code>autoseg</code></th><td>defaults</td>", section)
    changed = {"parameters": {"autoseg": {"opening_mm": 2.0}}}
    page = report_html.render_subject_page(changed, subject="s")
    assert "<code>opening_mm</code></th><td>2</td>" in page


@pytest.fixture
def template_cache_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The compiled-template cache in ``tmp_path``; a fresh environment before and after."""
    make_cache = report_html._template_cache
    monkeypatch.setattr(report_html, "_template_cache", lambda: make_cache(str(tmp_path)))
    report_html._environment.cache_clear()
    yield tmp_path
    report_html._environment.cache_clear()


def test_cached_templates_render_the_same_page_and_a_damaged_cache_is_ignored(
    study, template_cache_in: Path
):
    report = phantom_report(study, notes=("a note",))
    figures = phantom_figures(study)

    def page() -> str:
        report_html._environment.cache_clear()  # as in a new process
        return report_html.render_subject_page(report, subject="sub-01", figures=figures)

    compiled = page()
    entries = sorted(template_cache_in.glob("__bmetoolkit_*.cache"))
    assert len(entries) == 3  # the subject page, its base and its macros
    assert page() == compiled  # read back from the cache
    from jinja2.bccache import bc_magic

    for entry in entries:  # Jinja2's header, then no compiled template
        entry.write_bytes(bc_magic + b"not a compiled template")
    assert page() == compiled
    entries[0].unlink()
    entries[1].write_bytes(b"")
    assert page() == compiled
