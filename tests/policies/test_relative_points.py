"""`relative_points`: pairwise point differences as extra inputs, for every registered policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from imitari.config import ConfigError
from imitari.policies.base import Policy, PolicyConfig, Shapes
from imitari.policies.registry import get_policy, make_policy, policy_names
from policy_testdata import assert_reloads_alike
from imitari.learners.loop import task_points
from imitari.policies.relative_points import AUTO, KEY, RelativePoints

SHAPES = Shapes(obs={"state": (9,)}, action=(2,))
STATS = {
    "obs.state": {"mean": [0.0] * 9, "std": [1.0] * 9, "min": [-5.0] * 9, "max": [5.0] * 9},
    "action": {"mean": [0.0, 0.0], "std": [1.0, 1.0], "min": [-1.0, -1.0], "max": [1.0, 1.0]},
}
SPEC = "state:0,3,6"


def _build(name: str, **fields: Any) -> Policy:
    torch.manual_seed(0)
    return make_policy(name, get_policy(name)[1](**fields), shapes=SHAPES, stats=STATS)


def test_differences_of_every_pair_in_raw_units() -> None:
    points = RelativePoints(SPEC)
    values = torch.tensor([[1.0, 2, 3, 10, 20, 30, -1, -2, -3]])
    expected = torch.tensor([[9.0, 18, 27, -2, -4, -6, -11, -22, -33]])  # b - a, c - a, c - b
    assert points.shape == (9,)
    assert torch.equal(points(values), expected)


def test_bad_specs_are_one_line_errors() -> None:
    for bad, match in (("state", "KEY:i,j"), ("state:0", "at least two"), ("state:0,0", "twice"),
                       ("state:a,b", "KEY:i,j")):
        with pytest.raises(ConfigError, match=match):
            PolicyConfig(relative_points=bad)
    with pytest.raises(ConfigError, match="'pos' is not a low-dimensional observation key .*state"):
        _build("bc", relative_points="pos:0,3")
    with pytest.raises(ConfigError, match="index 7 needs 3 values, but 'state' has 9"):
        _build("bc", relative_points="state:0,7")
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ConfigError, match="relative_scale must be a finite number > 0"):
            PolicyConfig(relative_scale=bad)
    with pytest.raises(ConfigError, match="resolved by the trainer"):
        _build("bc", relative_points=AUTO)


def test_scale_multiplies_the_differences() -> None:
    obs = {"state": torch.arange(9.0).reshape(1, 1, 9)}
    plain = _build("bc", relative_points=SPEC).eval().normalize_obs(obs)[KEY]
    scaled = _build("bc", relative_points=SPEC, relative_scale=10.0).eval().normalize_obs(obs)[KEY]
    assert torch.allclose(scaled, 10 * plain) and plain.abs().sum() > 0


def test_auto_takes_the_tasks_points() -> None:
    """'auto' becomes the task's registered spec; a task without points, or an unknown one, gets none."""
    from imitari.envs.registry import get_task, list_tasks

    with_points = [name for name in list_tasks() if get_task(name).points]
    without = next(name for name in list_tasks() if not get_task(name).points)
    assert "metaworld/shelf-place" in with_points
    auto = get_policy("bc")[1](relative_points=AUTO)
    for name in with_points:
        assert task_points(auto, name).relative_points == get_task(name).points
    assert task_points(auto, without).relative_points == ""
    assert task_points(auto, "nowhere/task").relative_points == ""
    assert task_points(get_policy("bc")[1](relative_points=SPEC), without).relative_points == SPEC


@pytest.mark.parametrize("name", policy_names())
def test_every_policy_trains_and_reloads_with_relative_points(name: str, tmp_path: Path) -> None:
    if not get_policy(name)[0].takes_relative_points:
        with pytest.raises(ConfigError, match="does not take relative_points"):
            _build(name, relative_points=SPEC)
        return
    policy = _build(name, relative_points=SPEC)
    plain = _build(name)
    assert policy.obs_encoder.out_dim == plain.obs_encoder.out_dim + 9 * policy.config.obs_horizon
    g = torch.Generator().manual_seed(0)
    cfg = policy.config
    batch = {"obs": {"state": torch.rand(4, cfg.obs_horizon, 9, generator=g) * 4 - 2},
             "action": torch.rand(4, cfg.action_horizon, 2, generator=g) * 2 - 1,
             "action_is_pad": torch.zeros(4, cfg.action_horizon, dtype=torch.bool)}
    encoded = policy.eval().normalize_obs(batch["obs"])
    assert torch.equal(encoded[KEY], RelativePoints(SPEC)(batch["obs"]["state"])), "raw units, not normalised"
    policy.train()
    for phase in policy.training_phases():
        loss, _ = policy.phase_loss(batch, phase.name)
        loss.backward()
    policy.eval()
    actions = policy.act({"state": np.zeros((2, 9), np.float32)})
    assert actions.shape == (2, 2) and np.isfinite(actions).all()
    assert_reloads_alike(policy, name, SHAPES, batch["obs"], tmp_path)
