"""Observation encoders: turn a normalised observation window `{key: (B, To, ...)}` into features.

The low-dimensional encoder concatenates the keys and flattens the window. It is the seam
where image encoders (a ResNet per camera, as in Diffusion Policy) plug in: any module with
`out_dim` and `forward(obs) -> (B, out_dim)` can replace it.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LowDimEncoder(nn.Module):
    """Concatenate the low-dim keys along features and flatten over time."""

    def __init__(self, obs_shapes: dict[str, tuple[int, ...]], *, obs_horizon: int) -> None:
        super().__init__()
        self.keys = sorted(obs_shapes)
        self.step_dim = sum(math.prod(obs_shapes[k]) for k in self.keys)
        self.out_dim = self.step_dim * obs_horizon

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [obs[key].flatten(start_dim=2) for key in self.keys]
        return torch.cat(parts, dim=-1).flatten(start_dim=1)
