"""``import bmetoolkit`` and ``bmetoolkit --help`` load no heavy library (lazy imports).

Each case runs in a fresh interpreter, since this test process has imported everything.
The start-up time itself is measured by ``benchmarks/bench_run.py``, not asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
#: Libraries only the code that uses them may import.
HEAVY = ("matplotlib", "pandas", "SimpleITK", "scipy", "nibabel", "skimage", "jinja2")
_PROBE = """
import json, sys
{code}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _loaded(code: str) -> list[str]:
    probe = _PROBE.format(code=code, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPOSITORY
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "code",
    [
        "import bmetoolkit",
        "import bmetoolkit.cli as cli; cli.get_parser().format_help()",
        "from bmetoolkit.cli import main\nimport contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['analyze', '--help'])",
    ],
    ids=["import", "help", "analyze-help"],
)
def test_no_heavy_library_before_it_is_used(code: str) -> None:
    assert _loaded(code) == []


def test_the_public_names_still_resolve() -> None:
    loaded = _loaded("import bmetoolkit\nbmetoolkit.Volume, bmetoolkit.load, bmetoolkit.analyze")
    assert "scipy" in loaded  # analyze brings the analysis, and it needs scipy
    assert "matplotlib" not in loaded and "pandas" not in loaded


def test_running_a_command_imports_that_command_alone() -> None:
    code = (
        "import sys, contextlib, io\nfrom bmetoolkit.cli import main\n"
        "with contextlib.redirect_stderr(io.StringIO()): main(['info', 'no-such-file.nii'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('bmetoolkit.commands.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPOSITORY
    )
    assert done.stdout.strip().splitlines()[-1] == "['bmetoolkit.commands.info']"


def test_checking_the_names_of_given_images_leaves_the_header_rules_unloaded() -> None:
    code = (
        "import sys\nimport numpy as np\nfrom bmetoolkit.volume import Volume\n"
        "from bmetoolkit.pairing.sanity import _name_notes\n"
        "t2 = Volume(np.zeros((2, 2, 2), np.float32), np.eye(4), source='sub-01_T2w.nii.gz')\n"
        "print(_name_notes({'t1': t2}))\n"
        "print('bmetoolkit.pairing.contrast' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPOSITORY
    )
    notes, loaded = done.stdout.strip().splitlines()[-2:]
    assert "named as a T2" in notes
    assert loaded == "False"


def test_the_stir_word_of_file_names_is_the_header_rules_stir_keyword() -> None:
    from bmetoolkit.pairing import contrast, names

    built = contrast._kw(r"stir|tirm", glue=r"(?:sag|ax|cor|tra|s|t2|t2w)?")
    assert names.STIR_WORD.pattern == built.pattern
    assert contrast.contrast_from_name is names.contrast_from_name
