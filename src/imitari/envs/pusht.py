"""`pusht`: gym-pusht's Push-T (push a T-shaped block onto a target pose), state observations.

The state is [agent x, agent y, block x, block y, block angle] as `{"state": float32 (5,)}`;
the action is the absolute target position of the agent in [0, 512]^2 (a PD controller tracks
it). Success is gym-pusht's `is_success` (goal coverage above 95%), which ends the episode;
episodes are truncated after 300 steps; the control rate is 10 Hz. gym-pusht draws with
pygame on an off-screen surface, so rendering needs no display or OpenGL.

No scripted expert ships with gym-pusht, so the task has none (yet).
"""

from __future__ import annotations

from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from imitari.envs.registry import TaskSpec, import_extra, register

MAX_STEPS = 300
FPS = 10.0
FRAME_SIZE = 128
_TASK = "pusht"
_EXTRA = "pusht"


class PushTEnv(gym.Wrapper[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]):
    """gym-pusht's PushT-v0 behind the imitari env contract."""

    def __init__(self, *, render: bool = False) -> None:
        import_extra("gym_pusht", task=_TASK, extra=_EXTRA)  # registers gym_pusht/PushT-v0
        env = gym.make(
            "gym_pusht/PushT-v0",
            obs_type="state",
            render_mode="rgb_array",
            visualization_width=FRAME_SIZE,
            visualization_height=FRAME_SIZE,
            max_episode_steps=MAX_STEPS,
            disable_env_checker=True,
        )
        super().__init__(env)
        self._render = render
        box = env.observation_space
        assert isinstance(box, spaces.Box)
        self.observation_space = spaces.Dict(
            {"state": spaces.Box(box.low.astype(np.float32), box.high.astype(np.float32), box.shape, np.float32)}
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        info["success"] = bool(info["is_success"])
        return {"state": np.asarray(obs, dtype=np.float32)}, info

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["success"] = bool(info["is_success"])
        return {"state": np.asarray(obs, dtype=np.float32)}, float(reward), bool(terminated), bool(truncated), info

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """A FRAME_SIZE x FRAME_SIZE RGB frame (the red cross is the action); None if made
        without `render=True`."""
        return cast(np.ndarray, self.env.render()) if self._render else None


register(TaskSpec(
    name=_TASK,
    make=PushTEnv,
    max_steps=MAX_STEPS,
    obs_keys=("state",),
    fps=FPS,
    description="gym-pusht Push-T: push a T block onto its target; state [agent xy, block xy, angle]",
    make_expert=None,
    extra=_EXTRA,
))
