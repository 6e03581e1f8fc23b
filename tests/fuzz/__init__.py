"""A deterministic fuzz corpus of damaged and hostile inputs, and a harness that runs it.

:mod:`tests.fuzz.corpus` builds seed inputs (a small phantom study as NIfTI and DICOM, label
maps, parameter files) and mutates them case by case from a seed; :mod:`tests.fuzz.harness`
runs each case through the command line in-process and checks the contract: no traceback, no
write outside the output folder, no half-written output, no hang, no escaping warning.
``tests/test_fuzz.py`` runs a fixed budget in ``make test``; ``benchmarks/fuzz_inputs.py``
runs a larger one.
"""
