"""A configurable multilayer perceptron: the trunk of the regression policies and of heads.

robomimic's BC ("What Matters in Learning from Offline Human Demonstrations for Robot
Manipulation", Mandlekar et al., CoRL 2021) is an MLP of this shape over the observation;
layer norm and dropout are the usual regularisers when demonstrations are few.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "mish": nn.Mish,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}
"""Activation names accepted by `MLP` (config files name activations by string)."""


class MLP(nn.Sequential):
    """`in_dim -> hidden[0] -> ... -> hidden[-1] -> out_dim`.

    Each hidden layer is Linear -> [LayerNorm] -> activation -> [Dropout]; the output layer is
    a plain Linear, so the MLP can regress unbounded targets or produce logits.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        hidden: Sequence[int] = (256, 256),
        activation: str = "relu",
        layer_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) (got {dropout})")
        layers: list[nn.Module] = []
        width_in = in_dim
        for width in hidden:
            layers.append(nn.Linear(width_in, width))
            if layer_norm:
                layers.append(nn.LayerNorm(width))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width_in = width
        layers.append(nn.Linear(width_in, out_dim))
        super().__init__(*layers)
        self.in_dim, self.out_dim = in_dim, out_dim
