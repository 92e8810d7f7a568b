"""Image observation encoders: camera frames (and low-dim keys) -> per-step features.

Frames arrive as `(B, To, H, W, C)` (the store's layout) scaled to [0, 1] by `scale_images`,
the one place pixels are normalised (images get no dataset statistics). Each camera has its own
backbone, ending in spatial-softmax keypoints (Levine et al. 2016; robomimic's and Diffusion
Policy's choice): the expected (x, y) of K learned feature maps, which keeps positions
precise where global pooling would average them away. Two backbones:

* "cnn": three small convolutions, sized for a 2-core CPU (the default);
* "resnet18": ResNet-18 (He et al. 2016) with GroupNorm instead of BatchNorm (BatchNorm's
  running statistics break under EMA weights, Diffusion Policy's finding) and without its
  pooling head, written here since torchvision does not load beside a CPU torch.

Augmentation (training only): a random crop of `crop` of each side (a centre crop at
inference, Diffusion Policy's scheme) and optional brightness/contrast jitter. Randomness
comes from torch's global generator, which the trainer seeds per step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn

from imitari.config import ConfigError
from imitari.policies.nn.obs_encoder import LowDimObsEncoder, ObsEncoder

ImageBackbone = Literal["cnn", "resnet18"]
PIXEL_SCALE = 255.0
"""uint8 pixel values are divided by this: frames enter the networks in [0, 1]."""


def scale_images(frames: torch.Tensor) -> torch.Tensor:
    """uint8-valued frames (any float or integer dtype) -> [0, 1]."""
    return frames / PIXEL_SCALE


@dataclass(frozen=True)
class ImageOptions:
    """How image keys are encoded (the `image_*` fields of `PolicyConfig`, checked here)."""

    backbone: ImageBackbone = "cnn"
    crop: float = 0.9
    jitter: float = 0.0
    keypoints: int = 32
    features: int = 64

    def __post_init__(self) -> None:
        if self.backbone not in get_args(ImageBackbone):
            raise ConfigError(f"image_encoder must be one of {list(get_args(ImageBackbone))} (got {self.backbone!r})")
        if not 0 < self.crop <= 1:
            raise ConfigError(f"image_crop must be in (0, 1] (got {self.crop})")
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"image_jitter must be in [0, 1] (got {self.jitter})")
        for name in ("keypoints", "features"):
            if getattr(self, name) < 1:
                raise ConfigError(f"image_{name} must be >= 1 (got {getattr(self, name)})")


class SpatialSoftmax(nn.Module):
    """`(N, C, H, W)` feature maps -> `(N, 2K)`: the expected (x, y) in [-1, 1] of each of K
    maps (a 1x1 convolution of the input), under a softmax with a learned temperature.

    The temperature starts at 0.1, not robomimic's 1.0: at 1.0 the maps of a freshly
    initialised encoder are nearly uniform, every keypoint sits at the centre, and a policy
    spends its first hundred updates escaping that (docs/images.md)."""

    def __init__(self, channels: int, keypoints: int, temperature: float = 0.1) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, keypoints, kernel_size=1)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.proj(x)
        n, k, h, w = maps.shape
        weights = torch.softmax(maps.flatten(2) / self.log_temperature.exp(), dim=-1).view(n, k, h, w)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
        return torch.cat([(weights.sum(2) * xs).sum(-1), (weights.sum(3) * ys).sum(-1)], dim=-1)


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(max(1, channels // 16), channels)


def small_cnn(channels: int, size: int) -> tuple[nn.Module, int]:
    """Three convolutions with GroupNorm, the first of stride 2 (4 for frames over 64 px);
    (module, out channels)."""
    stride = 4 if size > 64 else 2
    return nn.Sequential(
        nn.Conv2d(channels, 16, 5, stride=stride, padding=2), _group_norm(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), _group_norm(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
    ), 32


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), _group_norm(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), _group_norm(cout),
        )
        self.skip = (nn.Identity() if stride == 1 and cin == cout else
                     nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), _group_norm(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


def resnet18(channels: int, size: int) -> tuple[nn.Module, int]:
    """ResNet-18's stem and four stages of two basic blocks, GroupNorm; (module, 512)."""
    layers: list[nn.Module] = [nn.Conv2d(channels, 64, 7, stride=2, padding=3, bias=False), _group_norm(64), nn.ReLU(),
                               nn.MaxPool2d(3, stride=2, padding=1)]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [_BasicBlock(cin, cout, stride), _BasicBlock(cout, cout, 1)]
        cin = cout
    return nn.Sequential(*layers), 512


