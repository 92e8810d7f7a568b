"""BC-RNN: a recurrent network over the observation history, ending in an action head.

robomimic's BC-RNN (Mandlekar et al., "What Matters in Learning from Offline Human
Demonstrations for Robot Manipulation", CoRL 2021) runs an LSTM over a sequence of 10
observations; the paper found it the strongest of its offline methods on human
demonstrations, whose actions depend on more than the current observation (pauses, varying
speed), and found its GMM head (`--policy.head gmm`) important on multimodal data. Here the
LSTM (or a GRU) reads the normalised observation window of `obs_horizon` = 10 steps, and the
action head (`imitari.policies.nn.heads`, with BC's fields, see `HeadConfig`) turns the hidden
state of the window's last step into the whole chunk.

Why the last step's state predicts the chunk, rather than one action per step as robomimic
does: (1) the chunk's current and future rows (P .., P = `past_horizon`, To-1 by default) can
only be predicted from a state that has seen the whole window; (2) one head output per window
keeps a GMM mode a whole, coherent trajectory, as in BC; (3) the chunk's P past rows are the
actions taken at the window's earlier steps, so the loss still supervises those steps, as
robomimic's per-step loss does, only from the final state. Acting re-reads the last To
observations for every chunk instead of carrying the hidden state across steps: training and
acting then see exactly the same inputs (robomimic also restarts its hidden state every 10
steps when acting). A per-step variant (each step's state predicting its own present and future
rows) did no better on builtin/reach.

Size: robomimic's LSTM has 2 layers of 400 units (about 2M parameters for a 39-D state). The
CPU-sized default here is 2 layers of 128 units: about 0.30M parameters for a 39-D state and a
4-D action with the GMM head (0.23M with the deterministic head). It trains at 12-20 updates/s
at batch 256 on one CPU thread (BC's MLP: 240-300 on the same, busy, machine): the recurrence
runs 10 sequential steps.
Chunks of 16 rows with the default P = 9 leave 7 rows from the current step on; 4 of them are
executed before the next prediction.

Measured on builtin/reach (100 demonstrations, 1500 updates at batch 64, 50 held-out seeds):
with the 10-step window the deterministic and gaussian heads succeed 94-98% of the time, the
GMM head only 86-94% (BC's MLP with the same window and GMM head: 86%; with a 2-step window:
98%). On this unimodal task the mixture's most likely mode tends to keep the velocity the history
shows and overshoot the goal, so prefer the GMM where demonstrations are truly multimodal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from imitari.config import ConfigError
from imitari.policies.base import Shapes
from imitari.policies.bc import HeadConfig, HeadPolicy

CELLS: dict[str, type[nn.LSTM] | type[nn.GRU]] = {"lstm": nn.LSTM, "gru": nn.GRU}
"""Recurrent cells `cell` may name (robomimic offers the same two)."""


@dataclass
class BCRNNConfig(HeadConfig):
    """BC-RNN: recurrent cell and size, plus the action-head fields of `HeadConfig`."""

    obs_horizon: int = 10
    """To: observations the RNN reads, the current one and To-1 before it (robomimic: 10)."""
    action_horizon: int = 16
    """Ta: actions predicted per chunk, from step t - past_horizon (the window's first step by default)."""
    exec_horizon: int = 4
    """Actions executed from each chunk before predicting the next (rows past_horizon ..)."""
    cell: Literal["lstm", "gru"] = "lstm"
    """Recurrent cell (robomimic's default: LSTM)."""
    hidden_dim: int = 128
    """Units per recurrent layer (robomimic: 400)."""
    num_layers: int = 2
    """Stacked recurrent layers (robomimic: 2)."""
    dropout: float = 0.0
    """Dropout between recurrent layers (training only; robomimic: 0)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cell not in CELLS:
            raise ConfigError(f"cell must be one of {list(CELLS)} (got {self.cell!r})")
        if self.hidden_dim < 1 or self.num_layers < 1:
            raise ConfigError(f"hidden_dim and num_layers must be >= 1 (got {self.hidden_dim}, {self.num_layers})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1) (got {self.dropout})")
        if self.dropout > 0 and self.num_layers == 1:
            raise ConfigError("dropout acts between recurrent layers; it needs num_layers >= 2")


class BCRNNPolicy(HeadPolicy):
    """BC-RNN (robomimic): RNN over the normalised observation window -> last state -> action head."""

    train_defaults: ClassVar[Mapping[str, Any]] = {"lr": 1e-3}
    config: BCRNNConfig

    def __init__(self, config: BCRNNConfig, *, shapes: Shapes, stats: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__(config, shapes=shapes, stats=stats)
        self.rnn = CELLS[config.cell](
            self.obs_encoder.step_dim, config.hidden_dim, config.num_layers, batch_first=True, dropout=config.dropout
        )
        self.out = nn.Linear(config.hidden_dim, self.head.param_dim)

    def head_params(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        states, _ = self.rnn(self.obs_encoder.encode_steps(self.normalize_obs(obs)))
        return self.out(states[:, -1])
