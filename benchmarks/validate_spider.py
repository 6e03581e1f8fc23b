"""Agreement of bmetoolkit's Modic typing with SPIDER's radiologist grades, per disc level.

Usage::

    bmetoolkit spider fetch                       # once, needs internet (~GBs, CC BY 4.0)
    python benchmarks/validate_spider.py ~/.cache/bmetoolkit/spider [--limit N] \
        [--out per_disc.csv] [--json metrics.json]
    python benchmarks/validate_spider.py --phantom-folder /tmp/spider_phantom --phantoms 4
        # no internet: builds phantom cases in SPIDER's layout and scores those instead

Prints accuracy and Cohen's kappa of the Modic type (none/I/II/III) and of Modic presence
(yes/no, the task of SpineNet V2: balanced accuracy 0.86, kappa 0.74 on n=1331), and per-type
sensitivity and precision. SPIDER grades one type per disc; bmetoolkit's two endplates facing
the disc are collapsed to one type (see :func:`bmetoolkit.data.spider.disc_predictions`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the phantom layout is in tests/

from bmetoolkit.commands.spider import format_metrics
from bmetoolkit.data import spider
from bmetoolkit.io import write_json, write_text
from tests.spider_layout import write_gradings, write_phantom_case


def build_phantom_folder(root: Path, n: int) -> Path:
    """Write ``n`` small phantom studies (seeds 1..n, random lesions) in SPIDER's layout."""
    from bmetoolkit.data.phantom import PhantomConfig, make_phantom

    rows = []
    for seed in range(1, n + 1):
        study = make_phantom(seed=seed, lesions="random", config=PhantomConfig.small())
        rows += write_phantom_case(study, root, patient=seed)
    write_gradings(rows, root)
    return root


def main(argv: list[str] | None = None) -> int:
    """Run the validation; return 0, or 1 when some patients failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, nargs="?", metavar="SPIDER_DIR")
    parser.add_argument("--limit", type=int, help="at most N patients")
    parser.add_argument("--out", type=Path, help="per-disc table (CSV)")
    parser.add_argument("--json", type=Path, help="metrics (JSON)")
    parser.add_argument("--phantom-folder", type=Path, help="build phantom cases here and use them")
    parser.add_argument("--phantoms", type=int, default=4, help="number of phantom cases")
    args = parser.parse_args(argv)
    root = args.root
    if args.phantom_folder is not None:
        root = build_phantom_folder(args.phantom_folder, args.phantoms)
    if root is None:
        parser.error("give SPIDER_DIR or --phantom-folder")
    failures: list[str] = []
    start = time.perf_counter()
    per_disc, metrics = spider.validate_spider(
        root,
        limit=args.limit,
        on_error=lambda patient, exc: failures.append(f"{patient}: {exc}"),
        progress=True,
    )
    elapsed = time.perf_counter() - start
    if args.out:
        write_text(args.out, per_disc.to_csv(index=False))
    if args.json:
        write_json(args.json, metrics | {"failures": failures, "seconds": elapsed})
    print(format_metrics(metrics))
    print(f"{elapsed:.1f} s")
    for failure in failures:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
