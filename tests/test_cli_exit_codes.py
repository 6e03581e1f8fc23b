"""Exit codes are decided in one place (``cli.main``), the same for every command.

0 ok, 1 input could not be processed, 2 usage, 130 interrupted; a bad ``--params`` (file or
inline JSON) is input that could not be processed: 1 from every command that takes it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bmetoolkit.cli import command_names, get_parser, main
from bmetoolkit.errors import BmetoolkitError


def _commands_taking_params(tmp_path: Path) -> dict[str, list[str]]:
    """Each command with ``--params`` and arguments that are otherwise fine to parse."""
    out = str(tmp_path / "out")
    images = ["--t1", str(tmp_path / "t1.nii.gz"), "--t2", str(tmp_path / "t2.nii.gz")]
    return {
        "analyze": ["analyze", *images, "--out", out],
        "batch": ["batch", str(tmp_path / "cohort"), out],
        "spider validate": ["spider", "validate", str(tmp_path / "spider")],
    }


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = get_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_module_declares_a_handler() -> None:
    commands = _subcommands()
    assert {"analyze", "batch", "info", "convert", "phantom", "spider"} <= set(commands)
    for name, sub in commands.items():
        if name == "spider":  # an action level: fetch / validate
            continue
        assert callable(sub.get_default("handler")), name


def test_each_command_module_is_named_as_its_command() -> None:
    # main() registers the one module named as the command it runs
    for name in command_names():
        action = next(
            a for a in get_parser(name)._actions if isinstance(a, argparse._SubParsersAction)
        )
        assert list(action.choices) == [name]


def test_a_command_parses_alike_alone_and_among_all(tmp_path: Path) -> None:
    argv = ["analyze", "--t1", "a.nii.gz", "--stir", "b.nii.gz", "--out", str(tmp_path)]
    alone, among_all = get_parser("analyze").parse_args(argv), get_parser().parse_args(argv)
    assert vars(alone) == vars(among_all)


@pytest.mark.parametrize("word", [None, "--help", "no-such-command", "__init__"])
def test_no_command_or_an_unknown_one_gets_every_command(word: str | None) -> None:
    action = next(a for a in get_parser(word)._actions if isinstance(a, argparse._SubParsersAction))
    assert set(action.choices) == set(command_names())


@pytest.mark.parametrize("command", ["analyze", "batch", "spider validate"])
@pytest.mark.parametrize(
    ("content", "said"),
    [
        ('{"min_lesion": 3}', "unknown parameter 'min_lesion'"),
        ('{"min_lesion_mm3": 3', "cannot read parameters"),
        ("[1, 2]", "must be a JSON object"),
        ('{"autoseg": {"no_such_autoseg_value": 1}}', "unknown autoseg parameter"),
    ],
    ids=["unknown-name", "broken-json", "not-an-object", "unknown-autoseg-name"],
)
def test_the_same_bad_params_file_exits_1_from_every_command(
    command: str, content: str, said: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    params = tmp_path / "my_params.json"
    params.write_text(content)
    argv = _commands_taking_params(tmp_path)[command]
    assert main([*argv, "--params", str(params)]) == 1
    err = capsys.readouterr().err
    assert f"bmetoolkit {command.split()[0]}: error: " in err
    assert "my_params.json" in err and said in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["analyze", "batch", "spider validate"])
def test_bad_inline_params_exit_1_with_a_clear_message(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = _commands_taking_params(tmp_path)[command]
    assert main([*argv, "--params", '{"stir_hyper_ration": 1.3}']) == 1
    err = capsys.readouterr().err
    assert "unknown parameter 'stir_hyper_ration' (did you mean 'stir_hyper_ratio'?)" in err
    assert main([*argv, "--params", "{stir_hyper_ratio: 1.3}"]) == 1
    assert "cannot read the parameters given as JSON" in capsys.readouterr().err


def test_a_missing_params_file_exits_1_naming_it(tmp_path: Path, capsys) -> None:
    argv = _commands_taking_params(tmp_path)["batch"]
    assert main([*argv, "--params", str(tmp_path / "absent.json")]) == 1
    assert "absent.json: parameter file does not exist" in capsys.readouterr().err


def test_usage_is_2_input_is_1(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["analyze", "--t1", "a.nii.gz", "--out", str(tmp_path)]) == 2  # T1 alone
    assert "error: --t1 needs --t2 and/or --stir" in capsys.readouterr().err
    assert main(["phantom", str(tmp_path), "--lesions", "nope"]) == 2
    assert "unknown --lesions 'nope'" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "absent")]) == 1
    assert main(["batch", str(tmp_path / "absent"), str(tmp_path / "out")]) == 2


def test_interrupt_is_130_and_a_bug_is_not_hidden(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import bmetoolkit.commands.info as info

    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(info, "run", interrupted)
    assert main(["info", str(tmp_path)]) == 130
    assert "bmetoolkit info: interrupted" in capsys.readouterr().err

    def failing(args: argparse.Namespace) -> int:
        raise BmetoolkitError("is damaged", path="x.nii", hint="copy it again")

    monkeypatch.setattr(info, "run", failing)
    assert main(["info", str(tmp_path)]) == 1
    assert "bmetoolkit info: error: x.nii: is damaged. copy it again" in capsys.readouterr().err

    def buggy(args: argparse.Namespace) -> int:
        return 1 // 0

    monkeypatch.setattr(info, "run", buggy)
    with pytest.raises(ZeroDivisionError):
        main(["info", str(tmp_path)])


def test_output_read_in_part_ends_quietly() -> None:
    # `bmetoolkit info DIR | head`: the reader of stdout goes away; the command stops with 1
    # and no traceback (it printed one before)
    import os
    import subprocess
    import sys

    from bmetoolkit.data.datasets import phantom_sample

    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is printed
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bmetoolkit.cli", "info", str(phantom_sample()["dicom"])],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    finally:
        os.close(write)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr


def test_a_broken_pipe_that_is_not_stdout_is_not_hidden(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import bmetoolkit.commands.info as info

    def broken(args: argparse.Namespace) -> int:
        raise BrokenPipeError("a worker's pipe")

    monkeypatch.setattr(info, "run", broken)
    with pytest.raises(BrokenPipeError):
        main(["info", str(tmp_path)])


@pytest.mark.parametrize("command", ["analyze", "compare"])
def test_an_interrupted_analysis_says_its_output_is_incomplete(
    command: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import importlib

    module = importlib.import_module(f"bmetoolkit.commands.{command}")

    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "run", interrupted)
    out = str(tmp_path / "out")
    argv = {
        "analyze": ["analyze", "--t1", "t1.nii.gz", "--stir", "stir.nii.gz", "--out", out],
        "compare": ["compare", "ses-1", "ses-2", "--out", out],
    }[command]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert f"bmetoolkit {command}: interrupted; " in err
    assert "without report.json is incomplete" in err and "Run the same command again" in err
