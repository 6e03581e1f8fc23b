"""Series identification and pairing: which series of a study is the T1, T2 or STIR.

Modules: :mod:`.series` (:class:`~bmetoolkit.pairing.series.SeriesInfo`, what a series is),
:mod:`.contrast` (classify a series' contrast from its tags, with reasons), :mod:`.names`
(the contrast a file name states), :mod:`.pair` (choose the T1 and its T2/STIR partners in a
study folder), :mod:`.sanity` and :mod:`.tissue` (roles judged from the images).
"""
