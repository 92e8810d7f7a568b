"""Behaviour cloning: an MLP from the observation window to an action chunk.

robomimic's BC (Mandlekar et al., "What Matters in Learning from Offline Human Demonstrations
for Robot Manipulation", CoRL 2021) regresses the action with an MLP; predicting a chunk of Ta
actions and executing several of them (action chunking, Zhao et al. "ACT", RSS 2023) makes it
markedly better at long-horizon, non-Markovian demonstrations. The MLP sees the normalised
observation window flattened, and outputs the normalised chunk; the loss is L2 (or L1, which
is more robust to multimodal or noisy demonstrations but still averages modes).

`head` picks how the MLP's output becomes a chunk (`imitari.policies.nn.heads`): the default
`deterministic` regression above, a diagonal `gaussian`, or robomimic's `gmm` with `num_modes`
modes, which fits multimodal demonstrations instead of averaging them. The stochastic heads
train on the negative log-likelihood (per chunk dimension) and log the `mse` of their
predicted mean; they act with the mean (of the most likely mode) unless `sample_actions` is
set, in which case they sample with the policy's seeded noise generators. The head fields and
this train/predict logic (`HeadConfig`, `HeadPolicy`) are shared with BC-RNN and BC-transformer,
which differ only in the trunk that maps the observation window to the head's parameters.

Padded rows (chunk steps past the episode's end, which the window sampler fills by repeating
the last action) are *not* masked out of the loss, as in Diffusion Policy: they teach the
policy to hold still once a task is done. The defaults (two 256-wide layers, ~0.1M parameters
for a 39-D state) train at several hundred updates/s at batch 256 on a 2-core CPU.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from imitari.config import ConfigError
from imitari.policies.base import Generators, Policy, PolicyConfig, Shapes
from imitari.policies.nn.heads import HEADS, ActionHead, make_head
from imitari.policies.nn.mlp import MLP


@dataclass
class HeadConfig(PolicyConfig):
    """Action-head fields shared by the policies whose network ends in an `ActionHead` (BC,
    BC-RNN, BC-transformer)."""

    loss: Literal["l2", "l1"] = "l2"
    """Regression loss on the normalised chunk (the deterministic head only)."""
    head: Literal["deterministic", "gaussian", "gmm"] = "deterministic"
    """Action head: L2/L1 regression, a diagonal Gaussian, or a Gaussian mixture (robomimic)."""
    num_modes: int = 5
    """Mixture components of the `gmm` head."""
    min_std: float = 0.01
    """Floor of the `gaussian`/`gmm` heads' std, in normalised action units (robomimic: 1e-4,
    too small for scripted data whose actions sit on exact values)."""
    sample_actions: bool = False
    """Act with samples of a stochastic head instead of its mean / most likely mode."""
    squash: bool = False
    """tanh on the deterministic head's normalised output (robomimic's BC), bounding it to [-1, 1]."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss not in ("l2", "l1"):
            raise ConfigError(f"loss must be 'l2' or 'l1' (got {self.loss!r})")
        if self.head not in HEADS:
            raise ConfigError(f"head must be one of {list(HEADS)} (got {self.head!r})")
        if self.num_modes < 1:
            raise ConfigError(f"num_modes must be >= 1 (got {self.num_modes})")
        if not self.min_std > 0:
            raise ConfigError(f"min_std must be > 0 (got {self.min_std}); the NLL of a std near 0 is unbounded")
        if self.head != "deterministic" and self.loss != "l2":
            raise ConfigError(
                f"loss={self.loss!r} applies to the deterministic head only; the {self.head} head trains on its NLL"
            )
        if self.squash and self.head != "deterministic":
            raise ConfigError(f"squash applies to the deterministic head only (head is {self.head!r})")
        if self.sample_actions and self.head == "deterministic":
            raise ConfigError("sample_actions needs a stochastic head (head='gaussian' or 'gmm')")


class HeadPolicy(Policy):
    """Base of the policies whose trunk maps the observation window to an action head's parameters.

    Subclasses build their trunk and implement `head_params`; training (the head's loss on the
    normalised chunk) and prediction (mean / most likely mode, or a seeded sample) are shared.
    """

    config: HeadConfig
    variant_fields: ClassVar[frozenset[str]] = frozenset({"head"})

    def __init__(self, config: HeadConfig, *, shapes: Shapes, stats: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__(config, shapes=shapes, stats=stats)
        self.head: ActionHead = make_head(
            config.head,
            config.action_horizon,
            self.action_dim,
            loss=config.loss,
            num_modes=config.num_modes,
            min_std=config.min_std,
            squash=config.squash,
        )

    @abstractmethod
    def head_params(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Observation windows `{key: (B, To, ...)}` in real units -> `(B, head.param_dim)`."""

    def loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        target = self.normalize_actions(batch["action"])
        return self.head.loss(self.head_params(batch["obs"]), target)

    def predict_chunk(self, obs: Mapping[str, torch.Tensor], *, generator: Generators = None) -> torch.Tensor:
        params = self.head_params(obs)
        noise = None
        if self.config.sample_actions and self.head.stochastic:
            noise = self.sample_noise((params.shape[0], self.head.noise_dim), generator)
        return self.unnormalize_actions(self.head.predict(params, noise))


@dataclass
class BCConfig(HeadConfig):
    """BC-MLP: hidden widths and dropout, plus the action-head fields of `HeadConfig`."""

    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the MLP."""
    dropout: float = 0.0
    """Dropout after each hidden layer (training only)."""
    obs_range_floor: float = 1.0
    """As in `PolicyConfig`, but BC centres a narrow observation dimension without stretching
    it (chosen on validation seeds over six Meta-World tasks: docs/generalisation.md)."""
    temporal_ensemble: bool | None = None  # type: ignore[assignment]
    """As in `PolicyConfig`; None: on with the deterministic head and one candidate (chosen on
    validation seeds over six Meta-World tasks and three training seeds: docs/generalisation.md
    section 7), off with a stochastic head, whose samples an average would blur across modes."""

    def __post_init__(self) -> None:
        if self.temporal_ensemble is None:
            self.temporal_ensemble = self.head == "deterministic" and self.ptp_candidates == 1
        super().__post_init__()
        self.hidden = tuple(self.hidden)
        if any(width < 1 for width in self.hidden):
            raise ConfigError(f"hidden widths must be >= 1 (got {self.hidden})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1) (got {self.dropout})")


class BCPolicy(HeadPolicy):
    """BC-MLP: flattened observation window -> action chunk through an action head (robomimic)."""

    train_defaults: ClassVar[Mapping[str, Any]] = {"lr": 1e-3}
    config: BCConfig

    def __init__(self, config: BCConfig, *, shapes: Shapes, stats: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__(config, shapes=shapes, stats=stats)
        self.net = MLP(self.obs_encoder.out_dim, self.head.param_dim, hidden=config.hidden, dropout=config.dropout)

    def head_params(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.net(self.encode_obs(obs))
