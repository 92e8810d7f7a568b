"""Behaviour cloning: an MLP from the observation window to an action chunk.

robomimic's BC (Mandlekar et al., "What Matters in Learning from Offline Human Demonstrations
for Robot Manipulation", CoRL 2021) regresses the action with an MLP; predicting a chunk of Ta
actions and executing several of them (action chunking, Zhao et al. "ACT", RSS 2023) makes it
markedly better at long-horizon, non-Markovian demonstrations. The MLP sees the normalised
observation window flattened, and outputs the normalised chunk; the loss is L2 (or L1, which
is more robust to multimodal or noisy demonstrations but still averages modes).

Padded rows (chunk steps past the episode's end, which the window sampler fills by repeating
the last action) are *not* masked out of the loss, as in Diffusion Policy: they teach the
policy to hold still once a task is done. The defaults (two 256-wide layers, ~0.1M parameters
for a 39-D state) train at several hundred updates/s at batch 256 on a 2-core CPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F

from imitari.config import ConfigError
from imitari.policies.base import Generators, Policy, PolicyConfig, Shapes
from imitari.policies.nn.mlp import MLP


@dataclass
class BCConfig(PolicyConfig):
    """BC-MLP: hidden widths, loss and dropout."""

    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the MLP."""
    loss: Literal["l2", "l1"] = "l2"
    """Regression loss on the normalised chunk."""
    dropout: float = 0.0
    """Dropout after each hidden layer (training only)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.hidden = tuple(self.hidden)
        if any(width < 1 for width in self.hidden):
            raise ConfigError(f"hidden widths must be >= 1 (got {self.hidden})")
        if self.loss not in ("l2", "l1"):
            raise ConfigError(f"loss must be 'l2' or 'l1' (got {self.loss!r})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1) (got {self.dropout})")


class BCPolicy(Policy):
    """BC-MLP: flattened observation window -> action chunk, L2/L1 regression (robomimic)."""

    default_lr: ClassVar[float] = 1e-3
    config: BCConfig

    def __init__(self, config: BCConfig, *, shapes: Shapes, stats: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__(config, shapes=shapes, stats=stats)
        self.net = MLP(
            self.obs_encoder.out_dim,
            config.action_horizon * self.action_dim,
            hidden=config.hidden,
            dropout=config.dropout,
        )

    def _forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Normalised chunk `(B, Ta, A)`."""
        return self.net(self.encode_obs(obs)).unflatten(1, (self.config.action_horizon, self.action_dim))

    def loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        target = self.normalize_actions(batch["action"])
        fn = F.mse_loss if self.config.loss == "l2" else F.l1_loss
        return fn(self._forward(batch["obs"]), target), {}

    def predict_chunk(self, obs: Mapping[str, torch.Tensor], *, generator: Generators = None) -> torch.Tensor:
        return self.unnormalize_actions(self._forward(obs))
