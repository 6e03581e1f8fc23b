"""Follow-up visits: two analyses of one subject registered, compared region by region and
lesion by lesion, with the measurement error of every change.

Modules: :mod:`.visit` (read or analyse a visit), :mod:`.register` (rigid, then per body),
:mod:`.warp` (follow-up maps on the baseline grid), :mod:`.joint` and :mod:`.joint_visits`
(both visits' edema decided together), :mod:`.quality` (alignment measures and
the refusal of mismatched visits), :mod:`.repeatability` (RC per scan), :mod:`.change`
(``change.csv``), :mod:`.match` (``lesions_matched.csv``), :mod:`.signal` (a lesion seen at
one visit, rechecked on the other's images), :mod:`.page` (the pair QC page),
:mod:`.compare` (the whole comparison and its outputs), :mod:`.longitudinal` (a group table
over sessions).
"""
