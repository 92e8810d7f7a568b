"""The one rollout engine: vectorised envs, an actor, and full transitions streamed to sinks.

`RolloutEngine.run(actor, seeds)` keeps `num_envs` episodes in flight. Env slot i plays one
episode at a time; when it ends, the slot is reset with the next unused seed, so every seed is
played exactly once. The actor (a policy, an expert adapter, a DAgger mixture) is called once
per step with the observations of *all* slots stacked in slot order (an idle slot keeps its
last observation and its action is ignored), so row i always belongs to slot i, which is how a
policy's per-env history (`reset(env_ids=[i])`) is indexed. Before an episode's first step the
actor is reset with `reset(env_ids=[...], seeds=[...])` when its `reset` takes `seeds`, else
`reset(env_ids=[...])`. For an actor whose action for a row depends only on that row since its
reset, what a seed produces does not depend on `num_envs`, `workers` or the slot that played it.

Every env step becomes a `Transition` -- obs, action, reward, next obs, terminated and
truncated apart, the kept info, and who acted (`actor`: "policy", "expert" or "intervention",
or per row from the actor's `sources` attribute; and, from an actor with a `labels` attribute,
the row's label, e.g. the expert's action at a state the policy acted in; from one with a
`computed` attribute, what it computed beside the action) -- handed to each
sink's `on_step`; episodes are framed by `on_start` and `on_end`. Sinks: the metrics of
`evaluate`, the dataset writer of `collect` and DAgger (`imitari.rollouts.writer`), a replay
buffer of an online learner.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from imitari.rollouts.envs import EnvSlots, TaskLike, WorkerPool, default_workers, resolve_task


ACTORS = ("policy", "expert", "intervention")
"""Who can act in a transition (`Transition.actor`); a dataset's `actor` feature stores the index."""


class Actor(Protocol):
    """Anything that maps a batch of observations to a batch of actions."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...

    def reset(self, env_ids: Sequence[int] | None = None) -> None: ...


@dataclass
class Transition:
    """One env step of one slot's episode (`episode`: the index of its seed in the run)."""

    slot: int
    episode: int
    seed: int
    step: int
    obs: dict[str, np.ndarray]
    action: np.ndarray
    reward: float
    next_obs: dict[str, np.ndarray]
    terminated: bool
    truncated: bool
    info: dict[str, Any]
    actor: str = "policy"
    frame: np.ndarray | None = None
    """The frame after the step, for episodes the engine renders."""
    label: np.ndarray | None = None
    """The actor's label for this row (its `labels` attribute after `act`), e.g. DAgger's expert action."""
    computed: dict[str, np.ndarray] = field(default_factory=dict)
    """What the actor computed for this row beside its action (its `computed` attribute after
    `act`), e.g. a planner's intermediate maps, which Procedure Cloning learns from."""


class Sink:
    """Receives a run's episodes as they happen; override what you need."""

    def on_start(self, episode: int, seed: int, obs: dict[str, np.ndarray], frame: np.ndarray | None) -> None:
        """An episode began (its reset observation and, if rendered, frame)."""

    def on_step(self, t: Transition) -> None:
        """One env step of a running episode."""

    def on_end(self, episode: int, seed: int) -> None:
        """The episode's last transition was `on_step`ped (terminated, truncated or capped)."""


