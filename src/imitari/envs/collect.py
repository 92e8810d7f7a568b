"""Collect expert demonstrations of a task into an imitari dataset, in parallel and resumably.

A client of the rollout engine: the task's expert (`imitari.envs.experts.ExpertPolicy`) acts
on `workers` env slots, each stepped in its own worker process (started by forkserver or
spawn: no inherited simulator or rendering state), and the dataset writer sink
(`imitari.rollouts.writer.EpisodeWriter`) in this process, which alone writes, appends each
episode atomically as it ends (in completion order, not seed order). Episode i uses reset seed
`seed_start + i` for both the env and the expert, so a seed fully determines its
demonstration. A collection that was interrupted, or asked for more episodes than it holds,
continues where it stopped: seeds already in the dataset are skipped. Episodes the expert
failed are kept with `success=False` (curation comes later). `expert` may name a trained
checkpoint instead of the task's own expert (a worse RL checkpoint, for a suboptimal teacher);
each episode's info then names it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from tqdm.auto import tqdm

from imitari.config import check_counts
from imitari.data.lock import LOCK_NAME
from imitari.data.store import Dataset, DatasetError
from imitari.envs.experts import TASK_EXPERT, ExpertPolicy, load_expert
from imitari.envs.registry import TaskError, TaskSpec, get_task
from imitari.rollouts.engine import RolloutEngine
from imitari.rollouts.envs import default_workers
from imitari.rollouts.writer import EpisodeWriter


@dataclass(frozen=True)
class CollectSummary:
    """What one `collect` call did."""

    task: str
    path: Path
    collected: int
    """Episodes played and appended by this call."""
    skipped: int
    """Requested seeds that the dataset already held."""
    successes: int
    """Collected episodes in which the expert succeeded."""
    steps: int
    """Env steps of the collected episodes."""
    seconds: float
    mean_return: float | None = None
    """Mean return of the collected episodes (None if none were collected): the measure of
    tasks without a success criterion, such as locomotion."""

    @property
    def success_rate(self) -> float | None:
        """Expert success rate over the collected episodes (None if none were collected)."""
        return self.successes / self.collected if self.collected else None

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        rate = "n/a" if self.success_rate is None else f"{self.successes}/{self.collected} ({self.success_rate:.0%})"
        returns = "" if self.mean_return is None else f", mean return {self.mean_return:.1f}"
        return (
            f"{self.task} -> {self.path}: collected {self.collected} episodes, skipped {self.skipped} "
            f"already present; expert success {rate}{returns}; {self.steps} steps in {self.seconds:.1f} s "
            f"({self.steps_per_second:.0f} steps/s)"
        )


def features_of(spec: TaskSpec, env: gym.Env) -> dict[str, tuple[tuple[int, ...], str]]:
    """Dataset features of a task: `obs.<key>` for each observation key (float32, or uint8 for
    camera frames), `action`, `reward`."""
    obs_space, action_space = env.observation_space, env.action_space
    if not (isinstance(obs_space, spaces.Dict) and isinstance(action_space, spaces.Box)):
        raise TaskError(f"task {spec.name}: the env needs a Dict observation space and a Box action space")
    features = {f"obs.{key}": (tuple(obs_space[key].shape or ()), obs_dtype(obs_space[key])) for key in spec.obs_keys}
    features["action"] = (action_space.shape, "float32")
    features["reward"] = ((), "float32")
    features.update({f"procedure.{name}": (shape, "float32") for name, shape in spec.procedure_features})
    return features


def obs_dtype(space: spaces.Space) -> str:
    """The stored dtype of an observation key: camera frames stay uint8, the rest float32."""
    return "uint8" if space.dtype == np.uint8 else "float32"


def open_or_create(out: Path, task: str, features: dict[str, tuple[tuple[int, ...], str]], fps: float) -> Dataset:
    """The dataset at `out`, holding its writer lock, if it holds `task` with these features; a
    new one if `out` is absent or an empty directory; DatasetError otherwise (also at once if
    another writer holds the dataset)."""
    if not out.exists() or (out.is_dir() and all(p.name == LOCK_NAME for p in out.iterdir())):
        return Dataset.create(out, features=features, env=task, fps=fps, writer=True)
    ds = Dataset.open(out, writer=True)
    if ds.env != task or ds.features != features:
        ds.close()
        if ds.env != task:
            raise DatasetError(f"{out} holds episodes of {ds.env!r}, not {task!r}: collect into another directory")
        raise DatasetError(f"{out}: its features {ds.features} differ from {task}'s {features}")
    return ds


def collect(
    task: str,
    out: str | os.PathLike[str],
    *,
    episodes: int,
    seed_start: int = 0,
    workers: int | None = None,
    progress: bool = True,
    expert: str = TASK_EXPERT,
) -> CollectSummary:
    """Record the expert of `task` on seeds seed_start .. seed_start + episodes - 1 into the
    dataset at `out`, creating it or completing it (seeds it already holds are skipped).

    workers: processes playing episodes; None uses one per CPU; 1 plays in this process.
    expert: "task" (the task's expert) or an imitari run or checkpoint directory.
    Raises ConfigError for a negative count or seed, TaskError for an unknown task or one
    without an expert, and DatasetError if `out` holds something other than a dataset of this
    task or another writer (a second `collect`, a `data split`) is using it.
    """
    check_counts(episodes=(episodes, 0), seed_start=(seed_start, 0), workers=(workers, 1))
    spec = get_task(task)
    if expert == TASK_EXPERT and spec.make_expert is None:
        raise TaskError(f"task {task} has no expert to collect demonstrations with")
    start = time.perf_counter()
    env = spec.make(render=False)
    try:
        features = features_of(spec, env)
    finally:
        env.close()
    path = Path(out)
    ds = open_or_create(path, task, features, spec.fps)
    present = {info.get("seed") for info in ds.episode_info}
    seeds = [s for s in range(seed_start, seed_start + episodes) if s not in present]
    n_workers = max(1, min(len(seeds), default_workers(len(seeds)) if workers is None else workers))
    done: list[dict[str, Any]] = []
    with ds, tqdm(total=len(seeds), desc=f"collect {task}", unit="ep", disable=not progress) as bar:
        def finished(episode: dict[str, Any]) -> None:
            done.append(episode)
            bar.update()
            bar.set_postfix_str(f"success {sum(e['success'] for e in done)}/{len(done)}")

        if seeds:
            if expert == TASK_EXPERT:
                actor: Any = ExpertPolicy(spec)
                versioned = {"expert": actor.identity} if actor.identity else {}  # a planner names itself
            else:
                actor, versioned = load_expert(spec, expert), {"expert": str(expert)}
            writer = EpisodeWriter(ds, spec.obs_keys, source="expert", on_episode=finished, extra=versioned)
            with RolloutEngine(task, num_envs=n_workers, workers=n_workers) as engine:
                engine.run(actor, seeds, [writer], actor_name="expert")
    return CollectSummary(
        task=task, path=path, collected=len(done), skipped=episodes - len(seeds),
        successes=sum(e["success"] for e in done), steps=sum(e["length"] for e in done),
        seconds=time.perf_counter() - start,
        mean_return=sum(e["return"] for e in done) / len(done) if done else None,
    )
