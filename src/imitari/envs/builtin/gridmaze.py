"""`builtin/gridmaze*`: procedurally generated grid mazes and a BFS expert that records its
computation, for Procedure Cloning (Yang et al., "Chain of Thought Imitation with Procedure
Cloning", 2022).

A layout is a 17x17 grid: a recursive-backtracker maze on 8x8 cells (cells at odd coordinates,
walls between them) with `SHORTCUT` of its inner walls knocked out, so there are loops and more
than one route. Start and goal are two distinct free cells. The layout comes from a *layout
seed*, start and goal from the episode seed, so the same layout can be played from many starts:

* `builtin/gridmaze`: layout seed = episode seed (every seed a new maze);
* `builtin/gridmaze-kK` (K = 1, 5, 20, 100): the demo seeds (below `eval.seeds.TEST_SEED_START`)
  use only the K layouts 0..K-1 (layout seed = seed mod K), while test and validation seeds keep
  layout seed = seed, so evaluation runs on mazes never trained on (the paper's protocol).

Observation: three (H, W) maps, `walls`, `agent` and `goal` (1 where it is). Actions: imitari's
actions are Box vectors, so a 2-D action (d_row, d_col) in [-1, 1]^2 picks one of four moves by
its larger component and that one's sign (ties go to rows); a move into a wall stays put.
Reward 1 at the step that enters the goal (which ends the episode), else 0.

The expert runs a layer-synchronous BFS from the goal until a layer reaches the agent. Each cell
it discovers at layer k + 1 points to a neighbour of layer k (the first in UP, DOWN, LEFT, RIGHT
order), and the agent moves where its cell points. That computation, step by step, is recorded
per step as two maps (`procedure_features`): `layer`, the BFS iteration at which each cell
entered the frontier (-1 if never), and `value`, what the cell holds from then on (0 unvisited,
1..4 the move toward its parent, 5 the goal). The visited map after iteration k is layer <= k,
its frontier layer == k, so the two maps hold every intermediate grid losslessly.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from imitari.eval.seeds import TEST_SEED_START

CELLS = 8
"""Maze cells per side; the grid is 2 * CELLS + 1 = 17 wide, border walls included."""
SIZE = 2 * CELLS + 1
SHORTCUT = 0.1
"""Fraction of the remaining inner walls between two cells knocked out after carving."""
MAX_STEPS = 200
FPS = 10.0
MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])
"""UP, DOWN, LEFT, RIGHT as (d_row, d_col); the expert's action is the move itself."""
GOAL_VALUE = 5
"""`value` of the goal cell; 1..4 are moves + 1, 0 unvisited."""
K_LAYOUTS = (1, 5, 20, 100)
_PIXELS = 8
"""Frame pixels per grid cell."""
_COLOURS = {"floor": (236, 236, 236), "wall": (60, 60, 60), "goal": (60, 170, 75), "agent": (40, 90, 210)}


def make_layout(layout_seed: int, *, cells: int = CELLS, shortcut: float = SHORTCUT) -> np.ndarray:
    """Walls (bool, (2*cells+1,)*2) of layout `layout_seed`: recursive backtracker + shortcuts."""
    rng = np.random.default_rng([layout_seed, 0x6D415A45])
    size = 2 * cells + 1
    walls = np.ones((size, size), dtype=bool)
    seen = np.zeros((cells, cells), dtype=bool)
    stack = [(int(rng.integers(cells)), int(rng.integers(cells)))]
    seen[stack[0]] = True
    walls[2 * stack[0][0] + 1, 2 * stack[0][1] + 1] = False
    while stack:
        r, c = stack[-1]
        options = [(r + dr, c + dc) for dr, dc in MOVES if 0 <= r + dr < cells and 0 <= c + dc < cells
                   and not seen[r + dr, c + dc]]
        if not options:
            stack.pop()
            continue
        nr, nc = options[int(rng.integers(len(options)))]
        seen[nr, nc] = True
        walls[2 * nr + 1, 2 * nc + 1] = walls[r + nr + 1, c + nc + 1] = False
        stack.append((nr, nc))
    inner = [(r, c) for r in range(1, size - 1) for c in range(1, size - 1)
             if walls[r, c] and (r % 2) != (c % 2)]  # a wall between two cells
    for i in rng.permutation(len(inner))[: int(round(shortcut * len(inner)))]:
        walls[inner[i]] = False
    return walls


