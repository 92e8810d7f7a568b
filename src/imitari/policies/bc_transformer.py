"""BC-transformer: a causal transformer over the observation history, ending in an action head.

robomimic's BC-Transformer (Mandlekar et al., robomimic v0.3, 2023; GPT-style, after minGPT)
replaces BC-RNN's LSTM by a causal transformer over a context of 10 observations, one token
per step with learned position embeddings, and trains it with a GMM head. Here each step's
normalised observation is projected to a token, learned positions mark its place in the window
(`obs_horizon` = 10 steps), a causal `TransformerEncoder` (pre-norm) mixes the tokens, and the
action head (`imitari.policies.nn.heads`, with BC's fields, see `HeadConfig`) turns the last
token into the whole chunk.

Why the last token predicts the chunk: it is robomimic's default too (`supervise_all_steps`
off), the chunk's current and future rows can only come from the token that has seen the whole
window, and one head output per window keeps a GMM mode a whole, coherent trajectory, as in BC.
The chunk's P past rows (`past_horizon`, To-1 by default) are the actions taken at the window's
earlier steps, so those steps are still supervised, as robomimic's per-token option would.
Attention is causal (a token sees only its past), as in robomimic's GPT: the last token sees the
whole window either way, and each earlier token summarises a prefix, as an RNN's states do.

Size: robomimic's transformer has 6 layers, 8 heads and 512-wide tokens (about 19M parameters)
with dropout 0.1, trained at lr 1e-4. The CPU-sized default here is 2 layers, 4 heads, 64-wide
tokens, dropout 0.1: about 0.11M parameters for a 39-D state and a 4-D action with the
deterministic head (0.14M with the GMM head), trained at lr 1e-3 (pre-norm layers need no
warm-up at this size). It trains at 8-13 updates/s at batch 256 on one CPU thread (BC's MLP:
240-300 on the same, busy, machine): each window is 10 tokens. Chunks of 16 rows with the
default P = 9 leave 7 rows from the current step on; 4 of them are executed before the next
prediction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from imitari.policies.base import Shapes
from imitari.policies.bc import HeadConfig, HeadPolicy
from imitari.policies.nn.transformer import HistoryEncoder, TransformerSize


@dataclass
class BCTransformerConfig(HeadConfig):
    """BC-transformer: transformer size, plus the action-head fields of `HeadConfig`."""

    obs_horizon: int = 10
    """To: observations the transformer reads, one token each (robomimic's context: 10)."""
    action_horizon: int = 16
    """Ta: actions predicted per chunk, from step t - past_horizon (the window's first step by default)."""
    exec_horizon: int = 4
    """Actions executed from each chunk before predicting the next (rows past_horizon ..)."""
    dim: int = 64
    """Token width (robomimic: 512)."""
    depth: int = 2
    """Transformer layers (robomimic: 6)."""
    heads: int = 4
    """Attention heads; `dim` must be divisible by it (robomimic: 8)."""
    dropout: float = 0.1
    """Dropout in the transformer layers (training only; robomimic: 0.1)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.size  # TransformerSize raises ConfigError on a bad width, depth, heads or dropout

    @property
    def size(self) -> TransformerSize:
        return TransformerSize(dim=self.dim, depth=self.depth, heads=self.heads, dropout=self.dropout)


class BCTransformerPolicy(HeadPolicy):
    """BC-transformer (robomimic): causal transformer over observation tokens -> last token -> head."""

    train_defaults: ClassVar[Mapping[str, Any]] = {"lr": 1e-3}
    config: BCTransformerConfig

    def __init__(self, config: BCTransformerConfig, *, shapes: Shapes, stats: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__(config, shapes=shapes, stats=stats)
        size = config.size
        self.trunk = HistoryEncoder(self.obs_encoder.step_dim, config.obs_horizon, size)
        self.out = nn.Linear(size.dim, self.head.param_dim)

    def head_params(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.out(self.trunk(self.obs_encoder.encode_steps(self.normalize_obs(obs))))
