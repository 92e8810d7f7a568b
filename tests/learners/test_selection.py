"""Checkpoint selection and the sampling/schedule options of the training loop: periodic
evaluation on validation seeds only, the best checkpoint kept and reported, epoch sampling,
the constant learning rate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from imitari.eval import rollout
from imitari.eval.seeds import is_validation
from imitari.learners.checkpoint import reported_checkpoint
from imitari.policies.loading import find_checkpoint
from imitari.learners.config import resolve_config
from imitari.learners.loop import Trainer, train
from imitari.learners.schedule import lr_factor

TINY_BC = {"name": "bc", "hidden": [32, 32], "action_horizon": 4, "exec_horizon": 2}


def _raw(data: Path, out: Path, **extra) -> dict:
    return {"data": str(data), "out": str(out), "policy": TINY_BC, "steps": 30, "batch_size": 16, "ckpt_every": 10,
            "log_every": 5, "warmup_steps": 5, "progress": False, "threads": 1, **extra}


def test_the_best_validation_checkpoint_is_kept_and_reported(reach_dataset: Path, tmp_path: Path, monkeypatch) -> None:
    seen: list[list[int]] = []
    real_evaluate = rollout.evaluate

    def recording_evaluate(policy, task, *, seeds, **kwargs):
        seen.append(list(seeds))
        return real_evaluate(policy, task, seeds=seeds, **kwargs)

    monkeypatch.setattr(rollout, "evaluate", recording_evaluate)
    scores = iter([0.5, 0.75, 0.25])  # step 20 is the best
    real_summary = Trainer.evaluate

    def scripted(self: Trainer, episodes: int) -> dict[str, float]:
        real_summary(self, episodes)  # the real rollouts, for the seeds they use
        return {"eval/success_rate": next(scores), "eval/mean_return": 0.0}

    monkeypatch.setattr(Trainer, "evaluate", scripted)
    run = train(_raw(reach_dataset, tmp_path / "run", eval_every=10, eval_episodes=3, num_envs=3))

    demo_seeds = set(json.loads((run / "config.json").read_text())["dataset"]["seeds"])
    assert len(seen) == 3 and all(is_validation(s) and s not in demo_seeds for seeds in seen for s in seeds)
    selection = json.loads((run / "best" / "selection.json").read_text())
    assert [e["step"] for e in selection["evaluations"]] == [10, 20, 30]
    assert selection["best"]["step"] == 20
    best = reported_checkpoint(run)
    assert best.name == "step_00000020" and best.parent.parent.name == "best"
    assert find_checkpoint(run).name == "step_00000030", "resuming still starts from the latest"
    a = load_file(str(best / "model.safetensors"))
    b = load_file(str(run / "checkpoints" / "step_00000020" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_without_periodic_evaluation_the_latest_is_reported(reach_dataset: Path, tmp_path: Path) -> None:
    run = train(_raw(reach_dataset, tmp_path / "run", steps=10))
    assert not (run / "best").exists()
    assert reported_checkpoint(run) == find_checkpoint(run)


def test_an_evaluation_also_ends_a_run_evaluated_by_cpu_time(reach_dataset: Path, tmp_path: Path) -> None:
    run = train(_raw(reach_dataset, tmp_path / "run", steps=12, eval_every_cpu_seconds=1e9, eval_episodes=2,
                     num_envs=2))
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines if "eval/success_rate" in m] == [12]
    assert reported_checkpoint(run).name == "step_00000012"


def test_epoch_sampling_visits_every_step_once_per_pass(reach_dataset: Path, tmp_path: Path) -> None:
    train_cfg, policy_cfg = resolve_config(_raw(reach_dataset, tmp_path / "run", sampling="epochs", batch_size=7))
    trainer = Trainer(train_cfg, policy_cfg, run_dir=tmp_path / "run")
    n = len(trainer.sampler)
    drawn = np.concatenate([trainer.batches.steps_of(k) for k in range(2 * n // 7 + 1)])
    first, second = drawn[:n], drawn[n:2 * n]
    assert sorted(first) == sorted(trainer.sampler.steps) == sorted(second), "each pass is a permutation"
    assert not np.array_equal(first, second), "each pass has its own order"
    assert np.array_equal(trainer.batches.steps_of(5), trainer.batches.steps_of(5)), "a function of (seed, step)"


def test_constant_schedule_keeps_the_peak_rate_after_warmup() -> None:
    assert lr_factor(0, warmup=10, total=100, schedule="constant") == pytest.approx(0.1)
    assert lr_factor(99, warmup=10, total=100, schedule="constant") == 1.0
    assert lr_factor(99, warmup=10, total=100, spent=0.99) < 0.01
