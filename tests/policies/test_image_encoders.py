"""Image observations for every registered policy: encoders, augmentation, scaling, save/load, config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from imitari.config import ConfigError
from imitari.policies.base import Policy, Shapes
from imitari.policies.nn.image_encoders import Augment, CameraEncoder, ImageObsEncoder, ImageOptions
from imitari.policies.registry import get_policy, make_policy, policy_names
from policy_testdata import assert_reloads_alike

SHAPES = Shapes(obs={"image": (20, 24, 3), "state": (3,)}, action=(2,))
STATS = {
    "obs.state": {"mean": [0.0] * 3, "std": [1.0] * 3, "min": [-1.0] * 3, "max": [1.0] * 3},
    "obs.image": {"mean": [120.0] * 3, "std": [60.0] * 3, "min": [0.0] * 3, "max": [255.0] * 3},
    "action": {"mean": [0.0, 0.0], "std": [1.0, 1.0], "min": [-1.0, -1.0], "max": [1.0, 1.0]},
}


def _build(name: str, **fields: Any) -> Policy:
    torch.manual_seed(0)
    return make_policy(name, get_policy(name)[1](**fields), shapes=SHAPES, stats=STATS)


def _batch(policy: Policy, n: int = 3) -> dict[str, Any]:
    g = torch.Generator().manual_seed(0)
    cfg = policy.config
    return {"obs": {"image": torch.randint(0, 256, (n, cfg.obs_horizon, 20, 24, 3), generator=g, dtype=torch.uint8),
                    "state": torch.rand(n, cfg.obs_horizon, 3, generator=g) * 2 - 1},
            "action": torch.rand(n, cfg.action_horizon, 2, generator=g) * 2 - 1,
            "action_is_pad": torch.zeros(n, cfg.action_horizon, dtype=torch.bool)}


@pytest.mark.parametrize("name", policy_names())
def test_every_policy_trains_acts_and_reloads_with_a_camera(name: str, tmp_path: Path) -> None:
    if not get_policy(name)[0].takes_cameras:
        with pytest.raises(ConfigError):  # it says so in one line instead of failing later
            _build(name)
        return
    policy = _build(name)
    assert isinstance(policy.obs_encoder, ImageObsEncoder)
    assert "obs.image" not in policy.normalizer.features, "images are scaled by a constant, not by statistics"
    batch = _batch(policy)
    for phase in policy.training_phases():
        loss, _ = policy.phase_loss(batch, phase.name)
        loss.backward()
    grads = [p.grad for p in policy.obs_encoder.encoders["image"].parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), "the camera encoder gets gradients"
    policy.eval()
    actions = policy.act({"image": np.zeros((2, 20, 24, 3), np.uint8), "state": np.zeros((2, 3), np.float32)})
    assert actions.shape == (2, 2) and np.isfinite(actions).all()
    assert_reloads_alike(policy, name, SHAPES, batch["obs"], tmp_path)


def test_crop_is_random_in_training_and_central_at_inference() -> None:
    frames = torch.rand(64, 3, 20, 24)
    augment = Augment((20, 24), 0.8, 0.0)
    crops = augment(frames)
    assert crops.shape == (64, 3, 16, 19)
    offsets = {next((dy, dx) for dy in range(5) for dx in range(6)
                    if torch.equal(frames[i, :, dy:dy + 16, dx:dx + 19], crops[i])) for i in range(64)}
    assert len(offsets) > 5, "crops at many offsets"
    augment.eval()
    torch.testing.assert_close(augment(frames), frames[:, :, 2:18, 2:21])
    jitter = Augment((20, 24), 1.0, 0.5)
    assert not torch.equal(jitter(frames), frames) and jitter.eval()(frames).equal(frames)


def test_pixels_are_scaled_to_unit_range_in_one_place() -> None:
    policy = _build("bc")
    obs = {"image": torch.full((1, 2, 20, 24, 3), 255, dtype=torch.uint8), "state": torch.zeros(1, 2, 3)}
    scaled = policy.normalize_obs(obs)
    assert scaled["image"].dtype == policy.dtype and torch.all(scaled["image"] == 1.0)


def test_resnet18_uses_groupnorm_and_spatial_softmax_per_camera() -> None:
    encoder = CameraEncoder((64, 64, 3), ImageOptions(backbone="resnet18", keypoints=16, features=32))
    modules = list(encoder.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in modules)
    assert sum(isinstance(m, torch.nn.GroupNorm) for m in modules) == 20  # stem + 8 blocks x 2 + 3 downsamples
    assert sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) for m in modules) == 16
    assert encoder(torch.rand(2, 64, 64, 3)).shape == (2, 32)
    two = ImageObsEncoder({"left": (32, 32, 3), "right": (32, 32, 3), "state": (4,)}, obs_horizon=2,
                          options=ImageOptions(features=8))
    assert set(two.encoders) == {"left", "right"} and two.step_dim == 2 * 8 + 4
    out = two.encode_steps({"left": torch.rand(5, 2, 32, 32, 3), "right": torch.rand(5, 2, 32, 32, 3),
                            "state": torch.arange(40.0).view(5, 2, 4)})
    assert out.shape == (5, 2, 20) and torch.equal(out[..., 16:], torch.arange(40.0).view(5, 2, 4))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("image_encoder", "vgg", "image_encoder must be one of"), ("image_crop", 0.0, "image_crop"),
    ("image_crop", 1.5, "image_crop"), ("image_jitter", -0.1, "image_jitter"), ("image_keypoints", 0, "image_keypoints"),
])
def test_image_fields_are_validated(field: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        get_policy("diffusion")[1](**{field: value})
