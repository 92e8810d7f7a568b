"""ACT: Action Chunking with Transformers, a conditional VAE over action chunks.

Zhao, Kumar, Levine and Finn, "Learning Fine-Grained Bimanual Manipulation with Low-Cost
Hardware", RSS 2023. Human demonstrations are noisy and multimodal; ACT predicts a whole chunk
of future actions (fewer decisions per episode, so less compounding error) and trains it as the
decoder of a conditional VAE, whose latent `z` absorbs the demonstrator's style so the decoder
does not have to average it away.

- CVAE encoder (training only): a transformer encoder over [CLS, observation token(s), one
  token per action of the demonstrated chunk] (padded rows past the episode's end masked out);
  the CLS output gives the mean and log-variance of `z`, sampled with the reparameterisation.
- Decoder side: a transformer encoder over [z token, observation token(s)], then a transformer
  decoder whose Ta learned query tokens cross-attend to it; a linear layer maps each query to a
  normalised action. Loss = L1 on the chunk's non-padded rows + `kl_weight` * KL(q(z) || N(0, I)).
- Inference: z = 0 (the prior's mean), so the policy is deterministic.
- Temporal ensembling (paper section IV, on by default): the policy is queried every step and
  executes, per env, the weighted average of all its chunks' predictions for the current step,
  with weights w_i = exp(-m * i), i = 0 the oldest prediction (`PolicyConfig.temporal_ensemble`,
  which every chunking policy has; ACT turns it on). Without it, `exec_horizon` actions of each
  chunk are executed, as by every `Policy`.

Low-dimensional state version: each observation step is one token (a linear projection of the
normalised state); the paper's ResNet-18 image tokens are out of scope here.

Size: the paper uses dim 512, 8 heads, 4 CVAE-encoder and 4 encoder layers, 7 decoder layers
(of which its code uses only the first, a bug LeRobot documents), a 32-D latent, kl_weight 10,
dropout 0.1, chunks of 100 actions at 50 Hz (2 s) and lr 1e-5, about 80M parameters with the
ResNet. The CPU-sized default here: dim 64, 4 heads, 2 + 2 encoder layers, 1 decoder layer, a
32-D latent, kl_weight 10, a chunk of 20 steps (2 s at the built-in tasks' 10 Hz) from one
observation step, lr 1e-3: 0.28M parameters for a 39-D state and 4-D action, about 6 updates/s
at batch 256 on one CPU thread (one token per action makes ACT several times costlier than the
other small transformers here; dim 32: 0.08M parameters, about 11 updates/s; dropout 0 saves
about 30%, the CPU's dropout masks being slow to draw).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from imitari.config import ConfigError
from imitari.policies.base import Generators, Policy, PolicyConfig, Shapes
from imitari.policies.nn.transformer import (
    LearnedPositions,
    TransformerDecoder,
    TransformerEncoder,
    TransformerSize,
)


@dataclass
class ActConfig(PolicyConfig):
    """ACT: transformer sizes, latent, KL weight and temporal ensembling."""

    obs_horizon: int = 1
    """To: observation steps the policy sees (the paper: the current one only)."""
    action_horizon: int = 20
    """Ta: actions per chunk (the paper: 100 at 50 Hz; here 2 s at 10 Hz)."""
    exec_horizon: int = 10
    """Actions executed per chunk when `temporal_ensemble` is off (ignored when it is on)."""
    dim: int = 64
    """Token width of every transformer."""
    heads: int = 4
    """Attention heads of every transformer."""
    vae_layers: int = 2
    """Layers of the CVAE encoder (training only; the paper: 4)."""
    encoder_layers: int = 2
    """Layers of the encoder over [z, observations] (the paper: 4)."""
    decoder_layers: int = 1
    """Layers of the decoder over the query tokens (the paper: 7, of which its code uses 1)."""
    dropout: float = 0.1
    """Dropout in every transformer (training only)."""
    latent_dim: int = 32
    """Size of the CVAE latent z."""
    kl_weight: float = 10.0
    """Weight of the KL term (the paper's beta)."""
    temporal_ensemble: bool = True
    """As `PolicyConfig.temporal_ensemble`, on for ACT (the paper)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("dim", "heads", "vae_layers", "encoder_layers", "decoder_layers", "latent_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1 (got {getattr(self, name)})")
        if self.dim % self.heads:
            raise ConfigError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1) (got {self.dropout})")
        if self.kl_weight < 0:
            raise ConfigError(f"kl_weight must be >= 0 (got {self.kl_weight})")
        if self.ptp_candidates > 1:
            raise ConfigError(
                f"ptp_candidates must be 1 for act (got {self.ptp_candidates}): it predicts with z = 0, "
                "so every candidate chunk would be the same"
            )

    def size(self, depth: int) -> TransformerSize:
        return TransformerSize(dim=self.dim, depth=depth, heads=self.heads, dropout=self.dropout)


def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) per row `(B,)`, summed over the latent dimensions."""
    return 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var).sum(dim=-1)


