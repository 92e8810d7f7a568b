"""MINT: the frequency tokeniser, shapes, configs, seeded sampling, intent injection, learning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from learning_check import train_and_evaluate
from policy_testdata import SHAPES, assert_actions_follow_episode_seed, synthetic_windows

from imitari.config import ConfigError
from imitari.policies.base import Shapes
from imitari.policies.mint import FrequencyTokenizer, MintConfig, MintPolicy, dct_matrix
from imitari.policies.phases import phase_at
from imitari.policies.registry import get_policy, make_policy

TINY = {"dim": 32, "depth": 1, "heads": 2, "action_horizon": 8, "exec_horizon": 4, "scales": (1, 2, 8),
        "codebook_size": 8, "tokenizer_steps": 2}


def tiny(stats: dict, **changes: object) -> MintPolicy:
    policy = make_policy("mint", MintConfig(**{**TINY, **changes}), shapes=SHAPES, stats=stats)
    assert isinstance(policy, MintPolicy)
    return policy


def test_dct_is_orthonormal_and_round_trips() -> None:
    d = dct_matrix(16)
    torch.testing.assert_close(d @ d.T, torch.eye(16), atol=1e-5, rtol=0)
    tok = FrequencyTokenizer(16, 3, scales=(1, 4, 16), codebook_size=4, beta=0.25)
    x = torch.randn(5, 16, 3)
    torch.testing.assert_close(tok.signal(tok.spectrum(x)), x, atol=1e-5, rtol=0)
    constant = torch.ones(1, 16, 3)  # a constant chunk lives in the lowest frequency alone
    torch.testing.assert_close(tok.spectrum(constant)[:, 1:], torch.zeros(1, 15, 3), atol=1e-5, rtol=0)


def test_reconstruction_error_decreases_with_scales() -> None:
    torch.manual_seed(0)
    tok = FrequencyTokenizer(16, 2, scales=(1, 2, 4, 16), codebook_size=32, beta=0.25)
    chunks = synthetic_windows(512, obs_horizon=2, action_horizon=16, seed=0)["action"]
    optimizer = torch.optim.Adam(tok.parameters(), lr=1e-2)
    for _ in range(50):
        _, loss = tok.encode(chunks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    tok.eval()
    with torch.no_grad():
        codes, _ = tok.encode(chunks)
        errors = [float(((tok.decode(codes[:, :s]) - chunks) ** 2).mean()) for s in range(1, 5)]
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.2 * errors[0]


def test_shapes_of_loss_predict_chunk_and_act(stats: dict) -> None:
    policy = tiny(stats)
    batch = synthetic_windows(6, obs_horizon=2, action_horizon=8, seed=0)
    phases = [phase_at(policy.training_phases(), step) for step in range(4)]
    assert phases == ["tokenizer", "tokenizer", "generator", "generator"]
    for phase in phases:
        loss, metrics = policy.phase_loss(batch, phase)
        assert loss.ndim == 0 and torch.isfinite(loss)
        assert ("vq_loss" in metrics) == (phase == "tokenizer") and ("ce" in metrics) == (phase == "generator")
        loss.backward()
    assert "updates" not in policy.state_dict(), "the phase is the learner's step, not a buffer"
    grads = {name for name, p in policy.named_parameters() if p.grad is not None}
    assert any(name.startswith("decoder") for name in grads) and any(name.startswith("tokenizer") for name in grads)
    policy.eval()
    assert policy.predict_chunk(batch["obs"]).shape == (6, 8, 2)
    assert policy.generate(batch["obs"]).shape == (6, 3)
    policy.reset()
    rng = np.random.default_rng(0)
    actions = np.stack([policy.act({"state": rng.uniform(-1, 1, (3, 3)).astype(np.float32)}) for _ in range(5)])
    assert actions.shape == (5, 3, 2)


def test_tokenizer_freezes_after_its_steps(stats: dict) -> None:
    policy = tiny(stats, tokenizer_steps=1)
    batch = synthetic_windows(16, obs_horizon=2, action_horizon=8, seed=0)
    policy.phase_loss(batch, "tokenizer")  # the tokeniser's update: codebooks start from this batch
    books = [p.detach().clone() for p in policy.tokenizer.parameters()]
    loss, _ = policy.phase_loss(synthetic_windows(16, obs_horizon=2, action_horizon=8, seed=1), "generator")
    loss.backward()
    assert all(p.grad is None for p in policy.tokenizer.parameters())
    assert all(torch.equal(a, b) for a, b in zip(books, policy.tokenizer.parameters()))


def test_defaults_and_registry(stats: dict) -> None:
    assert get_policy("mint") == (MintPolicy, MintConfig)
    config = MintConfig()
    assert (config.scales, config.codebook_size, config.temperature) == ((1, 2, 4, 16), 16, 0.0)
    shapes = Shapes(obs={"state": (39,)}, action=(4,))
    wide = {"obs.state": {s: [0.0] * 39 for s in ("mean", "std", "min", "max")},
            "action": {s: [0.0] * 4 for s in ("mean", "std", "min", "max")}}
    assert 100_000 < make_policy("mint", None, shapes=shapes, stats=wide).num_parameters() < 300_000


def test_config_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="strictly increasing"):
        MintConfig(scales=(1, 4, 4))
    with pytest.raises(ConfigError, match=r"scales\[-1\] \(32\) must be <= action_horizon \(16\)"):
        MintConfig(scales=(1, 32))
    with pytest.raises(ConfigError, match="codebook_size must be >= 2"):
        MintConfig(codebook_size=1)
    with pytest.raises(ConfigError, match="temperature must be >= 0"):
        MintConfig(temperature=-1.0)
    with pytest.raises(ConfigError, match="divisible by heads"):
        MintConfig(dim=30, heads=4)
    with pytest.raises(ConfigError, match="tokenizer_steps must be >= 0"):
        MintConfig(tokenizer_steps=-1)


def test_sampled_actions_follow_the_episode_seed(stats: dict) -> None:
    policy = tiny(stats, temperature=1.0).eval()
    assert_actions_follow_episode_seed(policy)
    obs = synthetic_windows(4, obs_horizon=2, action_horizon=8, seed=0)["obs"]
    first = policy.predict_chunk(obs, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(first, policy.predict_chunk(obs, generator=torch.Generator().manual_seed(1)))


def _trained(stats: dict) -> MintPolicy:
    """A tiny MINT fitted to the synthetic windows (tokeniser, then generator)."""
    torch.manual_seed(0)
    policy = tiny(stats, tokenizer_steps=60, dropout=0.0)
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    for step in range(200):
        batch = synthetic_windows(64, obs_horizon=2, action_horizon=8, seed=step)
        loss, _ = policy.phase_loss(batch, phase_at(policy.training_phases(), step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return policy.eval()


def test_injected_intent_moves_the_chunk_toward_the_demo(stats: dict) -> None:
    policy = _trained(stats)
    obs = {"state": np.array([[0.5, -0.3, 0.2]], dtype=np.float32)}
    free = policy.act(obs)
    # A demonstration whose chunks are far from what this observation calls for.
    demo = np.tile(np.array([[-0.9, 0.9]], dtype=np.float32), (20, 1))
    policy.reset()
    injected = [policy.act(obs, intent_from=demo) for _ in range(4)]
    mean_free = policy.predict_chunk({"state": torch.as_tensor(obs["state"])[:, None].repeat(1, 2, 1)}).mean(1)
    demo_code = policy.intent_codes(torch.as_tensor(demo[None, :8]))
    with torch.no_grad():
        chunk = policy.predict_chunk({"state": torch.as_tensor(obs["state"])[:, None].repeat(1, 2, 1)}, intent=demo_code)
    target = torch.as_tensor(demo[:1])
    assert (chunk.mean(1) - target).norm() < (mean_free - target).norm()
    assert np.linalg.norm(injected[0] - demo[0]) < np.linalg.norm(free - demo[0])
    # Per env: None keeps that env's own intent; plain act() still works afterwards.
    policy.reset()
    both = policy.act({"state": np.repeat(obs["state"], 2, 0)}, intent_from=[demo, None])
    np.testing.assert_allclose(both[1], free[0], atol=1e-5)
    np.testing.assert_allclose(both[0], injected[0][0], atol=1e-5)
    with pytest.raises(ValueError, match="2 demonstrations for 1 envs"):
        policy.reset()
        policy.act(obs, intent_from=[demo, demo])


def test_injection_follows_the_demo_clock(stats: dict) -> None:
    """The intent of a chunk predicted at step t comes from the demo's chunk at step t."""
    policy = _trained(stats)
    obs = {"state": np.array([[0.1, 0.4, -0.5]], dtype=np.float32)}
    demo = np.concatenate([np.tile([[0.9, -0.9]], (4, 1)), np.tile([[-0.9, 0.9]], (16, 1))]).astype(np.float32)
    codes = []
    original = policy.intent_codes
    policy.intent_codes = lambda chunks: codes.append(chunks.clone()) or original(chunks)  # type: ignore[method-assign]
    policy.reset()
    for _ in range(5):
        policy.act(obs, intent_from=demo)
    assert len(codes) == 2  # chunks at steps 0 and 4 (exec_horizon 4)
    np.testing.assert_allclose(codes[0][0].numpy(), demo[[0, 0, 1, 2, 3, 4, 5, 6]])
    np.testing.assert_allclose(codes[1][0].numpy(), demo[3:11])


@pytest.mark.slow
def test_learns_reach(reach_demos: Path, tmp_path: Path) -> None:
    # 4 of the 16 actions per chunk: executing the default 8 reached 0.86 (43/50; also at the
    # commit before the change that first saw it), 4 and 2 both reached 1.00
    policy = {"name": "mint", "dropout": 0.0, "exec_horizon": 4}
    success = train_and_evaluate(reach_demos, tmp_path / "run", policy, steps=2000, batch_size=128)
    assert success >= 0.9, f"MINT reached the goal in {success:.0%} of held-out episodes"
