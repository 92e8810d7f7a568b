"""BC and Diffusion Policy: shapes, configs, registry, persistence, determinism, and that each
can fit a small synthetic dataset (the real learning tests on tasks live in tests/learners)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from policy_testdata import SHAPES, assert_actions_follow_episode_seed, stats_of, synthetic_windows
from safetensors.torch import load_file, save_file

from imitari.config import ConfigError
from imitari.policies.base import Policy, PolicyConfig
from imitari.policies.bc import BCConfig, BCPolicy
from imitari.policies.diffusion import DiffusionConfig, DiffusionPolicy
from imitari.policies.registry import get_policy, make_policy, policy_names, register_policy

TINY: dict[str, PolicyConfig] = {
    "bc": BCConfig(hidden=(32, 32), obs_horizon=2, action_horizon=8, exec_horizon=4),
    "diffusion": DiffusionConfig(down_dims=(16, 32), diffusion_step_embed_dim=16, obs_horizon=2, action_horizon=8,
                                 exec_horizon=4),
}


def tiny(name: str, stats: dict, **changes: object) -> Policy:
    config = type(TINY[name])(**{**TINY[name].__dict__, **changes})
    return make_policy(name, config, shapes=SHAPES, stats=stats)


def rollout(policy: Policy, steps: int = 10, n: int = 2) -> np.ndarray:
    rng = np.random.default_rng(0)
    policy.reset()
    return np.stack([policy.act({"state": rng.uniform(-1, 1, (n, 3)).astype(np.float32)}) for _ in range(steps)])


@pytest.mark.parametrize("name", ["bc", "diffusion"])
def test_shapes_of_loss_predict_chunk_and_act(name: str, stats: dict) -> None:
    policy = tiny(name, stats)
    batch = synthetic_windows(6, obs_horizon=2, action_horizon=8, seed=0)
    loss, metrics = policy.loss(batch)
    assert loss.ndim == 0 and torch.isfinite(loss) and isinstance(metrics, dict)
    loss.backward()
    assert all(p.grad is not None for p in policy.parameters())
    assert policy.predict_chunk(batch["obs"]).shape == (6, 8, 2)
    assert rollout(policy.eval(), steps=5, n=3).shape == (5, 3, 2)


def test_defaults(stats: dict) -> None:
    bc, diffusion = BCConfig(), DiffusionConfig()
    assert (bc.hidden, bc.loss, bc.dropout, bc.ema) == ((256, 256), "l2", 0.0, False)
    assert (diffusion.down_dims, diffusion.kernel_size, diffusion.n_groups, diffusion.ema) == ((32, 64, 128), 5, 8, True)
    assert (diffusion.num_train_timesteps, diffusion.num_inference_steps, diffusion.sampler) == (100, 10, "ddim")
    assert (bc.obs_horizon, bc.action_horizon, bc.exec_horizon) == (2, 16, 8)
    assert 1_000_000 < make_policy("diffusion", None, shapes=SHAPES, stats=stats).num_parameters() < 2_000_000
    assert isinstance(make_policy("bc", None, shapes=SHAPES, stats=stats), BCPolicy)


def test_config_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match=r"action_horizon \(10\) must be a multiple of 4"):
        DiffusionConfig(action_horizon=10, exec_horizon=4)
    with pytest.raises(ConfigError, match="multiples of n_groups=8"):
        DiffusionConfig(down_dims=(12, 24))
    with pytest.raises(ConfigError, match="num_inference_steps must be in 1..num_train_timesteps=100"):
        DiffusionConfig(num_inference_steps=101)
    with pytest.raises(ConfigError, match="loss must be 'l2' or 'l1'"):
        BCConfig(loss="huber")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"dropout must be in \[0, 1\)"):
        BCConfig(dropout=1.0)


def test_registry(stats: dict) -> None:
    assert {"bc", "diffusion"} <= set(policy_names())
    assert get_policy("diffusion") == (DiffusionPolicy, DiffusionConfig)
    with pytest.raises(ValueError, match="unknown policy 'difusion' \\(did you mean 'diffusion'\\?\\)"):
        get_policy("difusion")
    with pytest.raises(ConfigError, match="needs a DiffusionConfig, got a BCConfig"):
        make_policy("diffusion", BCConfig(), shapes=SHAPES, stats=stats)
    with pytest.raises(ValueError, match="already registered"):
        register_policy("bc", BCPolicy, BCConfig)
    with pytest.raises(TypeError, match="Policy subclass"):
        register_policy("not-a-policy", torch.nn.Linear, BCConfig)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["bc", "diffusion"])
def test_safetensors_round_trip_gives_identical_actions(name: str, stats: dict, tmp_path: Path) -> None:
    torch.manual_seed(0)
    policy = tiny(name, stats).eval()
    save_file(policy.state_dict(), str(tmp_path / "model.safetensors"))
    torch.manual_seed(1)
    loaded = tiny(name, policy.normalizer.to_json()).eval()  # as a checkpoint's normalizer.json
    assert not np.array_equal(rollout(loaded), rollout(policy)), "different initial weights act differently"
    loaded.load_state_dict(load_file(str(tmp_path / "model.safetensors")))
    assert np.array_equal(rollout(loaded), rollout(policy))


def test_diffusion_sampling_is_reproducible_and_seedable(stats: dict) -> None:
    policy = tiny("diffusion", stats).eval()
    obs = synthetic_windows(4, obs_horizon=2, action_horizon=8, seed=0)["obs"]
    first = policy.predict_chunk(obs)
    assert torch.equal(first, policy.predict_chunk(obs)), "no generator: seeded with config.seed"
    assert not torch.equal(first, policy.predict_chunk(obs, generator=torch.Generator().manual_seed(9)))
    reseeded = tiny("diffusion", stats, seed=1).eval()
    reseeded.load_state_dict(policy.state_dict())
    assert not torch.equal(first, reseeded.predict_chunk(obs)), "config.seed picks the noise"
    assert np.array_equal(rollout(policy), rollout(policy))
    assert_actions_follow_episode_seed(policy)


@pytest.fixture(scope="module")
def fitted_diffusion() -> tuple[DiffusionPolicy, dict, float, float]:
    """A one-level U-Net trained 400 steps on 64 windows; (policy, batch, loss before, after)."""
    torch.manual_seed(0)
    batch = synthetic_windows(64, obs_horizon=2, action_horizon=8, seed=0)
    config = DiffusionConfig(down_dims=(32,), diffusion_step_embed_dim=16, obs_horizon=2, action_horizon=8,
                             exec_horizon=4)
    policy = make_policy("diffusion", config, shapes=SHAPES, stats=stats_of(batch))
    before = _eval_loss(policy, batch)
    fit(policy, batch, steps=400, lr=3e-3)
    return policy.eval(), batch, before, _eval_loss(policy, batch)  # type: ignore[return-value]


def _eval_loss(policy: Policy, batch: dict) -> float:
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(123)
        return float(np.mean([policy.loss(batch)[0].item() for _ in range(4)]))


def fit(policy: Policy, batch: dict, *, steps: int, lr: float) -> None:
    optimizer = torch.optim.AdamW(policy.parameters(), lr=lr)
    policy.train()
    for _ in range(steps):
        loss, _ = policy.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_bc_fits_a_small_dataset() -> None:
    torch.manual_seed(0)
    batch = synthetic_windows(64, obs_horizon=2, action_horizon=8, seed=0)
    policy = make_policy("bc", TINY["bc"], shapes=SHAPES, stats=stats_of(batch))
    before = _eval_loss(policy, batch)
    fit(policy, batch, steps=300, lr=3e-3)
    after = _eval_loss(policy.eval(), batch)
    assert after < before / 100, (before, after)
    with torch.no_grad():
        assert (policy.predict_chunk(batch["obs"]) - batch["action"]).pow(2).mean() < 1e-3


def test_diffusion_fits_a_small_dataset(fitted_diffusion: tuple) -> None:
    policy, batch, before, after = fitted_diffusion
    assert after < before / 8, (before, after)
    with torch.no_grad():
        error = (policy.normalize_actions(policy.predict_chunk(batch["obs"])) - policy.normalize_actions(batch["action"]))
    assert error.pow(2).mean() < 0.1, "DDIM samples land near the demonstrated chunks"


def test_ddim_and_ddpm_sampling_agree_and_stay_in_range(fitted_diffusion: tuple) -> None:
    policy, batch, _, _ = fitted_diffusion
    ddpm = make_policy("diffusion", DiffusionConfig(**{**policy.config.__dict__, "sampler": "ddpm"}),
                       shapes=SHAPES, stats=policy.normalizer.to_json())
    ddpm.load_state_dict(policy.state_dict())
    lo, hi = (policy.normalizer.stat("action", k) for k in ("min", "max"))
    with torch.no_grad():
        chunks = {"ddim": policy.predict_chunk(batch["obs"]), "ddpm": ddpm.eval().predict_chunk(batch["obs"])}
    assert len(ddpm.sample_scheduler.timesteps) == 100 and len(policy.sample_scheduler.timesteps) == 10
    for name, chunk in chunks.items():
        assert ((chunk >= lo - 1e-5) & (chunk <= hi + 1e-5)).all(), name
        assert (chunk - batch["action"]).pow(2).mean() < 0.1, name
