"""A tanh-squashed Gaussian MLP policy: the actor of SAC and PPO, and a policy like any other.

The MLP maps the normalised observation to the mean and log-std of a diagonal Gaussian over a
pre-squash action u; the normalised action is tanh(u), in [-1, 1], which the "limits" action
normaliser maps onto the env's action bounds (online learners build the statistics from the
env's action space). This is the actor of SAC (Haarnoja et al. 2018, with the log-std clamped
to [`log_std_min`, `log_std_max`] as in CleanRL and Stable-Baselines3) and, with the same
log-probability, of PPO. As a registered policy it rolls out in `imitari eval` and `collect`
like the others: the mean action tanh(mean) by default, samples with `sample_actions` or
inside `exploring()` (what the learners collect with), from the policy's seeded per-env
generators, so an episode's actions follow its seed. Trained offline (`imitari train --policy
tanh_gaussian` on demonstrations) it regresses tanh(mean) onto the normalised action (L2).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from imitari.config import ConfigError
from imitari.policies.base import Generators, Policy, PolicyConfig, Shapes
from imitari.policies.nn.mlp import MLP
from imitari.policies.normalizer import NormMode

_TANH_EPS = 1e-6
"""Keeps atanh and log(1 - tanh^2) finite for actions at the bounds."""


@dataclass
class TanhGaussianConfig(PolicyConfig):
    """One observation, one action per step; the MLP widths and the log-std range."""

    obs_horizon: int = 1
    action_horizon: int = 1
    exec_horizon: int = 1
    obs_norm: NormMode = "limits"
    """Observations scaled to [-1, 1] by the demos' range: what BC and DAgger from locomotion
    demos need (raw ones lose 0.6 of the normalised return, docs/interactive.md); online
    learners build unit statistics from the env's spaces, so SAC sees raw observations and PPO
    (which sets `gaussian`) writes its running ones."""
    hidden: tuple[int, ...] = (256, 256)
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    sample_actions: bool = False
    """Act with samples instead of the mean action."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.hidden = tuple(self.hidden)
        if any(width < 1 for width in self.hidden):
            raise ConfigError(f"hidden widths must be >= 1 (got {self.hidden})")
        if not self.log_std_min < self.log_std_max:
            raise ConfigError(f"log_std_min ({self.log_std_min}) must be below log_std_max ({self.log_std_max})")


class TanhGaussianPolicy(Policy):
    """Observation -> tanh(Normal(mean, std)); the actor of the online learners."""

    train_defaults: ClassVar[Mapping[str, Any]] = {"lr": 3e-4}
    config: TanhGaussianConfig

    def __init__(self, config: TanhGaussianConfig, *, shapes: Shapes, stats: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__(config, shapes=shapes, stats=stats)
        self.net = MLP(self.obs_encoder.out_dim, 2 * self.action_dim, hidden=config.hidden)
        self.explore = False
        """Sample actions (set by `exploring()`)."""

    @contextlib.contextmanager
    def exploring(self) -> Iterator[None]:
        """Act with samples inside the block (an online learner's rollouts)."""
        before, self.explore = self.explore, True
        try:
            yield
        finally:
            self.explore = before

    def gaussian(self, obs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Observation windows -> (mean, log_std) of the pre-squash Gaussian, `(B, A)` each."""
        mean, raw = self.net(self.encode_obs(obs)).chunk(2, dim=-1)
        cfg = self.config
        log_std = cfg.log_std_min + 0.5 * (cfg.log_std_max - cfg.log_std_min) * (torch.tanh(raw) + 1)
        return mean, log_std

    @staticmethod
    def squashed_log_prob(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
        """log-density `(B,)` of the normalised action tanh(u), u ~ Normal(mean, exp(log_std))."""
        gauss = -0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
        # log(1 - tanh(u)^2), written stably as 2 (log 2 - u - softplus(-2u))
        jacobian = 2 * (math.log(2) - u - F.softplus(-2 * u))
        return (gauss - jacobian).sum(-1)

    def sample(self, obs: Mapping[str, torch.Tensor], noise: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised sample: (normalised action `(B, A)`, its log-density `(B,)`); `noise`
        standard normal `(B, A)`, else drawn from torch's global generator."""
        mean, log_std = self.gaussian(obs)
        eps = torch.randn_like(mean) if noise is None else noise
        u = mean + log_std.exp() * eps
        return torch.tanh(u), self.squashed_log_prob(u, mean, log_std)

    def log_prob(self, obs: Mapping[str, torch.Tensor], action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-density `(B,)` of normalised actions `(B, A)`, entropy `(B,)` of the pre-squash Gaussian)."""
        mean, log_std = self.gaussian(obs)
        u = torch.atanh(action.clamp(-1 + _TANH_EPS, 1 - _TANH_EPS))
        entropy = (log_std + 0.5 * (1 + math.log(2 * math.pi))).sum(-1)
        return self.squashed_log_prob(u, mean, log_std), entropy

    def loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        target = self.normalize_actions(batch["action"])[:, 0]
        mean, _ = self.gaussian(batch["obs"])
        return F.mse_loss(torch.tanh(mean), target), {}

    def predict_chunk(self, obs: Mapping[str, torch.Tensor], *, generator: Generators = None) -> torch.Tensor:
        if self.explore or self.config.sample_actions:
            action, _ = self.sample(obs, self.sample_noise((self._batch(obs), self.action_dim), generator))
        else:
            action = torch.tanh(self.gaussian(obs)[0])
        return self.unnormalize_actions(action[:, None])

    @staticmethod
    def _batch(obs: Mapping[str, torch.Tensor]) -> int:
        return next(iter(obs.values())).shape[0]
