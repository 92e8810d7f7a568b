"""Schedules of the training loop: the learning-rate factor and the EMA decay, functions of the step.

Both are pure functions of the update count (and, under a CPU budget, of the fraction of the
budget spent), so a resumed run follows exactly the schedule of an uninterrupted one.
"""

from __future__ import annotations

import math


def ema_decay(step: int, *, power: float, max_decay: float) -> float:
    """EMA decay 1 - (1 + step)^-power, capped at `max_decay` (Diffusion Policy's schedule)."""
    return min(max_decay, max(0.0, 1.0 - (1.0 + step) ** -power))


def lr_factor(step: int, *, warmup: int, total: int, spent: float = 0.0, schedule: str = "cosine") -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to zero (or a constant 1); the
    decay follows whichever is further along: the steps or the CPU budget (`spent`, 0..1)."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = max((step - warmup) / max(1, total - warmup), spent)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
