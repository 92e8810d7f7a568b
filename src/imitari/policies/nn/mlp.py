"""A plain multilayer perceptron, the trunk of the regression policies."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, *, dropout: float = 0.0, layer_norm: bool = False) -> nn.Sequential:
    """Linear -> [LayerNorm] -> Mish -> [Dropout] for each hidden size, then a linear output."""
    layers: list[nn.Module] = []
    prev = in_dim
    for width in hidden:
        layers.append(nn.Linear(prev, width))
        if layer_norm:
            layers.append(nn.LayerNorm(width))
        layers.append(nn.Mish())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        prev = width
    layers.append(nn.Linear(prev, out_dim))
    return nn.Sequential(*layers)
