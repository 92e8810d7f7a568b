"""Action heads of the regression policies: how a network's flat output becomes an action chunk.

A head holds no parameters. A policy's network (BC's MLP now; the trunk of BC-RNN or a
BC-transformer later) emits `head.param_dim` numbers per sample, and the head turns them into
a loss against the normalised target chunk `(B, Ta, A)` and into a predicted chunk. Because
the heads own no weights, switching heads only changes the width of the network's last layer,
and the deterministic head keeps the state-dict layout and numbers of the plain regressor.

The heads follow robomimic (Mandlekar et al., "What Matters in Learning from Offline Human
Demonstrations for Robot Manipulation", CoRL 2021), which found a GMM head markedly better on
multimodal human demonstrations:

- `deterministic`: L2 or L1 regression of the chunk (robomimic's BC). It averages modes.
- `gaussian`: a diagonal Gaussian over the flattened chunk; loss = negative log-likelihood.
- `gmm`: a mixture of `num_modes` diagonal Gaussians over the flattened chunk (robomimic's
  `GMMActorNetwork`), NLL through `torch.distributions.MixtureSameFamily`. A mode is a whole
  chunk, so the modes are alternative trajectories, not per-step choices.

Choices, and why they differ from robomimic's defaults:

- std = softplus(raw) + `min_std`, with `min_std` 0.01 in normalised units rather than
  robomimic's 1e-4. Scripted demonstrations sit on exact values (Meta-World's gripper is
  exactly 0 or 0.6; many actions are clipped to exactly +-1): with a tiny floor the NLL is
  maximised by needle-thin modes on those values that ignore the observation, and gradient
  norms reach 1e6-1e8 (shared/SIMULATORS.md). A 0.01 floor bounds the per-dimension NLL below
  by log(0.01) + log(2 pi) / 2 ~ -3.7 and the gradient w.r.t. a mean by |error| / 1e-4.
- The Gaussian and GMM means are *not* tanh-squashed (robomimic squashes them by default). The
  "limits" normaliser already maps the demonstrations into [-1, 1], and targets lie exactly on
  +-1; a tanh would need unbounded pre-activations to reach them, while a linear mean reaches
  them like the deterministic head does. The deterministic head squashes when asked
  (`squash=True`, robomimic's BC); docs/generalisation.md measures what that changes.
- The NLL is averaged over the chunk's Ta * A dimensions (the joint log-density divided by
  Ta * A), so the loss scale, and hence a good learning rate, does not grow with the chunk.

At inference a head returns the mean (Gaussian) or the mean of the most likely mode (GMM),
robomimic's "low-noise evaluation", unless given standard-normal `noise` (`noise_dim` numbers
per row), from which it samples. Policies draw that noise with `Policy.sample_noise` and their
seeded generators, so sampled evaluation stays reproducible; the GMM's mode is picked by the
Gumbel-max trick on uniforms obtained from the normal noise through its CDF.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import distributions as D
from torch import nn

HeadKind = Literal["deterministic", "gaussian", "gmm"]
HEADS: tuple[str, ...] = ("deterministic", "gaussian", "gmm")


class ActionHead(nn.Module, ABC):
    """Interprets `(B, param_dim)` network outputs as a (distribution over) normalised chunks."""

    stochastic: ClassVar[bool] = False
    """Whether the head models a distribution it can sample from."""

    def __init__(self, horizon: int, action_dim: int) -> None:
        super().__init__()
        self.horizon, self.action_dim = horizon, action_dim
        self.dim = horizon * action_dim
        """Dimensions of a flattened chunk, Ta * A."""

    @property
    @abstractmethod
    def param_dim(self) -> int:
        """Network outputs the head needs per sample."""

    @property
    def noise_dim(self) -> int:
        """Standard-normal numbers per sample that `predict` consumes when sampling."""
        return 0

    @abstractmethod
    def loss(self, params: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of outputs `(B, param_dim)` against normalised target chunks `(B, Ta, A)`, and metrics."""

    @abstractmethod
    def predict(self, params: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised chunks `(B, Ta, A)`: the mean / most likely mode, or a sample given `noise`."""

    def _chunk(self, flat: torch.Tensor) -> torch.Tensor:
        return flat.unflatten(-1, (self.horizon, self.action_dim))

    def _std(self, raw: torch.Tensor, min_std: float) -> torch.Tensor:
        return F.softplus(raw) + min_std

    def extra_repr(self) -> str:
        return f"horizon={self.horizon}, action_dim={self.action_dim}, param_dim={self.param_dim}"


class DeterministicHead(ActionHead):
    """Plain regression of the chunk with an L2 or L1 loss (robomimic's BC)."""

    def __init__(self, horizon: int, action_dim: int, *, loss: Literal["l2", "l1"] = "l2", squash: bool = False) -> None:
        super().__init__(horizon, action_dim)
        if loss not in ("l2", "l1"):
            raise ValueError(f"loss must be 'l2' or 'l1' (got {loss!r})")
        self.loss_kind = loss
        self.squash = squash

    @property
    def param_dim(self) -> int:
        return self.dim

    def loss(self, params: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        fn = F.mse_loss if self.loss_kind == "l2" else F.l1_loss
        return fn(self.predict(params), target), {}

    def predict(self, params: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        chunk = self._chunk(params)
        return torch.tanh(chunk) if self.squash else chunk


class GaussianHead(ActionHead):
    """Diagonal Gaussian over the flattened chunk: outputs `[mean (D), raw std (D)]`."""

    stochastic = True

    def __init__(self, horizon: int, action_dim: int, *, min_std: float = 0.01) -> None:
        super().__init__(horizon, action_dim)
        if min_std <= 0:
            raise ValueError(f"min_std must be > 0 (got {min_std})")
        self.min_std = min_std

    @property
    def param_dim(self) -> int:
        return 2 * self.dim

    @property
    def noise_dim(self) -> int:
        return self.dim

    def distribution(self, params: torch.Tensor) -> D.Normal:
        """Per-dimension Normal of shape `(B, D)`."""
        mean, raw = params.split(self.dim, dim=-1)
        return D.Normal(mean, self._std(raw, self.min_std), validate_args=False)

    def loss(self, params: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        dist = self.distribution(params)
        flat = target.flatten(start_dim=1)
        nll = -dist.log_prob(flat).mean()
        with torch.no_grad():
            mse, std = torch.stack([(dist.mean - flat).pow(2).mean(), dist.stddev.mean()]).tolist()
        return nll, {"mse": mse, "std": std}

    def predict(self, params: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        dist = self.distribution(params)
        if noise is None:
            return self._chunk(dist.mean)
        return self._chunk(dist.mean + dist.stddev * noise[:, : self.dim])


class GMMHead(ActionHead):
    """Mixture of `num_modes` diagonal Gaussians over the flattened chunk (robomimic's GMM head).

    Outputs: `[mixture logits (K), means (K * D), raw stds (K * D)]`.
    """

    stochastic = True

    def __init__(self, horizon: int, action_dim: int, *, num_modes: int = 5, min_std: float = 0.01) -> None:
        super().__init__(horizon, action_dim)
        if num_modes < 1:
            raise ValueError(f"num_modes must be >= 1 (got {num_modes})")
        if min_std <= 0:
            raise ValueError(f"min_std must be > 0 (got {min_std})")
        self.num_modes, self.min_std = num_modes, min_std

    @property
    def param_dim(self) -> int:
        return self.num_modes * (1 + 2 * self.dim)

    @property
    def noise_dim(self) -> int:
        return self.num_modes + self.dim

    def components(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits `(B, K)`, means `(B, K, D)`, stds `(B, K, D)`)."""
        k = self.num_modes
        logits, means, raw = params.split((k, k * self.dim, k * self.dim), dim=-1)
        return logits, means.unflatten(-1, (k, self.dim)), self._std(raw.unflatten(-1, (k, self.dim)), self.min_std)

    def distribution(self, params: torch.Tensor) -> D.MixtureSameFamily:
        """The mixture over flattened chunks `(B, D)`."""
        return self._mixture(*self.components(params))

    @staticmethod
    def _mixture(logits: torch.Tensor, means: torch.Tensor, stds: torch.Tensor) -> D.MixtureSameFamily:
        # the components are valid by construction (std >= min_std > 0): skip argument checks
        modes = D.Independent(D.Normal(means, stds, validate_args=False), 1, validate_args=False)
        return D.MixtureSameFamily(D.Categorical(logits=logits, validate_args=False), modes, validate_args=False)

    def loss(self, params: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        flat = target.flatten(start_dim=1)
        logits, means, stds = self.components(params)
        nll = -self._mixture(logits, means, stds).log_prob(flat).mean() / self.dim
        with torch.no_grad():
            best = self._select(means, logits.argmax(dim=-1))
            weights = logits.softmax(dim=-1)
            entropy = -(weights * weights.clamp_min(1e-12).log()).sum(-1).mean()
            mse, std, entropy = torch.stack([(best - flat).pow(2).mean(), stds.mean(), entropy]).tolist()
        return nll, {"mse": mse, "std": std, "mode_entropy": entropy}

    @staticmethod
    def _select(values: torch.Tensor, modes: torch.Tensor) -> torch.Tensor:
        """Row i of `values` `(B, K, D)` at mode `modes[i]` -> `(B, D)`."""
        return values.gather(1, modes[:, None, None].expand(-1, 1, values.shape[-1])).squeeze(1)

    def predict(self, params: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        logits, means, stds = self.components(params)
        if noise is None:
            return self._chunk(self._select(means, logits.argmax(dim=-1)))
        k = self.num_modes
        modes = categorical_from_normal(logits, noise[:, :k])
        sample = self._select(means, modes) + self._select(stds, modes) * noise[:, k:]
        return self._chunk(sample)


def categorical_from_normal(logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Indices `(...)` drawn from the categorical `softmax(logits)` `(..., K)`, using standard-normal
    `noise` of the same shape as the randomness: Gumbel-max on the uniforms `Phi(noise)`, an
    exact draw that lets policies keep all their sampling on their seeded normal generators."""
    uniform = torch.special.ndtr(noise.double()).clamp(1e-12, 1 - 1e-12)
    return (logits.double() - torch.log(-torch.log(uniform))).argmax(dim=-1)


def make_head(
    kind: str,
    horizon: int,
    action_dim: int,
    *,
    loss: Literal["l2", "l1"] = "l2",
    num_modes: int = 5,
    min_std: float = 0.01,
    squash: bool = False,
) -> ActionHead:
    """The head `kind` ("deterministic", "gaussian" or "gmm") for chunks of `horizon` x `action_dim`;
    `squash` (tanh) applies to the deterministic head only."""
    if kind == "deterministic":
        return DeterministicHead(horizon, action_dim, loss=loss, squash=squash)
    if kind == "gaussian":
        return GaussianHead(horizon, action_dim, min_std=min_std)
    if kind == "gmm":
        return GMMHead(horizon, action_dim, num_modes=num_modes, min_std=min_std)
    raise ValueError(f"unknown head {kind!r}; choose one of {list(HEADS)}")


def nll_floor(min_std: float) -> float:
    """Smallest per-dimension NLL a Gaussian (or GMM) head with this std floor can reach."""
    return math.log(min_std) + 0.5 * math.log(2 * math.pi)
