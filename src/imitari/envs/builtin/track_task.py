"""`builtin/track`: put the action on a target drawn afresh every step (dense reward, 2-D).

The state is the current target, uniform in [-1, 1]^2; the reward is -||action - target||^2
(action clipped to [-1, 1]^2); episodes are truncated after 100 steps and never succeed. It is
Stable-Baselines3's `IdentityEnvBox` idea in two dimensions: a continuous-control task an RL
learner must solve in a few thousand steps (the SAC and PPO learning tests), with a trivial
expert (act = state). Random actions return about -133 per episode, the zero action -66.7,
the expert 0.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from imitari.envs.registry import TaskSpec, register

MAX_STEPS = 100
FPS = 10.0
FRAME_SIZE = 64


class TrackEnv(gym.Env[dict[str, Any], np.ndarray]):
    """Observe a target, act on it, get -squared distance; a new target every step."""

    def __init__(self, *, render: bool = False) -> None:
        self.observation_space = spaces.Dict({"state": spaces.Box(-1.0, 1.0, (2,), np.float32)})
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._target = np.zeros(2, np.float32)
        self._t = 0

    def _draw(self) -> dict[str, np.ndarray]:
        self._target = self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)
        return {"state": self._target.copy()}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        return self._draw(), {"success": False}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        error = np.clip(np.asarray(action, np.float64).reshape(2), -1.0, 1.0) - self._target
        self._t += 1
        return self._draw(), float(-(error ** 2).sum()), False, self._t >= MAX_STEPS, {"success": False}

    def render(self) -> np.ndarray:  # type: ignore[override]
        """A FRAME_SIZE x FRAME_SIZE frame: the target as a green square on grey."""
        frame = np.full((FRAME_SIZE, FRAME_SIZE, 3), 236, np.uint8)
        col, row = ((self._target * [1, -1] + 1) / 2 * (FRAME_SIZE - 1)).round().astype(int)
        frame[max(row - 2, 0):row + 3, max(col - 2, 0):col + 3] = (60, 170, 75)
        return frame


class TrackExpert:
    """Acts on the target exactly."""

    def reset(self, seed: int | None = None) -> None:
        """Nothing to reset."""

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(obs["state"], np.float32)


register(TaskSpec(
    name="builtin/track",
    make=TrackEnv,
    max_steps=MAX_STEPS,
    obs_keys=("state",),
    fps=FPS,
    description="act on a 2-D target drawn every step, reward -squared error (RL sanity task); state [target]",
    make_expert=lambda env: TrackExpert(),
))
