"""Settings a task registers for a policy (`TaskSpec.policy_defaults`) fill what a run leaves unset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imitari.config import ConfigError
from imitari.data.store import Dataset
from imitari.envs.metaworld_tasks import BC_DEFAULTS, BC_GMM_DEFAULTS, OBSERVATIONS_ONLY, POINTS, TANH_GAUSSIAN_DEFAULTS
from imitari.learners.config import resolve_config
from imitari.learners.loop import train


def _dataset(path: Path, env: str) -> str:
    """Two short episodes shaped like the task's data (39-D state for Meta-World)."""
    rng = np.random.default_rng(0)
    with Dataset.create(path, features={"obs.state": ((39,), "float32"), "action": ((4,), "float32")},
                        env=env, fps=80.0) as ds:
        for _ in range(2):
            ds.append_episode({"obs.state": rng.normal(size=(30, 39)).astype(np.float32),
                               "action": rng.uniform(-1, 1, size=(30, 4)).astype(np.float32)})
    return str(path)


@pytest.fixture
def metaworld_data(tmp_path: Path) -> str:
    return _dataset(tmp_path / "mw", "metaworld/shelf-place")


def test_a_metaworld_dataset_gives_bc_the_tasks_settings(metaworld_data: str, capsys) -> None:
    train_cfg, policy_cfg = resolve_config({"data": metaworld_data, "policy": "bc"})
    assert (train_cfg.steps, train_cfg.lr, train_cfg.batch_size) == (BC_DEFAULTS["steps"], BC_DEFAULTS["lr"], 100)
    assert policy_cfg.hidden == (1024, 1024) and policy_cfg.obs_horizon == 1 and policy_cfg.squash
    assert policy_cfg.relative_points == POINTS and policy_cfg.relative_scale == BC_DEFAULTS["policy"]["relative_scale"]
    assert "takes its settings where unset" in capsys.readouterr().out
    train_cfg, policy_cfg = resolve_config({"data": metaworld_data, "policy": "tanh_gaussian"})
    assert train_cfg.lr == TANH_GAUSSIAN_DEFAULTS["lr"] and policy_cfg.hidden == (1024, 1024)
    assert policy_cfg.relative_points == POINTS


def test_what_the_user_gives_wins(metaworld_data: str) -> None:
    train_cfg, policy_cfg = resolve_config({"data": metaworld_data, "lr": 1e-3, "steps": None,
                                            "policy": {"name": "bc", "hidden": "64,64"}})
    assert train_cfg.lr == 1e-3 and policy_cfg.hidden == (64, 64)
    assert train_cfg.steps == BC_DEFAULTS["steps"] and policy_cfg.obs_horizon == 1  # the rest from the task


def test_each_variant_takes_its_own_settings(metaworld_data: str) -> None:
    train_cfg, policy_cfg = resolve_config({"data": metaworld_data, "policy": {"name": "bc", "head": "gmm"}})
    assert train_cfg.steps == BC_GMM_DEFAULTS["steps"] and policy_cfg.hidden == (1024, 1024)
    assert not policy_cfg.squash and policy_cfg.relative_points == POINTS  # bc's tanh output is bc's own
    same = resolve_config({"data": metaworld_data, "policy": {"name": "bc", "head": "deterministic"}})
    assert same == resolve_config({"data": metaworld_data, "policy": "bc"})  # the default head is plain bc
    for policy in ("mint", "vq_bet", "bc_transformer", {"name": "streaming_diffusion", "denoiser": "mlp"}):
        generic_train, generic_policy = resolve_config({"data": metaworld_data, "policy": policy, "task_defaults": False})
        train_cfg, policy_cfg = resolve_config({"data": metaworld_data, "policy": policy})
        assert (train_cfg.steps, train_cfg.lr) == (generic_train.steps, generic_train.lr)  # only its observations
        assert policy_cfg.obs_norm == "none" and generic_policy.obs_norm != "none"
        assert policy_cfg.relative_scale == OBSERVATIONS_ONLY["policy"]["relative_scale"]


@pytest.mark.parametrize("raw", [
    {"policy": {"name": "bc", "head": "gaussian"}},  # a variant the task registers nothing for
    {"policy": {"name": "diffusion", "denoiser": "transformer"}},
    {"policy": "bc", "task_defaults": "false"},  # asked for the policy's own defaults
    {"policy": "diffusion"},  # a policy the task registers nothing for
    {"policy": "streaming_diffusion"},  # its UNet: only its MLP variant is registered
])
def test_where_the_tasks_settings_do_not_apply(metaworld_data: str, raw: dict) -> None:
    generic_train, generic_policy = resolve_config({**raw, "data": "", "task_defaults": False})
    train_cfg, policy_cfg = resolve_config({**raw, "data": metaworld_data})
    assert train_cfg.steps == generic_train.steps and policy_cfg == generic_policy
    assert policy_cfg.relative_points == ""


def test_other_tasks_and_unreadable_data_keep_the_generic_defaults(tmp_path: Path) -> None:
    builtin = _dataset(tmp_path / "b", "builtin/reach")
    assert resolve_config({"data": builtin, "policy": "bc"})[1].hidden == (256, 256)
    assert resolve_config({"data": str(tmp_path / "missing"), "policy": "bc"})[1].hidden == (256, 256)
    with pytest.raises(ConfigError, match="task_defaults: cannot read"):
        resolve_config({"data": builtin, "policy": "bc", "task_defaults": "maybe"})


def test_the_run_saves_the_resolved_settings(metaworld_data: str, tmp_path: Path) -> None:
    import json

    run = train({"data": metaworld_data, "policy": {"name": "bc", "hidden": "32,32"}, "steps": 2,
                 "out": str(tmp_path / "run"), "progress": False})
    saved = json.loads((run / "config.json").read_text())
    assert saved["lr"] == BC_DEFAULTS["lr"] and saved["policy"]["relative_points"] == POINTS
    assert saved["task_defaults"] is True
