"""Keeping patient identity out of batch outputs (unless ``--keep-phi``).

bmetoolkit's DICOM reader never puts patient identity into volume metadata, but a report may
still carry it through file paths (folders named after patients) or through metadata of
other origins. :func:`scrub` removes identity keys and rewrites paths under the input
folder as relative paths.

Examples
--------
>>> scrub({"PatientName": "Doe^J", "t1": "/data/Doe_J/t1.nii", "TR": 0.5}, input_root="/data")
{'t1': 'Doe_J/t1.nii', 'TR': 0.5}
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["PHI_KEYS", "scrub"]

#: Keys (DICOM keywords and BIDS-style names) never written to outputs without --keep-phi.
PHI_KEYS = frozenset(
    {
        "PatientName",
        "PatientID",
        "OtherPatientIDs",
        "OtherPatientNames",
        "PatientBirthDate",
        "PatientBirthName",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "PatientMotherBirthName",
        "PatientSex",
        "PatientAge",
        "PatientWeight",
        "PatientSize",
        "AccessionNumber",
        "IssuerOfPatientID",
        "InstitutionName",
        "InstitutionAddress",
        "InstitutionalDepartmentName",
        "ReferringPhysicianName",
        "PerformingPhysicianName",
        "OperatorsName",
        "NameOfPhysiciansReadingStudy",
        "RequestingPhysician",
        "StudyDate",
        "SeriesDate",
        "AcquisitionDate",
        "ContentDate",
        "AcquisitionDateTime",
        "StudyTime",
        "SeriesTime",
        "AcquisitionTime",
        "StudyID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "FrameOfReferenceUID",
        "DeviceSerialNumber",
        "StationName",
    }
)


def scrub(value: Any, *, input_root: str | os.PathLike) -> Any:
    """A copy of ``value`` (JSON-like) without identity keys and with input paths relative.

    Parameters
    ----------
    value : dict, list or scalar
        A report or part of one.
    input_root : path
        The cohort folder: strings naming a path below it become relative to it.
    """
    root = os.path.abspath(os.fspath(input_root)).rstrip(os.sep) + os.sep
    return _scrub(value, root)


def _scrub(value: Any, root: str) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v, root) for k, v in value.items() if str(k) not in PHI_KEYS}
    if isinstance(value, list | tuple):
        return [_scrub(v, root) for v in value]
    if isinstance(value, str) and root in value:
        return value.replace(root, "")
    return value
