"""Training to a budget of process CPU time: where it stops, the LR schedule, resuming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from imitari.config import ConfigError
from imitari.learners import loop
from imitari.learners.checkpoint import load_train_state
from imitari.policies.loading import find_checkpoint
from imitari.learners.loop import Trainer, resume, train
from imitari.learners.schedule import lr_factor

TINY_BC = {"name": "bc", "hidden": [32, 32], "action_horizon": 4, "exec_horizon": 2}


class FakeClock:
    """A CPU clock that advances `tick` seconds per reading: one reading per update."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def _raw(data: Path, out: Path, **extra) -> dict:
    return {
        "data": str(data), "out": str(out), "policy": TINY_BC, "steps": 1000, "batch_size": 16,
        "budget_cpu_minutes": 0.1, "ckpt_every": 1000, "ckpt_every_cpu_seconds": 2.0, "log_every": 1,
        "warmup_steps": 2, "progress": False, "threads": 1, **extra,
    }


def _state(run: Path) -> dict:
    return load_train_state(find_checkpoint(run))


def test_lr_factor_decays_over_the_spent_budget() -> None:
    assert lr_factor(0, warmup=2, total=1000) == 0.5
    assert lr_factor(10, warmup=2, total=1000, spent=0.5) == pytest.approx(0.5)
    assert lr_factor(10, warmup=2, total=1000, spent=1.0) == pytest.approx(0.0)
    assert lr_factor(501, warmup=2, total=1000, spent=0.1) == pytest.approx(0.5), "the step count, when further along, wins"


def test_budget_stops_training_and_is_saved(reach_dataset: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(loop, "cpu_clock", FakeClock(0.5))
    run = train(_raw(reach_dataset, tmp_path / "run"))
    # 0.1 CPU-minutes = 6 s at 0.5 s per update: 12 updates; checkpoints every 2 CPU-seconds.
    state = _state(run)
    assert state["step"] == 12 and state["cpu_seconds"] == pytest.approx(6.0)
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*")) == ["step_00000008", "step_00000012"]
    lrs = [json.loads(line)["lr"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(lrs) == 12 and all(a > b for a, b in zip(lrs[1:], lrs[2:])), "cosine decay after warm-up"
    assert lrs[-1] < 0.05 * max(lrs), "the decay reaches about zero as the budget runs out"

    resume(run, {"budget_cpu_minutes": 0.15})  # a bigger budget continues the run
    state = _state(run)
    assert state["step"] == 18 and state["cpu_seconds"] == pytest.approx(9.0)


def test_budgeted_resume_gives_the_same_weights(reach_dataset: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(loop, "cpu_clock", FakeClock(0.5))
    full = train(_raw(reach_dataset, tmp_path / "full"))

    real_update = Trainer.update

    def crashing_update(self: Trainer) -> dict:
        if self.step == 10:
            raise RuntimeError("simulated crash")
        return real_update(self)

    monkeypatch.setattr(loop, "cpu_clock", FakeClock(0.5))
    monkeypatch.setattr(Trainer, "update", crashing_update)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(_raw(reach_dataset, tmp_path / "crashed"))
    assert _state(tmp_path / "crashed")["cpu_seconds"] == pytest.approx(4.0), "spent CPU is in the checkpoint"
    monkeypatch.setattr(Trainer, "update", real_update)
    monkeypatch.setattr(loop, "cpu_clock", FakeClock(0.5))
    resume(tmp_path / "crashed")

    state = _state(tmp_path / "crashed")
    assert state["step"] == 12 and state["cpu_seconds"] == pytest.approx(6.0)
    a = load_file(str(find_checkpoint(full) / "model.safetensors"))
    b = load_file(str(find_checkpoint(tmp_path / "crashed") / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("field, value", [("budget_cpu_minutes", 0), ("ckpt_every_cpu_seconds", -1)])
def test_bad_budget_fields(reach_dataset: Path, tmp_path: Path, field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        train(_raw(reach_dataset, tmp_path / "run", **{field: value}))
