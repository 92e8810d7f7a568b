"""The 1-D temporal convolutional U-Net of Diffusion Policy (Chi et al., RSS 2023).

The action chunk is a 1-D signal over time with action dims as channels. Every residual block
is conditioned by FiLM (a per-channel scale and bias) on [diffusion-step embedding, observation
features]. Down/up-sampling halves/doubles the time axis, so the horizon must be divisible by
2 ** (len(down_dims) - 1). The paper's size is down_dims (256, 512, 1024), about 64M parameters;
imitari's default is much smaller to train in minutes on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from imitari.policies.nn.embeddings import SinusoidalEmbedding


class ConvBlock(nn.Sequential):
    """Conv1d -> GroupNorm -> Mish."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, n_groups: int) -> None:
        super().__init__(
            nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, c_out),
            nn.Mish(),
        )


class FiLMResBlock(nn.Module):
    """Two conv blocks with FiLM conditioning between them, plus a residual connection."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, *, kernel_size: int, n_groups: int) -> None:
        super().__init__()
        self.block1 = ConvBlock(c_in, c_out, kernel_size, n_groups)
        self.block2 = ConvBlock(c_out, c_out, kernel_size, n_groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.residual = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, bias = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        out = self.block1(x) * scale + bias
        return self.block2(out) + self.residual(x)


class TemporalUNet(nn.Module):
    """Predicts the noise (or sample) of an action chunk (B, T, A) given step and conditioning."""

    def __init__(
        self,
        action_dim: int,
        cond_dim: int,
        *,
        down_dims: Sequence[int] = (64, 128, 256),
        kernel_size: int = 5,
        n_groups: int = 8,
        step_embed_dim: int = 128,
    ) -> None:
        super().__init__()
        self.step_encoder = nn.Sequential(
            SinusoidalEmbedding(step_embed_dim),
            nn.Linear(step_embed_dim, 4 * step_embed_dim),
            nn.Mish(),
            nn.Linear(4 * step_embed_dim, step_embed_dim),
        )
        cond_total = step_embed_dim + cond_dim
        block = dict(kernel_size=kernel_size, n_groups=n_groups)
        dims = [action_dim, *down_dims]
        pairs = list(zip(dims[:-1], dims[1:]))
        self.downs = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(pairs):
            last = i == len(pairs) - 1
            self.downs.append(nn.ModuleList([
                FiLMResBlock(c_in, c_out, cond_total, **block),
                FiLMResBlock(c_out, c_out, cond_total, **block),
                nn.Identity() if last else nn.Conv1d(c_out, c_out, 3, stride=2, padding=1),
            ]))
        mid = dims[-1]
        self.mids = nn.ModuleList([FiLMResBlock(mid, mid, cond_total, **block) for _ in range(2)])
        self.ups = nn.ModuleList()
        for c_out, c_in in reversed(pairs[1:]):
            self.ups.append(nn.ModuleList([
                FiLMResBlock(2 * c_in, c_out, cond_total, **block),
                FiLMResBlock(c_out, c_out, cond_total, **block),
                nn.ConvTranspose1d(c_out, c_out, 4, stride=2, padding=1),
            ]))
        self.final = nn.Sequential(
            ConvBlock(down_dims[0], down_dims[0], kernel_size, n_groups), nn.Conv1d(down_dims[0], action_dim, 1)
        )
        self.min_divisor = 2 ** (len(down_dims) - 1)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if sample.shape[1] % self.min_divisor:
            raise ValueError(f"horizon {sample.shape[1]} must be divisible by {self.min_divisor} for this U-Net")
        x = sample.transpose(1, 2)
        c = torch.cat([self.step_encoder(timestep.expand(sample.shape[0])), cond], dim=-1)
        skips = []
        for res1, res2, down in self.downs:
            x = res2(res1(x, c), c)
            skips.append(x)
            x = down(x)
        for block in self.mids:
            x = block(x, c)
        for res1, res2, up in self.ups:
            x = torch.cat([x, skips.pop()], dim=1)
            x = up(res2(res1(x, c), c))
        return self.final(x).transpose(1, 2)
