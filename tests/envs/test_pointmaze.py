"""PointMaze: the shortest-route draw is uniform over equally short routes; the expert succeeds."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from imitari.envs.pointmaze import shortest_path
from imitari.envs.registry import get_task
from imitari.envs.experts import expert_policy
from imitari.eval.rollout import evaluate


def test_shortest_path_draws_every_shortest_route_equally() -> None:
    free = np.ones((3, 3), dtype=bool)  # corner to corner: C(4, 2) = 6 shortest routes
    rng = np.random.default_rng(0)
    counts = Counter(tuple(shortest_path(free, (0, 0), (2, 2), rng)) for _ in range(1200))
    assert len(counts) == 6
    assert all(len(route) == 5 for route in counts)
    assert all(150 < n < 250 for n in counts.values()), counts


def test_shortest_path_goes_around_walls() -> None:
    free = np.array([[1, 1, 1], [0, 0, 1], [1, 1, 1]], dtype=bool)
    assert shortest_path(free, (0, 0), (2, 0), np.random.default_rng(0)) == [
        (0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0)]
    with pytest.raises(ValueError, match="cannot be reached"):
        shortest_path(np.array([[1, 0, 1]], dtype=bool), (0, 0), (0, 2), np.random.default_rng(0))


def test_expert_reaches_the_goal_and_labels_its_route() -> None:
    pytest.importorskip("gymnasium_robotics")
    task = "pointmaze/medium"
    results, _ = evaluate(expert_policy(task), task, seeds=[2000, 2001, 2002], workers=1, progress=False)
    for r in results:
        assert r.success and r.length < get_task(task).max_steps
        cells = r.info["route"].split()
        assert len(cells) >= 2 and len(set(cells)) == len(cells)  # a shortest route never revisits a cell


def test_route_labels_are_loop_erased_and_only_for_successful_episodes() -> None:
    from imitari.envs.pointmaze import loop_erased

    wobble = [(1, 1), (1, 2), (1, 1), (2, 1), (2, 2), (2, 1), (2, 2), (3, 2)]
    assert loop_erased(wobble) == [(1, 1), (2, 1), (2, 2), (3, 2)]
    pytest.importorskip("gymnasium_robotics")
    env = get_task("pointmaze/medium").make()
    env.reset(seed=2000)
    for _ in range(3):
        *_, info = env.step(np.zeros(2, np.float32))
    assert info["success"] is False and info["route"] is None, "an unfinished episode has no behaviour label"
    env.close()
