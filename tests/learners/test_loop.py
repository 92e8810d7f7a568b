"""The training loop: resume equivalence, checkpoint contents, clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from imitari.config import ConfigError
from imitari.data.lock import WriterLock
from imitari.data.store import DatasetError
from imitari.policies.loading import find_checkpoint, load_policy
from imitari.learners.config import resolve_config
from imitari.learners.loop import Trainer, resume, train
from imitari.learners.schedule import ema_decay, lr_factor

TINY_BC = {"name": "bc", "hidden": [32, 32], "action_horizon": 4, "exec_horizon": 2}


def _raw(data: Path, out: Path, **extra) -> dict:
    return {
        "data": str(data), "out": str(out), "policy": TINY_BC, "steps": 40, "batch_size": 16,
        "ckpt_every": 10, "log_every": 5, "warmup_steps": 5, "progress": False, "threads": 1, **extra,
    }


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(find_checkpoint(run) / "model.safetensors"))


TINY_VQ_BET = {"name": "vq_bet", "obs_horizon": 2, "action_horizon": 4, "exec_horizon": 2, "latent_dim": 4,
               "codebook_size": 4, "vae_hidden": [8], "dim": 8, "heads": 2, "depth": 1, "head_hidden": 8,
               "vqvae_steps": 24}  # the crash at 27 resumes from 20, in the VQ-VAE phase, across the switch


@pytest.mark.parametrize("policy", [TINY_BC, {"name": "diffusion", "down_dims": [8, 16], "action_horizon": 4,
                                              "exec_horizon": 2, "diffusion_step_embed_dim": 8}, TINY_VQ_BET])
def test_resume_gives_the_same_weights(reach_dataset: Path, tmp_path: Path, monkeypatch, policy) -> None:
    full = train(_raw(reach_dataset, tmp_path / "full", policy=policy))

    real_update = Trainer.update

    def crashing_update(self: Trainer) -> dict:
        if self.step == 27:
            raise RuntimeError("simulated crash")
        return real_update(self)

    monkeypatch.setattr(Trainer, "update", crashing_update)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(_raw(reach_dataset, tmp_path / "crashed", policy=policy))
    assert find_checkpoint(tmp_path / "crashed").name == "step_00000020"
    monkeypatch.setattr(Trainer, "update", real_update)
    resume(tmp_path / "crashed")

    a, b = _weights(full), _weights(tmp_path / "crashed")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    steps = [json.loads(line)["step"] for line in (tmp_path / "crashed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 40, "metrics after the crash point are logged once"


def test_checkpoint_layout_and_reload(reach_dataset: Path, tmp_path: Path) -> None:
    run = train(_raw(reach_dataset, tmp_path / "run"))
    ckpt = find_checkpoint(run)
    for name in ("config.json", "model.safetensors", "normalizer.json", "train_state.pt"):
        assert (ckpt / name).is_file(), name
    config = json.loads((ckpt / "config.json").read_text())
    assert config["policy"]["name"] == "bc" and config["task"] == "builtin/reach"
    assert sorted(config["dataset"]["seeds"]) == list(range(config["dataset"]["episodes"]))
    policy = load_policy(run)
    obs = {"state": torch.zeros(3, 4).numpy()}
    assert policy.act(obs).shape == (3, 2)
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for key in ("loss", "lr", "grad_norm", "data_time", "update_time"):
        assert key in metrics[-1], key
    assert any((run / "tb").iterdir()), "tensorboard events are written"


def test_errors_are_clear(reach_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'steps'"):
        resolve_config({"data": str(reach_dataset), "stesp": 3})
    with pytest.raises(ConfigError, match="did you mean 'hidden'"):
        resolve_config({"policy": {"name": "bc", "hiden": [3]}})
    with pytest.raises(ValueError, match="did you mean 'bc'"):
        resolve_config({"policy": "bcc"})
    with pytest.raises(ConfigError, match="no dataset"):
        train({"policy": "bc"})
    run = train(_raw(reach_dataset, tmp_path / "run", steps=5))
    with pytest.raises(ConfigError, match="already holds a run"):
        train(_raw(reach_dataset, run, steps=5))
    with pytest.raises(ConfigError, match="cannot change 'lr'"):
        resume(run, {"lr": 0.1})


def test_a_second_trainer_of_the_same_run_stops_at_once(reach_dataset: Path, tmp_path: Path) -> None:
    """Two processes training (or resuming) one run directory would interleave its checkpoints:
    the second stops before writing anything, naming the first (a lock taken through its own
    open file, as another process's would be)."""
    run = tmp_path / "run"
    run.mkdir()
    with WriterLock(run, what="run"):
        with pytest.raises(ConfigError, match=f"another writer is using this run: pid {os.getpid()} .*pick another --out"):
            train(_raw(reach_dataset, run, steps=5))
        assert [p.name for p in run.iterdir()] == ["writer.lock"], "nothing written by the refused run"
    train(_raw(reach_dataset, run, steps=5))
    WriterLock(run, what="run").release()  # the finished run gave its lock back
    with WriterLock(run, what="run"), pytest.raises(ConfigError, match="another writer is using this run"):
        resume(run, {"steps": 10})
    assert resume(run, {"steps": 10}) == run and find_checkpoint(run).name.endswith("10")
    with pytest.raises(DatasetError, match="no dataset here"):
        train(_raw(tmp_path / "no-data", tmp_path / "fresh", steps=5))
    assert not (tmp_path / "fresh").exists(), "a fresh run that failed at its start leaves no directory"


def test_nan_loss_stops_with_a_clear_error(reach_dataset: Path, tmp_path: Path, monkeypatch) -> None:
    from imitari.policies.bc import BCPolicy

    real_loss = BCPolicy.loss
    monkeypatch.setattr(BCPolicy, "loss", lambda self, batch: (real_loss(self, batch)[0] * float("nan"), {}))
    with pytest.raises(FloatingPointError, match="loss is"):
        train(_raw(reach_dataset, tmp_path / "run", steps=200))
    assert not (tmp_path / "run" / "checkpoints").exists() or not list((tmp_path / "run" / "checkpoints").glob("step_*"))


def test_lr_schedule_shape() -> None:
    assert lr_factor(0, warmup=10, total=100) == pytest.approx(0.1)
    assert lr_factor(10, warmup=10, total=100) == pytest.approx(1.0)
    assert lr_factor(100, warmup=10, total=100) == pytest.approx(0.0)
    assert 0 < ema_decay(1000, power=0.75, max_decay=0.9999) < 0.9999


def test_periodic_evaluation_is_logged(reach_dataset: Path, tmp_path: Path) -> None:
    run = train(_raw(reach_dataset, tmp_path / "run", steps=20, eval_every=10, eval_episodes=3, num_envs=3))
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [m for m in lines if "eval/success_rate" in m]
    assert [m["step"] for m in evals] == [10, 20]
    assert all(0.0 <= m["eval/success_rate"] <= 1.0 for m in evals)


def test_load_policy_overrides_inference_fields(reach_dataset: Path, tmp_path: Path) -> None:
    from imitari.config import ConfigError
    from imitari.policies.loading import CheckpointError, load_policy
    from imitari.learners.loop import train

    run = train({"data": str(reach_dataset), "out": str(tmp_path / "run"), "steps": 2, "progress": False,
                 "policy": {"name": "diffusion", "down_dims": [16, 32], "action_horizon": 8, "exec_horizon": 4}})
    assert load_policy(run).config.sampler == "ddim"
    policy = load_policy(run, overrides={"sampler": "ddpm"})
    assert policy.config.sampler == "ddpm" and len(policy.sample_scheduler.timesteps) == 100
    with pytest.raises(ConfigError, match="did you mean 'sampler'"):
        load_policy(run, overrides={"samplr": "ddpm"})
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_policy(run, overrides={"down_dims": "16,64"})



def test_metrics_that_change_within_a_log_window_are_averaged_where_reported(
    reach_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_update = Trainer.update

    def phased_update(self: Trainer) -> dict:  # a policy whose metrics change between phases (VQ-BeT)
        metrics = real_update(self)
        metrics["phase_one" if self.step <= 2 else "phase_two"] = float(self.step)
        return metrics

    monkeypatch.setattr(Trainer, "update", phased_update)
    train(_raw(reach_dataset, tmp_path / "run", steps=4, log_every=4))
    row = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()][0]
    assert row["step"] == 4 and row["phase_one"] == 1.5 and row["phase_two"] == 3.5


def test_a_run_saved_with_the_old_interactive_block_still_resumes(reach_dataset: Path, tmp_path: Path) -> None:
    run = train(_raw(reach_dataset, tmp_path / "run", steps=10))
    config = json.loads((run / "config.json").read_text())
    config["interactive"] = {"rounds": 3, "episodes_per_round": 10}  # TrainConfig's field before learner_config
    (run / "config.json").write_text(json.dumps(config))
    resume(run, {"steps": 20})
    assert find_checkpoint(run).name == "step_00000020"
