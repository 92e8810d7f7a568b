"""ACT: shapes, the CVAE's KL term, deterministic z = 0 prediction, temporal ensembling against
a hand-computed average, per-env resets, config errors, and learning builtin/reach."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from learning_check import train_and_evaluate
from policy_testdata import OBS_DIM, SHAPES, synthetic_windows
from safetensors.torch import load_file, save_file

from imitari.config import ConfigError
from imitari.policies.act import ActConfig, ActPolicy, kl_to_standard_normal
from imitari.policies.env_buffers import TemporalEnsemble
from imitari.policies.base import Shapes
from imitari.policies.registry import get_policy, make_policy

TINY = {"dim": 16, "heads": 2, "latent_dim": 4, "obs_horizon": 2, "action_horizon": 6, "exec_horizon": 3}


def tiny(stats: dict, **changes: Any) -> ActPolicy:
    torch.manual_seed(0)
    policy = make_policy("act", ActConfig(**{**TINY, **changes}), shapes=SHAPES, stats=stats)
    assert isinstance(policy, ActPolicy)
    return policy.eval()


def observations(steps: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (steps, n, OBS_DIM)).astype(np.float32)


def rollout(policy: ActPolicy, obs_seq: np.ndarray) -> np.ndarray:
    return np.stack([policy.act({"state": o}) for o in obs_seq])


@pytest.mark.parametrize("ensemble", [True, False])
def test_shapes_of_loss_predict_chunk_and_act(stats: dict, ensemble: bool) -> None:
    policy = tiny(stats, temporal_ensemble=ensemble).train()
    batch = synthetic_windows(5, obs_horizon=2, action_horizon=6, seed=0)
    batch["action_is_pad"][:, 4:] = True
    loss, metrics = policy.loss(batch)
    assert loss.ndim == 0 and torch.isfinite(loss) and set(metrics) == {"l1", "kl"}
    loss.backward()
    assert all(p.grad is not None for p in policy.parameters())
    policy.eval()
    assert policy.predict_chunk(batch["obs"]).shape == (5, 6, 2)
    policy.reset()
    actions = rollout(policy, observations(7, 3))
    assert actions.shape == (7, 3, 2) and actions.dtype == np.float32 and np.isfinite(actions).all()


def test_defaults_registry_and_size() -> None:
    config = ActConfig()
    assert (config.obs_horizon, config.action_horizon, config.exec_horizon) == (1, 20, 10)
    assert (config.latent_dim, config.kl_weight, config.temporal_ensemble, config.ensemble_m) == (32, 10.0, True, 0.01)
    assert get_policy("act") == (ActPolicy, ActConfig)
    shapes = Shapes(obs={"state": (39,)}, action=(4,))
    stats = {"obs.state": {k: [float(v)] * 39 for k, v in (("min", -1), ("max", 1), ("mean", 0), ("std", 1))},
             "action": {k: [float(v)] * 4 for k, v in (("min", -1), ("max", 1), ("mean", 0), ("std", 1))}}
    assert 250_000 < make_policy("act", None, shapes=shapes, stats=stats).num_parameters() < 300_000


def test_kl_is_zero_when_the_posterior_is_the_prior(stats: dict) -> None:
    mean, log_var = torch.randn(8, 5), torch.randn(8, 5)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, (0.5 * log_var).exp()), torch.distributions.Normal(0.0, 1.0)
    ).sum(-1)
    torch.testing.assert_close(kl_to_standard_normal(mean, log_var), expected)
    assert torch.equal(kl_to_standard_normal(torch.zeros(3, 5), torch.zeros(3, 5)), torch.zeros(3))

    policy = tiny(stats).train()
    batch = synthetic_windows(6, obs_horizon=2, action_horizon=6, seed=0)
    assert policy.loss(batch)[1]["kl"] > 0, "a random encoder's posterior differs from the prior"
    with torch.no_grad():
        policy.latent_params.weight.zero_()
        policy.latent_params.bias.zero_()
    loss, metrics = policy.eval().loss(batch)
    assert metrics["kl"] == 0.0 and loss.item() == pytest.approx(metrics["l1"])
    with torch.no_grad():  # posterior N(0, I) samples z ~ N(0, I): the loss is the L1 of that decoding
        steps = policy.obs_steps(batch["obs"])
        torch.manual_seed(5)
        z = torch.randn(6, policy.config.latent_dim)
        l1 = (policy.decode(steps, z) - policy.normalize_actions(batch["action"])).abs().mean()
        torch.manual_seed(5)
        assert policy.loss(batch)[0].item() == pytest.approx(l1.item(), rel=1e-5)


def test_padded_rows_do_not_count(stats: dict) -> None:
    policy = tiny(stats, kl_weight=0.0)
    batch = synthetic_windows(4, obs_horizon=2, action_horizon=6, seed=0)
    batch["action_is_pad"][:, 3:] = True
    torch.manual_seed(1)
    before = policy.loss(batch)[0]
    batch["action"][:, 3:] += 100.0
    torch.manual_seed(1)
    assert policy.loss(batch)[0].item() == pytest.approx(before.item(), rel=1e-6)


def test_prediction_is_deterministic_with_z_zero(stats: dict) -> None:
    policy = tiny(stats)
    obs = synthetic_windows(4, obs_horizon=2, action_horizon=6, seed=0)["obs"]
    first = policy.predict_chunk(obs)
    assert torch.equal(first, policy.predict_chunk(obs, generator=torch.Generator().manual_seed(3)))
    steps = policy.obs_steps(obs)
    expected = policy.unnormalize_actions(policy.decode(steps, torch.zeros(4, policy.config.latent_dim)))
    assert torch.equal(first, expected)


@pytest.mark.parametrize("m", [0.5, -0.5])  # older predictions weigh more, or the newest do
def test_temporal_ensemble_matches_a_hand_computed_average(m: float) -> None:
    ensemble = TemporalEnsemble(2, 3, 1, m=m)
    chunks = np.arange(1, 1 + 5 * 2 * 3, dtype=float).reshape(5, 2, 3, 1)  # [step, env, row, 0]
    got = []
    for step in range(5):
        ensemble.push(chunks[step])
        got.append(ensemble.average())
        if step == 2:
            ensemble.clear([1])
    got = np.stack(got)[..., 0]  # (step, env)
    e1, e2 = math.exp(-m), math.exp(-2 * m)
    c = chunks[..., 0]  # c[s, env, k]: the chunk of step s, row k is for step s + k

    def avg(preds: list[float]) -> float:  # oldest first, weights exp(-m * i)
        w = [math.exp(-m * i) for i in range(len(preds))]
        return sum(wi * p for wi, p in zip(w, preds)) / sum(w)

    env0 = [c[0, 0, 0],
            (c[0, 0, 1] + e1 * c[1, 0, 0]) / (1 + e1),
            (c[0, 0, 2] + e1 * c[1, 0, 1] + e2 * c[2, 0, 0]) / (1 + e1 + e2),
            (c[1, 0, 2] + e1 * c[2, 0, 1] + e2 * c[3, 0, 0]) / (1 + e1 + e2),
            avg([c[2, 0, 2], c[3, 0, 1], c[4, 0, 0]])]
    env1 = [c[0, 1, 0], avg([c[0, 1, 1], c[1, 1, 0]]), avg([c[0, 1, 2], c[1, 1, 1], c[2, 1, 0]]),
            c[3, 1, 0], avg([c[3, 1, 1], c[4, 1, 0]])]  # cleared after step 2
    np.testing.assert_allclose(got, np.stack([env0, env1], axis=1), rtol=1e-12)
    with pytest.raises(RuntimeError, match="push"):
        TemporalEnsemble(1, 3, 1, m=m).average()


@pytest.mark.parametrize(("past_horizon", "current_row"), [(None, 1), (0, 0)])
def test_act_executes_the_ensemble_of_the_chunks_rows_from_the_current_step(
    stats: dict, past_horizon: int | None, current_row: int
) -> None:
    policy = tiny(stats, ensemble_m=0.3, past_horizon=past_horizon)  # obs_horizon 2, action_horizon 6
    chunks = np.random.default_rng(0).normal(size=(4, 2, 6, 2)).astype(np.float32)
    calls: list[np.ndarray] = []

    def fake_predict(env_ids: np.ndarray) -> np.ndarray:
        calls.append(env_ids)
        return chunks[len(calls) - 1][env_ids]

    policy.predict_envs = fake_predict  # type: ignore[method-assign]
    policy.reset()
    actions = rollout(policy, observations(4, 2))
    reference = TemporalEnsemble(2, 6 - current_row, 2, m=0.3)
    for step in range(4):
        reference.push(chunks[step][:, current_row:])
        np.testing.assert_allclose(actions[step], reference.average(), rtol=1e-6)
    assert all(np.array_equal(ids, [0, 1]) for ids in calls), "every env predicts every step"


def test_without_ensembling_exec_horizon_actions_run_per_chunk(stats: dict) -> None:
    policy = tiny(stats, temporal_ensemble=False)  # exec_horizon 3
    calls = []
    original = policy.predict_envs
    policy.predict_envs = lambda ids: calls.append(ids) or original(ids)  # type: ignore[method-assign]
    policy.reset()
    actions = rollout(policy, observations(7, 2))
    assert len(calls) == 3
    obs = torch.as_tensor(np.repeat(observations(1, 2)[0][:, None], 2, axis=1))
    with torch.no_grad():
        chunk = policy.predict_chunk({"state": obs}).numpy()
    np.testing.assert_allclose(actions[:3].transpose(1, 0, 2), chunk[:, 1:4], atol=1e-6)


@pytest.mark.parametrize("ensemble", [True, False])
def test_per_env_reset_restarts_only_those_envs(stats: dict, ensemble: bool) -> None:
    policy = tiny(stats, temporal_ensemble=ensemble)
    obs = observations(8, 2)
    policy.reset()
    whole = rollout(policy, obs)
    policy.reset()
    first = rollout(policy, obs[:4])
    policy.reset(env_ids=[1], seeds=[7])
    second = rollout(policy, obs[4:])
    np.testing.assert_allclose(np.concatenate([first, second])[:, 0], whole[:, 0], atol=1e-5)
    policy.reset()
    fresh = rollout(policy, obs[4:])
    np.testing.assert_allclose(second[:, 1], fresh[:, 1], atol=1e-5)
    assert not np.allclose(second[:, 1], whole[4:, 1], atol=1e-4), "env 1 really started afresh"

    policy.reset()
    rollout(policy, obs[:3])
    policy.act({"state": obs[3, :1]})  # one env now: every env starts afresh
    policy.reset(env_ids=[0])
    one = rollout(policy, obs[4:, :1])
    policy.reset()
    np.testing.assert_allclose(one[:, 0], rollout(policy, obs[4:, :1])[:, 0], atol=1e-6)
    policy.reset()
    rollout(policy, obs[:3])
    policy.reset(env_ids=[2])  # an id beyond the current envs announces a new set of envs
    np.testing.assert_allclose(rollout(policy, obs[4:]), fresh, atol=1e-5)


def test_safetensors_round_trip_gives_identical_actions(stats: dict, tmp_path: Path) -> None:
    policy = tiny(stats)
    save_file(policy.state_dict(), str(tmp_path / "model.safetensors"))
    loaded = tiny(stats, seed=1)
    loaded.load_state_dict(load_file(str(tmp_path / "model.safetensors")))
    obs = observations(5, 2)
    policy.reset()
    loaded.reset()
    assert np.array_equal(rollout(loaded, obs), rollout(policy, obs))


def test_config_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match=r"dim \(30\) must be divisible by heads \(4\)"):
        ActConfig(dim=30)
    with pytest.raises(ConfigError, match="latent_dim must be >= 1"):
        ActConfig(latent_dim=0)
    with pytest.raises(ConfigError, match="decoder_layers must be >= 1"):
        ActConfig(decoder_layers=0)
    with pytest.raises(ConfigError, match="kl_weight must be >= 0"):
        ActConfig(kl_weight=-1.0)
    with pytest.raises(ConfigError, match="ensemble_m must be a finite number"):
        ActConfig(ensemble_m=float("inf"))
    with pytest.raises(ConfigError, match="ensemble_m must be a finite number"):
        ActConfig(ensemble_m=float("nan"))
    with pytest.raises(ConfigError, match=r"dropout must be in \[0, 1\)"):
        ActConfig(dropout=1.0)
    with pytest.raises(ConfigError, match="ptp_candidates must be 1 for act"):
        ActConfig(obs_horizon=2, ptp_candidates=4, temporal_ensemble=False)
    with pytest.raises(ConfigError, match=r"exec_horizon \(21\) must be <= action_horizon - obs_horizon \+ 1 = 20"):
        ActConfig(exec_horizon=21)


@pytest.mark.slow
@pytest.mark.parametrize("ensemble", [True, False], ids=["temporal_ensemble", "chunked"])
def test_act_learns_builtin_reach(ensemble: bool, reach_demos: Path, tmp_path: Path) -> None:
    policy = {"name": "act", "dim": 32, "temporal_ensemble": ensemble}
    success = train_and_evaluate(reach_demos, tmp_path / "act", policy, steps=800, batch_size=64)
    assert success >= 0.9, f"act (temporal_ensemble={ensemble}): success {success:.0%} on 50 held-out seeds"
