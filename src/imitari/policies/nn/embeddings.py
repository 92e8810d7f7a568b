"""Sinusoidal embeddings of scalar positions: diffusion steps, token indices.

The transformer's fixed positional code (Vaswani et al., "Attention Is All You Need", 2017),
used by Diffusion Policy (Chi et al., RSS 2023) to embed the diffusion step before an MLP, and
by the sequence models (BC-transformer, ACT) to mark token positions.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class SinusoidalEmbedding(nn.Module):
    """Maps positions of any shape `(...)` to `(..., dim)` features `[sin(x w_i), cos(x w_i)]`.

    The `dim // 2` frequencies `w_i` run geometrically from 1 down to `1 / max_period`, so small
    and large position differences are both visible. The layer has no parameters.
    """

    freqs: torch.Tensor

    def __init__(self, dim: int, *, max_period: float = 10000.0) -> None:
        super().__init__()
        if dim < 4 or dim % 2:
            raise ValueError(f"sinusoidal embedding dim must be even and >= 4 (got {dim})")
        half = dim // 2
        freqs = torch.exp(torch.arange(half, dtype=torch.float32) * (-math.log(max_period) / (half - 1)))
        self.register_buffer("freqs", freqs, persistent=False)
        self.dim = dim

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        angles = positions.to(self.freqs.dtype).unsqueeze(-1) * self.freqs
        return torch.cat([angles.sin(), angles.cos()], dim=-1)
