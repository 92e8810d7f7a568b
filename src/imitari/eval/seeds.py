"""Evaluation seed ranges: seeds that choose (validation) never report (test), and neither is a demo.

A seed fixes an env's layout in any process (docs/architecture.md), so a seed range is a set
of layouts. Demonstrations use 0 .. N-1 (`imitari collect`'s default). Everything that *chooses*
-- periodic evaluation during training, the best checkpoint it keeps, hyper-parameter and
default sweeps -- evaluates on the validation range; everything that *reports* -- `imitari
bench` (from 1000) and `imitari eval` (from 100000) -- evaluates outside it. The suites check
that their test seeds stay out of the validation range.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from imitari.config import ConfigError

VALIDATION_SEED_START = 2000
VALIDATION_SEED_STOP = 3000
"""Validation seeds are VALIDATION_SEED_START .. VALIDATION_SEED_STOP - 1."""
TEST_SEED_START = 1000
"""Where the bench suites' reported evaluation seeds start (below the validation range)."""


def is_validation(seed: int) -> bool:
    return VALIDATION_SEED_START <= seed < VALIDATION_SEED_STOP


def validation_seeds(n: int, *, exclude: Iterable[int | None] = ()) -> list[int]:
    """The first `n` validation seeds not in `exclude` (e.g. a dataset's demo seeds)."""
    excluded = set(exclude)
    seeds = list(itertools.islice(
        (s for s in range(VALIDATION_SEED_START, VALIDATION_SEED_STOP) if s not in excluded), n))
    if len(seeds) < n:
        raise ConfigError(f"only {len(seeds)} validation seeds are free, {n} were asked for")
    return seeds


def split_of(seeds: Sequence[int]) -> str:
    """'validation', 'test' or 'mixed': which range a list of evaluation seeds lies in."""
    flags = {is_validation(int(s)) for s in seeds}
    return "mixed" if len(flags) > 1 else ("validation" if flags == {True} else "test")


def check_test_seeds(seeds: Sequence[int], *, what: str) -> None:
    """ConfigError if any of these reported-result seeds is a validation seed."""
    inside = [int(s) for s in seeds if is_validation(int(s))]
    if inside:
        raise ConfigError(
            f"{what}: seeds {inside[0]}-{inside[-1]} are validation seeds ({VALIDATION_SEED_START}-"
            f"{VALIDATION_SEED_STOP - 1}), kept for choosing checkpoints and defaults; report on others"
        )
