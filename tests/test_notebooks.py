"""The example notebooks in ``examples/`` run top to bottom without an error.

Each notebook is executed with nbclient in a fresh ``python3`` kernel of this interpreter,
with ``examples/`` as the working directory and ``TMPDIR`` pointing into pytest's temporary
folder, so whatever a notebook writes with :mod:`tempfile` is cleaned up with it. The
executed copy is saved there too; the notebooks in the repository are never rewritten.
The notebooks must be committed without outputs, and must not write into ``examples/`` or
``sample_data/``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
#: Longest a single cell may run (s); the four notebooks take well under a minute each.
CELL_TIMEOUT_S = 600


def _tree(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` with its modification time (ns)."""
    return {
        str(path.relative_to(folder)): path.stat().st_mtime_ns
        for path in folder.rglob("*")
        if path.is_file()
    }


def test_examples_exist() -> None:
    assert [path.name for path in NOTEBOOKS][:4] == [
        "01_quick_start.ipynb",
        "02_modic_report.ipynb",
        "03_cohort_batch.ipynb",
        "04_own_vertebra_labels.ipynb",
    ]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_committed_without_outputs(notebook: Path) -> None:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    with_outputs = [
        number
        for number, cell in enumerate(cells)
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not with_outputs, f"{notebook.name}: clear the outputs of cells {with_outputs}"


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs(
    notebook: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    record_property,
) -> None:
    nbformat = pytest.importorskip("nbformat", reason="pip install nbformat nbclient ipykernel")
    nbclient = pytest.importorskip("nbclient", reason="pip install nbformat nbclient ipykernel")
    pytest.importorskip("ipykernel", reason="pip install nbformat nbclient ipykernel")

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # inherited by the kernel
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    watched = {folder: _tree(folder) for folder in (EXAMPLES, ROOT / "sample_data")}

    document = nbformat.read(notebook, as_version=4)
    probe = nbformat.v4.new_code_cell("import sys\nprint(sys.executable)")
    document.cells.append(probe)  # in memory only: which interpreter ran the kernel
    client = nbclient.NotebookClient(
        document,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        nbformat.write(document, tmp_path / notebook.name)
    duration = time.perf_counter() - start
    record_property("duration_s", round(duration, 1))
    print(f"{notebook.name}: {duration:.1f} s (executed copy: {tmp_path / notebook.name})")

    executable = probe.outputs[0]["text"].strip()
    assert os.path.samefile(executable, sys.executable), (
        f"the kernel ran {executable}, not this interpreter {sys.executable}"
    )
    for folder, before in watched.items():
        after = _tree(folder)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        assert not changed, f"{notebook.name} wrote into {folder}: {changed}"
