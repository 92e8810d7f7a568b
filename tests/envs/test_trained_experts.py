"""A trained RL run shipped as a task's expert (benchmarks/ship_expert.py, imitari.envs.trained_experts)
acts exactly as its checkpoint does, and its card records what was measured."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imitari.envs.experts import ExpertPolicy
from imitari.envs.registry import get_task
from imitari.envs.trained_experts import POLICY_FILES, expert_card, expert_dir, trained_expert
from imitari.eval.rollout import evaluate
from imitari.learners.checkpoint import reported_checkpoint
from imitari.learners.loop import train
from imitari.policies.loading import load_policy

ROOT = Path(__file__).resolve().parents[2]
TASK = "builtin/track"


def test_a_shipped_run_is_the_tasks_expert(tmp_path: Path) -> None:
    run = train({"env": TASK, "learner": "sac", "steps": 60, "batch_size": 32, "num_envs": 2, "threads": 1,
                 "progress": False, "policy": {"hidden": [16, 16]}, "out": str(tmp_path / "run"),
                 "learner_config": {"learning_starts": 40, "critic_hidden": [16, 16]}})
    root = tmp_path / "experts"
    assert trained_expert(TASK, root) is None  # nothing shipped yet: no expert
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ship_expert.py"), "--run", str(run),
                    "--episodes", "3", "--root", str(root)], check=True, capture_output=True)
    assert sorted(p.name for p in expert_dir(TASK, root).iterdir()) == sorted([*POLICY_FILES, "expert.json"])
    card = expert_card(TASK, root)
    assert card is not None and card["task"] == TASK and card["learner"] == "sac" and card["eval_seeds"] == "1000-1002"
    assert -200 < card["random_return"]["mean"] < -90  # uniform random actions on builtin/track: about -133
    spec = dataclasses.replace(get_task(TASK), make_expert=trained_expert(TASK, root))
    expert = ExpertPolicy(spec)
    assert expert.identity is not None and expert.identity.startswith(f"sac {TASK}")
    results, _ = evaluate(expert, spec, seeds=[1000, 1001, 1002], num_envs=3, workers=1, progress=False)
    assert round(float(np.mean([r.return_ for r in results])), 1) == card["expert_return"]["mean"]
    policy = load_policy(reported_checkpoint(run))
    obs = {"state": np.random.default_rng(0).normal(size=(4, *spec.make().observation_space["state"].shape))
           .astype(np.float32)}
    expert.reset([0, 1, 2, 3], seeds=[0, 1, 2, 3])
    np.testing.assert_allclose(expert.act(obs), policy.act(obs), atol=1e-6)
    # shipping again replaces the expert in one rename, leaving no staging folders behind
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ship_expert.py"), "--run", str(run),
                    "--episodes", "2", "--root", str(root)], check=True, capture_output=True)
    assert json.loads((expert_dir(TASK, root) / "expert.json").read_text())["eval_seeds"] == "1000-1001"
    assert [p.name for p in root.iterdir()] == [expert_dir(TASK, root).name]
    # `collect --expert RUN`: the run acts instead of the task's expert, and the episodes name it
    from imitari.data.store import Dataset
    from imitari.envs.collect import collect

    summary = collect(TASK, tmp_path / "taught", episodes=2, seed_start=1000, workers=1, progress=False, expert=str(run))
    with Dataset.open(tmp_path / "taught") as ds:
        assert [info["expert"] for info in ds.episode_info] == [str(run)] * 2
    assert round(summary.mean_return, 1) == round(float(np.mean([r.return_ for r in results[:2]])), 1)


def test_the_shipped_hopper_expert_collects_demonstrations(tmp_path: Path) -> None:
    pytest.importorskip("mujoco")
    from imitari.envs.collect import collect

    card = expert_card("mujoco/hopper")
    assert card is not None, "imitari ships a Hopper expert"
    summary = collect("mujoco/hopper", tmp_path / "hopper", episodes=1, workers=1, progress=False)
    assert summary.collected == 1 and summary.mean_return > 10 * card["random_return"]["mean"]
    assert "mean return" in str(summary)
