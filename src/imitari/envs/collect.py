"""Collect expert demonstrations of a task into an imitari dataset, in parallel and resumably.

Episode i uses reset seed `seed_start + i` for both the env and the expert, so a seed fully
determines its demonstration. Worker processes (started with 'spawn': no inherited simulator
or rendering state) each build the env and the expert once and play many episodes; finished
episodes come back to this process, which alone writes, appending each one atomically as it
arrives (in completion order, not seed order). A collection that was interrupted, or asked for
more episodes than it holds, continues where it stopped: seeds already in the dataset are
skipped. Episodes the expert failed are kept with `success=False` (curation comes later).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from tqdm.auto import tqdm

from imitari.config import check_counts
from imitari.data.lock import LOCK_NAME
from imitari.data.store import Dataset, DatasetError
from imitari.envs.registry import TaskError, TaskSpec, get_task
from imitari.workers import die_with_parent

Episode = tuple[dict[str, np.ndarray], dict[str, Any]]
"""One demonstration: feature name -> (T, ...) rows, and its episode info."""


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

    @property
    def success_rate(self) -> float | None:
        """Expert success rate over the collected episodes (None if none were collected)."""
        return self.successes / self.collected if self.collected else None

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        rate = "n/a" if self.success_rate is None else f"{self.successes}/{self.collected} ({self.success_rate:.0%})"
        return (
            f"{self.task} -> {self.path}: collected {self.collected} episodes, skipped {self.skipped} "
            f"already present; expert success {rate}; {self.steps} steps in {self.seconds:.1f} s "
            f"({self.steps_per_second:.0f} steps/s)"
        )


def _features_of(spec: TaskSpec, env: gym.Env) -> dict[str, tuple[tuple[int, ...], str]]:
    """Dataset features of a task: `obs.<key>` for each observation key, `action`, `reward`."""
    obs_space, action_space = env.observation_space, env.action_space
    if not (isinstance(obs_space, spaces.Dict) and isinstance(action_space, spaces.Box)):
        raise TaskError(f"task {spec.name}: the env needs a Dict observation space and a Box action space")
    features = {f"obs.{key}": (tuple(obs_space[key].shape or ()), "float32") for key in spec.obs_keys}
    features["action"] = (action_space.shape, "float32")
    features["reward"] = ((), "float32")
    features.update({f"procedure.{name}": (shape, "float32") for name, shape in spec.procedure_features})
    return features


class _Player:
    """One env and its expert, playing whole episodes by seed."""

    def __init__(self, task: str) -> None:
        self.spec = get_task(task)
        self.env = self.spec.make(render=False)
        self.expert = self.spec.expert(self.env)
        space = self.env.action_space
        assert isinstance(space, spaces.Box), "checked by _features_of before any player starts"
        self._low, self._high = space.low, space.high

    def play(self, seed: int) -> Episode:
        """The expert's episode on `seed`: the observation before each action, the action
        (clipped to the action space, as executed), and the reward after it."""
        obs, _ = self.env.reset(seed=seed)
        self.expert.reset(seed=seed)
        rows: dict[str, list[np.ndarray]] = {f"obs.{key}": [] for key in self.spec.obs_keys}
        rows.update({f"procedure.{name}": [] for name, _ in self.spec.procedure_features})
        actions: list[np.ndarray] = []
        rewards: list[float] = []
        success = False
        info: dict[str, Any] = {}
        for _ in range(self.spec.max_steps):
            action = np.clip(np.asarray(self.expert(obs), dtype=np.float32), self._low, self._high)
            for key in self.spec.obs_keys:
                rows[f"obs.{key}"].append(np.array(obs[key], dtype=np.float32))
            for name, _ in self.spec.procedure_features:  # what the expert computed for this action
                rows[f"procedure.{name}"].append(np.array(self.expert.procedure[name], dtype=np.float32))  # type: ignore[attr-defined]
            actions.append(action)
            obs, reward, terminated, truncated, info = self.env.step(action)
            rewards.append(float(reward))
            success = success or bool(info["success"])
            if terminated or truncated:
                break
        arrays = {name: np.stack(values) for name, values in rows.items()}
        arrays["action"] = np.stack(actions)
        arrays["reward"] = np.asarray(rewards, dtype=np.float32)
        record: dict[str, Any] = {
            "seed": seed, "success": success, "source": "expert",
            "return": sum(rewards), "length": len(actions),
        }
        if info.get("route") is not None:  # the behaviour label of multimodal tasks
            record["route"] = info["route"]
        return arrays, record

    def close(self) -> None:
        self.env.close()


_worker_player: _Player | None = None


def _init_worker(task: str, starter: int) -> None:
    global _worker_player
    die_with_parent(starter)
    _worker_player = _Player(task)


def _play_in_worker(seed: int) -> Episode:
    assert _worker_player is not None, "worker not initialised"
    return _worker_player.play(seed)


def _open_or_create(out: Path, task: str, features: dict[str, tuple[tuple[int, ...], str]], fps: float) -> Dataset:
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


def _episodes(task: str, seeds: list[int], workers: int) -> Iterator[Episode]:
    """Play `seeds` and yield each episode as soon as it is done (in any order)."""
    if workers <= 1:
        player = _Player(task)
        try:
            yield from (player.play(seed) for seed in seeds)
        finally:
            player.close()
        return
    context = get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(task, os.getpid())) as pool:
        pending: set[Future[Episode]] = {pool.submit(_play_in_worker, seed) for seed in seeds}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:  # an error or an early exit: drop the episodes not started yet
            for future in pending:
                future.cancel()


def _default_workers() -> int:
    """One worker per CPU this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def collect(
    task: str,
    out: str | os.PathLike[str],
    *,
    episodes: int,
    seed_start: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> CollectSummary:
    """Record the expert of `task` on seeds seed_start .. seed_start + episodes - 1 into the
    dataset at `out`, creating it or completing it (seeds it already holds are skipped).

    workers: processes playing episodes; None uses one per CPU; 1 plays in this process.
    Raises ConfigError for a negative count or seed, TaskError for an unknown task or one
    without an expert, and DatasetError if `out` holds something other than a dataset of this
    task or another writer (a second `collect`, a `data split`) is using it.
    """
    check_counts(episodes=(episodes, 0), seed_start=(seed_start, 0), workers=(workers, 1))
    spec = get_task(task)
    if spec.make_expert is None:
        raise TaskError(f"task {task} has no expert to collect demonstrations with")
    start = time.perf_counter()
    env = spec.make(render=False)
    try:
        features = _features_of(spec, env)
    finally:
        env.close()
    path = Path(out)
    ds = _open_or_create(path, task, features, spec.fps)
    present = {info.get("seed") for info in ds.episode_info}
    seeds = [s for s in range(seed_start, seed_start + episodes) if s not in present]
    n_workers = max(1, min(len(seeds), _default_workers() if workers is None else workers))
    collected = successes = steps = 0
    with ds, tqdm(total=len(seeds), desc=f"collect {task}", unit="ep", disable=not progress) as bar:
        for arrays, info in _episodes(task, seeds, n_workers):
            ds.append_episode(arrays, info=info)
            collected += 1
            successes += info["success"]
            steps += info["length"]
            bar.update()
            bar.set_postfix_str(f"success {successes}/{collected}")
    return CollectSummary(
        task=task, path=path, collected=collected, skipped=episodes - len(seeds),
        successes=successes, steps=steps, seconds=time.perf_counter() - start,
    )