def accepts_seeds(actor: Actor) -> bool:
    """Whether `actor.reset` takes the optional `seeds` keyword of the handshake."""
    try:
        params = inspect.signature(actor.reset).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "seeds" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _no_grad(actor: Actor) -> contextlib.AbstractContextManager[Any]:
    """torch.no_grad() for torch modules, without importing torch for anything else."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(actor, torch.nn.Module):
        return torch.no_grad()
    return contextlib.nullcontext()


@dataclass
class _Slot:
    episode: int = -1
    obs: dict[str, np.ndarray] = field(default_factory=dict)
    length: int = 0


class RolloutEngine:
    """`num_envs` env slots of one task, stepped here (`workers` 1) or in worker processes."""

    def __init__(self, task: str | TaskLike, *, num_envs: int, workers: int | None = None, render: bool = False,
                 max_steps: int | None = None) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1 (got {num_envs})")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1 or None (got {workers})")
        self.spec = resolve_task(task)
        self.num_envs = num_envs
        workers = min(num_envs, default_workers(num_envs) if workers is None else workers)
        self.max_steps = max_steps if max_steps is not None else getattr(self.spec, "max_steps", None)
        self.envs: EnvSlots | WorkerPool = (EnvSlots(self.spec, range(num_envs), render=render) if workers == 1
                                            else WorkerPool(task, num_envs, workers, render=render))

    @property
    def render_error(self) -> str | None:
        return self.envs.render_error

    def close(self) -> None:
        self.envs.close()

    def __enter__(self) -> RolloutEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, actor: Actor, seeds: Sequence[int], sinks: Sequence[Sink], *, actor_name: str = "policy",
            render_episodes: int = 0) -> None:
        """Play one episode per seed with `actor`, streaming to `sinks`; the first
        `render_episodes` episodes (in seed order) carry frames."""
        run = _Run(self, actor, [int(s) for s in seeds], list(sinks), actor_name, render_episodes)
        with _no_grad(actor):
            run.start(list(range(min(self.num_envs, len(run.seeds)))))
            while run.running():
                run.step()


class _Run:
    """The bookkeeping of one `RolloutEngine.run`: which slot plays which episode."""

    def __init__(self, engine: RolloutEngine, actor: Actor, seeds: list[int], sinks: list[Sink], actor_name: str,
                 render_episodes: int) -> None:
        self.engine, self.actor, self.seeds, self.sinks = engine, actor, seeds, sinks
        self.actor_name, self.render_episodes = actor_name, render_episodes
        self.pass_seeds = accepts_seeds(actor)
        self.slots = [_Slot() for _ in range(min(engine.num_envs, len(seeds)))]
        self.next_episode = 0

    def _rendered(self, i: int) -> bool:
        return 0 <= self.slots[i].episode < self.render_episodes

    def start(self, ids: list[int]) -> None:
        """Give each slot the next unused seed (or leave it idle); reset its env and the actor."""
        started = []
        for i in ids:
            episode = self.next_episode if self.next_episode < len(self.seeds) else -1
            self.slots[i] = _Slot(episode=episode, obs=self.slots[i].obs)
            if episode >= 0:
                self.next_episode += 1
                started.append(i)
        if not started:
            return
        seeds = [self.seeds[self.slots[i].episode] for i in started]
        replies = self.engine.envs.reset([(i, seed, self._rendered(i)) for i, seed in zip(started, seeds)])
        for i, seed, (obs, frame) in zip(started, seeds, replies):
            self.slots[i].obs = obs
            for sink in self.sinks:
                sink.on_start(self.slots[i].episode, seed, obs, frame)
        if self.pass_seeds:
            self.actor.reset(env_ids=started, seeds=seeds)  # type: ignore[call-arg]
        else:
            self.actor.reset(env_ids=started)

    def step(self) -> None:
        """One actor call on all slots, one env step on the running ones."""
        n = len(self.slots)
        batch = {key: np.stack([slot.obs[key] for slot in self.slots]) for key in self.slots[0].obs}
        actions = np.asarray(self.actor.act(batch))
        if actions.ndim < 1 or actions.shape[0] != n:
            raise ValueError(f"policy.act returned actions of shape {actions.shape} for {n} observations")
        sources = getattr(self.actor, "sources", None)  # per-row actor names of a mixing actor (DAgger)
        labels = getattr(self.actor, "labels", None)  # per-row labels, e.g. the expert's actions
        computed = getattr(self.actor, "computed", None)  # per-row dicts, e.g. a planner's maps
        running = [i for i, slot in enumerate(self.slots) if slot.episode >= 0]
        broken = [i for i in running if not np.isfinite(actions[i]).all()]
        if broken:
            slot = self.slots[broken[0]]
            raise FloatingPointError(
                f"the policy returned NaN or inf actions for {len(broken)} of {len(running)} envs (first: seed "
                f"{self.seeds[slot.episode]}, step {slot.length}); its weights or inputs are not finite"
            )
        replies = self.engine.envs.step([(i, actions[i], self._rendered(i)) for i in running])
        finished = []
        for i, (obs, reward, terminated, truncated, info, frame) in zip(running, replies):
            slot = self.slots[i]
            capped = self.engine.max_steps is not None and slot.length + 1 >= self.engine.max_steps
            t = Transition(slot=i, episode=slot.episode, seed=self.seeds[slot.episode], step=slot.length,
                           obs=slot.obs, action=actions[i], reward=reward, next_obs=obs, terminated=terminated,
                           truncated=truncated or (capped and not terminated), info=info,
                           actor=self.actor_name if sources is None else str(sources[i]), frame=frame,
                           label=None if labels is None else labels[i],
                           computed={} if computed is None else computed[i])
            slot.obs, slot.length = obs, slot.length + 1
            for sink in self.sinks:
                sink.on_step(t)
            if t.terminated or t.truncated:
                finished.append(i)
                for sink in self.sinks:
                    sink.on_end(slot.episode, t.seed)
        if finished:
            self.start(finished)

    def running(self) -> bool:
        return any(slot.episode >= 0 for slot in self.slots)
