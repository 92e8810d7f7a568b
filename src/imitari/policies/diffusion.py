"""Diffusion Policy (Chi et al., "Diffusion Policy: Visuomotor Policy Learning via Action
Diffusion", RSS 2023), with the 1-D temporal conv U-Net denoiser.

Training: DDPM with `num_train_timesteps` (100) noise levels on a squared-cosine schedule; the
U-Net predicts the noise added to the normalised action chunk, conditioned (FiLM) on the
flattened observation window. Inference: DDIM with `num_inference_steps` (10) or the full DDPM
chain. The schedulers come from diffusers. The paper's defaults are To=2, Ta=16, exec 8 and
down_dims (256, 512, 1024) (~64M parameters); imitari defaults to (64, 128, 256) (~4M) with a
smaller step embedding, which trains at a few updates/s at batch 256 on a 2-core CPU; pass
`--policy.down_dims 256,512,1024` for the paper's size on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from imitari.policies.base import Policy, PolicyConfig
from imitari.policies.nn.unet1d import TemporalUNet


@dataclass
class DiffusionConfig(PolicyConfig):
    ema: bool = True
    down_dims: tuple[int, ...] = (64, 128, 256)
    """U-Net channel widths per resolution (paper: 256, 512, 1024)."""
    kernel_size: int = 5
    n_groups: int = 8
    diffusion_step_embed_dim: int = 64
    num_train_timesteps: int = 100
    num_inference_steps: int = 10
    sampler: Literal["ddim", "ddpm"] = "ddim"
    """DDIM runs `num_inference_steps` steps; DDPM always runs all `num_train_timesteps`."""
    seed: int = 0
    """Seed of the sampling noise, so evaluations are reproducible."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_inference_steps < 1 or self.num_inference_steps > self.num_train_timesteps:
            raise ValueError("num_inference_steps must be in 1..num_train_timesteps")


def _schedulers(cfg: DiffusionConfig) -> tuple[Any, Any]:
    from diffusers.schedulers.scheduling_ddim import DDIMScheduler
    from diffusers.schedulers.scheduling_ddpm import DDPMScheduler

    common = dict(
        num_train_timesteps=cfg.num_train_timesteps,
        beta_schedule="squaredcos_cap_v2",
        clip_sample=True,
        prediction_type="epsilon",
    )
    train = DDPMScheduler(**common)
    infer = DDIMScheduler(**common, set_alpha_to_one=True, steps_offset=0) if cfg.sampler == "ddim" else DDPMScheduler(**common)
    infer.set_timesteps(cfg.num_inference_steps if cfg.sampler == "ddim" else cfg.num_train_timesteps)
    return train, infer


class DiffusionPolicy(Policy):
    """Diffusion Policy with a temporal U-Net denoiser (DDPM training, DDIM/DDPM sampling)."""

    default_lr = 1e-4 * 3

    def __init__(self, config: DiffusionConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.config: DiffusionConfig = config
        self.unet = TemporalUNet(
            self.action_dim,
            self.encoder.out_dim,
            down_dims=config.down_dims,
            kernel_size=config.kernel_size,
            n_groups=config.n_groups,
            step_embed_dim=config.diffusion_step_embed_dim,
        )
        if config.action_horizon % self.unet.min_divisor:
            raise ValueError(
                f"action_horizon {config.action_horizon} must be divisible by {self.unet.min_divisor} "
                f"for down_dims {config.down_dims}"
            )
        self.train_scheduler, self.infer_scheduler = _schedulers(config)
        self._generator: torch.Generator | None = None

    def loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        actions = self.normalizer.normalize("action", batch["action"].flatten(start_dim=2).float())
        cond = self.encode(batch["obs"])
        noise = torch.randn_like(actions)
        steps = torch.randint(0, self.config.num_train_timesteps, (actions.shape[0],), device=actions.device)
        noisy = self.train_scheduler.add_noise(actions, noise, steps)
        return F.mse_loss(self.unet(noisy, steps, cond), noise), {}

    def reset(self, env_ids: Any = None, **kwargs: Any) -> None:
        super().reset(env_ids, **kwargs)
        if env_ids is None:
            self._generator = None

    def predict_chunk(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        cond = self.encode(obs)
        if self._generator is None or self._generator.device != cond.device:
            self._generator = torch.Generator(device=cond.device).manual_seed(self.config.seed)
        shape = (cond.shape[0], self.config.action_horizon, self.action_dim)
        x = torch.randn(shape, generator=self._generator, device=cond.device)
        for t in self.infer_scheduler.timesteps:
            eps = self.unet(x, t.to(cond.device).reshape(1), cond)
            x = self.infer_scheduler.step(eps, t, x, generator=self._generator).prev_sample
        return self.normalizer.unnormalize("action", x)
