"""Evaluation: a policy's episodes on evaluation seeds, as the rollout engine's metrics client.

`evaluate` plays each seed once on `imitari.rollouts.engine.RolloutEngine` (vectorised envs,
in this process or in workers; the engine's docstring has the slot and reset-handshake rules)
and collects, through one sink, each episode's success, return, length and behaviour label,
in seed order, plus the frames of the first `video_episodes` ones. For a policy whose action
for a row depends only on that row since its reset, results do not depend on `num_envs` or
`workers`. Experts are actors too (`imitari.envs.experts`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from imitari.eval.metrics import EpisodeResult
from imitari.rollouts.engine import Actor, RolloutEngine, Sink, Transition
from imitari.rollouts.envs import TaskLike

EVAL_SEED_START = 100_000
"""Evaluation seeds start here; demonstrations use 0..N-1 (docs/architecture.md)."""


@dataclass
class Video:
    """Frames of one evaluation episode (the reset frame, then one per step)."""

    seed: int
    frames: list[np.ndarray]
    fps: float


def eval_seeds(n: int, *, exclude: Iterable[int | None] = (), start: int = EVAL_SEED_START) -> list[int]:
    """The first `n` seeds from `start` up that are not in `exclude` (e.g. the demo seeds)."""
    excluded = set(exclude)
    return list(itertools.islice((s for s in itertools.count(start) if s not in excluded), n))


class _EpisodeMetrics(Sink):
    """The sink of `evaluate`: each episode's result, and the frames of the rendered ones."""

    def __init__(self, engine: RolloutEngine, seeds: list[int], *, video_episodes: int, bar: Any) -> None:
        self.engine, self.seeds, self.bar = engine, seeds, bar
        self.results: dict[int, EpisodeResult] = {}
        self.frames: dict[int, list[np.ndarray]] = {e: [] for e in range(video_episodes)}
        self.totals: dict[int, tuple[float, bool]] = {}

    def _keep(self, episode: int, frame: np.ndarray | None) -> None:
        if self.frames and self.engine.render_error is not None:
            tqdm.write(f"videos skipped: {self.engine.render_error}")
            self.frames = {}
        if frame is not None and episode in self.frames:
            self.frames[episode].append(frame)

    def on_start(self, episode: int, seed: int, obs: dict[str, np.ndarray], frame: np.ndarray | None) -> None:
        self.totals[episode] = (0.0, False)
        self._keep(episode, frame)

    def on_step(self, t: Transition) -> None:
        return_, success = self.totals[t.episode]
        self.totals[t.episode] = (return_ + t.reward, success or t.info["success"])
        self._keep(t.episode, t.frame)
        if t.terminated or t.truncated:
            return_, success = self.totals.pop(t.episode)
            self.results[t.episode] = EpisodeResult(seed=t.seed, success=success, return_=return_, length=t.step + 1,
                                                    info={k: v for k, v in t.info.items() if k != "success"})
            self.bar.update(1)
            self.bar.set_postfix_str(f"success {sum(r.success for r in self.results.values())}/{len(self.results)}")


def evaluate(
    policy: Actor,
    task: str | TaskLike,
    *,
    seeds: Sequence[int],
    num_envs: int = 8,
    workers: int | None = None,
    video_episodes: int = 0,
    progress: bool = True,
) -> tuple[list[EpisodeResult], list[Video]]:
    """Roll `policy` out once on each seed; returns per-seed results (in seed order) and videos.

    task: a registered task name, or a task object with `make(render=...)` and `fps` (and
        optionally `max_steps`, enforced as a step cap); with workers it must be picklable.
    num_envs: episodes in flight (capped at the number of seeds); the policy sees this batch.
    workers: env processes; None uses one per CPU (at most num_envs); 1 stays in-process.
    video_episodes: render the first this many episodes (in seed order) at every step; if
        rendering fails, one line `videos skipped: <reason>` is printed and no videos return.
    """
    seeds = [int(s) for s in seeds]
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1 (got {num_envs})")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1 or None (got {workers})")
    if not seeds:
        return [], []
    num_envs = min(num_envs, len(seeds))
    video_episodes = min(max(video_episodes, 0), len(seeds))
    name = task if isinstance(task, str) else type(task).__name__
    bar = tqdm(total=len(seeds), desc=f"eval {name}", unit="ep", disable=not progress, leave=False)
    try:
        with RolloutEngine(task, num_envs=num_envs, workers=workers, render=video_episodes > 0) as engine:
            metrics = _EpisodeMetrics(engine, seeds, video_episodes=video_episodes, bar=bar)
            engine.run(policy, seeds, [metrics], render_episodes=video_episodes)
            fps = float(engine.spec.fps)
    finally:
        bar.close()
    results = [metrics.results[e] for e in range(len(seeds))]
    videos = [Video(seed=seeds[e], frames=f, fps=fps) for e, f in sorted(metrics.frames.items())]
    return results, videos


def episode_returns(policy: Actor, task: str | TaskLike, seeds: Sequence[int], *, progress: bool = False) -> list[float]:
    """The return of one episode per seed (in seed order), 10 in flight in this process: what a
    return-only measurement (an expert's card, a learning curve's point) needs of `evaluate`."""
    results, _ = evaluate(policy, task, seeds=seeds, num_envs=10, workers=1, progress=progress)
    return [r.return_ for r in results]
