"""Training phases: the stages a policy trains through, chosen by the learner from its step.

VQ-BeT trains its VQ-VAE before its prior, MINT its tokeniser before its generator. A policy
declares its phases (`Policy.training_phases`), each with a number of updates, and computes
the loss of whichever phase it is asked for (`Policy.phase_loss`); the learner picks the phase
from its update count, so the phase is a function of the step -- restored with it on resume --
and never a counter that `loss()` advances behind the loop's back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    """One training phase: its name and how many updates it lasts (None: the rest of the run)."""

    name: str
    steps: int | None = None

    def __post_init__(self) -> None:
        if self.steps is not None and self.steps < 0:
            raise ValueError(f"phase '{self.name}' needs steps >= 0 or None (got {self.steps})")


def phase_at(phases: Sequence[Phase], step: int) -> str:
    """The name of the phase that update `step` (0-based) belongs to; phases of 0 steps are skipped."""
    end = 0
    for phase in phases:
        if phase.steps is None:
            return phase.name
        end += phase.steps
        if step < end:
            return phase.name
    if not phases:
        raise ValueError("a policy needs at least one training phase")
    return phases[-1].name  # every phase bounded: the last one continues