class ActPolicy(Policy):
    """ACT (Zhao et al. 2023): a CVAE transformer over action chunks, with temporal ensembling."""

    train_defaults: ClassVar[Mapping[str, Any]] = {"lr": 1e-3}
    config: ActConfig

    def __init__(self, config: ActConfig, *, shapes: Shapes, stats: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__(config, shapes=shapes, stats=stats)
        dim, step_dim, to, ta = config.dim, self.obs_encoder.step_dim, config.obs_horizon, config.action_horizon
        # CVAE encoder: [CLS, observations, actions] -> q(z | observations, chunk).
        self.cls = nn.Parameter(torch.randn(dim) * 0.02)
        self.vae_obs_proj = nn.Linear(step_dim, dim)
        self.vae_action_proj = nn.Linear(self.action_dim, dim)
        self.vae_pos = LearnedPositions(1 + to + ta, dim)
        self.vae_encoder = TransformerEncoder(config.size(config.vae_layers))
        self.latent_params = nn.Linear(dim, 2 * config.latent_dim)
        # Decoder side: [z, observations] -> memory; Ta queries cross-attend to it.
        self.latent_proj = nn.Linear(config.latent_dim, dim)
        self.obs_proj = nn.Linear(step_dim, dim)
        self.memory_pos = LearnedPositions(1 + to, dim)
        self.encoder = TransformerEncoder(config.size(config.encoder_layers))
        self.queries = nn.Parameter(torch.randn(ta, dim) * 0.02)
        self.decoder = TransformerDecoder(config.size(config.decoder_layers))
        self.action_head = nn.Linear(dim, self.action_dim)

    # --- network -----------------------------------------------------------------------------
    def posterior(
        self, steps: torch.Tensor, chunk: torch.Tensor, is_pad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance `(B, latent_dim)` of q(z | normalised obs steps, normalised chunk)."""
        batch = steps.shape[0]
        tokens = torch.cat(
            [self.cls.expand(batch, 1, -1), self.vae_obs_proj(steps), self.vae_action_proj(chunk)], dim=1
        )
        known = torch.zeros(batch, 1 + steps.shape[1], dtype=torch.bool, device=is_pad.device)
        padding = torch.cat([known, is_pad], dim=1)
        hidden = self.vae_encoder(self.vae_pos(tokens), padding=padding)
        mean, log_var = self.latent_params(hidden[:, 0]).chunk(2, dim=-1)
        return mean, log_var

    def decode(self, steps: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Normalised chunk `(B, Ta, A)` from normalised observation steps `(B, To, step_dim)` and z."""
        tokens = torch.cat([self.latent_proj(z)[:, None], self.obs_proj(steps)], dim=1)
        memory = self.encoder(self.memory_pos(tokens))
        queries = self.queries.expand(steps.shape[0], -1, -1)
        return self.action_head(self.decoder(queries, memory))

    def obs_steps(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.obs_encoder.encode_steps(self.normalize_obs(obs))

    # --- policy contract ---------------------------------------------------------------------
    def loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """L1 on the non-padded chunk rows + kl_weight * KL, z drawn from the posterior."""
        steps, target = self.obs_steps(batch["obs"]), self.normalize_actions(batch["action"])
        is_pad = torch.as_tensor(batch["action_is_pad"], dtype=torch.bool, device=target.device)
        mean, log_var = self.posterior(steps, target, is_pad)
        z = mean + (0.5 * log_var).exp() * torch.randn_like(mean)
        valid = (~is_pad)[..., None].to(target.dtype)
        l1 = ((self.decode(steps, z) - target).abs() * valid).sum() / (valid.sum() * self.action_dim).clamp_min(1.0)
        kl = kl_to_standard_normal(mean, log_var).mean()
        return l1 + self.config.kl_weight * kl, {"l1": float(l1.detach()), "kl": float(kl.detach())}

    def predict_chunk(self, obs: Mapping[str, torch.Tensor], *, generator: Generators = None) -> torch.Tensor:
        """The chunk decoded with z = 0, the prior's mean (deterministic; `generator` is unused)."""
        steps = self.obs_steps(obs)
        z = steps.new_zeros(steps.shape[0], self.config.latent_dim)
        return self.unnormalize_actions(self.decode(steps, z))
