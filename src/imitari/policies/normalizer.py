"""Feature normalisation owned by the policy, so a checkpoint carries its own statistics.

Networks learn best on inputs and targets of unit scale, and a diffusion policy's sampler
clips its clean-sample estimate to [-1, 1] (Chi et al., RSS 2023), so actions must live there.
Each feature gets an affine map `x_norm = (x - center) / half` with, per mode:

- "limits": center = (max + min) / 2, half = (max - min) / 2, so [min, max] -> [-1, 1]
  (Diffusion Policy's and LeRobot's default);
- "gaussian": center = mean, half = max(std, STD_FLOOR), zero mean and unit variance
  (robomimic's optional observation normalisation; the floor keeps near-constant dimensions finite);
- "none": the identity (robomimic's default for low-dim observations and actions). Raw
  Meta-World positions are in metres, all within [-1, 1], and a layout that falls outside the
  few demonstrations' range stays a small input change instead of a many-fold one.

A feature may carry a `floor` on the half-width used by "limits": a dimension that varies by
less than 2 * floor (a resting object's quaternion jittering by 1e-3, say) is then not magnified
into a full-scale input. Unfloored, such jitter is a per-episode fingerprint that a policy
trained on a few demos latches onto: on Meta-World reach (50 demos) diffusion succeeded
on about 30% of held-out layouts without the floor and on 95% with a floor of 0.01.

A dimension that never varies in the data (max - min < 1e-6) maps to 0 whatever its value, and
back to exactly its constant (its center), so constant features neither divide by zero nor leak
out-of-distribution values into the network.

The statistics themselves (mean, std, min, max per feature) are buffers: they travel in
`model.safetensors`, and `to_json` reads them back, so `normalizer.json` never disagrees with
the weights it ships with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import nn

NormMode = Literal["limits", "gaussian", "none"]
STAT_KEYS = ("mean", "std", "min", "max")
CONSTANT_EPS = 1e-6
"""A dimension whose max - min is below this is treated as constant."""
STD_FLOOR = 1e-3
"""Smallest std "gaussian" divides by (robomimic adds a 1e-3 tolerance to std likewise)."""


class _FeatureStats(nn.Module):
    """The four statistics of one feature, as buffers."""

    def __init__(self, stats: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        for key in STAT_KEYS:
            self.register_buffer(key, stats[key])


class Normalizer(nn.Module):
    """Per-feature affine normalisation built from dataset statistics.

    `stats` maps feature names (`obs.<key>`, `action`) to `{"mean", "std", "min", "max"}`
    (lists shaped like the feature, or broadcastable to it), as `Dataset.stats()` returns.
    `modes` names the features to normalise and the mode of each. A `"mode"` entry inside a
    feature's stats (as `to_json` writes) takes precedence, so a policy rebuilt from a
    checkpoint's normalizer.json keeps the normalisation it was trained with.
    """

    def __init__(
        self,
        stats: Mapping[str, Mapping[str, Any]],
        *,
        modes: Mapping[str, NormMode],
        floors: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.modes: dict[str, NormMode] = {}
        self.floors: dict[str, float] = {}
        self._stats = nn.ModuleDict()
        for name, requested in modes.items():
            if name not in stats:
                raise KeyError(f"no statistics for feature '{name}' (have {sorted(stats)})")
            entry = stats[name]
            mode = entry.get("mode", requested)
            if mode not in get_args(NormMode):
                raise ValueError(f"feature '{name}': normalisation mode {mode!r} is not one of {get_args(NormMode)}")
            missing = [k for k in STAT_KEYS if k not in entry]
            if missing:
                raise KeyError(f"statistics of feature '{name}' lack {missing}")
            arrays = {k: np.asarray(entry[k], dtype=np.float64) for k in STAT_KEYS}
            if len({a.shape for a in arrays.values()}) != 1:
                raise ValueError(f"feature '{name}': mean/std/min/max have different shapes")
            if not all(np.isfinite(a).all() for a in arrays.values()):
                raise ValueError(f"feature '{name}': statistics contain NaN or inf")
            self.modes[name] = mode
            self.floors[name] = float(entry.get("floor", (floors or {}).get(name, 0.0)))
            self._stats[self._key(name)] = _FeatureStats(
                {k: torch.as_tensor(a, dtype=torch.float32) for k, a in arrays.items()}
            )

    @staticmethod
    def _key(name: str) -> str:
        return name.replace(".", "__")  # module names cannot contain dots

    @property
    def features(self) -> list[str]:
        return list(self.modes)

    def stat(self, name: str, key: str) -> torch.Tensor:
        """One statistic ("mean", "std", "min" or "max") of a feature, as a tensor."""
        if name not in self.modes:
            raise KeyError(f"the normaliser has no feature '{name}' (have {self.features})")
        return getattr(self._stats[self._key(name)], key)

    def _affine(self, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(center, half, 1 / half) of a feature, with half = 1 / half = 0 on constant dims
        (except in mode "none", the identity)."""
        lo, hi = self.stat(name, "min"), self.stat(name, "max")
        if self.modes[name] == "none":
            return torch.zeros_like(lo), torch.ones_like(lo), torch.ones_like(lo)
        if self.modes[name] == "limits":
            center, half = (hi + lo) / 2, ((hi - lo) / 2).clamp_min(self.floors[name])
        else:
            center, half = self.stat(name, "mean"), self.stat(name, "std").clamp_min(STD_FLOOR)
        constant = (hi - lo) < CONSTANT_EPS
        return center, torch.where(constant, 0.0, half), torch.where(constant, 0.0, half.reciprocal())

    def normalize(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Real units -> normalised units (`x`'s trailing dims shaped like the feature)."""
        center, _, inv = self._affine(name)
        return (x - center) * inv

    def unnormalize(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Normalised units -> real units; constant dims come back as their constant."""
        center, half, _ = self._affine(name)
        return x * half + center

    def to_json(self) -> dict[str, dict[str, Any]]:
        """`{feature: {"mode", "floor", "mean", "std", "min", "max"}}`, plain JSON types (normalizer.json).

        The result is also valid `stats` for `Normalizer` and for a policy constructor.
        """
        return {
            name: {
                "mode": mode,
                "floor": self.floors[name],
                **{k: self.stat(name, k).detach().cpu().tolist() for k in STAT_KEYS},
            }
            for name, mode in self.modes.items()
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Mapping[str, Any]]) -> Normalizer:
        """Rebuild a normaliser from `to_json`'s output."""
        unnamed = [name for name, entry in data.items() if "mode" not in entry]
        if unnamed:
            raise ValueError(f"normaliser JSON lacks a 'mode' for features {unnamed}")
        return cls(data, modes={name: entry["mode"] for name, entry in data.items()})
