"""Diffusion Policy with the temporal U-Net denoiser.

Chi et al., "Diffusion Policy: Visuomotor Policy Learning via Action Diffusion", RSS 2023.
The policy models the distribution of the normalised action chunk given the observation window
with a denoising diffusion model (DDPM, Ho et al., NeurIPS 2020), which represents multimodal
demonstrations (two ways around an obstacle) instead of averaging them as regression does.

Training (`loss`): add noise at a random level t of `num_train_timesteps` (100) on the
squared-cosine schedule (Nichol & Dhariwal 2021) to the normalised chunk, and regress the
noise (epsilon prediction) with the denoiser conditioned on t and the observation window.
Sampling (`predict_chunk`): start from Gaussian noise and denoise with DDIM (Song et al., ICLR
2021; deterministic, `num_inference_steps` = 10 by default) or the full 100-step DDPM chain,
clipping the clean-sample estimate to [-1, 1] at every step. Schedulers come from diffusers,
with the paper's settings. The trainer keeps an EMA of the weights (`ema` = True), as the
paper does.

Size: the paper's U-Net has down_dims (256, 512, 1024) and a 256-wide step embedding, about
64M parameters, far too slow for a CPU (about 0.2 updates/s at batch 256 on 2 cores). The
default here is (32, 64, 128) with a 128-wide step embedding, about 1.5M parameters for a
39-D state and 4-D action; (64, 128, 256) is about 4.7M. Pass `down_dims=(256, 512, 1024),
diffusion_step_embed_dim=256` for the paper's model on a GPU.

`DiffusionBasePolicy` holds everything but the denoiser network, so other denoisers (a
transformer, a residual MLP) are a subclass overriding `make_denoiser` (and `condition` if
they consume per-step observation tokens), and other objectives (flow matching) override
`loss` and `sample`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from imitari.config import ConfigError
from imitari.policies.base import Generators, Policy, PolicyConfig, Shapes
from imitari.policies.nn.unet1d import ConditionalUnet1D


@dataclass
class DiffusionBaseConfig(PolicyConfig):
    """The diffusion process and sampler, shared by every denoiser architecture."""

    ema: bool = True
    num_train_timesteps: int = 100
    """Noise levels of the DDPM training process (squared-cosine beta schedule)."""
    num_inference_steps: int = 10
    """DDIM denoising steps at inference; the DDPM sampler always runs all `num_train_timesteps`."""
    sampler: Literal["ddim", "ddpm"] = "ddim"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sampler not in ("ddim", "ddpm"):
            raise ConfigError(f"sampler must be 'ddim' or 'ddpm' (got {self.sampler!r})")
        if self.num_train_timesteps < 1:
            raise ConfigError(f"num_train_timesteps must be >= 1 (got {self.num_train_timesteps})")
        if not 1 <= self.num_inference_steps <= self.num_train_timesteps:
            raise ConfigError(
                f"num_inference_steps must be in 1..num_train_timesteps={self.num_train_timesteps} "
                f"(got {self.num_inference_steps})"
            )


def make_schedulers(config: DiffusionBaseConfig) -> tuple[Any, Any]:
    """(training DDPMScheduler, sampling DDIM/DDPM scheduler) with Diffusion Policy's settings."""
    from diffusers.schedulers.scheduling_ddim import DDIMScheduler
    from diffusers.schedulers.scheduling_ddpm import DDPMScheduler

    common: dict[str, Any] = {
        "num_train_timesteps": config.num_train_timesteps,
        "beta_schedule": "squaredcos_cap_v2",
        "clip_sample": True,
        "prediction_type": "epsilon",
    }
    train = DDPMScheduler(**common, variance_type="fixed_small")
    if config.sampler == "ddim":
        sample = DDIMScheduler(**common, set_alpha_to_one=True, steps_offset=0)
        sample.set_timesteps(config.num_inference_steps)
    else:
        sample = DDPMScheduler(**common, variance_type="fixed_small")
        sample.set_timesteps(config.num_train_timesteps)
    return train, sample


