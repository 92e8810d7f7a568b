"""Experts as actors of the rollout engine: a task's scripted expert, or a trained checkpoint.

`ExpertPolicy` puts the expert a task registers (`TaskSpec.make_expert`: Meta-World's scripted
policies, the built-in tasks' planners) behind the policy interface, one expert per env slot;
`load_expert` also accepts an imitari checkpoint, so DAgger or `evaluate` can use a trained
policy (an RL expert, an earlier run) wherever a scripted one is expected. `random_policy`
(uniform actions) is the other anchor of normalised return.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imitari.envs.registry import TaskError
from imitari.rollouts.engine import Actor
from imitari.rollouts.envs import TaskLike, resolve_task

TASK_EXPERT = "task"
"""`load_expert`'s name for the expert the task registers."""


class ExpertPolicy:
    """A task's scripted expert behind the policy interface, one expert per env slot.

    Experts map an observation to an action, so they run in the calling process on the
    observations the engine passes, wherever the envs are stepped. Each is built by
    `spec.make_expert(env)` on a local env copy that is never stepped, and is reset with the
    seed of each new episode through the `seeds` keyword of the reset handshake. Actions are
    clipped to the env's action space, so what is returned is what the env executes (and what
    a dataset records).
    """

    def __init__(self, task: str | TaskLike) -> None:
        self.spec = resolve_task(task)
        if getattr(self.spec, "make_expert", None) is None:
            raise TaskError(f"task {getattr(self.spec, 'name', task)} has no expert")
        self._experts: list[Any] = []
        self.spec_procedure = [name for name, _ in getattr(self.spec, "procedure_features", ())]
        self.computed: list[dict[str, np.ndarray]] | None = None
        """Per row of the last `act`: the experts' `procedure` maps, for tasks that declare them."""
        env = self.spec.make(render=False)
        space = getattr(env, "action_space", None)
        self._low, self._high = getattr(space, "low", -np.inf), getattr(space, "high", np.inf)
        env.close()

    def _expert(self, slot: int) -> Any:
        while len(self._experts) <= slot:
            self._experts.append(self.spec.make_expert(self.spec.make(render=False)))  # type: ignore[attr-defined]
        return self._experts[slot]

    @property
    def identity(self) -> str | None:
        """The expert's name and version where it has one (the planners), recorded per episode."""
        return getattr(self._expert(0), "identity", None)

    def reset(self, env_ids: Sequence[int] | None = None, *, seeds: Sequence[int | None] | None = None) -> None:
        """Reset the experts of these slots (all if None) for episodes with these seeds."""
        ids = list(range(len(self._experts)) if env_ids is None else env_ids)
        episode_seeds = list(seeds) if seeds is not None else [None] * len(ids)
        if len(episode_seeds) != len(ids):
            raise ValueError(f"{len(ids)} env ids but {len(episode_seeds)} seeds")
        for slot, seed in zip(ids, episode_seeds):
            self._expert(slot).reset(seed=seed)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """One action per row of the observation batch, from that slot's expert."""
        n = len(next(iter(obs.values())))
        actions = [np.asarray(self._expert(i)({k: v[i] for k, v in obs.items()}), dtype=np.float32) for i in range(n)]
        if self.spec_procedure:  # what each expert computed for its action (`TaskSpec.procedure_features`)
            self.computed = [{name: np.asarray(self._expert(i).procedure[name], dtype=np.float32)
                              for name in self.spec_procedure} for i in range(n)]
        return np.clip(np.stack(actions), self._low, self._high).astype(np.float32)


class UniformActor:
    """Uniformly random actions within the action bounds, per episode from an rng seeded by its seed."""

    def __init__(self, low: np.ndarray, high: np.ndarray, seed: int) -> None:
        self.low, self.high, self.seed = low, high, seed
        self.rngs: dict[int, np.random.Generator] = {}

    def reset(self, env_ids: Sequence[int] | None = None, *, seeds: Sequence[int] | None = None) -> None:
        for env_id, episode_seed in zip(env_ids or [], seeds or []):
            self.rngs[int(env_id)] = np.random.default_rng([self.seed, int(episode_seed)])

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(obs.values())))
        return np.stack([self.rngs[i].uniform(self.low, self.high).astype(np.float32) if i in self.rngs
                         else np.zeros_like(self.low, np.float32) for i in range(n)])


def random_policy(task: str | TaskLike, seed: int = 0) -> UniformActor:
    """Uniformly random actions within the task's action bounds: the 0 of normalised return."""
    env = resolve_task(task).make(render=False)
    try:
        return UniformActor(np.asarray(env.action_space.low), np.asarray(env.action_space.high), seed=seed)
    finally:
        env.close()


def expert_policy(task: str | TaskLike) -> ExpertPolicy:
    """The task's expert as a policy, to evaluate it on the same seeds as a learned policy."""
    return ExpertPolicy(task)


def load_expert(task: str | TaskLike, source: str = TASK_EXPERT, *, device: str = "cpu") -> Actor:
    """The expert named by `source`: "task" for the task's registered expert, else the path of
    an imitari run or checkpoint directory whose policy acts as the expert (in eval mode).
    TaskError if the task has no expert, CheckpointError if the checkpoint cannot be loaded."""
    if source == TASK_EXPERT:
        return ExpertPolicy(task)
    from imitari.policies.loading import CheckpointError, load_policy

    if not Path(source).exists():
        raise CheckpointError(f"expert {source!r}: neither 'task' nor an existing run or checkpoint directory")
    return load_policy(source, device=device).eval()
