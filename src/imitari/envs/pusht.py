"""`pusht`: gym-pusht's Push-T (push a T-shaped block onto a target pose), state observations.

The state is [agent x, agent y, block x, block y, block angle] as `{"state": float32 (5,)}`;
the action is the absolute target position of the agent in [0, 512]^2 (a PD controller tracks
it). Success is gym-pusht's `is_success` (goal coverage above 95%), which ends the episode;
episodes are truncated after 300 steps; the control rate is 10 Hz. `info["score"]` is the best
reward so far, clip(coverage / 0.95, 0, 1): its final value is the episode's PushT score. gym-pusht draws with
pygame on an off-screen surface, so rendering needs no display or OpenGL.

Two observations of the same env: `pusht` is gym-pusht's 5-D state; `pusht/keypoints` is the
20-D low-dim observation of Diffusion Policy's PushT, nine points of the T (farthest-point samples
of its area, in the same manner, not the same points) and the agent's xy. The expert of both is
the planner of `pusht_expert` (it recovers the T's pose from the keypoints).
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

    def __init__(self, *, render: bool = False, keypoints: bool = False) -> None:
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
        self._keypoints = keypoints
        box = env.observation_space
        assert isinstance(box, spaces.Box)
        if keypoints:
            box = spaces.Box(0.0, 512.0, (2 * len(KEYPOINTS) + 2,), np.float32)
        self.observation_space = spaces.Dict(
            {"state": spaces.Box(box.low.astype(np.float32), box.high.astype(np.float32), box.shape, np.float32)}
        )

    def _obs(self, state: np.ndarray) -> dict[str, np.ndarray]:
        if self._keypoints:
            state = np.concatenate([keypoints_of(state[2:]).ravel(), state[:2]])
        return {"state": np.asarray(state, dtype=np.float32)}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._score = 0.0
        info["success"] = bool(info["is_success"])
        info["score"] = self._score
        return self._obs(obs), info

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._score = max(self._score, float(reward))
        info["success"] = bool(info["is_success"])
        info["score"] = self._score
        return self._obs(obs), float(reward), bool(terminated), bool(truncated), info

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """A FRAME_SIZE x FRAME_SIZE RGB frame (the red cross is the action); None if made
        without `render=True`."""
        return cast(np.ndarray, self.env.render()) if self._render else None


def _t_keypoints(count: int = 9, spacing: float = 2.0) -> np.ndarray:
    """`count` points of the T's area (body frame, gym-pusht's `add_tee`), each the farthest from
    those before it, starting from the one nearest the centre of gravity (0, 45)."""
    xs, ys = np.meshgrid(np.arange(-60.0, 60.01, spacing), np.arange(0.0, 120.01, spacing))
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
    inside = (grid[:, 1] <= 30.0) | (np.abs(grid[:, 0]) <= 15.0)
    grid = grid[inside]
    chosen = [grid[np.argmin(np.hypot(grid[:, 0], grid[:, 1] - 45.0))]]
    for _ in range(count - 1):
        dist = np.min(np.hypot(*(grid[:, None, :] - np.array(chosen)[None]).transpose(2, 0, 1)), axis=1)
        chosen.append(grid[np.argmax(dist)])
    return np.array(chosen)


KEYPOINTS = _t_keypoints()
"""The nine body-frame points of the T that `pusht/keypoints` observes."""


def keypoints_of(pose: np.ndarray) -> np.ndarray:
    """World positions (9, 2) of KEYPOINTS for a T at `pose` (x, y, angle)."""
    c, s = np.cos(pose[2]), np.sin(pose[2])
    return KEYPOINTS @ np.array([[c, s], [-s, c]]) + np.asarray(pose[:2])


def pose_of(keypoints: np.ndarray) -> np.ndarray:
    """The T's pose (x, y, angle in [0, 2 pi)) whose KEYPOINTS best fit `keypoints` (9, 2) (2-D
    Procrustes; exact for keypoints that `keypoints_of` made)."""
    points = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    local_mean, world_mean = KEYPOINTS.mean(axis=0), points.mean(axis=0)
    a, b = KEYPOINTS - local_mean, points - world_mean
    angle = np.arctan2(np.sum(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]), np.sum(a * b))
    c, s = np.cos(angle), np.sin(angle)
    origin = world_mean - local_mean @ np.array([[c, s], [-s, c]])
    return np.array([origin[0], origin[1], angle % (2 * np.pi)])


class _FromKeypoints:
    """The planner behind the 20-D keypoint observation: hands it the 5-D state it plans on."""

    def __init__(self, planner: Any) -> None:
        self._planner = planner
        self.identity = planner.identity

    def reset(self, seed: int | None = None) -> None:
        self._planner.reset(seed)

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        keypoints = np.asarray(obs["state"], dtype=np.float64)
        state = np.concatenate([keypoints[-2:], pose_of(keypoints[:-2])])
        return cast(np.ndarray, self._planner({"state": state}))


def _planner(env: gym.Env) -> Any:
    import_extra("gym_pusht", task=_TASK, extra=_EXTRA)
    from imitari.envs.pusht_expert import PushTPlanner

    return PushTPlanner()


register(TaskSpec(
    name=_TASK,
    make=PushTEnv,
    max_steps=MAX_STEPS,
    obs_keys=("state",),
    fps=FPS,
    description="gym-pusht Push-T: push a T block onto its target; state [agent xy, block xy, angle]",
    make_expert=_planner,
    extra=_EXTRA,
))
register(TaskSpec(
    name=f"{_TASK}/keypoints",
    make=lambda render=False: PushTEnv(render=render, keypoints=True),
    max_steps=MAX_STEPS,
    obs_keys=("state",),
    fps=FPS,
    description="gym-pusht Push-T with Diffusion Policy's 20-D low-dim observation: 9 T keypoints + agent xy",
    make_expert=lambda env: _FromKeypoints(_planner(env)),
    extra=_EXTRA,
))