class DiffusionBasePolicy(Policy):
    """DDPM training and DDIM/DDPM sampling of action chunks around an abstract denoiser."""

    default_lr: ClassVar[float] = 1e-3
    config: DiffusionBaseConfig

    def __init__(
        self, config: DiffusionBaseConfig, *, shapes: Shapes, stats: Mapping[str, Mapping[str, Any]]
    ) -> None:
        super().__init__(config, shapes=shapes, stats=stats)
        self.denoiser = self.make_denoiser()
        self.train_scheduler, self.sample_scheduler = make_schedulers(config)

    @abstractmethod
    def make_denoiser(self) -> nn.Module:
        """The network `(noisy chunk (B, Ta, A), timestep (B,), condition) -> noise (B, Ta, A)`."""

    def condition(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """What the denoiser is conditioned on: the flattened normalised window `(B, C)`."""
        return self.encode_obs(obs)

    def loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """Epsilon-prediction MSE at uniformly drawn noise levels (torch's global generator)."""
        actions = self.normalize_actions(batch["action"])
        cond = self.condition(batch["obs"])
        noise = torch.randn_like(actions)
        steps = torch.randint(0, self.config.num_train_timesteps, (actions.shape[0],), device=actions.device)
        noisy = self.train_scheduler.add_noise(actions, noise, steps)
        return F.mse_loss(self.denoiser(noisy, steps, cond), noise), {}

    def sample(self, cond: torch.Tensor, *, generator: Generators = None) -> torch.Tensor:
        """Denoise Gaussian noise into normalised chunks `(B, Ta, A)` given the condition."""
        gen = self.noise_generator(generator)
        x = self.sample_noise((cond.shape[0], self.config.action_horizon, self.action_dim), gen)
        for t in self.sample_scheduler.timesteps:
            eps = self.denoiser(x, t, cond)
            x = self.sample_scheduler.step(eps, t, x, generator=gen).prev_sample
        return x

    def predict_chunk(self, obs: Mapping[str, torch.Tensor], *, generator: Generators = None) -> torch.Tensor:
        return self.unnormalize_actions(self.sample(self.condition(obs), generator=generator))


@dataclass
class DiffusionConfig(DiffusionBaseConfig):
    """Diffusion Policy with Chi et al.'s temporal U-Net (CPU-sized by default)."""

    down_dims: tuple[int, ...] = (32, 64, 128)
    """U-Net channel widths per resolution; the paper's are (256, 512, 1024)."""
    kernel_size: int = 5
    n_groups: int = 8
    """GroupNorm groups; every entry of `down_dims` must be divisible by it."""
    diffusion_step_embed_dim: int = 128
    """Width of the diffusion-step embedding (the paper's: 256)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.down_dims = tuple(self.down_dims)
        if not self.down_dims or any(d < 1 or d % self.n_groups for d in self.down_dims):
            raise ConfigError(f"down_dims {self.down_dims} must be positive multiples of n_groups={self.n_groups}")
        multiple = 2 ** (len(self.down_dims) - 1)
        if self.action_horizon % multiple:
            raise ConfigError(
                f"action_horizon ({self.action_horizon}) must be a multiple of {multiple}: the U-Net halves "
                f"the chunk length {len(self.down_dims) - 1} times for down_dims {self.down_dims}"
            )
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be odd (got {self.kernel_size})")
        if self.diffusion_step_embed_dim < 4 or self.diffusion_step_embed_dim % 2:
            raise ConfigError(f"diffusion_step_embed_dim must be even and >= 4 (got {self.diffusion_step_embed_dim})")


class DiffusionPolicy(DiffusionBasePolicy):
    """Diffusion Policy (Chi et al. 2023): temporal U-Net, DDPM training, DDIM/DDPM sampling."""

    config: DiffusionConfig

    def make_denoiser(self) -> nn.Module:
        cfg = self.config
        return ConditionalUnet1D(
            self.action_dim,
            self.obs_encoder.out_dim,
            down_dims=cfg.down_dims,
            kernel_size=cfg.kernel_size,
            n_groups=cfg.n_groups,
            step_embed_dim=cfg.diffusion_step_embed_dim,
        )
