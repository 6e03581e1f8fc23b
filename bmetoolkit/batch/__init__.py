"""Batch processing at cohort scale: ``bmetoolkit batch INPUT OUTPUT``.

Modules, one job each:

- :mod:`.naming`: sanitised subject/session labels, BIDS names, paths kept inside OUTPUT;
- :mod:`.discover`: subjects of a BIDS dataset, a tree of DICOM studies or NIfTI files
  matched by a pattern, with what will be paired and why;
- :mod:`.manifest`: input fingerprints, parameters and version per subject; what a rerun
  may skip;
- :mod:`.privacy`: patient identity kept out of the outputs;
- :mod:`.outputs`: BIDS-derivatives names, ``dataset_description.json``, ``*_dseg.tsv``,
  the group tables;
- :mod:`.subject`: one subject's work into a hidden folder moved into place when complete;
- :mod:`.runner`: local worker processes with a progress bar;
- :mod:`.dask_cluster`: the same on a Dask distributed cluster.
"""
