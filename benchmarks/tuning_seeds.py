"""``--seeds A-B`` of the randomised benchmarks: more tuning seeds, never held-out ones."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["tuning_seed_range"]


def tuning_seed_range(first_held_out: int) -> Callable[[str], range]:
    """An ``argparse`` type for tuning seeds ``A-B`` (inclusive) below ``first_held_out``.

    >>> parse = tuning_seed_range(5000)
    >>> parse("60-119")
    range(60, 120)
    >>> try:
    ...     parse("4990-5010")
    ... except argparse.ArgumentTypeError as error:
    ...     print(str(error).split(" (")[0])
    '4990-5010': tuning seeds lie in 0-4999
    """

    def parse(text: str) -> range:
        first, _, last = text.partition("-")
        try:
            seeds = range(int(first), int(last or first) + 1)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a seed range such as 60-119"
            ) from None
        if not seeds or seeds.start < 0 or seeds.stop > first_held_out:
            raise argparse.ArgumentTypeError(
                f"{text!r}: tuning seeds lie in 0-{first_held_out - 1} (held-out seeds are "
                "run without --seeds)"
            )
        return seeds

    return parse
