"""The policy contract shared by every policy class.

A policy maps a batch of observation windows `{key: (B, To, ...)}` to a batch of action chunks
`(B, Ta, A)` (time on axis 1), owns its normaliser, and acts in an environment step by step:
`act` keeps, per env, the last To observations and a queue of actions still to execute, and
asks the network for a new chunk only when an env's queue runs dry. Of each chunk it executes
rows To-1 .. To-1+exec_horizon-1: row To-1 is the action at the current step (the window starts
To-1 steps in the past), as in Diffusion Policy.

A new policy class is one file: a config dataclass derived from `PolicyConfig`, a subclass of
`Policy` implementing `loss` and `predict_chunk`, and a line in `registry.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from imitari.config import ConfigError
from imitari.policies.nn.obs_encoder import LowDimEncoder
from imitari.policies.normalizer import Normalizer


@dataclass(frozen=True)
class Shapes:
    """Per-step shapes of the observation keys and of the action."""

    obs: dict[str, tuple[int, ...]]
    action: tuple[int, ...]


@dataclass
class PolicyConfig:
    """Fields every chunked policy shares."""

    obs_horizon: int = 2
    """To: observations in the window (the current one and To-1 before it)."""
    action_horizon: int = 16
    """Ta: actions predicted per chunk, starting at the window's first step."""
    exec_horizon: int = 8
    """Actions executed from each chunk before predicting the next."""
    ema: bool = False
    """Keep an exponential moving average of the weights and evaluate with it."""

    def __post_init__(self) -> None:
        for name in ("obs_horizon", "action_horizon", "exec_horizon"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1 (got {getattr(self, name)})")
        if self.exec_horizon > self.action_horizon - self.obs_horizon + 1:
            raise ConfigError(
                f"exec_horizon ({self.exec_horizon}) must be <= action_horizon - obs_horizon + 1 "
                f"({self.action_horizon - self.obs_horizon + 1}): the chunk's executable rows start at To-1"
            )


class Policy(nn.Module):
    """Base class: normaliser, observation encoder, and the stateful `act`/`reset` loop."""

    default_lr: ClassVar[float] = 1e-3
    """Learning rate the trainer uses when the run config leaves `lr` unset."""

    def __init__(self, config: PolicyConfig, *, shapes: Shapes, stats: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__()
        self.config = config
        self.shapes = shapes
        self.action_dim = int(np.prod(shapes.action))
        features = [f"obs.{k}" for k in sorted(shapes.obs)] + ["action"]
        self.normalizer = Normalizer(stats, features=features)
        self.encoder = LowDimEncoder(shapes.obs, obs_horizon=config.obs_horizon)
        self._n: int | None = None

    # --- what subclasses implement -----------------------------------------------------
    def loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def predict_chunk(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, To, ...) observation windows -> (B, Ta, A) actions in real units."""
        raise NotImplementedError

    # --- shared helpers ----------------------------------------------------------------
    def encode(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Normalise and flatten an observation window to (B, features)."""
        normed = {k: self.normalizer.normalize(f"obs.{k}", obs[k].float()) for k in self.encoder.keys}
        return self.encoder(normed)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # --- acting in an environment ------------------------------------------------------
    def reset(self, env_ids: Sequence[int] | None = None, **_: Any) -> None:
        """Forget the observation history and queued actions of these envs (all if None)."""
        if env_ids is None or self._n is None:
            self._n = None
            return
        ids = np.asarray(list(env_ids), dtype=np.int64)
        self._fresh[ids] = True
        self._qpos[ids] = self.config.exec_horizon

    def _start(self, n: int, obs: dict[str, np.ndarray]) -> None:
        to, ex = self.config.obs_horizon, self.config.exec_horizon
        self._n = n
        self._history = {k: np.zeros((n, to, *np.shape(v)[1:]), dtype=np.float32) for k, v in obs.items()}
        self._queue = np.zeros((n, ex, self.action_dim), dtype=np.float32)
        self._qpos = np.full(n, ex, dtype=np.int64)
        self._fresh = np.ones(n, dtype=bool)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """One step of N envs: `{key: (N, ...)}` -> actions (N, A)."""
        n = len(next(iter(obs.values())))
        if self._n != n:
            self._start(n, obs)
        for key in self.encoder.keys:
            hist, value = self._history[key], np.asarray(obs[key], dtype=np.float32)
            hist[:, :-1] = hist[:, 1:]
            hist[:, -1] = value
            hist[self._fresh] = value[self._fresh][:, None]
        self._fresh[:] = False
        need = np.nonzero(self._qpos >= self.config.exec_horizon)[0]
        if len(need):
            window = {k: torch.from_numpy(self._history[k][need]).to(self.device) for k in self.encoder.keys}
            with torch.inference_mode():
                chunk = self.predict_chunk(window).float().cpu().numpy()
            start = self.config.obs_horizon - 1
            self._queue[need] = chunk[:, start : start + self.config.exec_horizon]
            self._qpos[need] = 0
        actions = self._queue[np.arange(n), self._qpos].copy()
        self._qpos += 1
        return actions.reshape(n, *self.shapes.action)
