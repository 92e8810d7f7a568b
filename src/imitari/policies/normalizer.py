"""Feature normalisation owned by the policy, so a checkpoint carries its own statistics.

Each feature gets an affine map `x_norm = (x - offset) * scale`, stored as buffers (so they
travel in model.safetensors), built from the dataset's statistics: "limits" maps [min, max] to
[-1, 1] (diffusion needs bounded targets), "gaussian" maps to zero mean, unit std. Dimensions
that never vary map to 0 and back to their constant value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

Mode = Literal["limits", "gaussian"]
_EPS = 1e-6


def _buffer_name(feature: str, what: str) -> str:
    return f"{feature.replace('.', '__')}__{what}"


class Normalizer(nn.Module):
    """Affine per-feature normalisation from dataset statistics (`{feature: {mean,std,min,max}}`)."""

    def __init__(self, stats: Mapping[str, Mapping[str, Any]], *, features: Iterable[str], mode: Mode = "limits") -> None:
        super().__init__()
        self.mode = mode
        self.stats: dict[str, dict[str, Any]] = {}
        for name in features:
            if name not in stats:
                raise KeyError(f"no statistics for feature '{name}' (have {sorted(stats)})")
            s = {k: np.asarray(stats[name][k], dtype=np.float64) for k in ("mean", "std", "min", "max")}
            if mode == "limits":
                span = s["max"] - s["min"]
                varies = span > _EPS
                scale = np.where(varies, 2.0 / np.where(varies, span, 1.0), 1.0)
                offset = np.where(varies, (s["max"] + s["min"]) / 2.0, s["min"])
            else:
                scale = 1.0 / np.maximum(s["std"], 1e-2)
                offset = s["mean"]
            self.register_buffer(_buffer_name(name, "scale"), torch.as_tensor(scale, dtype=torch.float32))
            self.register_buffer(_buffer_name(name, "offset"), torch.as_tensor(offset, dtype=torch.float32))
            self.stats[name] = {k: np.asarray(stats[name][k]).tolist() for k in ("mean", "std", "min", "max")}

    def _affine(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return getattr(self, _buffer_name(name, "scale")), getattr(self, _buffer_name(name, "offset"))

    def normalize(self, name: str, x: torch.Tensor) -> torch.Tensor:
        scale, offset = self._affine(name)
        return (x - offset) * scale

    def unnormalize(self, name: str, x: torch.Tensor) -> torch.Tensor:
        scale, offset = self._affine(name)
        return x / scale + offset

    def to_json(self) -> dict[str, Any]:
        """The statistics this normaliser was built from (the checkpoint's normalizer.json)."""
        return {name: dict(s) for name, s in self.stats.items()}
