"""`init_encoder` / `freeze_encoder`: a run starts its observation encoder from another run's
(a BC run's CNN for a diffusion policy on the same camera), and a frozen one stays as loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from imitari.learners.loop import train
from imitari.policies.loading import ENCODER_PREFIX, CheckpointError, find_checkpoint

DIFFUSION = {"name": "diffusion", "denoiser": "mlp", "objective": "flow", "obs_horizon": 1, "action_horizon": 4,
             "exec_horizon": 2, "ema": False}


@pytest.fixture(scope="module")
def pixel_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from imitari.envs.collect import collect

    path = tmp_path_factory.mktemp("pixels") / "reach"
    collect("builtin/reach:pixels", path, episodes=6, workers=1, progress=False)
    return path


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(find_checkpoint(run) / "model.safetensors"))


def _encoder(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith(ENCODER_PREFIX)}


def _train(data: Path, out: Path, policy: dict, **extra) -> Path:
    return train({"data": str(data), "out": str(out), "policy": policy, "steps": 10, "batch_size": 8,
                  "progress": False, "ckpt_every": 10, **extra})


def test_frozen_encoder_keeps_the_source_runs_weights(pixel_data: Path, tmp_path: Path) -> None:
    source = _train(pixel_data, tmp_path / "bc", {"name": "bc", "obs_horizon": 1})
    scratch = _train(pixel_data, tmp_path / "scratch", DIFFUSION)
    frozen = _train(pixel_data, tmp_path / "frozen", DIFFUSION, init_encoder=str(source), freeze_encoder=True)
    tuned = _train(pixel_data, tmp_path / "tuned", DIFFUSION, init_encoder=str(source))
    bc_enc, frozen_state = _encoder(_weights(source)), _weights(frozen)
    assert bc_enc and all(torch.equal(frozen_state[k], v) for k, v in bc_enc.items())
    assert not all(torch.equal(_weights(scratch)[k], v) for k, v in bc_enc.items())
    # the rest of the frozen run trained, and without freezing the transferred encoder moves on
    head = [k for k in frozen_state if not k.startswith(ENCODER_PREFIX) and "normalizer" not in k]
    assert any(not torch.equal(frozen_state[k], _weights(scratch)[k]) for k in head)
    assert not all(torch.equal(_weights(tuned)[k], v) for k, v in bc_enc.items())


def test_an_encoder_that_does_not_fit_is_a_clear_error(pixel_data: Path, reach_dataset: Path, tmp_path: Path) -> None:
    source = _train(pixel_data, tmp_path / "bc", {"name": "bc", "obs_horizon": 1})
    with pytest.raises(CheckpointError, match="does not fit"):
        _train(pixel_data, tmp_path / "wider", {**DIFFUSION, "image_features": 32}, init_encoder=str(source))
    state_only = _train(reach_dataset, tmp_path / "state", {"name": "bc"})
    with pytest.raises(CheckpointError, match="no\\s+weights to transfer"):
        _train(pixel_data, tmp_path / "from_state", DIFFUSION, init_encoder=str(state_only))
