"""What users look at: QC figures and pages, viewer colour tables and DICOM SEG.

Modules: :mod:`.qc` (montage panels drawn with numpy, per-level volumes, PNG), :mod:`.html`
(subject and index pages from the Jinja2 templates in ``templates/``), :mod:`.summary` (the
counts of the index and of the batch's ``subjects.csv``), :mod:`.tables` (CSV/TSV text),
:mod:`.colortables` (3D Slicer, ITK-SNAP and BIDS tables) and :mod:`.dicomseg` (DICOM SEG of
the maps, extra ``bmetoolkit[dicomseg]``). Nothing here is imported by the analysis itself.
"""
