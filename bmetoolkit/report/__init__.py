"""What users look at: QC figures and pages, viewer colour tables and DICOM SEG.

Modules: :mod:`.qc` (matplotlib QC figures), :mod:`.html` (subject and index pages),
:mod:`.colortables` (3D Slicer, ITK-SNAP and BIDS tables) and :mod:`.dicomseg` (DICOM SEG of
the maps, extra ``bmetoolkit[dicomseg]``). Nothing here is imported by the analysis itself.
"""
