"""DICOM input and output.

Modules: :mod:`.read` (scan a folder, group and read series into a :class:`~bmetoolkit.Volume`),
:mod:`.headers` (header-only reading of the tags the toolkit uses), :mod:`.pixels` (pixel data,
rescale, multi-frame) and :mod:`.write` (write a volume as a DICOM series, used by the phantom).
"""
