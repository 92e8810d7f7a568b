"""Streaming Diffusion Policy: the buffer's noise-level schedule, the per-position-step U-Net
and MLP denoisers, shapes, the buffer's shift, per-env resets and seeds, config errors, and learning builtin/reach."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from learning_check import train_and_evaluate
from policy_testdata import SHAPES, assert_actions_follow_episode_seed, synthetic_windows

from imitari.config import ConfigError
from imitari.policies.nn.mlp_denoiser import ResidualMLPDenoiser
from imitari.policies.nn.unet1d import ConditionalUnet1D
from imitari.policies.registry import get_policy, make_policy
from imitari.policies.streaming_diffusion import StreamingDiffusionConfig, StreamingDiffusionPolicy, buffer_levels

TINY = {"down_dims": (16, 32), "diffusion_step_embed_dim": 16, "obs_horizon": 2, "action_horizon": 8, "mlp_width": 32}


def tiny(stats: dict, **changes: Any) -> StreamingDiffusionPolicy:
    torch.manual_seed(0)
    policy = make_policy("streaming_diffusion", StreamingDiffusionConfig(**{**TINY, **changes}), shapes=SHAPES,
                         stats=stats)
    assert isinstance(policy, StreamingDiffusionPolicy)
    return policy.eval()


def observations(steps: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (steps, n, 3)).astype(np.float32)


@pytest.mark.parametrize(("obs_horizon", "action_horizon", "band"), [(2, 16, 1), (2, 16, 4), (3, 16, 4), (1, 8, 3)])
def test_buffer_levels_rise_along_the_horizon_and_shift_by_one_band(obs_horizon: int, action_horizon: int,
                                                                     band: int) -> None:
    n, start = 100, obs_horizon - 1
    bands = (action_horizon - start) // band
    levels = lambda phase: buffer_levels(torch.tensor(phase), num_levels=n, past=start,  # noqa: E731
                                         action_horizon=action_horizon, band=band)
    begin, end = levels(0.0), levels(1.0)
    assert begin.shape == (action_horizon,) and begin.dtype == torch.long
    assert (begin[:start] == n).all() and (end[:start] == n).all(), "past positions are pure noise"
    future = levels(0.0)[start:]
    assert (future.diff() >= 0).all() and future[-1] == n and future[0] == round(n / bands)
    assert (end[start : start + band] == 0).all(), "a finished round leaves band 0 clean"
    last_band = start + (bands - 1) * band
    assert torch.equal(end[start + band : last_band + band], begin[start:last_band]), \
        "shifted by one band, a finished buffer is at the levels a round starts from"
    phases = torch.linspace(0, 1, 7)
    batch = buffer_levels(phases, num_levels=n, past=start, action_horizon=action_horizon, band=band)
    assert batch.shape == (7, action_horizon)
    assert (batch[:, start:].diff(dim=0) <= 0).all(), "levels fall as a round goes on"
    assert ((batch >= 0) & (batch <= n)).all()
    assert (batch[:, start:].reshape(7, -1)[:, : bands * band].unflatten(1, (bands, band)).diff(dim=2) == 0).all(), \
        "a band shares one level"


PER_POSITION_NETS = {
    "unet": lambda: ConditionalUnet1D(2, 5, down_dims=(16, 32, 64), step_embed_dim=16),
    "mlp": lambda: ResidualMLPDenoiser(2, 8, 5, width=32, step_embed_dim=16, position_steps=8),
}


@pytest.mark.parametrize("net", sorted(PER_POSITION_NETS))
def test_denoisers_take_per_position_steps_and_match_the_scalar_step(net: str) -> None:
    torch.manual_seed(0)
    denoiser = PER_POSITION_NETS[net]().eval()
    x, cond = torch.randn(3, 8, 2), torch.randn(3, 5)
    steps = torch.tensor([4, 17, 60])
    with torch.no_grad():
        scalar = denoiser(x, steps, cond)
        per_position = denoiser(x, steps[:, None].expand(3, 8), cond)
        rising = denoiser(x, torch.arange(8).expand(3, 8) * 10, cond)
        falling = denoiser(x, torch.arange(8).flip(0).expand(3, 8) * 10, cond)
    torch.testing.assert_close(per_position, scalar, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(rising, scalar)
    assert not torch.allclose(rising, falling), "the network sees which position sits at which level"


def test_per_position_steps_of_the_wrong_shape_or_for_a_plain_mlp_are_refused() -> None:
    x, cond = torch.randn(3, 8, 2), torch.randn(3, 5)
    with pytest.raises(ValueError, match=r"per-position timesteps \(3, 4\) do not match the chunk \(3, 8\)"):
        PER_POSITION_NETS["unet"]()(x, torch.zeros(3, 4, dtype=torch.long), cond)
    plain = ResidualMLPDenoiser(2, 8, 5, width=32, step_embed_dim=16)
    with pytest.raises(ValueError, match="one step per position needs a denoiser built with position_steps > 0"):
        plain(x, torch.zeros(3, 8), cond)


@pytest.mark.parametrize("denoiser", ["unet", "mlp"])
def test_shapes_of_loss_predict_chunk_and_act(stats: dict, denoiser: str) -> None:
    policy = tiny(stats, denoiser=denoiser).train()
    batch = synthetic_windows(6, obs_horizon=2, action_horizon=8, seed=0)
    loss, metrics = policy.loss(batch)
    assert loss.ndim == 0 and torch.isfinite(loss) and metrics == {}
    loss.backward()
    assert all(p.grad is not None for p in policy.parameters())
    policy.eval()
    assert policy.predict_chunk(batch["obs"]).shape == (6, 8, 2)
    policy.reset()
    actions = np.stack([policy.act({"state": o}) for o in observations(5, 3)])
    assert actions.shape == (5, 3, 2) and actions.dtype == np.float32 and np.isfinite(actions).all()
    lo, hi = (policy.normalizer.stat("action", k).numpy() for k in ("min", "max"))
    assert ((actions >= lo - 1e-5) & (actions <= hi + 1e-5)).all(), "clean estimates are clipped to the range"


def test_defaults_registry_and_weights_only_in_the_state_dict(stats: dict) -> None:
    config = StreamingDiffusionConfig()
    assert (config.exec_horizon, config.denoise_steps, config.warm_start_steps) == (1, 1, 4)
    assert (config.constant_level_prob, config.down_dims, config.obs_horizon, config.action_horizon) == \
        (0.2, (32, 64, 128), 2, 16)
    assert get_policy("streaming_diffusion") == (StreamingDiffusionPolicy, StreamingDiffusionConfig)
    policy = make_policy("streaming_diffusion", None, shapes=SHAPES, stats=stats)
    assert 1_000_000 < policy.num_parameters() < 2_000_000
    assert not any(k in policy.state_dict() for k in ("alpha_bars", "round_levels", "warm_levels"))


class Recorder:
    """Wraps a policy's warm start and denoising round to record what they return."""

    def __init__(self, policy: StreamingDiffusionPolicy) -> None:
        self.calls: list[tuple[str, torch.Tensor]] = []
        for name in ("warm_start", "denoise_round"):
            original = getattr(policy, name)
            setattr(policy, name, lambda *args, _f=original, _n=name: self._record(_n, _f(*args)))

    def _record(self, name: str, out: torch.Tensor) -> torch.Tensor:
        self.calls.append((name, out.clone()))
        return out


