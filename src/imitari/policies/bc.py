"""Behaviour cloning with an MLP over the observation window, predicting an action chunk.

The simplest strong baseline (robomimic's BC, with action chunking as in ACT/Diffusion Policy):
regress the normalised chunk with an L2 or L1 loss. Fast enough to train in seconds on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from imitari.policies.base import Policy, PolicyConfig
from imitari.policies.nn.mlp import mlp


@dataclass
class BCConfig(PolicyConfig):
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the MLP."""
    loss: Literal["l2", "l1"] = "l2"
    dropout: float = 0.0


class BCPolicy(Policy):
    """MLP behaviour cloning: flattened observation window -> action chunk (L2/L1 loss)."""

    default_lr = 1e-3

    def __init__(self, config: BCConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.config: BCConfig = config
        self.net = mlp(self.encoder.out_dim, config.hidden, config.action_horizon * self.action_dim, dropout=config.dropout)

    def _forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        out = self.net(self.encode(obs))
        return out.view(-1, self.config.action_horizon, self.action_dim)

    def loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        target = self.normalizer.normalize("action", batch["action"].flatten(start_dim=2).float())
        pred = self._forward(batch["obs"])
        fn = F.mse_loss if self.config.loss == "l2" else F.l1_loss
        return fn(pred, target), {}

    def predict_chunk(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.normalizer.unnormalize("action", self._forward(obs))
