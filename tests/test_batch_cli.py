"""The ``bmetoolkit batch`` command: usage errors, dry run, missing Dask extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bmetoolkit.cli import main
from tests.test_batch_support import foreground_command, tiny_cohort


@pytest.fixture
def cohort(tmp_path: Path) -> Path:
    tiny_cohort(tmp_path / "in", 2)
    return tmp_path / "in"


def test_usage_errors_exit_2(cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = str(tmp_path / "out")
    assert main(["batch", str(tmp_path / "nope"), out]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["batch", str(cohort), str(cohort)]) == 2
    assert main(["batch", str(cohort), out, "--jobs", "0"]) == 2
    assert main(["batch", str(cohort), out, "--pattern", "{subject}.nii"]) == 2
    assert main(["batch", str(cohort), out, "--layout", "xml"]) == 2
    assert not Path(out).exists()  # bad parameters exit 1: tests/test_cli_exit_codes.py


def test_dry_run_lists_subjects_pairing_and_actions(
    cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["batch", str(cohort), str(tmp_path / "out"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "2 subject(s)" in text and "sub-s00 (nifti" in text and "run: no complete output" in text
    assert "t1: t1.nii.gz" in text and "why: stir: none found" in text
    assert not (tmp_path / "out").exists()


def test_sessions_are_counted_apart_from_subjects(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = tmp_path / "bids"
    (root / "dataset_description.json").parent.mkdir(parents=True)
    (root / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.8.0"}')
    for subject, session in (("01", "a"), ("01", "b"), ("02", "a")):
        anat = root / f"sub-{subject}" / f"ses-{session}" / "anat"
        anat.mkdir(parents=True)  # a T1 alone: each session fails fast, as it should
        (anat / f"sub-{subject}_ses-{session}_T1w.nii.gz").write_bytes(b"")
    assert main(["batch", str(root), str(tmp_path / "out")]) == 1
    assert "2 subject(s), 3 subject-session(s): 0 analysed" in capsys.readouterr().out


def test_missing_dask_names_the_extra(
    cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    code = main(["batch", str(cohort), str(tmp_path / "out"), "--scheduler", "tcp://x:8786"])
    assert code == 2
    assert "bmetoolkit[distributed]" in capsys.readouterr().err


def test_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from bmetoolkit.batch.dask_cluster import SchedulerError, run_on_dask

    with pytest.raises(SchedulerError, match="cannot reach the Dask scheduler"):
        run_on_dask([], "tcp://127.0.0.1:9", progress=False, timeout_s=1)


def test_a_launcher_ignoring_sigint_passes_it_on_unless_reset() -> None:
    """Why the Ctrl-C test (test_batch_e2e) starts the batch with ``foreground_command``.

    A launcher that ignores SIGINT (a shell's ``command &`` without job control) passes the
    ignoring on: Python in the child installs no KeyboardInterrupt handler, so a batch
    started from such a pytest ignored the test's SIGINT and exited 0 (seen in ``make
    test`` run in the background). ``foreground_command`` sets SIGINT back to its default.
    """
    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    launcher = (
        "import signal, subprocess, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "sys.exit(subprocess.run(sys.argv[1:]).returncode)"
    )

    def handler_installed(command: list[str]) -> str:
        run = [sys.executable, "-c", launcher, *command]
        return subprocess.run(run, capture_output=True, text=True, check=True).stdout.strip()

    assert handler_installed([sys.executable, "-c", probe]) == "False"
    assert handler_installed(foreground_command("-c", probe)) == "True"
