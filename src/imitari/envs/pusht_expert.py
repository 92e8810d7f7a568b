"""The PushT expert: sampling-based MPC (CEM over push primitives) on a private copy of gym-pusht's
pymunk simulator.

gym-pusht ships no expert, so this one plans. A plan is a short sequence of agent targets made from
four numbers: a contact point on the T's outline, a push direction (the inward normal there,
turned by up to `max_turn`), a push length and a speed. The targets lead the agent to just outside
the contact point (around the block when the straight way would hit it), push, and hold still for
`settle` steps. Every `replan_every` control steps the expert copies the observed state into its
simulator, rolls out `samples` random plans plus the rest of its current one (restoring the state
before each), refines the best with `refine` more samples drawn around it (one round of the
cross-entropy method), and follows the plan whose end state is closest to the goal.

The score is a cheap proxy of coverage: the mean squared distance of the T's keypoints to the
goal's, which is smooth everywhere and zero exactly at full coverage (the true reward is a shapely
polygon intersection, three times the cost of a step's physics, and flat until the T overlaps
its goal).

Only the observation reaches the expert (the registry's Expert contract): gym-pusht damps the
block's velocity to zero every physics step, and the agent's velocity, which the observation
lacks, comes from stepping the private simulator with each executed target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imitari.config import ConfigError

GOAL_POSE = (256.0, 256.0, np.pi / 4)
"""gym-pusht's fixed goal pose of the T (x, y, angle)."""
_SUBSTEPS, _DT, _KP, _KV = 10, 0.01, 100.0, 20.0
"""gym-pusht's PD control of the agent: 10 physics steps of 10 ms per 10 Hz control step."""
_OUTLINE = np.array([(-60, 0), (60, 0), (60, 30), (15, 30), (15, 120), (-15, 120), (-15, 30), (-60, 30)], float)
"""The T's outline in its body frame (gym-pusht's `add_tee` with scale 30), counter-clockwise."""
_RECTS = (((-60.0, 0.0), (60.0, 30.0)), ((-15.0, 30.0), (15.0, 120.0)))
_CENTRE = np.array([0.0, 45.0])
"""The T's centre of gravity in its body frame."""
_AGENT_RADIUS, _CLEARANCE, _ORBIT = 15.0, 4.0, 100.0
VERSION = "1"
"""Bumped whenever a change alters the demonstrations the planner makes."""
_EXPERT_STREAM = 0x9054
"""Mixed into the expert's seed so its samples are independent of the env's layout draw."""


@dataclass(frozen=True)
class PushPlannerConfig:
    """The planner's settings (defaults chosen on validation seeds, docs/pusht.md)."""

    samples: int = 16
    """Random push plans rolled out at each replanning (the current plan is one more)."""
    refine: int = 6
    """Plans drawn around the best one and rolled out after the first round."""
    replan_every: int = 4
    """Control steps executed between two replannings."""
    approach_speed: float = 40.0
    """Pixels per control step the target moves on the way to the contact point."""
    max_push: float = 80.0
    """Longest push (pixels); lengths are drawn log-uniformly from 2 pixels to this."""
    max_turn: float = 0.6
    """Largest angle (radians) between the push direction and the inward normal."""
    settle: int = 3
    """Control steps the target holds still after a push (the PD controller lags behind it)."""

    def __post_init__(self) -> None:
        if self.samples < 1 or self.refine < 0 or self.replan_every < 1 or self.settle < 0:
            raise ConfigError("samples and replan_every must be >= 1, refine and settle >= 0")
        if not (self.approach_speed > 0 and self.max_push > 2 and self.max_turn >= 0):
            raise ConfigError("approach_speed must be > 0, max_push > 2 and max_turn >= 0")


