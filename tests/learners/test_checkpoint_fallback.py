"""Damaged checkpoints: resume falls back to the newest intact one, eval says which file is
damaged, hostile files are refused, and weights that are not finite are never saved."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from imitari.cli import main
from imitari.learners.checkpoint import load_train_state
from imitari.policies.loading import CheckpointError, find_checkpoint, load_policy
from imitari.learners.loop import Trainer, resume, train

TINY_BC = {"name": "bc", "hidden": [16], "action_horizon": 4, "exec_horizon": 2}


def _raw(data: Path, out: Path, **extra) -> dict:
    return {"data": str(data), "out": str(out), "policy": TINY_BC, "steps": 20, "batch_size": 8,
            "ckpt_every": 5, "log_every": 5, "warmup_steps": 2, "progress": False, "threads": 1, **extra}


@pytest.fixture()
def crashed_run(reach_dataset: Path, tmp_path: Path) -> Path:
    """A run stopped at step 10 of 20: checkpoints step 5 and step 10 (the latest)."""
    run = train(_raw(reach_dataset, tmp_path / "run", steps=10))
    assert find_checkpoint(run).name == "step_00000010"
    return run


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_resume_skips_a_truncated_latest_checkpoint(crashed_run: Path, capsys) -> None:
    _truncate(crashed_run / "checkpoints" / "step_00000010" / "train_state.pt")
    resume(crashed_run, {"steps": 20})
    err = capsys.readouterr().err
    assert "resume: skipping checkpoint step_00000010" in err and "train_state.pt does not match its checksum" in err
    steps = [json.loads(line)["step"] for line in (crashed_run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20], "continued from step 5, logging steps 10.. once more"
    assert find_checkpoint(crashed_run).name == "step_00000020"
    assert load_train_state(find_checkpoint(crashed_run))["step"] == 20


def test_resume_with_no_intact_checkpoint_is_one_line(crashed_run: Path, capsys) -> None:
    for ckpt in (crashed_run / "checkpoints").glob("step_*"):
        _truncate(ckpt / "train_state.pt")
    assert main(["train", "--resume", str(crashed_run), "--steps", "20"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("imitari train: error: ") and "no intact checkpoint to resume from" in lines[-1]
    assert sum("skipping checkpoint" in line for line in lines) == 2


def test_eval_of_a_truncated_model_names_the_file(crashed_run: Path, capsys) -> None:
    _truncate(crashed_run / "checkpoints" / "step_00000010" / "model.safetensors")
    with pytest.raises(CheckpointError, match="model.safetensors does not match its checksum"):
        load_policy(crashed_run)
    assert main(["eval", str(crashed_run), "--episodes", "2", "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.safetensors does not match its checksum" in err[0]


def test_a_planted_pickle_is_refused(crashed_run: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    ckpt = crashed_run / "checkpoints" / "step_00000010"
    buf = io.BytesIO()
    torch.save({"step": 10, "model": {}, "optimizer": {}, "scheduler": {}, "x": Payload()}, buf, pickle_module=pickle)
    (ckpt / "train_state.pt").write_bytes(buf.getvalue())
    (ckpt / "manifest.json").unlink()  # even without the checksum that would catch it first
    with pytest.raises(CheckpointError, match="train_state.pt cannot be loaded safely"):
        load_train_state(ckpt)
    assert not marker.exists()


def test_nonfinite_weights_are_never_saved(reach_dataset: Path, tmp_path: Path, monkeypatch) -> None:
    real_update = Trainer.update

    def poisoning_update(self: Trainer) -> dict:
        metrics = real_update(self)
        if self.step == 10:  # just before the step-10 checkpoint
            with torch.no_grad():
                next(self.policy.parameters()).fill_(float("nan"))
        return metrics

    monkeypatch.setattr(Trainer, "update", poisoning_update)
    with pytest.raises(FloatingPointError, match=r"weights .* are NaN or inf at step 10: not saved"):
        train(_raw(reach_dataset, tmp_path / "run", ckpt_every=5))
    steps = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step_*"))
    assert steps == ["step_00000005"], "the poisoned weights were not checkpointed"
    assert all(torch.isfinite(v).all() for v in load_file(str(find_checkpoint(tmp_path / "run") / "model.safetensors")).values())
