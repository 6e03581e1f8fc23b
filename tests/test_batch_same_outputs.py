"""``analyze`` and ``batch`` write one subject's files through the same ``AnalysisResult.save``.

The same phantom subject (a spine with its labels, and a knee without T1 with its bone mask)
is analysed by ``bmetoolkit analyze`` and by ``bmetoolkit batch --qc``; every file of the
analysis must be the same under its BIDS name. What legitimately differs, and is normalised
before comparing:

- ``report.json``: the batch scrubs absolute input paths to paths relative to INPUT (no
  ``--keep-phi``), and ``timings_s`` are measured per run;
- the QC page: the same scrubbed paths, and the batch's link back to its ``index.html``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from bmetoolkit.batch.outputs import output_names
from bmetoolkit.batch.privacy import scrub
from bmetoolkit.cli import main
from bmetoolkit.data.phantom import PhantomConfig, make_phantom
from bmetoolkit.data.phantom.joint.build import make_joint_phantom
from bmetoolkit.data.phantom.joint.write import write_joint_phantom
from bmetoolkit.report.colortables import table_stem
from bmetoolkit.result import ANATOMY_OUTPUTS, OUTPUT_FILES, QC_PAGE

pytest.importorskip("bmetoolkit.analysis", reason="bmetoolkit.analysis not present")
pytestmark = pytest.mark.slow  # real analyses, one in a batch worker: make test, not test-fast

SUBJECT = "p2"
KEY = f"sub-{SUBJECT}"


@pytest.fixture(scope="module", params=["spine", "bones"])
def both(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """(INPUT, the analyze output folder, the batch subject's anat folder, the anatomy).

    ``spine``: a spine phantom with its vertebra labels; ``bones``: a knee phantom without
    T1, with its bone mask (``bones.nii.gz`` and the ``bones_dseg.tsv`` beside it).
    """
    anatomy = request.param
    root = tmp_path_factory.mktemp(f"same-{anatomy}")
    source = root / "in"
    folder = source / SUBJECT
    if anatomy == "spine":
        make_phantom(2, config=PhantomConfig.small()).write_nifti(folder)
        images = [f"--{role}={folder / f'{role}.nii.gz'}" for role in ("t1", "t2", "stir")]
        images.append(f"--vertebrae={folder / 'vertebrae.nii.gz'}")
    else:
        knee = make_joint_phantom(2, plane="coronal", with_t1=False, small=True)
        write_joint_phantom(knee, folder)
        images = [f"--stir={folder / 'stir.nii.gz'}", f"--marrow={folder / 'bones.nii.gz'}"]
    # the folder is named like the batch's subject, so the QC pages carry the same title
    direct = root / "analyze" / KEY
    assert main(["analyze", *images, "--out", str(direct)]) == 0
    batch = root / "batch"
    assert main(["batch", str(source), str(batch), "--qc", "--no-progress"]) == 0
    return source, direct, batch / KEY / "anat", anatomy


def pairs(direct: Path, anat: Path, anatomy: str) -> dict[str, tuple[Path, Path]]:
    """Every analysis output (maps, tables, colour tables, QC) by key: (analyze, batch)."""
    bids = output_names(KEY)
    found = {}
    for key, name in OUTPUT_FILES.items():
        if key not in (*ANATOMY_OUTPUTS[anatomy], "report"):
            continue
        found[key] = (direct / name, anat / bids[key])
        if name.endswith(".nii.gz"):
            stems = table_stem(name), table_stem(bids[key])
            for suffix in (".ctbl", "_itksnap.txt", "_dseg.tsv"):
                found[f"{key}{suffix}"] = (
                    direct / f"{stems[0]}{suffix}",
                    anat / f"{stems[1]}{suffix}",
                )
    found["qc"] = (direct / QC_PAGE, anat / bids["qc"])
    found["qc_thumb"] = (direct / "qc_thumb.png", anat / f"{KEY}_qc_thumb.png")
    return found


def test_every_file_of_analyze_has_its_batch_twin(both: tuple) -> None:
    _, direct, anat, anatomy = both
    expected = {a.name for a, _ in pairs(direct, anat, anatomy).values()}
    assert {p.name for p in direct.iterdir()} == expected
    batched = {b.name for _, b in pairs(direct, anat, anatomy).values()}
    assert batched <= {p.name for p in anat.iterdir()}


def test_maps_tables_and_colour_tables_are_byte_identical(both: tuple) -> None:
    _, direct, anat, anatomy = both
    compared = 0
    for key, (a, b) in pairs(direct, anat, anatomy).items():
        if key in ("report", "qc"):
            continue
        assert a.read_bytes() == b.read_bytes(), key
        compared += 1
    maps = sum(OUTPUT_FILES[k].endswith(".nii.gz") for k in ANATOMY_OUTPUTS[anatomy])
    tables = sum(OUTPUT_FILES[k].endswith(".csv") for k in ANATOMY_OUTPUTS[anatomy])
    assert (maps, tables) == ((4, 2) if anatomy == "spine" else (3, 2))
    others = len(ANATOMY_OUTPUTS[anatomy]) - maps - tables  # decision_images.npz (spine)
    assert compared == maps + tables + others + maps * 3 + 1  # 3 colour tables per map, thumb


def test_reports_differ_only_by_scrubbed_paths_and_timings(both: tuple) -> None:
    source, direct, anat, anatomy = both
    a, b = pairs(direct, anat, anatomy)["report"]
    report = json.loads(a.read_text())
    for entries in report["inputs"]["sha256"].values():  # relative to analyze's folder
        for entry in entries:
            entry["file"] = str((a.parent / entry["file"]).resolve())
    analysed = scrub(report, input_root=source)
    batched = json.loads(b.read_text())
    assert set(analysed.pop("timings_s")) == set(batched.pop("timings_s"))
    assert analysed == batched
    assert str(source.resolve()) not in b.read_text()


def test_qc_pages_differ_only_by_paths_and_the_index_link(both: tuple) -> None:
    source, direct, anat, anatomy = both
    a, b = pairs(direct, anat, anatomy)["qc"]
    link = re.compile(r"<p><a href=\"\.\./\.\./index\.html\">[^<]*</a></p>\s*")
    timings = re.compile(
        r'(<details class="provenance" id="provenance-timings_s">).*?</details>', re.S
    )
    batched = b.read_text()
    assert link.search(batched), "the batch page links back to OUTPUT/index.html"
    assert (anat / "../../index.html").resolve().is_file()
    assert timings.search(batched) and len(batched) > 10_000
    relative = Path(os.path.relpath(source.resolve(), a.parent.resolve())).as_posix()
    analysed = a.read_text().replace(str(source.resolve()) + "/", "")
    analysed = analysed.replace(relative + "/", "")  # analyze's checksummed files
    assert timings.sub(r"\1", analysed) == timings.sub(r"\1", link.sub("", batched))
