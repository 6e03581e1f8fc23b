"""The spine-specific stages: vertebral bodies, their geometry and the T1 contrast check.

Modules: :mod:`.labels` (label conventions -> vertebral bodies with VerSe ids),
:mod:`.vertebra` (body geometry: axes, endplate surfaces, height, marrow), :mod:`.t1_contrast`
(is the T1 a spin-echo T1 on which Modic types can be read) and :mod:`.autoseg` (automatic
vertebral bodies and levels).
"""
