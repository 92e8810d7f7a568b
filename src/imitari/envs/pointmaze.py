"""`pointmaze/medium` and `pointmaze/large`: gymnasium-robotics PointMaze, with a planner expert.

A force-controlled ball rolls through a walled maze to a goal; each reset draws the start and
goal cells (and a little noise) from the seed. The observation is `{"state": float32 (6,)}`,
[x, y, vx, vy, goal x, goal y]; the action is a force in [-1, 1]^2. Success is
gymnasium-robotics' own (within 0.45 of the goal) and ends the episode; episodes are truncated
at gymnasium-robotics' limits (600 and 800 steps).

The behaviour label (`info["route"]`, D3IL's behaviour descriptor) of a successful episode is
the loop-erased sequence of maze cells the ball passed through, e.g. "1,1 2,1 2,2" (a cell
visited again cuts the detour since its first visit, so wobbling across a cell border does not
make a new route): two successful episodes from the same start took the same route exactly when
their labels agree. Episodes that do not reach the goal have no label (None), as D3IL counts
the behaviours of completed tasks, so a policy's failures are not counted as diversity.

The expert plans on the maze grid: breadth-first distances to the goal cell, then one of the
shortest cell paths from the start, drawn uniformly among all of them with an rng seeded by the
reset seed (so demos from different seeds split over the equally short routes: multimodal
data), followed through the cell centres by a PD controller.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from imitari.envs.registry import TaskSpec, import_extra, register

FPS = 10.0
"""Control steps per second (gymnasium-robotics' PointMaze: frame skip 10 at dt 0.01)."""
_EXTRA = "maze"
_MAZES = {"medium": ("PointMaze_Medium-v3", 600), "large": ("PointMaze_Large-v3", 800)}
_KP, _KD, _REACHED = 10.0, 2.0, 0.25
"""The expert's PD gains and how near (maze units) a cell centre counts as passed."""
_EXPERT_STREAM = 0x3A2E
"""Mixed into the expert's seed so its route draw is independent of the env's layout draw."""


def loop_erased(cells: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The path without its loops: each revisit of a cell drops what came after its first visit."""
    path: list[tuple[int, int]] = []
    for cell in cells:
        if cell in path:
            del path[path.index(cell) + 1:]
        else:
            path.append(cell)
    return path


class PointMazeEnv(gym.Wrapper[dict[str, Any], np.ndarray, dict[str, Any], np.ndarray]):
    """A gymnasium-robotics PointMaze behind the imitari env contract."""

    def __init__(self, size: str, *, render: bool = False) -> None:
        robotics = import_extra("gymnasium_robotics", task=f"pointmaze/{size}", extra=_EXTRA)
        gym.register_envs(robotics)
        gym_id, max_steps = _MAZES[size]
        env = gym.make(gym_id, max_episode_steps=max_steps, continuing_task=False,
                       render_mode="rgb_array" if render else None, disable_env_checker=True)
        super().__init__(env)
        self._render = render
        self.maze = env.unwrapped.maze  # type: ignore[attr-defined]
        self.observation_space = spaces.Dict({"state": spaces.Box(-np.inf, np.inf, (6,), np.float32)})
        self._cells: list[tuple[int, int]] = []

    def _obs(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pos = obs["observation"][:2]
        cell = tuple(int(v) for v in self.maze.cell_xy_to_rowcol(pos))
        if not self._cells or self._cells[-1] != cell:
            self._cells.append(cell)  # type: ignore[arg-type]
        return {"state": np.concatenate([obs["observation"], obs["desired_goal"]]).astype(np.float32)}

    def _info(self, info: dict[str, Any]) -> dict[str, Any]:
        info["success"] = bool(info.get("success", False))
        info["route"] = " ".join(f"{r},{c}" for r, c in loop_erased(self._cells)) if info["success"] else None
        return info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._cells = []
        return self._obs(obs), self._info(info)

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = self._info(info)
        return self._obs(obs), float(reward), bool(terminated or info["success"]), bool(truncated), info

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        return np.asarray(self.env.render()) if self._render else None


class MazePlannerExpert:
    """Shortest path on the maze grid (one drawn at random among the equally short) + PD control."""

    identity = "pointmaze-bfs-pd v1"

    def __init__(self, maze: Any) -> None:
        self._maze = maze
        self._free = np.asarray(maze.maze_map) != 1
        self._rng = np.random.default_rng()
        self._waypoints: list[np.ndarray] = []

    def reset(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(None if seed is None else (seed, _EXPERT_STREAM))
        self._waypoints = []

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        state = np.asarray(obs["state"], dtype=np.float64)
        pos, vel, goal = state[:2], state[2:4], state[4:6]
        if not self._waypoints:
            start = tuple(int(v) for v in self._maze.cell_xy_to_rowcol(pos))
            end = tuple(int(v) for v in self._maze.cell_xy_to_rowcol(goal))
            cells = shortest_path(self._free, start, end, self._rng)  # type: ignore[arg-type]
            self._waypoints = [self._maze.cell_rowcol_to_xy(np.array(c)) for c in cells[1:-1]] + [goal]
        while len(self._waypoints) > 1 and np.linalg.norm(self._waypoints[0] - pos) < _REACHED:
            self._waypoints.pop(0)
        return np.clip(_KP * (self._waypoints[0] - pos) - _KD * vel, -1.0, 1.0).astype(np.float32)


def shortest_path(free: np.ndarray, start: tuple[int, int], goal: tuple[int, int],
                  rng: np.random.Generator) -> list[tuple[int, int]]:
    """One of the shortest 4-connected paths of free cells from `start` to `goal` (both
    included), drawn uniformly among all of them."""
    dist = np.full(free.shape, -1)
    dist[goal] = 0
    queue = deque([goal])
    order = []
    while queue:
        cell = queue.popleft()
        order.append(cell)
        for nxt in _neighbours(free, cell):
            if dist[nxt] < 0:
                dist[nxt] = dist[cell] + 1
                queue.append(nxt)
    if dist[start] < 0:
        raise ValueError(f"cell {goal} cannot be reached from {start}")
    count = np.zeros(free.shape)  # number of shortest paths from each cell to the goal
    count[goal] = 1.0
    for cell in order[1:]:
        count[cell] = sum(count[n] for n in _neighbours(free, cell) if dist[n] == dist[cell] - 1)
    path = [start]
    while path[-1] != goal:
        options = [n for n in _neighbours(free, path[-1]) if dist[n] == dist[path[-1]] - 1]
        weights = np.array([count[n] for n in options])
        path.append(options[int(rng.choice(len(options), p=weights / weights.sum()))])
    return path


def _neighbours(free: np.ndarray, cell: tuple[int, int]) -> list[tuple[int, int]]:
    r, c = cell
    return [(r + dr, c + dc) for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1))
            if 0 <= r + dr < free.shape[0] and 0 <= c + dc < free.shape[1] and free[r + dr, c + dc]]


def _expert(env: gym.Env) -> MazePlannerExpert:
    maze = getattr(env, "maze", None)
    if maze is None:
        raise TypeError("the PointMaze expert needs a PointMazeEnv")
    return MazePlannerExpert(maze)


for _size, (_, _steps) in _MAZES.items():
    register(TaskSpec(
        name=f"pointmaze/{_size}",
        make=lambda render=False, size=_size: PointMazeEnv(size, render=render),
        max_steps=_steps,
        obs_keys=("state",),
        fps=FPS,
        description=f"gymnasium-robotics PointMaze {_size}: a ball to a goal through a maze (multimodal routes); "
                    "state [pos, vel, goal]",
        make_expert=_expert,
        extra=_EXTRA,
    ))
