"""The built-in point-mass tasks: deterministic layouts, perfect experts, two real routes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from imitari.envs.builtin.point_tasks import MAX_STEPS, STEP, TwoRoutesExpert
from imitari.envs.registry import get_task

SEEDS = range(20)
Policy = Callable[[dict[str, np.ndarray]], np.ndarray]


def run(name: str, seed: int, policy: Policy | None = None) -> tuple[bool, int, dict]:
    """One episode with the task's expert (or `policy`): (success, steps, final info)."""
    spec = get_task(name)
    env = spec.make()
    expert = spec.expert(env)
    obs, _ = env.reset(seed=seed)
    expert.reset(seed=seed)
    act = policy or expert
    for t in range(1, spec.max_steps + 1):
        obs, _, terminated, truncated, info = env.step(act(obs))
        assert type(info["success"]) is bool and terminated == info["success"]
        if terminated or truncated:
            return info["success"], t, info
    raise AssertionError("the episode neither terminated nor truncated")


@pytest.mark.parametrize("name", ["builtin/reach", "builtin/two_routes"])
def test_expert_always_succeeds(name: str) -> None:
    for seed in SEEDS:
        success, steps, _ = run(name, seed)
        assert success and steps < MAX_STEPS, f"seed {seed}"


@pytest.mark.parametrize("name", ["builtin/reach", "builtin/two_routes"])
def test_same_seed_same_layout(name: str) -> None:
    spec = get_task(name)
    env, other = spec.make(), spec.make()
    first = env.reset(seed=7)[0]["state"]
    env.step(env.action_space.sample())
    assert np.array_equal(env.reset(seed=7)[0]["state"], first)
    assert np.array_equal(other.reset(seed=7)[0]["state"], first)
    assert not np.array_equal(other.reset(seed=8)[0]["state"], first)


def test_actions_are_clipped() -> None:
    env = get_task("builtin/reach").make()
    before = env.reset(seed=0)[0]["state"][:2]
    after = env.step(np.array([5.0, -5.0]))[0]["state"][:2]
    np.testing.assert_allclose(after - before, np.clip([STEP, -STEP], -1 - before, 1 - before), atol=1e-6)


def test_two_routes_expert_takes_both_routes() -> None:
    routes = []
    for seed in range(40):
        success, _, info = run("builtin/two_routes", seed)
        expert = TwoRoutesExpert()
        expert.reset(seed=seed)
        assert success and info["route"] == expert.route, f"seed {seed}"
        routes.append(info["route"])
    assert 12 <= sum(routes) <= 28, f"routes are unbalanced: {routes}"


def straight_to_goal(obs: dict[str, np.ndarray]) -> np.ndarray:
    state = obs["state"]
    direction = state[2:4] - state[0:2]
    return (direction / np.abs(direction).max()).astype(np.float32)


def average_of_routes(obs: dict[str, np.ndarray]) -> np.ndarray:
    """What an L2-regression policy learns from both routes: the mean expert action."""
    left, right = TwoRoutesExpert(), TwoRoutesExpert()
    left.route, right.route = 0, 1
    return (left(obs) + right(obs)) / 2


@pytest.mark.parametrize("policy", [straight_to_goal, average_of_routes])
def test_averaging_the_routes_hits_the_obstacle(policy: Policy) -> None:
    for seed in SEEDS:
        success, steps, info = run("builtin/two_routes", seed, policy)
        assert not success and steps == MAX_STEPS and info["route"] is None, f"seed {seed}"


@pytest.mark.parametrize("name", ["builtin/reach", "builtin/two_routes"])
def test_render(name: str) -> None:
    env = get_task(name).make(render=True)
    obs, _ = env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (128, 128, 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) >= (4 if name == "builtin/two_routes" else 3)
    env.step(get_task(name).expert(env)(obs))
    assert not np.array_equal(env.render(), frame), "the point moved"
