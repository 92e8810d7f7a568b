"""The learning tests' shared check: train a policy for real, evaluate it on held-out seeds.

A plain module (not conftest.py), so test files in every folder can import it by name:
`from learning_check import train_and_evaluate`.
"""

from __future__ import annotations

from pathlib import Path


def train_and_evaluate(data: Path, out: Path, policy: dict, *, steps: int, batch_size: int, task: str = "builtin/reach",
                       episodes: int = 50) -> float:
    """Train `policy` ({"name": ..., fields...}) on `data` with seed 0, evaluate it on `episodes`
    held-out seeds (100000+) of `task`, and return the success rate."""
    from imitari.eval.metrics import summarize
    from imitari.eval.rollout import eval_seeds, evaluate
    from imitari.policies.loading import load_policy
    from imitari.learners.loop import train

    run = train({"data": str(data), "out": str(out), "policy": policy, "steps": steps, "batch_size": batch_size,
                 "progress": False, "seed": 0, "ckpt_every": steps})
    results, _ = evaluate(load_policy(run), task, seeds=eval_seeds(episodes), num_envs=25, workers=1, progress=False)
    return summarize(results).success_rate
