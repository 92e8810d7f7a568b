"""Pairwise differences of 3-D points in a low-dimensional observation, as extra policy inputs.

A manipulation expert acts on where things are relative to each other (gripper to object,
object to goal), while a network given only absolute coordinates has to learn each difference
from the few layouts its demonstrations cover. `PolicyConfig.relative_points` names the points
("KEY:i,j,..." with the first index of each point in the feature KEY; Meta-World's `state`:
"state:0,4,11,36" for the hand, the first and second object and the goal) and the policy feeds
every pair's difference, in the observation's own units, to its observation encoder beside the
normalised keys, times `relative_scale`. "auto" takes the points the dataset's task registers
(`TaskSpec.points`; none for a task without them), resolved by the trainer and saved resolved.
Measured on six Meta-World tasks in docs/generalisation.md sections 9-10.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping

import torch

from imitari.config import ConfigError

KEY = "relative_points"
"""Name of the derived observation key the differences go into (after the dataset's own keys)."""
AUTO = "auto"
"""The spec that stands for the points registered by the dataset's task (`TaskSpec.points`)."""


class RelativePoints:
    """Parsed "KEY:i,j,..." spec: `shape` of the differences, and `__call__` computing them."""

    def __init__(self, spec: str) -> None:
        match = re.fullmatch(r"\s*([^:\s]+)\s*:\s*(\d+(?:\s*,\s*\d+)+)\s*", spec)
        if not match:
            raise ConfigError(f"relative_points must read KEY:i,j[,...] with at least two point indices, e.g. "
                              f"'state:0,4,11,36' (got {spec!r})")
        self.key = match.group(1)
        self.starts = tuple(int(i) for i in match.group(2).split(","))
        if len(set(self.starts)) < len(self.starts):
            raise ConfigError(f"relative_points names a point twice ({spec!r})")
        self.pairs = list(itertools.combinations(range(len(self.starts)), 2))

    @property
    def shape(self) -> tuple[int]:
        return (3 * len(self.pairs),)

    def check(self, obs_shapes: Mapping[str, tuple[int, ...]]) -> None:
        """Refuse a key the policy does not observe, or a point past the end of its vector."""
        shape = obs_shapes.get(self.key)
        if shape is None or len(shape) != 1:
            low_dim = sorted(k for k, s in obs_shapes.items() if len(s) == 1)
            raise ConfigError(f"relative_points: '{self.key}' is not a low-dimensional observation key "
                              f"(these are: {', '.join(low_dim) or 'none'})")
        if max(self.starts) + 3 > shape[0]:
            raise ConfigError(f"relative_points: a point at index {max(self.starts)} needs 3 values, but "
                              f"'{self.key}' has {shape[0]}")
        if KEY in obs_shapes:
            raise ConfigError(f"relative_points: the observations already have a key named '{KEY}'")

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        """`(..., D)` raw values of the key -> `(..., 3 * pairs)`: point j minus point i for i < j."""
        points = [values[..., s:s + 3] for s in self.starts]
        return torch.cat([points[j] - points[i] for i, j in self.pairs], dim=-1)