class PushTPlanner:
    """CEM over push primitives on a private gym-pusht simulator (see the module docstring)."""

    def __init__(self, config: PushPlannerConfig | None = None) -> None:
        from gym_pusht.envs.pusht import PushTEnv

        self.config = config or PushPlannerConfig()
        self._sim = PushTEnv(obs_type="state")
        self._sim.reset(seed=0)
        self._local = np.array([v for shape in self._sim.block.shapes for v in shape.get_vertices()])
        self._goal = self._keypoints(np.array(GOAL_POSE))
        edges = np.roll(_OUTLINE, -1, axis=0) - _OUTLINE
        self._edge_len = np.hypot(edges[:, 0], edges[:, 1])
        self._edge_dir = edges / self._edge_len[:, None]
        self._edge_normal = np.stack([self._edge_dir[:, 1], -self._edge_dir[:, 0]], axis=1)  # outward (ccw)
        self._rng = np.random.default_rng()
        self._plan = np.zeros((0, 2))
        self._params: np.ndarray | None = None
        self._since_plan = 0
        self._velocity = np.zeros(2)

    @property
    def identity(self) -> str:
        """Name, version and settings, recorded with every demonstration it makes."""
        return f"pusht-push-cem v{VERSION} {self.config}"

    def reset(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(None if seed is None else (seed, _EXPERT_STREAM))
        self._plan, self._params, self._since_plan = np.zeros((0, 2)), None, 0
        self._velocity = np.zeros(2)

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        state = np.asarray(obs["state"], dtype=np.float64)
        start = (state[:2], self._velocity.copy(), state[2:4], float(state[4]))
        if len(self._plan) == 0 or self._since_plan >= self.config.replan_every:
            self._plan = self._replan(start)
            self._since_plan = 0
        action = np.clip(self._plan[0], 0.0, 512.0)
        self._plan = self._plan[1:]
        self._since_plan += 1
        self._set(start)
        self._step(action)
        self._velocity = np.array(self._sim.agent.velocity)
        return action.astype(np.float32)

    # -- planning --------------------------------------------------------------------------

    def _replan(self, start: tuple[np.ndarray, np.ndarray, np.ndarray, float]) -> np.ndarray:
        """The best plan from `start`: the rest of the current one or a new push (two CEM rounds)."""
        cfg = self.config
        best_cost, best_plan = (self._cost_of(start, self._plan), self._plan) if len(self._plan) else (np.inf, None)
        best_params = None
        draws = [self._random_params() for _ in range(cfg.samples)]
        for round_ in range(2):
            for params in draws:
                plan = self._targets(start, params)
                cost = self._cost_of(start, plan)
                if cost < best_cost:
                    best_cost, best_plan, best_params = cost, plan, params
            if round_ == 0:
                centre = best_params if best_params is not None else self._params
                draws = [] if centre is None else [self._perturb(centre) for _ in range(cfg.refine)]
        if best_params is not None:
            self._params = best_params
        assert best_plan is not None
        return best_plan

    def _random_params(self) -> np.ndarray:
        """(position along the outline, turn, push length, push speed)."""
        cfg = self.config
        return np.array([
            self._rng.uniform(0.0, self._edge_len.sum()),
            self._rng.uniform(-cfg.max_turn, cfg.max_turn),
            np.exp(self._rng.uniform(np.log(2.0), np.log(cfg.max_push))),
            self._rng.choice([8.0, 20.0]),
        ])

    def _perturb(self, params: np.ndarray) -> np.ndarray:
        cfg = self.config
        out = params + self._rng.normal(0.0, 1.0, 4) * np.array([8.0, 0.15, 0.0, 0.0])
        out[0] %= self._edge_len.sum()
        out[1] = np.clip(out[1], -cfg.max_turn, cfg.max_turn)
        out[2] = np.clip(params[2] * np.exp(self._rng.normal(0.0, 0.4)), 2.0, cfg.max_push)
        return out

    def _targets(self, start: tuple[np.ndarray, np.ndarray, np.ndarray, float], params: np.ndarray) -> np.ndarray:
        """The agent targets of a push plan: approach (around the block if needed), push, hold."""
        cfg = self.config
        agent, block, angle = start[0], start[2], start[3]
        along, turn, length, speed = params
        ends = np.cumsum(self._edge_len)
        edge = min(int(np.searchsorted(ends, along, side="right")), len(_OUTLINE) - 1)
        offset = along - (ends[edge] - self._edge_len[edge])
        normal = self._edge_normal[edge]
        contact = _OUTLINE[edge] + offset * self._edge_dir[edge]
        c, s = np.cos(turn), np.sin(turn)
        push_dir = -np.array([c * normal[0] - s * normal[1], s * normal[0] + c * normal[1]])
        pre = contact - push_dir * (_AGENT_RADIUS + _CLEARANCE)
        rot = _rotation(angle)
        agent_local = (agent - block) @ rot
        waypoints = [agent_local]
        if self._blocked(agent_local, pre):
            waypoints += _orbit(agent_local, pre)
        waypoints.append(pre)
        path = _resample(np.array(waypoints), cfg.approach_speed)[1:]
        push = pre + push_dir * np.minimum(np.arange(1, int(np.ceil(length / speed)) + 1) * speed, length)[:, None]
        hold = np.repeat(push[-1:], cfg.settle, axis=0)
        return np.concatenate([path, push, hold]) @ rot.T + block

    def _blocked(self, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether the straight way from `a` to `b` (body frame) passes the agent through the T."""
        points = a + np.linspace(0.0, 1.0, 12)[:, None] * (b - a)
        return bool((_distance_to_t(points) < _AGENT_RADIUS + 1.0).any())

    def _cost_of(self, start: tuple[np.ndarray, np.ndarray, np.ndarray, float], targets: np.ndarray) -> float:
        """Keypoint error after following `targets` from `start` in the private simulator."""
        self._set(start)
        for target in np.clip(targets, 0.0, 512.0):
            self._step(target)
        block = self._sim.block
        pose = np.array([block.position.x, block.position.y, block.angle])
        return float(np.mean(np.sum((self._keypoints(pose) - self._goal) ** 2, axis=1)))

    # -- the private simulator -------------------------------------------------------------

    def _keypoints(self, pose: np.ndarray) -> np.ndarray:
        return self._local @ _rotation(pose[2]).T + pose[:2]

    def _set(self, start: tuple[np.ndarray, np.ndarray, np.ndarray, float]) -> None:
        agent_pos, agent_vel, block_pos, angle = start
        sim = self._sim
        sim.agent.position = tuple(agent_pos)
        sim.agent.velocity = tuple(agent_vel)
        sim.block.angle = angle  # before the position: setting the angle turns about the centre of gravity
        sim.block.position = tuple(block_pos)
        sim.block.velocity = (0.0, 0.0)
        sim.block.angular_velocity = 0.0

    def _step(self, target: np.ndarray) -> None:
        """One control step of gym-pusht's PD controller toward `target` (its `step` without the
        reward and the observation)."""
        agent, space = self._sim.agent, self._sim.space
        tx, ty = float(target[0]), float(target[1])
        for _ in range(_SUBSTEPS):
            vx, vy = agent.velocity
            px, py = agent.position
            agent.velocity = (vx + (_KP * (tx - px) - _KV * vx) * _DT, vy + (_KP * (ty - py) - _KV * vy) * _DT)
            space.step(_DT)


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _distance_to_t(points: np.ndarray) -> np.ndarray:
    """Distance of body-frame points to the T (0 inside it)."""
    dists = []
    for (x0, y0), (x1, y1) in _RECTS:
        dx = np.maximum(np.maximum(x0 - points[:, 0], points[:, 0] - x1), 0.0)
        dy = np.maximum(np.maximum(y0 - points[:, 1], points[:, 1] - y1), 0.0)
        dists.append(np.hypot(dx, dy))
    return np.minimum(*dists)


def _orbit(a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    """Waypoints (body frame) on a circle around the T's centre from `a`'s bearing to `b`'s, the
    shorter way round."""
    start = np.arctan2(*(a - _CENTRE)[::-1])
    turn = (np.arctan2(*(b - _CENTRE)[::-1]) - start + np.pi) % (2 * np.pi) - np.pi
    angles = start + turn * np.linspace(0.0, 1.0, max(2, int(abs(turn) / 0.5) + 2))
    return [_CENTRE + _ORBIT * np.array([np.cos(t), np.sin(t)]) for t in angles]


def _resample(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points every `spacing` along the polyline `points` (first and last kept)."""
    seg = np.hypot(*np.diff(points, axis=0).T)
    total = np.concatenate([[0.0], np.cumsum(seg)])
    at = np.append(np.arange(0.0, total[-1], spacing), total[-1])
    return np.stack([np.interp(at, total, points[:, i]) for i in range(2)], axis=1)
