"""Diffusion Policy: a denoising diffusion model (or a flow) over action chunks.

Chi et al., "Diffusion Policy: Visuomotor Policy Learning via Action Diffusion", RSS 2023.
The policy models the distribution of the normalised action chunk given the observation window
with a denoising diffusion model (DDPM, Ho et al., NeurIPS 2020), which represents multimodal
demonstrations (two ways around an obstacle) instead of averaging them as regression does.

Objective `ddpm` (default). Training (`loss`): add noise at a random level t of
`num_train_timesteps` (100) on the squared-cosine schedule (Nichol & Dhariwal 2021) to the
normalised chunk, and regress the noise (epsilon prediction) with the denoiser conditioned on t
and the observation window. Sampling (`predict_chunk`): start from Gaussian noise and denoise
with DDIM (Song et al., ICLR 2021; deterministic, `num_inference_steps` = 10 by default) or the
full 100-step DDPM chain, clipping the clean-sample estimate to [-1, 1] at every step.
Schedulers come from diffusers, with the paper's settings. The trainer keeps an EMA of the
weights (`ema` = True), as the paper does.

Objective `flow`: flow matching on straight paths (Lipman et al., "Flow Matching for Generative
Modeling", ICLR 2023; Liu et al., "Flow Straight and Fast", ICLR 2023), as pi0 (Black et al.
2024) and X-IL (Jia et al. 2025) use it for action chunks. In pi0's convention the path is
x_t = t * noise + (1 - t) * action, t = 1 pure noise and t = 0 the data, and the denoiser
regresses its velocity, noise - action, at t ~ U(0, 1) (Lipman's and Liu's choice; pi0 leans t
toward noise with a Beta(1.5, 1)). The denoiser sees t * `num_train_timesteps`, so the step
embeddings work unchanged and, as for DDPM, larger means noisier. Sampling integrates from t = 1
to 0 with `num_inference_steps` (10) Euler steps from noise drawn with `sample_noise` (the
per-env generators) and clips the result to [-1, 1]: one network call per step and no
scheduler, deterministic given the initial noise, like DDIM.

Denoisers (`denoiser`; parameters for a 39-D state and 4-D action, updates/s at batch 256 with
one torch thread on this 2-core CPU, one DDIM-10 chunk at batch 1):
- `unet` (default): Chi et al.'s temporal U-Net (`nn.unet1d`). The paper's has down_dims
  (256, 512, 1024) and a 256-wide step embedding, about 64M parameters, far too slow for a CPU
  (about 0.2 updates/s on 2 cores); the default here is (32, 64, 128) with a 128-wide step
  embedding: 1.46M, about 4.4 updates/s, 25 ms per chunk. Pass `down_dims=(256, 512, 1024),
  diffusion_step_embed_dim=256` for the paper's model on a GPU.
- `mlp`: a residual MLP over the flattened chunk (`nn.mlp_denoiser`, as in IDQL), 256 wide,
  3 blocks: 1.0M, about 33 updates/s, 8 ms per chunk (3 ms with flow): the fastest to train.
- `transformer`: Chi et al.'s time-series diffusion transformer (`nn.transformer_denoiser`),
  also registered as `diffusion_transformer`, whose docstring gives its sizes.

`DiffusionBasePolicy` holds the DDPM process and samplers around an abstract denoiser (Streaming
Diffusion Policy builds on it); `DiffusionPolicy` builds the configured denoiser from
`DENOISERS` and adds the flow objective.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from imitari.config import ConfigError
from imitari.policies.base import Generators, Policy, PolicyConfig, Shapes
from imitari.policies.nn.mlp_denoiser import ResidualMLPDenoiser
from imitari.policies.nn.obs_encoder import ObsEncoder
from imitari.policies.nn.transformer import TransformerSize
from imitari.policies.nn.transformer_denoiser import TransformerDenoiser
from imitari.policies.nn.unet1d import ConditionalUnet1D


@dataclass
class DiffusionConfig(PolicyConfig):
    """Diffusion Policy: a denoiser network and a training objective (CPU-sized defaults).

    The diffusion process and sampler come first; of the denoisers' fields, only the chosen
    denoiser's are used and checked.
    """

    ema: bool = True
    num_train_timesteps: int = 100
    """Noise levels of the DDPM training process (squared-cosine beta schedule); for flow
    matching, the scale of the time the denoiser sees."""
    num_inference_steps: int = 10
    """DDIM (or flow Euler) steps at inference; the DDPM sampler always runs all `num_train_timesteps`."""
    sampler: Literal["ddim", "ddpm"] = "ddim"
    denoiser: Literal["unet", "mlp", "transformer"] = "unet"
    """Denoiser network: Chi et al.'s temporal U-Net, a residual MLP over the flattened chunk
    (IDQL), or Chi et al.'s time-series transformer (also registered as `diffusion_transformer`)."""
    objective: Literal["ddpm", "flow"] = "ddpm"
    """`ddpm`: epsilon prediction, DDIM/DDPM sampling; `flow`: rectified-flow velocity
    regression, `num_inference_steps` Euler steps."""
    down_dims: tuple[int, ...] = (32, 64, 128)
    """U-Net channel widths per resolution; the paper's are (256, 512, 1024)."""
    kernel_size: int = 5
    """U-Net convolution width (odd)."""
    n_groups: int = 8
    """U-Net GroupNorm groups; every entry of `down_dims` must be divisible by it."""
    diffusion_step_embed_dim: int = 128
    """Width of the U-Net's and the MLP's diffusion-step embedding (the paper's: 256)."""
    mlp_width: int = 256
    """Width of the residual MLP denoiser."""
    mlp_depth: int = 3
    """Residual blocks of the MLP denoiser."""
    mlp_expansion: int = 2
    """Hidden width of each residual block, as a multiple of `mlp_width`."""
    transformer_dim: int = 64
    """Token width of the transformer denoiser (the paper's: 256)."""
    transformer_depth: int = 2
    """Decoder layers of the transformer denoiser (the paper's: 8)."""
    transformer_heads: int = 4
    """Attention heads of the transformer denoiser; `transformer_dim` must be divisible by it."""
    transformer_dropout: float = 0.1
    """Dropout in the transformer denoiser's layers (the paper's: 0.3 on attention)."""

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
        self.down_dims = tuple(self.down_dims)
        if self.denoiser not in DENOISERS:
            raise ConfigError(f"denoiser must be one of {sorted(DENOISERS)} (got {self.denoiser!r})")
        if self.objective not in ("ddpm", "flow"):
            raise ConfigError(f"objective must be 'ddpm' or 'flow' (got {self.objective!r})")
        if self.objective == "flow" and self.sampler != "ddim":
            raise ConfigError(f"sampler={self.sampler!r} applies to the ddpm objective; flow integrates its ODE "
                              "with num_inference_steps Euler steps")
        if self.denoiser != "transformer" and (self.diffusion_step_embed_dim < 4 or self.diffusion_step_embed_dim % 2):
            raise ConfigError(f"diffusion_step_embed_dim must be even and >= 4 (got {self.diffusion_step_embed_dim})")
        if self.denoiser == "unet":
            check_unet_fields(self.down_dims, self.n_groups, self.kernel_size, self.action_horizon)
        elif self.denoiser == "mlp" and min(self.mlp_width, self.mlp_depth, self.mlp_expansion) < 1:
            raise ConfigError(f"mlp_width, mlp_depth and mlp_expansion must be >= 1 (got {self.mlp_width}, "
                              f"{self.mlp_depth}, {self.mlp_expansion})")
        elif self.denoiser == "transformer":
            if min(self.transformer_dim, self.transformer_depth, self.transformer_heads) < 1:
                raise ConfigError("transformer_dim, transformer_depth and transformer_heads must be >= 1")
            if self.transformer_dim % self.transformer_heads:
                raise ConfigError(f"transformer_dim ({self.transformer_dim}) must be divisible by "
                                  f"transformer_heads ({self.transformer_heads})")
            if self.transformer_dim < 4 or self.transformer_dim % 2:
                raise ConfigError(f"transformer_dim must be even and >= 4 for the step's sinusoidal code "
                                  f"(got {self.transformer_dim})")
            if not 0.0 <= self.transformer_dropout < 1.0:
                raise ConfigError(f"transformer_dropout must be in [0, 1) (got {self.transformer_dropout})")

    @property
    def transformer_size(self) -> TransformerSize:
        return TransformerSize(dim=self.transformer_dim, depth=self.transformer_depth, heads=self.transformer_heads,
                               dropout=self.transformer_dropout)


