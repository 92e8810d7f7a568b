"""`builtin/gridmaze*`: layouts, the K-layout split, the BFS expert and the procedure it records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imitari.data.store import Dataset
from imitari.envs.builtin.gridmaze import GOAL_VALUE, MOVES, SIZE, bfs_procedure, make_layout, move_of
from imitari.envs.collect import collect
from imitari.envs.registry import get_task


def _free_edges(walls: np.ndarray) -> int:
    free = ~walls
    return int((free[1:] & free[:-1]).sum() + (free[:, 1:] & free[:, :-1]).sum())


def test_layouts_are_connected_mazes_with_shortcuts_fixed_by_their_seed() -> None:
    walls = make_layout(3)
    assert walls.shape == (SIZE, SIZE) and walls[0].all() and walls[-1].all() and walls[:, 0].all()
    assert np.array_equal(walls, make_layout(3)) and not np.array_equal(walls, make_layout(4))
    free = np.argwhere(~walls)
    layer, _ = bfs_procedure(walls, tuple(free[0]), (0, 0))  # (0, 0) is a wall: BFS runs to the end
    assert (layer[~walls] >= 0).all(), "every free cell is reachable"
    assert _free_edges(walls) > len(free) - 1, "shortcuts make loops (a tree has cells - 1 edges)"


def test_k_layout_tasks_train_on_k_layouts_and_test_on_unseen_ones() -> None:
    env = get_task("builtin/gridmaze-k5").make()
    layouts = {env.reset(seed=s)[1]["layout"] for s in range(40)}
    assert layouts == set(range(5))
    tested = {env.reset(seed=s)[1]["layout"] for s in [*range(1000, 1010), *range(2000, 2010)]}
    assert tested.isdisjoint(range(100)), "evaluation seeds never play a layout any K-task trains on"
    obs, _ = env.reset(seed=7)
    assert set(obs) == {"agent", "goal", "walls"} and obs["agent"].sum() == obs["goal"].sum() == 1
    assert not (obs["agent"] * obs["goal"]).any() and not (obs["agent"] * obs["walls"]).any()


def test_actions_map_to_four_moves_and_walls_block() -> None:
    assert [move_of(np.array(m, np.float32)) for m in MOVES] == [0, 1, 2, 3]
    assert move_of(np.array([0.2, -0.9])) == 2 and move_of(np.array([-0.6, 0.6])) == 0
    env = get_task("builtin/gridmaze").make()
    env.reset(seed=1)
    blocked = next(m for m, (dr, dc) in enumerate(MOVES) if env.walls[env.agent[0] + dr, env.agent[1] + dc])
    before = env.agent
    env.step(MOVES[blocked].astype(np.float32))
    assert env.agent == before


def test_bfs_expert_takes_shortest_paths_and_its_procedure_is_the_bfs() -> None:
    spec = get_task("builtin/gridmaze")
    env, expert = spec.make(), spec.expert(spec.make())
    for seed in range(10):
        obs, _ = env.reset(seed=seed)
        expert.reset(seed)
        expert(obs)
        layer, value = expert.procedure["layer"].astype(int), expert.procedure["value"].astype(int)
        distance = layer[env.agent]
        goal = tuple(np.argwhere(obs["goal"] > 0)[0])
        assert layer[goal] == 0 and value[goal] == GOAL_VALUE and layer.max() == distance
        for r, c in np.argwhere(layer > 0):  # each cell points at a neighbour one layer closer
            dr, dc = MOVES[value[r, c] - 1]
            assert layer[r + dr, c + dc] == layer[r, c] - 1
        steps, done, info = 0, False, {}
        while not done:
            obs, _, terminated, truncated, info = env.step(expert(obs))
            steps, done = steps + 1, terminated or truncated
        assert info["success"] and steps == distance, "the expert walks a shortest path"


def test_collect_records_the_procedure_beside_each_action(tmp_path: Path) -> None:
    collect("builtin/gridmaze-k5", tmp_path / "d", episodes=3, workers=1, progress=False)
    ds = Dataset.open(tmp_path / "d")
    assert ds.features["procedure.layer"] == ((SIZE, SIZE), "float32") and "procedure.value" in ds.features
    rows = ds.episode(1)
    for t in range(len(rows["action"])):
        walls = rows["obs.walls"][t] > 0.5
        agent, goal = (tuple(np.argwhere(rows[f"obs.{k}"][t] > 0)[0]) for k in ("agent", "goal"))
        layer, value = bfs_procedure(walls, goal, agent)
        assert np.array_equal(rows["procedure.layer"][t], layer) and np.array_equal(rows["procedure.value"][t], value)
        assert np.array_equal(rows["action"][t], MOVES[value[agent] - 1])


@pytest.mark.parametrize("name", ["builtin/gridmaze", "builtin/gridmaze-k100"])
def test_render_draws_the_maze(name: str) -> None:
    env = get_task(name).make(render=True)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (SIZE * 8, SIZE * 8, 3) and frame.dtype == np.uint8 and len(np.unique(frame.reshape(-1, 3), axis=0)) == 4
