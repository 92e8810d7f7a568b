"""The whole loop composed from the layers: evaluate a run, and the one-command demo.

`demo` is the README's first command: collect expert demonstrations, train, evaluate on
held-out seeds (with the expert on the same seeds for reference), and write the report.
Each stage resumes: run it again after an interruption and it continues where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imitari.config import ConfigError, check_counts, check_types

REPEATS = 5
"""Rollouts more from each repeated start for the conditional behaviour entropy (`imitari eval
--repeats` and `imitari bench`)."""
REPEAT_STARTS = 10
"""How many of the first evaluation seeds are repeated."""


def evaluate_run(
    run: Path,
    *,
    episodes: int = 50,
    video: int = 0,
    num_envs: int = 10,
    workers: int | None = None,
    expert: bool = False,
    seed_start: int = 100_000,
    repeats: int = REPEATS,
    repeat_starts: int = REPEAT_STARTS,
) -> Path:
    """Roll out a run's reported checkpoint (its best by validation success, else its latest) on seeds disjoint from its demos; write eval JSON.

    The arguments are checked before anything is loaded: ConfigError names a bad one."""
    check_counts(episodes=(episodes, 1), video=(video, 0), num_envs=(num_envs, 1), seed_start=(seed_start, 0),
                 workers=(workers, 1), repeats=(repeats, 0), repeat_starts=(repeat_starts, 1))
    from imitari.eval.metrics import format_summary, summarize
    from imitari.eval.report import write_eval_json
    from imitari.envs.experts import expert_policy
    from imitari.eval.rollout import evaluate
    from imitari.eval.seeds import split_of
    from imitari.eval.video import save_video
    from imitari.learners.checkpoint import BEST, reported_checkpoint
    from imitari.policies.loading import load_policy, read_checkpoint_config

    ckpt = reported_checkpoint(run)
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt
    best = run_dir.name == BEST  # the run's best checkpoint by validation success
    run_dir = run_dir.parent if best else run_dir
    label = f"best_{ckpt.name}" if best else ckpt.name
    config = read_checkpoint_config(ckpt)
    task = config.get("task")
    if not task:
        raise ConfigError(f"{ckpt}: the dataset names no env, so there is nothing to evaluate in")
    seeds = list(range(seed_start, seed_start + episodes))
    overlap = sorted(set(seeds) & set(config["dataset"].get("seeds", [])))
    if overlap:
        raise ConfigError(
            f"evaluation seeds {overlap[:5]}... were used to collect the training demos; pick --seed-start above them"
        )
    policy = load_policy(ckpt)
    split = split_of(seeds)  # validation seeds choose, the others report (imitari.eval.seeds)
    print(f"evaluating {ckpt} on {task}: {episodes} episodes, seeds {seeds[0]}-{seeds[-1]} ({split} seeds)")
    start = time.perf_counter()
    results, videos = evaluate(
        policy, task, seeds=seeds, num_envs=num_envs, workers=workers, video_episodes=video
    )
    summary = summarize(results)
    print(f"policy: {format_summary(summary)}  ({time.perf_counter() - start:.1f} s)")
    repeat = dict(seeds=seeds[:repeat_starts], repeats=repeats, num_envs=num_envs, workers=workers)
    conditional = repeated_entropy(policy, task, results, **repeat)
    expert_summary = expert_conditional = None
    if expert:
        expert_results, _ = evaluate(expert_policy(task), task, seeds=seeds, num_envs=num_envs, workers=workers)
        expert_summary = summarize(expert_results)
        print(f"expert: {format_summary(expert_summary)}")
        expert_conditional = repeated_entropy(expert_policy(task), task, expert_results, **repeat)
    eval_dir = run_dir / "eval"
    video_paths = [
        save_video(v.frames, eval_dir / "videos" / f"{label}_seed{v.seed}.mp4", fps=v.fps) for v in videos
    ]
    out = write_eval_json(
        eval_dir / f"{label}.json",
        summary,
        results,
        meta={
            "checkpoint": str(ckpt),
            "task": task,
            "seeds": [seeds[0], seeds[-1]],
            "split": split,
            "num_envs": num_envs,
            "expert": expert_summary,
            "conditional_entropy": conditional,
            "expert_conditional_entropy": expert_conditional,
            "videos": [str(p) for p in video_paths],
        },
    )
    print(f"evaluation written to {out}" + (f"; {len(video_paths)} videos in {eval_dir / 'videos'}" if video_paths else ""))
    return out


class _Reseeded:
    """A policy (or expert) whose noise is seeded from (episode seed, `draw`) instead of the
    episode seed: the same starts, other random draws (imitari's actors key their randomness to
    the episode seed, so a plain repeat would replay the first rollout exactly)."""

    def __init__(self, policy: Any, draw: int) -> None:
        self.policy, self.draw = policy, draw

    def act(self, obs: dict[str, Any]) -> Any:
        import torch

        with torch.no_grad():
            return self.policy.act(obs)

    def reset(self, env_ids: Any = None, *, seeds: Any = None) -> None:
        from imitari.rollouts.engine import accepts_seeds

        if seeds is None or not accepts_seeds(self.policy):
            self.policy.reset(env_ids)
        else:
            self.policy.reset(env_ids, seeds=[None if s is None else s + _REPEAT_STRIDE * self.draw for s in seeds])


_REPEAT_STRIDE = 1_000_003
"""Offset between the noise seeds of two repeats of one start (a prime: no repeat of one start
lands on another start's seed within a million seeds)."""


def repeated_entropy(policy: Any, task: Any, results: list[Any], *, seeds: list[int], repeats: int,
                     num_envs: int, workers: int | None) -> float | None:
    """D3IL's conditional behaviour entropy: `repeats` more rollouts from each of `seeds`, each
    with other random draws of the policy (`_Reseeded`), printed; None (and no rollouts) when
    `results` carry no behaviour label or `repeats` is 0."""
    from imitari.eval.metrics import BEHAVIOUR_KEY, conditional_entropy
    from imitari.eval.rollout import evaluate

    if repeats == 0 or not any(r.info.get(BEHAVIOUR_KEY) is not None for r in results):
        return None
    again = [r for r in results if r.seed in set(seeds)]
    for draw in range(1, repeats + 1):
        again += evaluate(_Reseeded(policy, draw), task, seeds=seeds, num_envs=num_envs, workers=workers,
                          progress=False)[0]
    value = conditional_entropy(again)
    print(f"  conditional behaviour entropy {value:.2f} ({repeats + 1} rollouts from each of {len(seeds)} starts)")
    return value


@dataclass
class DemoConfig:
    """The default end-to-end job."""

    task: str = "metaworld/push"
    policy: str = "bc"
    episodes: int = 50
    steps: int | None = None
    """Training updates; None: the policy's default for the task (10,000 for `bc` on Meta-World)."""
    eval_episodes: int = 50
    video: int = 2
    out: str = "runs/demo"

    def __post_init__(self) -> None:
        check_types(self)
        check_counts(episodes=(self.episodes, 1), steps=(self.steps, 1), eval_episodes=(self.eval_episodes, 1),
                     video=(self.video, 0))


def demo(cfg: DemoConfig) -> Path:
    """Collect -> train -> evaluate -> report; returns the report path."""
    from imitari.envs.collect import collect
    from imitari.eval.report import write_report
    from imitari.policies.loading import CheckpointError, find_checkpoint
    from imitari.learners.loop import resume, train

    start = time.perf_counter()
    out = Path(cfg.out)
    data_dir = out / f"data-{cfg.task.replace('/', '-')}"
    run_dir = out / f"run-{cfg.task.replace('/', '-')}-{cfg.policy}"
    print(f"[1/4] collecting {cfg.episodes} expert demonstrations of {cfg.task} into {data_dir}")
    print(collect(cfg.task, data_dir, episodes=cfg.episodes))
    print(f"[2/4] training {cfg.policy} into {run_dir}")
    steps = {} if cfg.steps is None else {"steps": cfg.steps}
    try:
        find_checkpoint(run_dir)
        resume(run_dir, steps)
    except CheckpointError:
        train({"data": str(data_dir), "policy": cfg.policy, "out": str(run_dir), **steps})
    print(f"[3/4] evaluating on {cfg.eval_episodes} held-out seeds")
    evaluate_run(run_dir, episodes=cfg.eval_episodes, video=cfg.video, expert=True)
    print("[4/4] writing the report")
    report = write_report(run_dir)
    print(f"done in {time.perf_counter() - start:.0f} s; report: {report.resolve()}")
    return report
