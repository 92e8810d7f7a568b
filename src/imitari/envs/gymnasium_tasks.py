"""Gymnasium's MuJoCo locomotion tasks and Pendulum, behind the imitari env contract.

* `mujoco/hopper`, `mujoco/halfcheetah`, `mujoco/walker2d`: Hopper-v5, HalfCheetah-v5 and
  Walker2d-v5 with their default rewards; state = the env's observation vector; 1000 steps,
  Hopper and Walker2d terminate when they fall (unhealthy), HalfCheetah never terminates. These
  are the v5 envs, not the seals v0/v1 envs of the `imitation` library's benchmark (seals fixes
  the episode length and drops early termination), so returns are close but not identical.
* `classic/pendulum`: Pendulum-v1 (swing up and balance; 200 steps), the small continuous task
  the RL learning tests train on.

Each task's expert is the RL policy imitari trained and ships for it
(`imitari.envs.trained_experts`), where one is shipped. Locomotion has no success criterion: `info["success"]` is always False and the metric is the
return. Observations are `{"state": float32}`; actions are the env's Box (tanh-bounded policies
map [-1, 1] to its limits through the policy's "limits" action normaliser).
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from imitari.envs.registry import TaskSpec, import_extra, register
from imitari.envs.trained_experts import trained_expert

FRAME_SIZE = 128
_EXTRA = "mujoco"


class GymStateEnv(gym.Wrapper[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]):
    """A gymnasium env with a Box observation as `{"state": float32}` and `info["success"] = False`."""

    def __init__(self, env_id: str, *, max_steps: int, mujoco: bool, render: bool = False) -> None:
        kwargs: dict[str, Any] = {}
        if mujoco:
            from imitari.envs.metaworld_tasks import default_mujoco_gl  # (a module-level import would be circular)

            default_mujoco_gl()
            import_extra("mujoco", task=env_id, extra=_EXTRA)
            kwargs = {"width": FRAME_SIZE, "height": FRAME_SIZE}
        if render:
            kwargs["render_mode"] = "rgb_array"
        super().__init__(gym.make(env_id, max_episode_steps=max_steps, disable_env_checker=True, **kwargs))
        box = self.env.observation_space
        assert isinstance(box, spaces.Box)
        self.observation_space = spaces.Dict({"state": spaces.Box(-np.inf, np.inf, box.shape, np.float32)})
        self._render = render

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        info["success"] = False
        return {"state": np.asarray(obs, dtype=np.float32)}, info

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(np.asarray(action, dtype=np.float64))
        info["success"] = False
        return {"state": np.asarray(obs, dtype=np.float32)}, float(reward), bool(terminated), bool(truncated), info

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        return np.asarray(self.env.render()) if self._render else None


_TASKS = {  # name: (gymnasium id, episode steps, control rate in Hz, needs mujoco, description)
    "mujoco/hopper": ("Hopper-v5", 1000, 125.0, True, "MuJoCo Hopper-v5: hop forward without falling; state (11,), action (3,)"),
    "mujoco/halfcheetah": ("HalfCheetah-v5", 1000, 20.0, True, "MuJoCo HalfCheetah-v5: run forward; state (17,), action (6,)"),
    "mujoco/walker2d": ("Walker2d-v5", 1000, 125.0, True,
                        "MuJoCo Walker2d-v5: walk forward without falling; state (17,), action (6,)"),
    "classic/pendulum": ("Pendulum-v1", 200, 20.0, False, "gymnasium Pendulum-v1: swing up and balance; state (3,), action (1,)"),
}

for _name, (_env_id, _steps, _fps, _mujoco, _what) in _TASKS.items():
    register(TaskSpec(
        name=_name,
        make=functools.partial(GymStateEnv, _env_id, max_steps=_steps, mujoco=_mujoco),
        max_steps=_steps,
        obs_keys=("state",),
        fps=_fps,
        description=_what,
        extra=_EXTRA if _mujoco else None,
        make_expert=trained_expert(_name),  # the RL expert shipped for the task, if any
    ))
