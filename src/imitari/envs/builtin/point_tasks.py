"""Two tiny deterministic 2-D point-mass tasks: fast enough for unit tests, rich enough to
tell policies apart.

The point lives in the arena [-1, 1]^2; an action in [-1, 1]^2 (clipped) moves it by
`STEP * action`. An episode succeeds when the point is within `SUCCESS_RADIUS` of the goal and
is truncated after `MAX_STEPS` steps. Reward is 1 at the successful step, else 0.

* `builtin/reach`: random start and goal; state = [pos, goal] (4-D).
* `builtin/two_routes`: a disc obstacle sits midway between start and goal, so there are two
  equally good ways around it. state = [pos, goal, obstacle centre] (6-D). A move whose path
  touches the obstacle is blocked (the point stays put), so a policy that averages the two
  routes (e.g. L2 regression) heads straight into the obstacle and gets stuck. The expert
  picks a route per episode at random; the final step's `info["route"]` says which way the
  point went past the obstacle (0: left, 1: right, None: it never got past).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

STEP = 0.1
"""Distance moved per unit of action."""
SUCCESS_RADIUS = 0.05
MAX_STEPS = 50
FPS = 10.0
FRAME_SIZE = 128
CAMERA_SIZE = 32
"""Frame side of the `:pixels` variants (envs/pixels.py): small enough to learn from in seconds."""
CAMERA_VIEW = 1.15
"""`camera` frames show [-CAMERA_VIEW, CAMERA_VIEW]^2: the arena with a margin, so a goal near
the edge is not cut off (by the frame or by a policy's crop)."""
GOAL_PIXELS, POINT_PIXELS = 3.5, 2.0
"""Radii, in pixels, of the goal and the point in `camera` frames."""
OBSTACLE_RADIUS = 0.3
HALF_DISTANCE = 0.75
"""two_routes: start and goal lie this far from the obstacle centre, on opposite sides."""
_DETOUR = (0.45, 0.15)
"""two_routes expert: its waypoints sit 0.45 to the side of the obstacle centre and 0.15
before and after it along the start-goal line (0.15 clear of the obstacle)."""
_EXPERT_STREAM = 0x5EED
"""Mixed into the expert's seed so its route choice is independent of the env's layout draw."""

_BACKGROUND = np.array([236, 236, 236], np.uint8)
_OBSTACLE_COLOUR = np.array([90, 90, 90], np.uint8)
_GOAL_COLOUR = np.array([60, 170, 75], np.uint8)
_AGENT_COLOUR = np.array([40, 90, 210], np.uint8)


def _toward(pos: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The action that moves straight at `target`: lands on it when within reach, else full speed
    (scaled, not clipped per axis, so the point moves along the straight line)."""
    action = (target - pos) / STEP
    peak = float(np.abs(action).max())
    return (action / peak if peak > 1.0 else action).astype(np.float32)


class _PointEnv(gym.Env[dict[str, Any], np.ndarray]):
    """Shared point-mass dynamics, success, truncation and drawing; subclasses draw layouts."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": FPS}
    obs_dim: int
    success_radius: float = SUCCESS_RADIUS
    """Distance from the goal within which the episode succeeds."""

    def __init__(self, *, render: bool = False) -> None:
        self.render_mode = "rgb_array" if render else None
        self.observation_space = spaces.Dict({"state": spaces.Box(-1.0, 1.0, (self.obs_dim,), np.float32)})
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._pos = np.zeros(2)
        self._goal = np.zeros(2)
        self._t = 0
        # World coordinates of every pixel centre (row 0 is the top, y = +1).
        centres = (np.arange(FRAME_SIZE) + 0.5) / FRAME_SIZE * 2.0 - 1.0
        self._pixels = np.stack(np.meshgrid(centres, centres[::-1]), axis=-1)

    # --- per-task hooks -------------------------------------------------------------------
    def _layout(self, rng: np.random.Generator) -> None:
        """Draw the start (`_pos`), the goal and anything else of a new episode."""
        raise NotImplementedError

    def _state(self) -> np.ndarray:
        return np.concatenate([self._pos, self._goal])

    def _blocked(self, start: np.ndarray, end: np.ndarray) -> bool:
        """Whether the move from `start` to `end` is blocked."""
        return False

    def _moved(self, previous: np.ndarray) -> None:
        """Called after each step that moved the point (for route tracking)."""

    def _end_info(self) -> dict[str, Any]:
        """Extra info of an episode's final step."""
        return {}

    def _draw_obstacles(self, frame: np.ndarray) -> None:
        """Paint obstacles into `frame`."""

    def _obstacle_discs(self) -> list[tuple[np.ndarray, float, np.ndarray]]:
        """Obstacles as (centre, radius, colour) discs, for `camera`."""
        return []

    # --- gymnasium API --------------------------------------------------------------------
    def _obs(self) -> dict[str, np.ndarray]:
        return {"state": self._state().astype(np.float32)}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self._layout(self.np_random)
        self._t = 0
        return self._obs(), {"success": False}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        move = STEP * np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        target = np.clip(self._pos + move, -1.0, 1.0)
        if not self._blocked(self._pos, target):
            previous, self._pos = self._pos, target
            self._moved(previous)
        self._t += 1
        success = bool(np.linalg.norm(self._pos - self._goal) <= self.success_radius)
        truncated = self._t >= MAX_STEPS
        info: dict[str, Any] = {"success": success}
        if success or truncated:
            info.update(self._end_info())
        return self._obs(), float(success), success, truncated, info

    def render(self) -> np.ndarray:  # type: ignore[override]
        """A FRAME_SIZE x FRAME_SIZE RGB frame: obstacle grey, goal green, point blue."""
        frame = np.broadcast_to(_BACKGROUND, (FRAME_SIZE, FRAME_SIZE, 3)).copy()
        self._draw_obstacles(frame)
        frame[self._disc(self._goal, max(self.success_radius, 0.06))] = _GOAL_COLOUR
        frame[self._disc(self._pos, 0.05)] = _AGENT_COLOUR
        return frame

    def camera(self, size: int) -> np.ndarray:
        """A size x size RGB frame of the scene, as `render` draws it but antialiased (each disc
        covers a pixel by the fraction of the pixel inside it, so positions show to a fraction
        of a pixel), seeing `CAMERA_VIEW` around the centre, with the goal `GOAL_PIXELS` and
        the point `POINT_PIXELS` in radius (the goal larger, so it stays visible around the point)."""
        pixel = 2.0 * CAMERA_VIEW / size
        centres = ((np.arange(size) + 0.5) * pixel - CAMERA_VIEW)
        grid = np.stack(np.meshgrid(centres, centres[::-1]), axis=-1)
        frame = np.broadcast_to(_BACKGROUND.astype(np.float32), (size, size, 3)).copy()
        discs = [*self._obstacle_discs(), (self._goal, max(self.success_radius, GOAL_PIXELS * pixel), _GOAL_COLOUR),
                 (self._pos, POINT_PIXELS * pixel, _AGENT_COLOUR)]
        for centre, radius, colour in discs:
            distance = np.sqrt(((grid - centre) ** 2).sum(axis=-1))
            cover = np.clip((radius - distance) / pixel + 0.5, 0.0, 1.0)[..., None]
            frame += cover * (colour - frame)
        return np.rint(frame).astype(np.uint8)

    def _disc(self, centre: np.ndarray, radius: float) -> np.ndarray:
        """Pixel mask of a disc in world coordinates."""
        return ((self._pixels - centre) ** 2).sum(axis=-1) <= radius**2


class ReachEnv(_PointEnv):
    """`builtin/reach`: reach a random goal from a random start (at least 0.5 apart)."""

    obs_dim = 4

    def _layout(self, rng: np.random.Generator) -> None:
        while True:
            self._pos, self._goal = rng.uniform(-0.9, 0.9, size=(2, 2))
            if np.linalg.norm(self._goal - self._pos) >= 0.5:
                return


class TwoRoutesEnv(_PointEnv):
    """`builtin/two_routes`: go around a disc obstacle, left or right, to the goal behind it."""

    obs_dim = 6

    def __init__(self, *, render: bool = False) -> None:
        super().__init__(render=render)
        self._centre = np.zeros(2)
        self._route: int | None = None

    def _layout(self, rng: np.random.Generator) -> None:
        angle = rng.uniform(0.0, 2.0 * np.pi)
        self._centre = rng.uniform(-0.15, 0.15, size=2)
        direction = np.array([np.cos(angle), np.sin(angle)])
        self._pos = self._centre - HALF_DISTANCE * direction
        self._goal = self._centre + HALF_DISTANCE * direction
        self._route = None

    def _state(self) -> np.ndarray:
        return np.concatenate([self._pos, self._goal, self._centre])

    def _blocked(self, start: np.ndarray, end: np.ndarray) -> bool:
        """Whether the segment start-end comes within the obstacle's radius of its centre."""
        move = end - start
        length2 = float(move @ move)
        along = 0.0 if length2 == 0.0 else float(np.clip((self._centre - start) @ move / length2, 0.0, 1.0))
        return bool(np.linalg.norm(start + along * move - self._centre) < OBSTACLE_RADIUS)

    def _moved(self, previous: np.ndarray) -> None:
        """Record the side on which the point first crosses the line through the obstacle
        centre perpendicular to the start-goal direction."""
        axis = self._goal - self._centre
        if self._route is None and (previous - self._centre) @ axis < 0.0 <= (self._pos - self._centre) @ axis:
            offset = self._pos - self._centre
            self._route = 0 if axis[0] * offset[1] - axis[1] * offset[0] > 0.0 else 1

    def _end_info(self) -> dict[str, Any]:
        return {"route": self._route}

    def _draw_obstacles(self, frame: np.ndarray) -> None:
        frame[self._disc(self._centre, OBSTACLE_RADIUS)] = _OBSTACLE_COLOUR

    def _obstacle_discs(self) -> list[tuple[np.ndarray, float, np.ndarray]]:
        return [(self._centre, OBSTACLE_RADIUS, _OBSTACLE_COLOUR)]


class ReachExpert:
    """Heads straight for the goal at full speed; lands on it exactly."""

    def reset(self, seed: int | None = None) -> None:
        """Nothing to reset: the expert is deterministic and memoryless."""

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        state = np.asarray(obs["state"], dtype=np.float64)
        return _toward(state[:2], state[2:4])


class TwoRoutesExpert:
    """Passes the obstacle on a side drawn per episode from an rng seeded by the reset seed,
    through two waypoints beside the obstacle, then heads for the goal.

    Memoryless within an episode: the waypoint to aim at follows from how far along the
    start-goal line the point is, so the expert needs nothing but the observation.
    """

    def __init__(self) -> None:
        self.route = 0
        """0: pass left of the obstacle (seen from the start), 1: pass right."""

    def reset(self, seed: int | None = None) -> None:
        rng = np.random.default_rng(None if seed is None else (seed, _EXPERT_STREAM))
        self.route = int(rng.integers(2))

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        state = np.asarray(obs["state"], dtype=np.float64)
        pos, goal, centre = state[0:2], state[2:4], state[4:6]
        axis = (goal - centre) / np.linalg.norm(goal - centre)
        side = np.array([-axis[1], axis[0]]) * (1.0 if self.route == 0 else -1.0)
        lateral, before_after = _DETOUR
        along = float((pos - centre) @ axis)
        if along < -before_after - 1e-4:
            target = centre + lateral * side - before_after * axis
        elif along < before_after - 1e-4:
            target = centre + lateral * side + before_after * axis
        else:
            target = goal
        return _toward(pos, target)


def _reach_expert(env: gym.Env) -> ReachExpert:
    return ReachExpert()


def _two_routes_expert(env: gym.Env) -> TwoRoutesExpert:
    return TwoRoutesExpert()


# Imported here, after the shared point-mass pieces exist: the registry imports every task module
# (memory_task among them, which builds on _PointEnv) when it is first imported.
from imitari.envs.registry import TaskSpec, register  # noqa: E402


register(TaskSpec(
    name="builtin/reach",
    make=ReachEnv,
    max_steps=MAX_STEPS,
    obs_keys=("state",),
    fps=FPS,
    description="2-D point mass to a random goal; state [pos, goal]",
    make_expert=_reach_expert,
    pixels=CAMERA_SIZE,
))
register(TaskSpec(
    name="builtin/two_routes",
    make=TwoRoutesEnv,
    max_steps=MAX_STEPS,
    obs_keys=("state",),
    fps=FPS,
    description="2-D point mass around an obstacle, left or right (multimodal); state [pos, goal, obstacle]",
    make_expert=_two_routes_expert,
    pixels=CAMERA_SIZE,
))
