"""`evaluate` on a tiny fake task, so these tests need none of the other layers."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from imitari.eval.metrics import summarize
from imitari.envs.experts import expert_policy
from imitari.eval.rollout import eval_seeds, evaluate
from imitari.rollouts.envs import EnvWorkerError
from imitari.eval.video import save_video

MAX_STEPS = 25


def goal_of(seed: int) -> float:
    return float(np.random.default_rng(seed).uniform(-1.0, 1.0))


class LineEnv(gym.Env):
    """Move a point on a line to a seeded goal; success within 0.05 of it."""

    def __init__(self, *, render: bool, render_fails: bool, crash_seed: int | None, die_seed: int | None) -> None:
        self.render_mode = "rgb_array" if render else None
        self.render_fails, self.crash_seed, self.die_seed = render_fails, crash_seed, die_seed
        self.observation_space = gym.spaces.Dict({"state": gym.spaces.Box(-2, 2, (2,), np.float32)})
        self.action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def _obs(self) -> dict[str, np.ndarray]:
        return {"state": np.array([self.pos, self.goal], dtype=np.float32)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.seed_, self.goal, self.pos, self.t = seed, goal_of(seed), 0.0, 0
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict]:
        if self.seed_ == self.crash_seed:
            raise ValueError(f"boom at seed {self.seed_}")
        if self.seed_ == self.die_seed:
            os._exit(3)  # a worker killed outright, e.g. by a segfault in a simulator
        self.pos += float(np.clip(action[0], -0.2, 0.2))
        self.t += 1
        success = abs(self.pos - self.goal) < 0.05
        info = {"success": success, "route": "left" if self.goal < 0 else "right"}
        return self._obs(), -abs(self.pos - self.goal), success, self.t >= MAX_STEPS, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        if self.render_fails:
            raise RuntimeError("no OpenGL context here")
        return np.full((9, 13, 3), 10 * self.t, dtype=np.uint8)


class LineExpert:
    """Knows the goal only through the seed it is reset with (tests the seed handshake)."""

    def reset(self, *, seed: int | None) -> None:
        self.goal = goal_of(seed)

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.array([self.goal - obs["state"][0]], dtype=np.float32)


@dataclass
class LineTask:
    fps: float = 10.0
    max_steps: int = MAX_STEPS
    render_fails: bool = False
    crash_seed: int | None = None
    die_seed: int | None = None

    def make(self, *, render: bool = False) -> LineEnv:
        return LineEnv(render=render, render_fails=self.render_fails, crash_seed=self.crash_seed, die_seed=self.die_seed)

    def make_expert(self, env: LineEnv) -> LineExpert:
        return LineExpert()


class RightOnlyPolicy:
    """Moves right only, after waiting `wait` steps in each episode (a per-slot history)."""

    def __init__(self, wait: int = 2) -> None:
        self.wait = wait
        self.steps: dict[int, int] = {}
        self.resets: list[list[int]] = []

    def reset(self, env_ids: Sequence[int] | None = None) -> None:
        assert env_ids is not None
        self.resets.append(list(env_ids))
        for i in env_ids:
            self.steps[i] = 0

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        state = obs["state"]
        actions = np.zeros((len(state), 1), dtype=np.float32)
        for i, (pos, goal) in enumerate(state):
            if self.steps[i] >= self.wait:
                actions[i, 0] = max(goal - pos, 0.0)
            self.steps[i] += 1
        return actions


SEEDS = list(range(100, 112))
RIGHT = sum(goal_of(s) > 0 for s in SEEDS)


def test_success_counting_and_per_slot_resets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("imitari.rollouts.engine.WorkerPool", None)  # workers=1 must not start processes
    policy = RightOnlyPolicy()
    results, videos = evaluate(policy, LineTask(), seeds=SEEDS, num_envs=3, workers=1, progress=False)
    assert videos == []
    assert [r.seed for r in results] == SEEDS
    assert 0 < RIGHT < len(SEEDS)
    assert sum(r.success for r in results) == RIGHT
    for r in results:
        assert r.success == (goal_of(r.seed) > 0)
        assert r.length == MAX_STEPS or r.success
        assert r.info == {"route": "left" if goal_of(r.seed) < 0 else "right"}
    assert policy.resets[0] == [0, 1, 2]
    assert all(set(ids) <= {0, 1, 2} for ids in policy.resets)
    assert sum(len(ids) for ids in policy.resets) == len(SEEDS)
    summary = summarize(results)
    assert summary.route_shares == {"left": 1 - RIGHT / len(SEEDS), "right": RIGHT / len(SEEDS)}


def test_same_results_for_any_num_envs_and_workers() -> None:
    reference, _ = evaluate(RightOnlyPolicy(), LineTask(), seeds=SEEDS, num_envs=1, workers=1, progress=False)
    for num_envs, workers in [(3, 1), (3, 2)]:
        results, _ = evaluate(RightOnlyPolicy(), LineTask(), seeds=SEEDS, num_envs=num_envs, workers=workers, progress=False)
        assert results == reference, (num_envs, workers)


def test_worker_errors_surface() -> None:
    task = LineTask(crash_seed=SEEDS[4])
    with pytest.raises(EnvWorkerError, match="boom at seed 104"):
        evaluate(RightOnlyPolicy(), task, seeds=SEEDS, num_envs=3, workers=2, progress=False)
    with pytest.raises(ValueError, match="boom at seed 104"):
        evaluate(RightOnlyPolicy(), task, seeds=SEEDS, num_envs=3, workers=1, progress=False)
    with pytest.raises(EnvWorkerError, match=r"env worker \d died \(exit code 3\)"):
        evaluate(RightOnlyPolicy(), LineTask(die_seed=SEEDS[4]), seeds=SEEDS, num_envs=3, workers=2, progress=False)


def test_bad_action_batch_is_a_clear_error() -> None:
    class OneAction(RightOnlyPolicy):
        def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
            return np.zeros((1, 1), dtype=np.float32)

    with pytest.raises(ValueError, match=r"shape \(1, 1\) for 3 observations"):
        evaluate(OneAction(), LineTask(), seeds=SEEDS, num_envs=3, workers=1, progress=False)


def test_videos(tmp_path: Any) -> None:
    results, videos = evaluate(
        RightOnlyPolicy(), LineTask(), seeds=SEEDS, num_envs=3, workers=1, video_episodes=2, progress=False
    )
    assert [v.seed for v in videos] == SEEDS[:2]
    for video, result in zip(videos, results):
        assert len(video.frames) == result.length + 1 and video.fps == 10.0
        assert video.frames[-1][0, 0, 0] == 10 * result.length % 256
    path = save_video(videos[0].frames, tmp_path / "videos" / "seed100.mp4", fps=videos[0].fps)
    assert path.suffix == ".mp4" and path.stat().st_size > 0


def test_rendering_failure_skips_videos(capsys: pytest.CaptureFixture[str]) -> None:
    results, videos = evaluate(
        RightOnlyPolicy(), LineTask(render_fails=True), seeds=SEEDS, num_envs=3, workers=1, video_episodes=2,
        progress=False,
    )
    assert videos == [] and len(results) == len(SEEDS)
    lines = [line for line in capsys.readouterr().out.splitlines() if "videos skipped" in line]
    assert lines == ["videos skipped: RuntimeError: no OpenGL context here"]


def test_expert_adapter_gets_episode_seeds() -> None:
    results, _ = evaluate(expert_policy(LineTask()), LineTask(), seeds=SEEDS, num_envs=4, workers=1, progress=False)
    assert all(r.success for r in results)


def test_eval_seeds() -> None:
    assert eval_seeds(3) == [100_000, 100_001, 100_002]
    assert eval_seeds(3, exclude=[100_001, None]) == [100_000, 100_002, 100_003]


def test_expert_on_builtin_reach() -> None:
    pytest.importorskip("imitari.envs.registry")
    results, _ = evaluate(
        expert_policy("builtin/reach"), "builtin/reach", seeds=eval_seeds(10), num_envs=4, workers=1, progress=False
    )
    assert [r.seed for r in results] == eval_seeds(10)
    assert sum(r.success for r in results) == 10
