"""Procedure Cloning learns the BFS expert's computation on 5 maze layouts and solves unseen ones."""

from __future__ import annotations

from pathlib import Path

import torch

from imitari.envs.collect import collect
from imitari.eval.metrics import summarize
from imitari.eval.rollout import evaluate
from imitari.learners.loop import train
from imitari.policies.loading import load_policy
from imitari.policies.registry import make_policy
from imitari.policies.base import Shapes
from imitari.policies.procedure_cloning import ProcedureCloningConfig


def test_pc_trained_on_five_layouts_solves_unseen_mazes(tmp_path: Path) -> None:
    collect("builtin/gridmaze-k5", tmp_path / "data", episodes=20, workers=1, progress=False)
    run = train({"data": str(tmp_path / "data"), "out": str(tmp_path / "run"), "policy": "procedure_cloning",
                 "steps": 500, "batch_size": 32, "lr_schedule": "constant", "warmup_steps": 0, "threads": 1, "progress": False,
                 "ckpt_every": 500, "seed": 0})
    policy = load_policy(run).eval()
    seeds = list(range(2000, 2010))  # validation seeds: layouts 2000-2009, none of the five trained on
    results, _ = evaluate(policy, "builtin/gridmaze-k5", seeds=seeds, num_envs=10, workers=1, progress=False)
    assert summarize(results).successes >= 7, "measured 9/10"


def test_iteration_stops_once_the_attended_cell_is_written() -> None:
    shapes = Shapes(obs={"agent": (5, 5), "goal": (5, 5), "walls": (5, 5)}, action=(2,))
    stats = {f"obs.{k}": {"min": [0.0], "max": [1.0], "mean": [0.0], "std": [1.0]} for k in shapes.obs}
    stats["action"] = {"min": [-1.0, -1.0], "max": [1.0, 1.0], "mean": [0.0, 0.0], "std": [1.0, 1.0]}
    torch.manual_seed(0)
    policy = make_policy("procedure_cloning", ProcedureCloningConfig(max_iterations=7), shapes=shapes, stats=stats)
    x = torch.zeros(3, 3, 5, 5)
    _, iterations = policy.iterate(x)
    assert (iterations <= 7).all() and iterations.dtype == torch.long