def make_schedulers(config: DiffusionConfig) -> tuple[Any, Any]:
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


def check_unet_fields(down_dims: tuple[int, ...], n_groups: int, kernel_size: int, action_horizon: int) -> None:
    """ConfigError unless a temporal U-Net of these widths can denoise chunks of this length."""
    if not down_dims or any(d < 1 or d % n_groups for d in down_dims):
        raise ConfigError(f"down_dims {down_dims} must be positive multiples of n_groups={n_groups}")
    multiple = 2 ** (len(down_dims) - 1)
    if action_horizon % multiple:
        raise ConfigError(
            f"action_horizon ({action_horizon}) must be a multiple of {multiple}: the U-Net halves "
            f"the chunk length {len(down_dims) - 1} times for down_dims {down_dims}"
        )
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ConfigError(f"kernel_size must be odd (got {kernel_size})")


class DiffusionBasePolicy(Policy):
    """DDPM training and DDIM/DDPM sampling of action chunks around an abstract denoiser."""

    train_defaults: ClassVar[Mapping[str, Any]] = {"lr": 1e-3}
    variant_fields: ClassVar[frozenset[str]] = frozenset({"denoiser", "objective"})
    config: DiffusionConfig

    def __init__(
        self, config: DiffusionConfig, *, shapes: Shapes, stats: Mapping[str, Mapping[str, Any]]
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


def unet_denoiser(cfg: DiffusionConfig, action_dim: int, encoder: ObsEncoder) -> nn.Module:
    return ConditionalUnet1D(action_dim, encoder.out_dim, down_dims=cfg.down_dims, kernel_size=cfg.kernel_size,
                             n_groups=cfg.n_groups, step_embed_dim=cfg.diffusion_step_embed_dim)


def mlp_denoiser(cfg: DiffusionConfig, action_dim: int, encoder: ObsEncoder, *, position_steps: int = 0) -> nn.Module:
    return ResidualMLPDenoiser(action_dim, cfg.action_horizon, encoder.out_dim, width=cfg.mlp_width,
                               depth=cfg.mlp_depth, expansion=cfg.mlp_expansion,
                               step_embed_dim=cfg.diffusion_step_embed_dim, position_steps=position_steps)


def transformer_denoiser(cfg: DiffusionConfig, action_dim: int, encoder: ObsEncoder) -> nn.Module:
    return TransformerDenoiser(action_dim, cfg.action_horizon, obs_steps=encoder.obs_horizon,
                               step_dim=encoder.step_dim, size=cfg.transformer_size)


DENOISERS: dict[str, Callable[[DiffusionConfig, int, ObsEncoder], nn.Module]] = {
    "unet": unet_denoiser,
    "mlp": mlp_denoiser,
    "transformer": transformer_denoiser,
}
"""`denoiser` name -> builder `(config, action_dim, obs encoder) -> (noisy chunk, step, condition) -> chunk`."""


class DiffusionPolicy(DiffusionBasePolicy):
    """Diffusion Policy (Chi et al. 2023) with a choice of denoiser and of DDPM or flow matching."""

    config: DiffusionConfig

    def make_denoiser(self) -> nn.Module:
        return DENOISERS[self.config.denoiser](self.config, self.action_dim, self.obs_encoder)

    def loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """DDPM's epsilon MSE, or flow matching's velocity MSE at t ~ U(0, 1) (global generator)."""
        if self.config.objective == "ddpm":
            return super().loss(batch)
        actions = self.normalize_actions(batch["action"])
        cond = self.condition(batch["obs"])
        noise = torch.randn_like(actions)
        t = torch.rand(actions.shape[0], device=actions.device, dtype=actions.dtype)
        noisy = t[:, None, None] * noise + (1 - t[:, None, None]) * actions
        velocity = self.denoiser(noisy, t * self.config.num_train_timesteps, cond)
        return F.mse_loss(velocity, noise - actions), {}

    def sample(self, cond: torch.Tensor, *, generator: Generators = None) -> torch.Tensor:
        """DDIM/DDPM denoising, or `num_inference_steps` Euler steps of the flow from t = 1 to 0."""
        if self.config.objective == "ddpm":
            return super().sample(cond, generator=generator)
        n = self.config.num_inference_steps
        x = self.sample_noise((cond.shape[0], self.config.action_horizon, self.action_dim), generator)
        for i in range(n):
            t = torch.tensor((1 - i / n) * self.config.num_train_timesteps, device=x.device, dtype=x.dtype)
            x = x - self.denoiser(x, t, cond) / n
        return x.clamp(-1.0, 1.0)
