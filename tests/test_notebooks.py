"""The example notebooks in ``examples/`` run top to bottom without an error.

Each notebook is executed with nbclient in a fresh ``python3`` kernel of this interpreter,
with ``examples/`` as the working directory and ``TMPDIR`` pointing into pytest's temporary
folder, so whatever a notebook writes with :mod:`tempfile` is cleaned up with it. The
executed copy is saved there too; the notebooks in the repository are never rewritten.
Two notebooks run at a time (each kernel is its own process), then each has its own test.
The notebooks must be committed without outputs, and must not write into ``examples/`` or
``sample_data/``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
#: Longest a single cell may run (s); the notebooks take well under a minute each.
CELL_TIMEOUT_S = 600
#: Notebooks run at the same time, each in its own kernel process (two cores here).
AT_ONCE = max(1, min(2, os.cpu_count() or 1))


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


@dataclass
class Run:
    """One notebook executed: its executed copy, the interpreter its kernel ran, its
    duration, and the files written into ``examples/`` or ``sample_data/`` while it ran
    (by it, or by a notebook running beside it)."""

    copy: Path
    executable: str = ""
    seconds: float = 0.0
    written: dict[str, list[str]] = field(default_factory=dict)
    error: BaseException | None = None


def _execute(notebook: Path, folder: Path) -> Run:
    """Run ``notebook`` top to bottom in a fresh kernel; TMPDIR inside ``folder``."""
    import nbclient
    import nbformat

    scratch = folder / "tmp"
    scratch.mkdir(parents=True)
    env = os.environ | {  # the kernel's environment
        "TMPDIR": str(scratch),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    run = Run(copy=folder / notebook.name)
    watched = {path: _tree(path) for path in (EXAMPLES, ROOT / "sample_data")}
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
        client.execute(env=env)
        run.executable = probe.outputs[0]["text"].strip()
    except Exception as error:  # reported by the notebook's own test
        run.error = error
    finally:
        run.seconds = time.perf_counter() - start
        nbformat.write(document, run.copy)
    for path, before in watched.items():
        after = _tree(path)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        if changed:
            run.written[str(path)] = changed
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Run]:
    """Every notebook executed once, :data:`AT_ONCE` at a time.

    Each kernel is its own process, so on a machine with two cores two notebooks run side
    by side in about the time of one; what they check is unchanged.
    """
    for module in ("nbformat", "nbclient", "ipykernel"):
        pytest.importorskip(module, reason="pip install nbformat nbclient ipykernel")
    root = tmp_path_factory.mktemp("notebooks")
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        futures = {nb: pool.submit(_execute, nb, root / nb.stem) for nb in NOTEBOOKS}
        return {nb: future.result() for nb, future in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs(notebook: Path, runs: dict[Path, Run], record_property) -> None:
    run = runs[notebook]
    record_property("duration_s", round(run.seconds, 1))
    print(f"{notebook.name}: {run.seconds:.1f} s (executed copy: {run.copy})")
    if run.error is not None:
        raise run.error
    assert os.path.samefile(run.executable, sys.executable), (
        f"the kernel ran {run.executable}, not this interpreter {sys.executable}"
    )
    assert not run.written, (
        f"{notebook.name}, or a notebook running beside it, wrote into {run.written}"
    )
