"""Streaming Diffusion Policy: a diffusion policy that emits an action after a step or two of
denoising instead of a whole sampling chain.

Hoeg, Du and Egeland, "Streaming Diffusion Policy: Fast Policy Synthesis with Variable Noise
Diffusion Models", 2024 (arXiv 2406.04806; built on TEDi, Zhang et al. 2024). Diffusion Policy
(Chi et al., RSS 2023) pays a full denoising chain (10-100 network calls) per chunk. Here the
action chunk is a buffer whose positions carry different noise levels, rising along the
horizon: the next action to execute is nearly clean, the last position is pure noise. Every
control round runs `denoise_steps` network calls (default 1) on the whole buffer, which lowers
every position's level by one band; the front `exec_horizon` actions are then clean and
executed, the buffer shifts left by `exec_horizon`, and fresh Gaussian noise at the top level
fills its back. Each action is still denoised across every level, spread over the rounds it
spends in the buffer, at one network call per round.

Noise levels: level 0 is clean and level l >= 1 is step l - 1 of the DDPM process of
`num_train_timesteps` (N) steps, squared-cosine schedule; the denoiser receives the DDPM step
per position (-1 for clean ones) and predicts the noise. With H = Ta - P future positions (P,
`past_horizon`, rows before the current step; To - 1 by default) in nb = H // exec_horizon bands
(a trailing partial band joins the last), a position in band b sits at level
(b + 1 - phase) N / nb, rounded: phase 0 when a round starts, phase 1 when it ends (band 0
clean). The P positions before the current step are pure noise: fed back as clean context,
the executed actions let the policy copy its last action (the "copycat" failure of behaviour
cloning with action history), which on builtin/reach cost most of the success (0.30 vs 0.96
after the same 1500 steps with down_dims (32, 64) and Ta = 8).

Training (`loss`), as in the paper's code (`TEDiUnetLowdimPolicy`, whose low-dim configs draw
its "chunk-wise" scheme with weight 0.8 and "temporally constant" with 0.2): each window is
noised either buffer-style, at the levels above for a uniformly drawn phase (so any number of
denoising steps per round sees its levels), or, with probability `constant_level_prob` (0.2),
at one uniformly drawn level for the whole chunk as Diffusion Policy trains: the pattern
`predict_chunk` and the warm start denoise. Unlike the paper's code, the scheme is drawn per
window rather than once per batch, the past positions are pure noise (the paper's code labels
them with band 0's level), and the loss skips clean positions.

Acting (`act`): an episode's first buffer is pure noise denoised fully once with
`warm_start_steps` DDIM steps at a constant level (the paper's "denoise" initialisation; its
configs default to noised zeros), then re-noised to the levels of a finished round; after that,
one round per `exec_horizon` steps. Rounds are deterministic DDIM updates (Song et al., ICLR
2021) with the clean estimate clipped to [-1, 1]; the only randomness is the warm start's and
the fresh noise, drawn from each env's seeded generator. `predict_chunk` samples a whole chunk
with Diffusion Policy's configured DDIM/DDPM sampler (`sampler`, `num_inference_steps`).

Size: the paper uses Diffusion Policy's U-Net, down_dims (256, 512, 1024), with the per-position
step embeddings flattened into one conditioning vector. Here the CPU-sized U-Net of `diffusion`,
(32, 64, 128) with a 128-wide step embedding, modulates every position by its own step (FiLM
per position, averaged over the positions each coarser resolution covers): 1.46M parameters
for a 39-D state and 4-D action, and one network call (~2.5 ms with one CPU thread, batch 1)
per step after the warm start's four. `denoiser=mlp` uses `diffusion`'s residual MLP instead,
given a 16-wide sinusoidal code of every position's level (1.07M parameters): an update costs
what `diffusion`'s MLP denoiser's does, builtin/reach is learnt in 3000 updates (1500: 0.52),
and a call costs about a seventh of the U-Net's (`benchmarks/inference_latency.py`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imitari.config import ConfigError
from imitari.policies.base import Shapes
from imitari.policies.env_buffers import ActionQueue, ObsHistory
from imitari.policies.diffusion import DiffusionBasePolicy, DiffusionConfig, mlp_denoiser, unet_denoiser
from imitari.policies.nn.obs_encoder import ObsEncoder

POSITION_CODE = 16
"""Width of the MLP denoiser's sinusoidal code of each position's noise level."""

STREAMING_DENOISERS: dict[str, Callable[[DiffusionConfig, int, ObsEncoder], nn.Module]] = {
    "unet": unet_denoiser,
    "mlp": lambda cfg, action_dim, encoder: mlp_denoiser(cfg, action_dim, encoder, position_steps=POSITION_CODE),
}
"""Denoisers that take one step per position (the U-Net modulates each position by its own)."""


@dataclass
class StreamingDiffusionConfig(DiffusionConfig):
    """Streaming Diffusion Policy with a per-position-step denoiser (CPU-sized), the temporal
    U-Net or the residual MLP; `diffusion`'s fields size either."""

    exec_horizon: int = 1
    """Actions executed per denoising round: the width of one noise band of the buffer (1 streams
    one action per step; the paper's chunk-wise runs use 8)."""
    denoise_steps: int = 1
    """Network calls per round; each lowers every position's level by 1/denoise_steps band."""
    warm_start_steps: int = 4
    """DDIM steps that denoise an episode's first buffer from pure noise."""
    constant_level_prob: float = 0.2
    """Fraction of training windows noised at one level for the whole chunk (what
    `predict_chunk` and the warm start denoise); the rest get the buffer's rising levels."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.temporal_ensemble:
            raise ConfigError("temporal_ensemble is not for streaming_diffusion: it executes a band of its "
                              "denoising buffer, not whole chunks")
        if self.denoiser not in STREAMING_DENOISERS:
            raise ConfigError(f"streaming_diffusion's denoiser must be one of {sorted(STREAMING_DENOISERS)} (got "
                              f"{self.denoiser!r}): the denoiser takes one noise level per position")
        if self.objective != "ddpm":
            raise ConfigError(f"streaming_diffusion's objective is ddpm (got {self.objective!r}): its buffer carries "
                              "DDPM noise levels")
        if self.ptp_candidates != 1:
            raise ConfigError(f"ptp_candidates must be 1 (got {self.ptp_candidates}): streaming_diffusion keeps one "
                              "buffer per env and has no candidate chunks to choose among")
        bands = (self.action_horizon - self.past_rows) // self.exec_horizon
        if self.denoise_steps < 1 or bands * self.denoise_steps > self.num_train_timesteps:
            raise ConfigError(
                f"denoise_steps must be in 1..{self.num_train_timesteps // bands} (got {self.denoise_steps}): each "
                f"of the {bands} bands spans num_train_timesteps / {bands} levels, one or more per step"
            )
        if not 1 <= self.warm_start_steps <= self.num_train_timesteps:
            raise ConfigError(f"warm_start_steps must be in 1..num_train_timesteps={self.num_train_timesteps} "
                              f"(got {self.warm_start_steps})")
        if not 0.0 <= self.constant_level_prob <= 1.0:
            raise ConfigError(f"constant_level_prob must be in [0, 1] (got {self.constant_level_prob})")


def buffer_levels(phase: torch.Tensor, *, num_levels: int, past: int, action_horizon: int, band: int) -> torch.Tensor:
    """Noise levels `(*phase.shape, Ta)` of the streaming buffer at `phase` in [0, 1].

    The `past` positions before the current step are pure noise; future position j lies in band
    b = min(j // band, nb - 1) of nb = (Ta - past) // band and sits at level
    (b + 1 - phase) * num_levels / nb, rounded half up: from one band above its round's target
    at phase 0 (the last band pure noise) to the target at phase 1 (band 0 clean).
    """
    future = action_horizon - past
    bands = future // band
    index = (torch.arange(future, device=phase.device) // band).clamp(max=bands - 1)
    levels = torch.floor((index + 1 - phase.unsqueeze(-1)) * num_levels / bands + 0.5).long()
    noise = torch.full((*phase.shape, past), num_levels, dtype=torch.long, device=phase.device)
    return torch.cat([noise, levels.clamp(0, num_levels)], dim=-1)


class StreamingDiffusionPolicy(DiffusionBasePolicy):
    """Streaming Diffusion Policy (Hoeg et al. 2024): a buffer of rising noise levels, one
    denoising round per executed band of actions."""

    config: StreamingDiffusionConfig
    alpha_bars: torch.Tensor
    round_levels: torch.Tensor
    warm_levels: torch.Tensor

    def __init__(
        self, config: StreamingDiffusionConfig, *, shapes: Shapes, stats: Mapping[str, Mapping[str, Any]]
    ) -> None:
        super().__init__(config, shapes=shapes, stats=stats)
        n = config.num_train_timesteps
        alpha_bars = torch.cat([torch.ones(1), self.train_scheduler.alphas_cumprod.to(torch.float32)])
        self.register_buffer("alpha_bars", alpha_bars, persistent=False)  # level -> signal fraction
        phases = torch.arange(config.denoise_steps + 1) / config.denoise_steps
        self.register_buffer("round_levels", self.levels_at(phases), persistent=False)
        warm = torch.floor(n * (1 - torch.arange(config.warm_start_steps + 1) / config.warm_start_steps) + 0.5)
        self.register_buffer("warm_levels", warm.long(), persistent=False)
        self._stream: torch.Tensor | None = None
        self._cold = np.ones(0, dtype=bool)

    def make_denoiser(self) -> nn.Module:
        return STREAMING_DENOISERS[self.config.denoiser](self.config, self.action_dim, self.obs_encoder)

    def levels_at(self, phase: torch.Tensor) -> torch.Tensor:
        """This policy's buffer levels `(*phase.shape, Ta)` (see `buffer_levels`)."""
        cfg = self.config
        return buffer_levels(phase, num_levels=cfg.num_train_timesteps, past=cfg.past_rows,
                             action_horizon=cfg.action_horizon, band=cfg.exec_horizon)

    def add_noise(self, actions: torch.Tensor, noise: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        """Noise normalised chunks `(B, Ta, A)` to per-position `levels` (broadcast to `(B, Ta)`)."""
        signal = self.alpha_bars[levels].unsqueeze(-1)
        return signal.sqrt() * actions + (1 - signal).sqrt() * noise

    def loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """Noise-prediction MSE over the noisy positions, at buffer-style or constant levels."""
        actions = self.normalize_actions(batch["action"])
        cond = self.condition(batch["obs"])
        b, n = actions.shape[0], self.config.num_train_timesteps
        device = actions.device
        constant = torch.rand(b, device=device) < self.config.constant_level_prob
        streaming = self.levels_at(torch.rand(b, device=device))
        levels = torch.where(constant[:, None], torch.randint(1, n + 1, (b, 1), device=device), streaming)
        noise = torch.randn_like(actions)
        pred = self.denoiser(self.add_noise(actions, noise, levels), levels - 1, cond)
        noisy = (levels > 0).unsqueeze(-1).to(pred.dtype)
        error = (F.mse_loss(pred, noise, reduction="none") * noisy).sum() / (noisy.sum() * self.action_dim)
        return error, {}

    def ddim_step(self, x: torch.Tensor, cond: torch.Tensor, level: torch.Tensor, to: torch.Tensor) -> torch.Tensor:
        """One deterministic DDIM update of every position from `level` to `to`, both `()` (the
        whole chunk) or `(Ta,)`, with the clean estimate clipped to [-1, 1]."""
        steps = (level - 1).expand(x.shape[:2]) if level.ndim else level - 1
        eps = self.denoiser(x, steps, cond)
        signal, target = self.alpha_bars[level].unsqueeze(-1), self.alpha_bars[to].unsqueeze(-1)
        clean = ((x - (1 - signal).sqrt() * eps) / signal.sqrt()).clamp(-1, 1)
        return target.sqrt() * clean + (1 - target).sqrt() * eps

    def warm_start(self, cond: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """First buffers `(B, Ta, A)` of episodes, at the levels of a finished round: pure noise
        denoised fully at a constant level, then re-noised position by position."""
        x = self.sample_noise((cond.shape[0], self.config.action_horizon, self.action_dim), generators)
        for level, to in itertools.pairwise(self.warm_levels):
            x = self.ddim_step(x, cond, level, to)
        return self.add_noise(x, self.sample_noise(x.shape, generators), self.round_levels[-1])

    def denoise_round(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Buffers `(B, Ta, A)` from the start of a round (phase 0) to its end (phase 1)."""
        for level, to in itertools.pairwise(self.round_levels):
            x = self.ddim_step(x, cond, level, to)
        return x

    def advance(self, env_ids: np.ndarray) -> np.ndarray:
        """One round for these envs: their next `exec_horizon` actions `(len, k, A)` float32, real
        units; their buffers shift by k and take fresh noise at the back."""
        assert self._history is not None and self._stream is not None
        cfg = self.config
        start, k = cfg.past_rows, cfg.exec_horizon
        device, dtype = self.device, self.dtype
        with torch.inference_mode():
            window = {key: torch.as_tensor(v).to(device, dtype) for key, v in self._history.windows(env_ids).items()}
            cond = self.condition(window)
            generators = [self.env_generator(int(i)) for i in env_ids]
            x = self._stream[env_ids]
            cold = torch.as_tensor(self._cold[env_ids], device=device)
            if cold.any():
                x[cold] = self.warm_start(cond[cold], [g for g, c in zip(generators, cold.tolist()) if c])
            if not cold.all():
                x[~cold] = self.denoise_round(x[~cold], cond[~cold])
            actions = self.unnormalize_actions(x[:, start : start + k])
            last_band = start + ((cfg.action_horizon - start) // k - 1) * k  # first position of the last band
            fresh_rows = start + cfg.action_horizon - last_band  # the past positions and the last band
            fresh = self.sample_noise((len(env_ids), fresh_rows, self.action_dim), generators)
            kept = x[:, start + k : last_band + k]
            self._stream[env_ids] = torch.cat([fresh[:, :start], kept, fresh[:, start:]], dim=1)
        self._cold[env_ids] = False
        return actions.to(torch.float32).cpu().numpy()

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """One step of N envs: `{key: (N, ...)}` numpy -> actions `(N, *action)` float32.

        Like `Policy.act`, but an env whose executed band is used up runs one denoising round
        on its buffer (the first of an episode a warm start) instead of sampling a chunk.
        """
        n = self._batch_size(obs)
        cfg = self.config
        if self._history is None or self._queue is None or self._history.n != n:
            self._history = ObsHistory(n, cfg.obs_horizon)
            self._queue = ActionQueue(n, cfg.exec_horizon, self.action_dim)
            self._stream = torch.zeros(n, cfg.action_horizon, self.action_dim, device=self.device, dtype=self.dtype)
            self._cold = np.ones(n, dtype=bool)
        self._history.push({key: obs[key] for key in self.shapes.obs})
        need = self._queue.empty()
        if need.size:
            self._queue.fill(need, self.advance(need))
        return self._queue.pop().reshape(n, *self.shapes.action)

    def reset(
        self, env_ids: Sequence[int] | None = None, *, seeds: Sequence[int | None] | None = None, **kwargs: Any
    ) -> None:
        """As `Policy.reset`; the envs' next step also starts their buffers afresh (warm start)."""
        super().reset(env_ids, seeds=seeds, **kwargs)
        if env_ids is not None and self._history is not None:
            self._cold[[int(i) for i in env_ids]] = True
