"""The gymnasium tasks (MuJoCo locomotion, Pendulum) and builtin/track follow the env contract."""

from __future__ import annotations

import numpy as np
import pytest

from imitari.envs.registry import get_task
from imitari.rollouts.engine import RolloutEngine, Sink, Transition


@pytest.mark.parametrize("name", ["classic/pendulum", "builtin/track", "mujoco/hopper", "mujoco/halfcheetah",
                                  "mujoco/walker2d"])
def test_env_contract(name: str) -> None:
    if name.startswith("mujoco/"):
        pytest.importorskip("mujoco")
    spec = get_task(name)
    env = spec.make()
    obs, info = env.reset(seed=3)
    assert set(obs) == {"state"} == set(spec.obs_keys) and info["success"] is False
    assert obs["state"].dtype == np.float32 and obs["state"].shape == env.observation_space["state"].shape
    first = obs["state"]
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert isinstance(reward, float) and info["success"] is False and obs["state"].dtype == np.float32
    assert np.array_equal(env.reset(seed=3)[0]["state"], first), "same seed, same start"
    env.close()


@pytest.mark.parametrize("name", ["classic/pendulum", "builtin/track"])
def test_episodes_are_truncated_at_max_steps(name: str) -> None:
    spec = get_task(name)
    env = spec.make(render=name == "builtin/track")
    env.reset(seed=0)
    ends = [env.step(env.action_space.low)[2:4] for _ in range(spec.max_steps)]
    assert ends[-1] == (False, True) and not any(any(end) for end in ends[:-1])
    if name == "builtin/track":
        frame = env.render()
        assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8


class _Ends(Sink):
    def __init__(self) -> None:
        self.ends: list[tuple[int, bool, bool]] = []

    def on_step(self, t: Transition) -> None:
        if t.terminated or t.truncated:
            self.ends.append((t.step + 1, t.terminated, t.truncated))


class _Still:
    def reset(self, env_ids=None) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.ones((len(obs["state"]), 3), np.float32)


def test_hopper_falls_and_terminates_apart_from_truncation() -> None:
    pytest.importorskip("mujoco")
    sink = _Ends()
    with RolloutEngine("mujoco/hopper", num_envs=2, workers=1) as engine:
        engine.run(_Still(), [0, 1], [sink])
    assert len(sink.ends) == 2 and all(terminated and not truncated and steps < 1000
                                       for steps, terminated, truncated in sink.ends)