def bfs_procedure(walls: np.ndarray, goal: tuple[int, int], agent: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(layer, value) maps of a layer-synchronous BFS from `goal`, stopped at the layer that
    reaches `agent` (the whole reachable maze if it never does); see the module docstring."""
    layer = np.full(walls.shape, -1, dtype=np.int64)
    value = np.zeros(walls.shape, dtype=np.int64)
    layer[goal], value[goal] = 0, GOAL_VALUE
    frontier, k = [goal], 0
    while frontier and layer[agent] < 0:
        found = []
        for r, c in frontier:  # discover neighbours; a cell points back to its parent
            for m, (dr, dc) in enumerate(MOVES):
                cell = (r + dr, c + dc)
                if not walls[cell] and layer[cell] < 0:
                    layer[cell] = k + 1
                    found.append(cell)
        # Parent = the first neighbour of layer k in MOVES order (a local, order-free rule).
        for r, c in found:
            for m, (dr, dc) in enumerate(MOVES):
                if layer[r + dr, c + dc] == k:
                    value[r, c] = m + 1
                    break
        frontier, k = found, k + 1
    return layer, value


def move_of(action: np.ndarray) -> int:
    """The move index (into MOVES) a 2-D action picks: its larger component and that one's sign."""
    a = np.asarray(action, dtype=np.float64).reshape(2)
    axis = 0 if abs(a[0]) >= abs(a[1]) else 1
    return (0 if a[0] < 0 else 1) if axis == 0 else (2 if a[1] < 0 else 3)


class GridMazeEnv(gym.Env[dict[str, Any], np.ndarray]):
    """Move through a grid maze to the goal; `layouts` K limits demo seeds to K layouts."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": FPS}

    def __init__(self, *, render: bool = False, layouts: int | None = None) -> None:
        self.render_mode = "rgb_array" if render else None
        self.layouts = layouts
        grid = spaces.Box(0.0, 1.0, (SIZE, SIZE), np.float32)
        self.observation_space = spaces.Dict({"agent": grid, "goal": grid, "walls": grid})
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.walls = np.ones((SIZE, SIZE), dtype=bool)
        self.agent = self.goal = (1, 1)
        self._t = 0

    def layout_seed(self, seed: int) -> int:
        """The layout an episode seed plays: seed mod K for demo seeds of a K-layout task."""
        return seed % self.layouts if self.layouts is not None and seed < TEST_SEED_START else seed

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        layout = self.layout_seed(seed) if seed is not None else int(self.np_random.integers(2**31))
        self.walls = make_layout(layout)
        free = np.argwhere(~self.walls)
        start, goal = self.np_random.choice(len(free), size=2, replace=False)
        self.agent, self.goal = tuple(int(x) for x in free[start]), tuple(int(x) for x in free[goal])
        self._t = 0
        return self._obs(), {"success": False, "layout": layout}

    def _obs(self) -> dict[str, np.ndarray]:
        agent, goal = np.zeros((SIZE, SIZE), np.float32), np.zeros((SIZE, SIZE), np.float32)
        agent[self.agent], goal[self.goal] = 1.0, 1.0
        return {"agent": agent, "goal": goal, "walls": self.walls.astype(np.float32)}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        dr, dc = MOVES[move_of(action)]
        target = (self.agent[0] + int(dr), self.agent[1] + int(dc))
        if not self.walls[target]:
            self.agent = target
        self._t += 1
        success = self.agent == self.goal
        return self._obs(), float(success), success, self._t >= MAX_STEPS, {"success": success}

    def render(self) -> np.ndarray:  # type: ignore[override]
        """An RGB frame, `_PIXELS` pixels per grid cell."""
        frame = np.empty((SIZE, SIZE, 3), np.uint8)
        frame[:] = _COLOURS["floor"]
        frame[self.walls] = _COLOURS["wall"]
        frame[self.goal], frame[self.agent] = _COLOURS["goal"], _COLOURS["agent"]
        return np.repeat(np.repeat(frame, _PIXELS, axis=0), _PIXELS, axis=1)


class BFSExpert:
    """Shortest path by BFS from the goal, recomputed each step; `procedure` holds the last
    step's computation (`layer`, `value` as float32 maps), which `imitari collect` records."""

    def __init__(self) -> None:
        self.procedure: dict[str, np.ndarray] = {}

    def reset(self, seed: int | None = None) -> None:
        self.procedure = {}

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        walls = np.asarray(obs["walls"]) > 0.5
        agent = tuple(int(x) for x in np.argwhere(np.asarray(obs["agent"]) > 0.5)[0])
        goal = tuple(int(x) for x in np.argwhere(np.asarray(obs["goal"]) > 0.5)[0])
        layer, value = bfs_procedure(walls, goal, agent)
        self.procedure = {"layer": layer.astype(np.float32), "value": value.astype(np.float32)}
        move = int(value[agent]) - 1
        return (MOVES[move] if 0 <= move < 4 else np.zeros(2)).astype(np.float32)


def _expert(env: gym.Env) -> BFSExpert:
    return BFSExpert()


from imitari.envs.registry import TaskSpec, register  # noqa: E402  (the registry imports this module)

_PROCEDURE = (("layer", (SIZE, SIZE)), ("value", (SIZE, SIZE)))
register(TaskSpec(
    name="builtin/gridmaze", make=GridMazeEnv, max_steps=MAX_STEPS, obs_keys=("agent", "goal", "walls"), fps=FPS,
    description=f"{SIZE}x{SIZE} grid maze, a new layout per seed; BFS expert with its frontier maps",
    make_expert=_expert, procedure_features=_PROCEDURE,
))
for _k in K_LAYOUTS:
    register(TaskSpec(
        name=f"builtin/gridmaze-k{_k}", make=lambda render=False, _k=_k: GridMazeEnv(render=render, layouts=_k),
        max_steps=MAX_STEPS, obs_keys=("agent", "goal", "walls"), fps=FPS,
        description=f"builtin/gridmaze with demo seeds on {_k} layouts, evaluation seeds on unseen ones",
        make_expert=_expert, procedure_features=_PROCEDURE,
    ))