@pytest.mark.parametrize(("band", "denoiser"), [(1, "unet"), (2, "unet"), (2, "mlp")])
def test_a_round_emits_the_clean_front_and_shifts_the_buffer(stats: dict, band: int, denoiser: str) -> None:
    policy = tiny(stats, exec_horizon=band, denoise_steps=2, denoiser=denoiser)
    recorder = Recorder(policy)
    obs = observations(2 * band, 2)
    policy.reset(seeds=[0, 1])
    first = np.stack([policy.act({"state": o}) for o in obs[:band]], axis=1)
    (name, warm), = recorder.calls
    assert name == "warm_start" and warm.shape == (2, 8, 2)
    start, last_band = 1, 1 + (7 // band - 1) * band
    expected = policy.unnormalize_actions(warm[:, start : start + band]).numpy()
    np.testing.assert_allclose(first, expected, atol=1e-6)
    buffer = policy._stream
    assert buffer is not None
    torch.testing.assert_close(buffer[:, start:last_band], warm[:, start + band : last_band + band])
    assert not torch.isclose(buffer[:, last_band:], warm[:, last_band:]).any(), "fresh noise at the back"
    assert not torch.isclose(buffer[:, :start], warm[:, :start]).any(), "fresh noise in the past positions"
    shifted = buffer.clone()
    second = np.stack([policy.act({"state": o}) for o in obs[band:]], axis=1)
    assert [n for n, _ in recorder.calls] == ["warm_start", "denoise_round"]
    np.testing.assert_allclose(second, policy.unnormalize_actions(recorder.calls[1][1][:, start : start + band]),
                               atol=1e-6)
    assert not torch.equal(recorder.calls[1][1], shifted), "the round denoised the shifted buffer"


def test_reset_restarts_only_the_named_envs(stats: dict) -> None:
    policy = tiny(stats)
    recorder = Recorder(policy)
    obs = observations(6, 2)
    policy.reset(seeds=[5, 6])
    before = np.stack([policy.act({"state": o}) for o in obs[:3]])
    policy.reset(env_ids=[1], seeds=[6])
    recorder.calls.clear()
    after = np.stack([policy.act({"state": np.stack([o1[0], o0[1]])}) for o0, o1 in zip(obs[:3], obs[3:])])
    assert recorder.calls[0][0] == "warm_start" and recorder.calls[0][1].shape[0] == 1, "only env 1 warm-starts"
    assert [n for n, _ in recorder.calls[1:]] == ["denoise_round"] * 3, "env 0 streams on, then both"
    assert np.allclose(after[:, 1], before[:, 1], atol=1e-6), "env 1 replays its seed's episode"
    assert not np.allclose(after[:, 0], before[:, 0], atol=1e-3), "env 0 went on with new observations"
    policy.reset(seeds=[5, 6])
    np.testing.assert_allclose(np.stack([policy.act({"state": o}) for o in obs[:3]]), before, atol=1e-6)


@pytest.mark.parametrize("changes", [{}, {"exec_horizon": 2, "obs_horizon": 3, "denoise_steps": 2},
                                     {"past_horizon": 0, "exec_horizon": 3}])
def test_actions_follow_the_episode_seed(stats: dict, changes: dict) -> None:
    policy = tiny(stats, **changes)
    assert_actions_follow_episode_seed(policy)
    reseeded = tiny(stats, seed=1, **changes)
    policy.reset(seeds=[0])
    reseeded.reset(seeds=[0])
    obs = observations(4, 1)
    ours, theirs = (np.stack([p.act({"state": o}) for o in obs]) for p in (policy, reseeded))
    assert not np.allclose(ours, theirs), "config.seed picks the noise"


def test_config_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match=r"denoise_steps must be in 1..6 \(got 7\)"):
        StreamingDiffusionConfig(denoise_steps=7)  # 15 bands of 100 levels
    with pytest.raises(ConfigError, match=r"denoise_steps must be in 1..6 \(got 0\)"):
        StreamingDiffusionConfig(denoise_steps=0)
    with pytest.raises(ConfigError, match=r"warm_start_steps must be in 1..num_train_timesteps=100 \(got 0\)"):
        StreamingDiffusionConfig(warm_start_steps=0)
    with pytest.raises(ConfigError, match=r"constant_level_prob must be in \[0, 1\] \(got 1.5\)"):
        StreamingDiffusionConfig(constant_level_prob=1.5)
    with pytest.raises(ConfigError, match=r"exec_horizon \(16\) must be <= action_horizon - obs_horizon \+ 1 = 15"):
        StreamingDiffusionConfig(exec_horizon=16)
    with pytest.raises(ConfigError, match=r"action_horizon \(10\) must be a multiple of 4"):
        StreamingDiffusionConfig(action_horizon=10)
    with pytest.raises(ConfigError, match="multiples of n_groups=8"):
        StreamingDiffusionConfig(down_dims=(12, 24))
    with pytest.raises(ConfigError, match="kernel_size must be odd"):
        StreamingDiffusionConfig(kernel_size=4)
    with pytest.raises(ConfigError, match="ptp_candidates must be 1"):
        StreamingDiffusionConfig(ptp_candidates=2, past_horizon=1)
    with pytest.raises(ConfigError, match="sampler must be 'ddim' or 'ddpm'"):
        StreamingDiffusionConfig(sampler="euler")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"denoiser must be one of \['mlp', 'unet'\] \(got 'transformer'\)"):
        StreamingDiffusionConfig(denoiser="transformer")
    with pytest.raises(ConfigError, match="streaming_diffusion's objective is ddpm"):
        StreamingDiffusionConfig(objective="flow")


@pytest.mark.slow
def test_streaming_diffusion_learns_builtin_reach(reach_demos: Path, tmp_path: Path) -> None:
    policy = {"name": "streaming_diffusion", "down_dims": [32, 64], "action_horizon": 8}
    success = train_and_evaluate(reach_demos, tmp_path / "run", policy, steps=1500, batch_size=64)
    assert success >= 0.9, f"streaming_diffusion: success {success:.0%} on 50 held-out seeds"


@pytest.mark.slow
def test_streaming_diffusion_with_the_mlp_denoiser_learns_builtin_reach(reach_demos: Path, tmp_path: Path) -> None:
    policy = {"name": "streaming_diffusion", "denoiser": "mlp", "action_horizon": 8}
    success = train_and_evaluate(reach_demos, tmp_path / "run", policy, steps=3000, batch_size=64)  # 1500: 0.52
    assert success >= 0.9, f"streaming_diffusion:denoiser=mlp: success {success:.0%} on 50 held-out seeds"