BACKBONES = {"cnn": small_cnn, "resnet18": resnet18}


class Augment(nn.Module):
    """Random crop (and colour jitter) of `(N, C, H, W)` frames in training; centre crop otherwise."""

    def __init__(self, size: tuple[int, int], crop: float, jitter: float) -> None:
        super().__init__()
        self.size = size
        self.out = (max(1, round(size[0] * crop)), max(1, round(size[1] * crop)))
        self.jitter = jitter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (h, w), (ch, cw) = self.size, self.out
        if not self.training:
            top, left = (h - ch) // 2, (w - cw) // 2
            return x[:, :, top : top + ch, left : left + cw]
        n = x.shape[0]
        rows = torch.randint(0, h - ch + 1, (n, 1), device=x.device) + torch.arange(ch, device=x.device)
        cols = torch.randint(0, w - cw + 1, (n, 1), device=x.device) + torch.arange(cw, device=x.device)
        index = torch.arange(n, device=x.device)[:, None, None, None]
        chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = x[index, chans, rows[:, None, :, None], cols[:, None, None, :]]
        if self.jitter > 0:
            gain = 1 + self.jitter * (2 * torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 1)
            shift = self.jitter * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = ((x - mean) * gain + mean + shift).clamp(0.0, 1.0)
        return x


class CameraEncoder(nn.Module):
    """One camera: augmentation, backbone, spatial softmax, then a linear layer to `features` and
    a LayerNorm (unit-scale features from the first update, as DrQ's encoder has)."""

    def __init__(self, shape: tuple[int, int, int], options: ImageOptions) -> None:
        super().__init__()
        h, w, c = shape
        self.augment = Augment((h, w), options.crop, options.jitter)
        self.backbone, channels = BACKBONES[options.backbone](c, min(self.augment.out))
        self.keypoints = SpatialSoftmax(channels, options.keypoints)
        self.out = nn.Sequential(nn.Linear(2 * options.keypoints, options.features), nn.LayerNorm(options.features))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """`(N, H, W, C)` in [0, 1] -> `(N, features)`."""
        x = self.augment(frames.permute(0, 3, 1, 2))
        return self.out(self.keypoints(self.backbone(x)))


class ImageObsEncoder(ObsEncoder):
    """Per step: each camera's features (cameras sorted by name), then the flattened low-dim keys."""

    def __init__(self, obs_shapes: Mapping[str, tuple[int, ...]], *, obs_horizon: int, options: ImageOptions) -> None:
        self.cameras = sorted(k for k, shape in obs_shapes.items() if len(shape) == 3)
        low_dim = {k: shape for k, shape in obs_shapes.items() if k not in self.cameras}
        low = LowDimObsEncoder(low_dim, obs_horizon=obs_horizon) if low_dim else None
        super().__init__(obs_horizon=obs_horizon,
                         step_dim=len(self.cameras) * options.features + (low.step_dim if low else 0))
        self.low_dim = low
        self.encoders = nn.ModuleDict({k: CameraEncoder(tuple(obs_shapes[k]), options) for k in self.cameras})

    def encode_steps(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        for key in self.cameras:
            frames = obs[key]
            parts.append(self.encoders[key](frames.flatten(0, 1)).unflatten(0, frames.shape[:2]))
        if self.low_dim is not None:
            parts.append(self.low_dim.encode_steps(obs))
        return torch.cat(parts, dim=-1)
