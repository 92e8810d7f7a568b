"""A residual-MLP denoiser for diffusion and flow-matching policies over whole action chunks.

IDQL (Hansen-Estruch et al., "IDQL: Implicit Q-Learning as an Actor-Critic Method with
Diffusion Policies", 2023) denoises low-dimensional actions with a stack of pre-LayerNorm
residual MLP blocks. Over a flattened action chunk it is a few dense matmuls instead of the
U-Net's many narrow convolutions, so on this CPU it trains about 7x faster than the default
temporal U-Net (1.0M vs 1.46M parameters, batch 256), and learns builtin/reach as well.

The input is [flattened noisy chunk, step embedding, observation condition]; the output is the
flattened chunk's noise (or velocity). The step embedding is Diffusion Policy's: a sinusoidal
code of the (possibly fractional) diffusion step followed by a Mish MLP. With `position_steps`
> 0 every position of the chunk may sit at its own step (Streaming Diffusion Policy's buffer):
the step embedding is then that of the mean step over positions (embedding every position's
step instead made an update 3x slower), and a `position_steps`-wide sinusoidal code of each
position's step joins the input, so the network sees which position is how noisy.
"""

from __future__ import annotations

import torch
from torch import nn

from imitari.policies.nn.embeddings import SinusoidalEmbedding
from imitari.policies.nn.mlp import MLP


def step_encoder(dim: int) -> nn.Sequential:
    """Diffusion step `(...)` -> `(..., dim)`: sinusoidal code, then Linear-Mish-Linear (4x wide)."""
    return nn.Sequential(SinusoidalEmbedding(dim), MLP(dim, dim, hidden=(4 * dim,), activation="mish"))


class ResidualMLPBlock(nn.Module):
    """`x + MLP(LayerNorm(x))`, the MLP `width -> expansion * width -> width` with Mish."""

    def __init__(self, width: int, *, expansion: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.mlp = MLP(width, width, hidden=(expansion * width,), activation="mish", dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm(x))


class ResidualMLPDenoiser(nn.Module):
    """Denoiser `(sample (B, T, A), timestep () or (B,), cond (B, C)) -> (B, T, A)`; built with
    `position_steps` > 0 it also takes one step per position, `timestep (B, T)`."""

    def __init__(
        self,
        action_dim: int,
        horizon: int,
        cond_dim: int,
        *,
        width: int = 256,
        depth: int = 3,
        expansion: int = 2,
        step_embed_dim: int = 128,
        dropout: float = 0.0,
        position_steps: int = 0,
    ) -> None:
        super().__init__()
        if min(width, depth, expansion) < 1:
            raise ValueError(f"width, depth and expansion must be >= 1 (got {width}, {depth}, {expansion})")
        self.horizon, self.action_dim = horizon, action_dim
        self.step_encoder = step_encoder(step_embed_dim)
        self.position_code = SinusoidalEmbedding(position_steps) if position_steps else None
        self.inp = nn.Linear(horizon * (action_dim + position_steps) + step_embed_dim + cond_dim, width)
        self.blocks = nn.Sequential(
            *(ResidualMLPBlock(width, expansion=expansion, dropout=dropout) for _ in range(depth))
        )
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, horizon * action_dim))

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if tuple(sample.shape[1:]) != (self.horizon, self.action_dim):
            raise ValueError(f"chunk of shape {tuple(sample.shape[1:])}; the denoiser was built for "
                             f"{(self.horizon, self.action_dim)}")
        timestep = timestep.to(sample.device)
        if self.position_code is None:
            if timestep.ndim > 1:
                raise ValueError("one step per position needs a denoiser built with position_steps > 0")
            inputs = [sample.flatten(start_dim=1), self.step_encoder(timestep.expand(sample.shape[0]))]
        else:
            per_position = timestep.reshape(*timestep.shape, *[1] * (2 - timestep.ndim)).expand(sample.shape[:2])
            inputs = [sample.flatten(start_dim=1), self.step_encoder(per_position.float().mean(dim=1)),
                      self.position_code(per_position).flatten(start_dim=1)]
        h = self.inp(torch.cat([*inputs, cond], dim=-1))
        return self.out(self.blocks(h)).unflatten(1, (self.horizon, self.action_dim))
