"""Ship a trained RL run as its task's expert: measure it, then copy its policy files into the package.

    python benchmarks/ship_expert.py --run runs/hopper-sac [--task mujoco/hopper] [--episodes 50]

Evaluates the run's reported checkpoint (its best by validation return when it kept one, else
its latest) with its deterministic action, one observation at a time as the shipped expert
acts, on the test seeds (1000 upward), and a uniformly
random policy on the same seeds (the 0 of normalised return), then writes the checkpoint's
inference files and an `expert.json` card (how it was trained, what it measured) into
`src/imitari/envs/expert_checkpoints/<task>/` (`imitari.envs.trained_experts`), replacing a
previous expert of the task in one rename. Nothing is written if the evaluation fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import shutil
import statistics
import sys
from pathlib import Path


def describe(values: list[float]) -> dict[str, float]:
    return {"mean": round(statistics.fmean(values), 1), "std": round(statistics.pstdev(values), 1),
            "min": round(min(values), 1), "max": round(max(values), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a finished imitari RL run (sac or ppo)")
    parser.add_argument("--task", help="default: the run's env")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed-start", type=int, default=1000, help="the test seeds")
    parser.add_argument("--root", default=None, help="default: the package's expert_checkpoints/")
    args = parser.parse_args()
    from imitari.learners.checkpoint import load_train_state, reported_checkpoint
    from imitari.envs.experts import random_policy
    from imitari.eval.rollout import episode_returns
    from imitari.envs.trained_experts import CARD, EXPERTS_DIR, POLICY_FILES, CheckpointExpert, expert_dir
    from imitari.envs.experts import ExpertPolicy
    from imitari.envs.registry import get_task
    from imitari.policies.loading import find_checkpoint, read_checkpoint_config

    run = Path(args.run)
    config = json.loads((run / "config.json").read_text())
    task = args.task or config["env"]
    ckpt = reported_checkpoint(run)
    # measured the way the shipped expert acts: one observation at a time (a batched policy's
    # actions differ in the last float bits, which chaotic dynamics such as Walker2d's amplify)
    spec = dataclasses.replace(get_task(task), make_expert=lambda env: CheckpointExpert(ckpt, "candidate"))
    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    expert_returns = episode_returns(ExpertPolicy(spec), spec, seeds, progress=True)
    random_returns = episode_returns(random_policy(task), task, seeds, progress=True)
    latest = load_train_state(find_checkpoint(run))  # how long the whole run trained
    env_steps = None
    metrics = run / "metrics.jsonl"
    if metrics.is_file():
        lines = [json.loads(line) for line in metrics.read_text().splitlines() if '"env_steps"' in line]
        env_steps = int(lines[-1]["env_steps"]) if lines else None
    card = {
        "task": task,
        "learner": config.get("learner"),
        "policy": read_checkpoint_config(ckpt)["policy"]["name"],
        "version": datetime.date.today().isoformat(),
        "checkpoint_step": int(ckpt.name.removeprefix("step_")),
        "run_updates": int(latest["step"]),
        "run_env_steps": env_steps,
        "run_cpu_hours": round(float(latest.get("cpu_seconds", 0.0)) / 3600, 2),
        "eval_seeds": f"{seeds[0]}-{seeds[-1]}",
        "expert_return": describe(expert_returns),
        "random_return": describe(random_returns),
        "train_command": f"imitari train --learner {config.get('learner')} --env {task} --steps {config.get('steps')}",
    }
    root = Path(args.root) if args.root else EXPERTS_DIR
    final = expert_dir(task, root)
    staging = final.with_name(final.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in POLICY_FILES:
        shutil.copy2(ckpt / name, staging / name)
    (staging / CARD).write_text(json.dumps(card, indent=1) + "\n")
    if final.exists():
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old)
    else:
        staging.rename(final)
    print(json.dumps(card, indent=1))
    print(f"shipped {ckpt} as the expert of {task} in {final}", file=sys.stderr)


if __name__ == "__main__":
    main()
