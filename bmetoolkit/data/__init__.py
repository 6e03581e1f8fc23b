"""Data to run on: bundled samples, the SPIDER download and the synthetic phantom.

Modules: :mod:`.datasets` (paths of the bundled sample scans), :mod:`.spider` (the SPIDER
lumbar dataset: fetch, read, validate) and :mod:`.phantom` (a synthetic spine with known truth).
"""
