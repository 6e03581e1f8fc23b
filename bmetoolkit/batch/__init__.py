"""Batch processing at cohort scale: ``bmetoolkit batch INPUT OUTPUT``.

:func:`run_batch` finds the subjects of a cohort, analyses each in worker processes (or on a
Dask cluster) into a BIDS-derivatives folder with group tables, and on a rerun redoes only
what changed. See ``docs/batch.md``.

Modules, one job each:

- :mod:`.naming`: sanitised subject/session labels, BIDS names, paths kept inside OUTPUT;
- :mod:`.inputs`: a subject's images by role (:class:`SubjectInputs`);
- :mod:`.discover`: subjects of a BIDS dataset (:mod:`.layout_bids`), a tree of DICOM
  studies (:mod:`.layout_dicom`) or NIfTI files matched by a pattern (:mod:`.layout_nifti`),
  with what will be paired and why;
- :mod:`.manifest`: input fingerprints, parameters and version per subject; what a rerun
  may skip;
- :mod:`.privacy`: patient identity kept out of the outputs;
- :mod:`.outputs`: BIDS-derivatives names, ``dataset_description.json``, ``*_dseg.tsv``
  tables, the group tables;
- :mod:`.subject`: one subject's work, in a hidden folder moved into place when complete;
- :mod:`.runner`: local worker processes with a progress bar;
- :mod:`.dask_cluster`: the same on a Dask distributed cluster;
- :mod:`.pipeline`: the batch as a whole (:func:`run_batch`, :func:`plan`).
"""

from bmetoolkit.batch.discover import SubjectInputs, discover
from bmetoolkit.batch.pipeline import BatchReport, BatchUsageError, plan, run_batch
from bmetoolkit.batch.subject import SubjectOutcome, run_subject

__all__ = [
    "BatchReport",
    "BatchUsageError",
    "SubjectInputs",
    "SubjectOutcome",
    "discover",
    "plan",
    "run_batch",
    "run_subject",
]
