"""Observation encoders: a normalised observation window `{key: (B, To, ...)}` -> features.

This is the seam where perception plugs in. Every encoder produces per-step features
`encode_steps(obs) -> (B, To, step_dim)` (what sequence models such as BC-RNN, BC-transformer
and ACT consume as tokens) and, from them, the flattened window `forward(obs) -> (B, out_dim)`
with `out_dim = To * step_dim` (what MLP and U-Net policies condition on, as in Diffusion
Policy's global conditioning). `make_obs_encoder` picks the image encoder (image_encoders.py:
a small CNN or a ResNet-18 per camera, with spatial softmax) when a key holds camera frames
`(H, W, C)`, and the low-dim one otherwise.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from imitari.policies.nn.image_encoders import ImageOptions


class ObsEncoder(nn.Module, ABC):
    """Base of observation encoders: per-step features, and their flattened window."""

    def __init__(self, *, obs_horizon: int, step_dim: int) -> None:
        super().__init__()
        self.obs_horizon = obs_horizon
        self.step_dim = step_dim
        self.out_dim = obs_horizon * step_dim

    @abstractmethod
    def encode_steps(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """`{key: (B, To, ...)}` -> `(B, To, step_dim)`."""

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """`{key: (B, To, ...)}` -> `(B, To * step_dim)`, time-major (step 0's features first)."""
        return self.encode_steps(obs).flatten(start_dim=1)


class LowDimObsEncoder(ObsEncoder):
    """Concatenates the flattened low-dimensional keys (sorted by name) of each step."""

    def __init__(self, obs_shapes: Mapping[str, tuple[int, ...]], *, obs_horizon: int) -> None:
        self.keys = sorted(obs_shapes)
        super().__init__(obs_horizon=obs_horizon, step_dim=sum(math.prod(obs_shapes[k]) for k in self.keys))

    def encode_steps(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([obs[key].flatten(start_dim=2) for key in self.keys], dim=-1)


def make_obs_encoder(obs_shapes: Mapping[str, tuple[int, ...]], *, obs_horizon: int,
                     images: ImageOptions | None = None) -> ObsEncoder:
    """The encoder for these observation keys: `ImageObsEncoder` (with `images`, default
    options when None) if a key holds frames `(H, W, C)`, else `LowDimObsEncoder`."""
    if any(len(shape) == 3 for shape in obs_shapes.values()):
        from imitari.policies.nn.image_encoders import ImageObsEncoder, ImageOptions

        return ImageObsEncoder(obs_shapes, obs_horizon=obs_horizon, options=images or ImageOptions())
    return LowDimObsEncoder(obs_shapes, obs_horizon=obs_horizon)
