"""``scipy.ndimage`` and nibabel imported by the command line without the modules no command
uses.

The import cases run in fresh interpreters (this test process has imported everything).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

from bmetoolkit.lean_imports import DEFERRED, Deferred, standing_in

REPOSITORY = Path(__file__).resolve().parents[1]
#: Deferred modules that scipy imports by other means (``import numpy.random`` inside it).
_IMPORTED_ANYWAY = {"numpy.random"}


def _probe(code: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPOSITORY
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


_AFTER_NDIMAGE = """
import json, sys
{setup}
import numpy, scipy.ndimage
loaded = sorted(name for name in {deferred!r} if name in sys.modules)
in_numpy = sorted(name for name in ("testing", "f2py", "ma") if name in vars(numpy))
print(json.dumps({{"loaded": loaded, "in_numpy": in_numpy,
                  "loader": type(scipy.ndimage.__spec__.loader).__name__,
                  "finders": [type(f).__name__ for f in sys.meta_path]}}))
"""


def test_scipy_ndimage_leaves_the_deferred_modules_out():
    setup = "from bmetoolkit.lean_imports import lean_scipy_imports; lean_scipy_imports()"
    found = _probe(_AFTER_NDIMAGE.format(setup=setup, deferred=DEFERRED))
    assert set(found["loaded"]) <= _IMPORTED_ANYWAY
    assert found["in_numpy"] == []  # no stand-in is left on numpy
    assert found["loader"] == "SourceFileLoader"  # scipy.ndimage's own loader, as usual
    assert "_NdimageFinder" not in found["finders"]  # the finder went after its one use


def test_without_it_scipy_ndimage_imports_them():
    """What the stand-ins save: the same import, as scipy does it, loads them all."""
    found = _probe(_AFTER_NDIMAGE.format(setup="", deferred=DEFERRED))
    assert {"numpy.testing", "numpy.f2py", "scipy.special"} <= set(found["loaded"])


_LEFT_OUT = ["numpy.testing", "numpy.f2py", "scipy.special", "pydicom", "urllib.request"]


def test_an_analysis_from_the_command_line_does_not_import_them(tmp_path):
    from bmetoolkit.data.datasets import phantom_sample

    sample = phantom_sample()
    argv = ["analyze", "--out", str(tmp_path / "out"), "--no-qc"]
    for role in ("t1", "t2", "stir", "vertebrae"):
        argv += [f"--{role}", str(sample[role])]
    code = (
        "import contextlib, io, json, sys\nfrom bmetoolkit.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()): code = main({argv!r})\n"
        "print(json.dumps({'code': code, 'loaded': sorted(n for n in "
        f"{_LEFT_OUT!r} if n in sys.modules)}}))"
    )
    assert _probe(code) == {"code": 0, "loaded": []}


_USED_LATER = """
import json
from bmetoolkit.lean_imports import lean_scipy_imports
lean_scipy_imports()
import numpy, scipy.ndimage
import scipy._lib.array_api_compat.numpy as compat
from scipy.ndimage import _interpolation
rotated = scipy.ndimage.rotate(numpy.eye(5), 90)  # uses scipy.special through its stand-in
import scipy.special
print(json.dumps({
    "rotated": rotated.round(6).tolist() == numpy.rot90(numpy.eye(5)).tolist(),
    "special": _interpolation.special.cosdg is scipy.special.cosdg,
    "testing": compat.testing.assert_equal is numpy.testing.assert_equal,
    "numpy_testing": type(numpy.testing).__name__,
    "ma": int(numpy.ma.masked_array([1, 2], mask=[0, 1]).sum()) == 1,
}))
"""


def test_the_stand_ins_work_as_the_modules():
    found = _probe(_USED_LATER)
    assert found == {
        "rotated": True,
        "special": True,
        "testing": True,
        "numpy_testing": "module",
        "ma": True,
    }


def test_standing_in_restores_the_parent(monkeypatch):
    parent = types.ModuleType("fakeparent")
    monkeypatch.setitem(sys.modules, "fakeparent", parent)
    with standing_in(["fakeparent.decoder", "fakeparent.absent"]) as placed:
        assert placed == ["fakeparent.decoder", "fakeparent.absent"]
        assert isinstance(vars(parent)["decoder"], Deferred)
    assert "decoder" not in vars(parent) and "absent" not in vars(parent)


def test_a_module_imported_meanwhile_stays(monkeypatch):
    parent = types.ModuleType("fakeparent")
    monkeypatch.setitem(sys.modules, "fakeparent", parent)
    real = types.ModuleType("fakeparent.decoder")
    with standing_in(["fakeparent.decoder"]):
        parent.decoder = real  # what the import system does when it imports the module
    assert parent.decoder is real


def test_modules_already_imported_get_no_stand_in(monkeypatch):
    parent = types.ModuleType("fakeparent")
    parent.child = "kept"
    monkeypatch.setitem(sys.modules, "fakeparent", parent)
    with standing_in(["fakeparent.child", "json", "nothere.child"]) as placed:
        assert placed == []
    assert parent.child == "kept"


@pytest.mark.parametrize("threads", [2, 8])
def test_a_stand_in_is_safe_to_use_from_threads(threads, tmp_path, monkeypatch):
    """Every thread reads the real attribute, even when all use the module for the first
    time at once (the import system's locks: no thread sees the module half executed)."""
    name = f"slow_module_{threads}"
    (tmp_path / f"{name}.py").write_text("import time\ntime.sleep(0.2)\nVALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    stand_in = Deferred(name)
    barrier = threading.Barrier(threads, timeout=10)
    found = []

    def read():
        barrier.wait()
        found.append(stand_in.VALUE)

    workers = [threading.Thread(target=read) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert found == [42] * threads
    assert "imported on first use" in repr(stand_in)


_NIBABEL = """
import json, sys
{setup}
import nibabel, nibabel.optpkg
from nibabel import nifti1
print(json.dumps({{
    "pydicom": "pydicom" in sys.modules,
    "urllib.request": "urllib.request" in sys.modules,
    "have_dicom": nifti1.have_dicom,
    "handler": nifti1.extension_codes.handler[2].__name__,
    "optional_package": nibabel.optpkg.optional_package.__module__,
    "finders": [type(f).__name__ for f in sys.meta_path],
}}))
"""


def test_nibabel_leaves_pydicom_out():
    setup = "from bmetoolkit.lean_imports import lean_nibabel_imports; lean_nibabel_imports()"
    found = _probe(_NIBABEL.format(setup=setup))
    assert found == {
        "pydicom": False,
        "urllib.request": False,
        "have_dicom": True,  # as with pydicom imported: DICOM extensions are still parsed
        "handler": "Nifti1DicomExtension",
        "optional_package": "nibabel.optpkg",  # nibabel's own again after the import
        "finders": found["finders"],
    }
    assert "_LeanFinder" not in found["finders"]


def test_without_it_nibabel_imports_pydicom():
    found = _probe(_NIBABEL.format(setup=""))
    assert found["pydicom"] is True
    assert found["urllib.request"] is True
    assert found["handler"] == "Nifti1DicomExtension"


_DICOM_EXTENSION = """
import json, sys
{setup}
import nibabel
image = nibabel.load(sys.argv[1])
extension = image.header.extensions[0]
content = extension.get_content()
print(json.dumps({{
    "class": type(extension).__name__,
    "dataset": type(content).__module__ + "." + type(content).__name__,
    "patient": str(content.PatientID),
    "bytes": extension.get_sizeondisk(),
}}))
"""


def test_a_dicom_extension_reads_the_same_with_pydicom_deferred(tmp_path):
    """A NIfTI file carrying a DICOM data set (extension code 2) gives the same parsed
    extension whether nibabel was imported with pydicom deferred or not."""
    import nibabel
    import numpy as np
    import pydicom

    dataset = pydicom.Dataset()
    dataset.PatientID = "ANON-7"
    dataset.SeriesDescription = "t2_stir_sag"
    image = nibabel.Nifti1Image(np.zeros((3, 3, 3), np.int16), np.eye(4))
    image.header.extensions.append(nibabel.nifti1.Nifti1DicomExtension(2, dataset))
    path = tmp_path / "with_dicom.nii"
    nibabel.save(image, path)

    def read(setup: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-c", _DICOM_EXTENSION.format(setup=setup), str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPOSITORY,
        )
        return json.loads(done.stdout.strip().splitlines()[-1])

    lean = read("from bmetoolkit.lean_imports import lean_nibabel_imports; lean_nibabel_imports()")
    assert lean == read("")
    assert lean["class"] == "Nifti1DicomExtension"
    assert lean["dataset"] == "pydicom.dataset.Dataset"
    assert lean["patient"] == "ANON-7"


def test_a_type_stand_in_answers_its_placeholders_until_released():
    from bmetoolkit.lean_imports import _release, _TypeDeferred

    stand_in = _TypeDeferred("json.decoder", {"JSONDecodeError": "placeholder"})
    assert stand_in.JSONDecodeError == "placeholder"
    _release(stand_in)
    assert stand_in.JSONDecodeError.__name__ == "JSONDecodeError"


def test_nibabel_reads_from_a_url_with_urllib_deferred(tmp_path):
    """``from_url`` (the one use of ``urllib.request`` in nibabel) works through the stand-in."""
    import nibabel
    import numpy as np

    path = tmp_path / "small.nii"
    nibabel.save(
        nibabel.Nifti1Image(np.arange(8, dtype=np.int16).reshape(2, 2, 2), np.eye(4)), path
    )
    code = (
        "import json, sys\n"
        "from bmetoolkit.lean_imports import lean_nibabel_imports; lean_nibabel_imports()\n"
        "import nibabel\n"
        "image = nibabel.Nifti1Image.from_url(sys.argv[1])\n"
        "print(json.dumps(image.get_fdata().ravel().tolist()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, path.as_uri()], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == list(range(8))
