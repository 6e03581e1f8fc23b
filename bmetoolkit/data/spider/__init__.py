"""SPIDER lumbar spine MRI: opt-in download, reader, and agreement with its Modic grades.

SPIDER (van der Graaf et al., Sci Data 11, 264, 2024; Zenodo record 10159290, CC BY 4.0) holds
447 sagittal T1 and T2 series of 218 patients with low back pain, vertebra / disc / canal
masks, and radiologists' per-disc gradings including the Modic type. bmetoolkit never
downloads it by itself: :func:`fetch_spider` (or ``bmetoolkit spider fetch``) does, into a
user cache.

SPIDER grades Modic **per disc**, not per endplate: the expected type of a disc level is
compared with bmetoolkit's two endplates facing that disc (:func:`disc_predictions`).

Modules: :mod:`.download` (Zenodo, cache, checksums, resume: a partial download never looks
complete), :mod:`.read` (the folder's layout and mask values; cases, gradings, levels, vertebra
labels), :mod:`.score` (per-disc predictions and agreement) and
:mod:`.validate` (the analysis over a SPIDER folder). Every public name is importable from
``bmetoolkit.data.spider`` itself.
"""

from bmetoolkit.data.spider.download import (
    CACHE_ENV_VAR,
    SPIDER_FILES,
    SPIDER_RECORD,
    ZENODO_API,
    DownloadError,
    RemoteFile,
    cache_dir,
    download,
    fetch_spider,
    list_record_files,
)
from bmetoolkit.data.spider.read import (
    GRADING_COLUMNS,
    MODIC_TYPES,
    SPIDER_LEVELS,
    SpiderCase,
    disc_name,
    find_cases,
    modic_category,
    read_gradings,
    spider_level,
    spider_vertebrae,
)
from bmetoolkit.data.spider.score import agreement, disc_predictions
from bmetoolkit.data.spider.validate import Analyzer, validate_spider
from bmetoolkit.metrics import cohen_kappa

__all__ = [
    "CACHE_ENV_VAR",
    "GRADING_COLUMNS",
    "MODIC_TYPES",
    "SPIDER_FILES",
    "SPIDER_LEVELS",
    "SPIDER_RECORD",
    "ZENODO_API",
    "Analyzer",
    "DownloadError",
    "RemoteFile",
    "SpiderCase",
    "agreement",
    "cache_dir",
    "cohen_kappa",
    "disc_name",
    "disc_predictions",
    "download",
    "fetch_spider",
    "find_cases",
    "list_record_files",
    "modic_category",
    "read_gradings",
    "spider_level",
    "spider_vertebrae",
    "validate_spider",
]
