"""The `act`/`reset` contract of the base class, checked with fake policies whose chunks
reveal which observations they were given."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch

from imitari.config import ConfigError
from imitari.policies.base import Generators, Policy, PolicyConfig, Shapes

SHAPES = Shapes(obs={"x": (1,)}, action=(4,))
STATS = {
    "obs.x": {"mean": [0.0], "std": [1.0], "min": [-1000.0], "max": [1000.0]},
    "action": {"mean": [0.0] * 4, "std": [1.0] * 4, "min": [-1.0] * 4, "max": [1.0] * 4},
}


class WindowEcho(Policy):
    """Chunk row k = [first obs of the window, last obs, k, number of this predict call]."""

    def __init__(self, config: PolicyConfig, *, shapes: Shapes = SHAPES, stats: Any = STATS) -> None:
        super().__init__(config, shapes=shapes, stats=stats)
        self.calls: list[int] = []
        self.seen: list[tuple[torch.dtype, bool]] = []

    def loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def predict_chunk(self, obs: Mapping[str, torch.Tensor], *, generator: Generators = None) -> torch.Tensor:
        x = obs["x"][..., 0]
        self.calls.append(len(x))
        self.seen.append((x.dtype, torch.is_inference_mode_enabled()))
        rows = torch.arange(self.config.action_horizon, dtype=x.dtype).expand(len(x), -1)
        return torch.stack([x[:, :1].expand_as(rows), x[:, -1:].expand_as(rows), rows,
                            torch.full_like(rows, len(self.calls))], dim=-1)


class NoiseEcho(WindowEcho):
    """Chunks of pure sampling noise: reveals which generator each env used."""

    def predict_chunk(self, obs: Mapping[str, torch.Tensor], *, generator: Generators = None) -> torch.Tensor:
        return self.sample_noise((len(obs["x"]), self.config.action_horizon, 4), generator)


def step(policy: Policy, values: list[float]) -> np.ndarray:
    return policy.act({"x": np.asarray(values, dtype=np.float32)[:, None]})


def test_config_checks_are_clear() -> None:
    with pytest.raises(ConfigError, match=r"exec_horizon \(9\) must be <= action_horizon - obs_horizon \+ 1 = 8"):
        PolicyConfig(obs_horizon=9, action_horizon=16, exec_horizon=9)
    with pytest.raises(ConfigError, match="obs_horizon must be >= 1"):
        PolicyConfig(obs_horizon=0)
    with pytest.raises(ConfigError, match="seed must be >= 0"):
        PolicyConfig(seed=-1)
    PolicyConfig(obs_horizon=3, action_horizon=8, exec_horizon=6)  # the largest legal exec horizon


def test_act_executes_rows_to_minus_one_onwards_from_the_obs_window() -> None:
    policy = WindowEcho(PolicyConfig(obs_horizon=3, action_horizon=8, exec_horizon=4))
    actions = [step(policy, [10.0 + t])[0] for t in range(9)]
    # step 0: the first observation fills the window; rows 2..5 of chunk 1 are executed
    assert np.array_equal(actions[0], [10, 10, 2, 1])
    assert [a[2] for a in actions[:4]] == [2, 3, 4, 5] and all(a[3] == 1 for a in actions[:4])
    # step 4: a new chunk from the window of steps 2, 3, 4
    assert np.array_equal(actions[4], [12, 14, 2, 2])
    assert np.array_equal(actions[8], [16, 18, 2, 3])
    assert policy.calls == [1, 1, 1]
    assert policy.seen[0] == (torch.float32, True)


def test_chunks_are_computed_only_for_envs_with_an_empty_queue() -> None:
    policy = WindowEcho(PolicyConfig(obs_horizon=2, action_horizon=4, exec_horizon=3))
    step(policy, [0, 100, 200])
    step(policy, [1, 101, 201])
    policy.reset(env_ids=[1], seeds=[5], anything="ignored")
    out = step(policy, [2, 500, 202])
    assert policy.calls == [3, 1], "only the reset env predicts, in a batch of one"
    assert np.array_equal(out[1], [500, 500, 1, 2]), "its window is filled with its first observation"
    assert np.array_equal(out[0], [0, 0, 3, 1]) and np.array_equal(out[2], [200, 200, 3, 1])
    out = step(policy, [3, 501, 203])
    assert policy.calls == [3, 1, 2], "envs 0 and 2 ran dry together and are batched"
    assert np.array_equal(out[0], [2, 3, 1, 3]) and np.array_equal(out[2], [202, 203, 1, 3])
    assert np.array_equal(out[1], [500, 500, 2, 2])


def test_reset_all_and_a_new_number_of_envs_start_afresh() -> None:
    policy = WindowEcho(PolicyConfig(obs_horizon=2, action_horizon=4, exec_horizon=2))
    step(policy, [0, 1])
    out = step(policy, [7, 8, 9])
    assert policy.calls == [2, 3] and np.array_equal(out[:, :2], [[7, 7], [8, 8], [9, 9]])
    step(policy, [1, 1, 1])
    policy.reset()
    out = step(policy, [4, 5, 6])
    assert policy.calls[-1] == 3 and np.array_equal(out[:, :2], [[4, 4], [5, 5], [6, 6]])
    step(policy, [1, 1, 1])
    policy.reset(env_ids=[3, 4], seeds=[0, 1])  # a larger set of envs is about to start
    out = step(policy, [2, 3, 4])
    assert policy.calls[-1] == 3 and np.array_equal(out[:, :2], [[2, 2], [3, 3], [4, 4]])
    with pytest.raises(ValueError, match="must be >= 0"):
        policy.reset(env_ids=[-1])


def test_act_uses_the_module_dtype_and_checks_observations() -> None:
    policy = WindowEcho(PolicyConfig(obs_horizon=1, action_horizon=2, exec_horizon=1)).double()
    out = step(policy, [1.5])
    assert out.dtype == np.float32 and out.shape == (1, 4)
    assert policy.seen[-1] == (torch.float64, True)
    with pytest.raises(KeyError, match="lacks keys"):
        policy.act({"y": np.zeros((1, 1))})
    with pytest.raises(ValueError, match=r"expected \(N, 1\)"):
        policy.act({"x": np.zeros((1, 2))})


def test_each_env_samples_from_its_own_seeded_generator() -> None:
    cfg = PolicyConfig(obs_horizon=1, action_horizon=4, exec_horizon=4)
    a, b = NoiseEcho(cfg), NoiseEcho(cfg)
    a.reset(env_ids=[0, 1, 2], seeds=[11, 12, 13])
    b.reset(env_ids=[0, 1], seeds=[13, 11])
    run_a = np.stack([step(a, [0, 0, 0]) for _ in range(8)])
    run_b = np.stack([step(b, [0, 0]) for _ in range(8)])
    assert np.array_equal(run_a[:, 2], run_b[:, 0]) and np.array_equal(run_a[:, 0], run_b[:, 1])
    assert not np.array_equal(run_a[:, 0], run_a[:, 1])
    a.reset()
    again = np.stack([step(a, [0, 0, 0]) for _ in range(2)])
    a.reset()
    assert np.array_equal(again, np.stack([step(a, [0, 0, 0]) for _ in range(2)])), "reset() restarts the noise"
    assert not np.array_equal(again[:, 0], run_a[:2, 0]), "without seeds, envs use their slot's stream"


def test_obs_noise_perturbs_training_inputs_only() -> None:
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="obs_noise must be a finite number >= 0"):
            PolicyConfig(obs_noise=bad)
    policy = WindowEcho(PolicyConfig(obs_noise=0.5))
    obs = {"x": torch.full((256, 2, 1), 500.0)}  # normalised: 0.5
    torch.manual_seed(0)
    noisy = policy.train().normalize_obs(obs)["x"]
    assert abs(noisy.mean().item() - 0.5) < 0.1 and abs(noisy.std().item() - 0.5) < 0.1
    assert torch.equal(policy.eval().normalize_obs(obs)["x"], torch.full((256, 2, 1), 0.5))
    torch.manual_seed(0)
    assert torch.equal(policy.train().normalize_obs(obs)["x"], noisy)  # the trainer's per-step seed decides it
