"""Procedure Cloning: imitate the expert's computation, then its action (Yang, Schuurmans, Abbeel
and Nachum, "Chain of Thought Imitation with Procedure Cloning", NeurIPS 2022).

BC maps an observation straight to the expert's action. Procedure Cloning also imitates how the
expert got there: on mazes, the grids of a breadth-first search from the goal, step by step,
until the search reaches the agent, whose cell then says where to move. Each step of that
search is a local rule (a cell joins the frontier next to the frontier), so a convolutional net
that learns the rule on a few mazes applies it on mazes it never saw, where BC has to generalise
a global map -> action function from the same few layouts.

Data: the observation's 2-D keys (H, W) are the channels of a map (vector keys are broadcast as
constant channels, so a vector-only task is a 1x1 map). The computation comes as the dataset's
`procedure.layer` and `procedure.value` maps (`batch["procedure"]`, e.g. from
`builtin/gridmaze`'s BFS expert): cell c is written at iteration layer[c] (-1: never) with the
value value[c] in 1..procedure_values-1, and is 0 (unwritten) before. So state k of the
procedure is where(0 <= layer <= k, value, 0).

Net (three conv stacks over the map x): `init(x)` predicts state 0; `step(x, z_k)` predicts
state k + 1 from state k (one-hot); `head(x, z)` outputs an action chunk per cell, read out by a
softmax attention whose scores are a 1x1 conv of x alone (on mazes it learns to look at the
agent's cell). Training is teacher-forced, as in the paper: cross-entropy of init on state 0 and
of step on state k+1 given the true state k at a random k before the last, plus L2 on the
normalised action from the head on the true last state. Acting iterates step from init's
prediction, keeping each cell's first written value (the procedure writes a cell once), until
the attended cell is written, nothing changes, or `max_iterations`, then reads the action.
Without `procedure` in a batch (data of a task whose expert records none) only init and head
learn, from the action alone; with `use_procedure` off they also act from init's soft state,
without iterating: a conv BC of the same nets (the ablation of the paper).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from imitari.config import ConfigError
from imitari.policies.base import Generators, Policy, PolicyConfig, Shapes
from imitari.policies.normalizer import NormMode


@dataclass
class ProcedureCloningConfig(PolicyConfig):
    """Procedure Cloning: one observation, one action per step (the computation is redone each
    step, as the expert's is), and raw 0/1 maps as inputs."""

    obs_horizon: int = 1
    action_horizon: int = 1
    exec_horizon: int = 1
    obs_norm: NormMode = "none"
    channels: int = 16
    """Width of every conv layer."""
    layers: int = 3
    """Conv layers per stack (3x3, the last 1x1): init, step and head each have this many."""
    procedure_values: int = 6
    """Values a procedure cell takes, 0 (unwritten) included: gridmaze's 0, 4 moves and the goal."""
    max_iterations: int = 100
    """Most steps of the procedure per action at inference."""
    procedure_weight: float = 1.0
    """Weight of the procedure's cross-entropy terms against the action's L2."""
    use_procedure: bool = True
    """False ignores the expert's computation even where the data has it: the same nets trained
    on the action alone, without iterations (a conv BC; the paper's ablation)."""
    frontier_weight: float = 10.0
    """Extra weight, in the step loss, of the cells a step writes (the few that change): an
    error there derails every later iteration."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("channels", "max_iterations"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1 (got {getattr(self, name)})")
        if self.layers < 2:
            raise ConfigError(f"layers must be >= 2 (got {self.layers}): a 3x3 layer and the 1x1 output")
        if self.procedure_values < 2:
            raise ConfigError(f"procedure_values must be >= 2 (got {self.procedure_values}): unwritten and one value")
        for name in ("procedure_weight", "frontier_weight"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0 (got {getattr(self, name)})")


def _conv_stack(inputs: int, width: int, outputs: int, layers: int) -> nn.Sequential:
    blocks: list[nn.Module] = []
    for i in range(layers - 1):
        blocks += [nn.Conv2d(inputs if i == 0 else width, width, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*blocks, nn.Conv2d(width, outputs, 1))


ATTENTION_SCALE = 10.0
"""Multiplies the attention scores, so a 1x1 conv can single out one cell of a few hundred
within a few hundred updates (unscaled, the readout stays near uniform for thousands)."""


class ProcedureCloningPolicy(Policy):
    """Conv nets that iterate the expert's per-cell procedure, then read the action off it."""

    train_defaults: ClassVar[Mapping[str, Any]] = {"lr": 3e-3}
    """Chosen on validation seeds (docs/gridmaze.md): 1e-3 under a cosine schedule left the step
    net a few errors per thousand cells short, and errors compound over the iterations."""
    takes_cameras: ClassVar[bool] = False
    takes_relative_points: ClassVar[bool] = False
    config: ProcedureCloningConfig

    def __init__(self, config: ProcedureCloningConfig, *, shapes: Shapes,
                 stats: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__(config, shapes=shapes, stats=stats)
        grids = {shape for shape in shapes.obs.values() if len(shape) == 2}
        if len(grids) > 1 or any(len(shape) not in (1, 2) for shape in shapes.obs.values()):
            raise ConfigError(f"procedure_cloning needs (H, W) map keys of one size and/or vectors; got {shapes.obs}")
        self.grid: tuple[int, int] = grids.pop() if grids else (1, 1)
        per_step = sum(1 if len(shape) == 2 else shape[0] for shape in shapes.obs.values())
        inputs, values, width = config.obs_horizon * per_step, config.procedure_values, config.channels
        chunk = config.action_horizon * self.action_dim
        self.init_net = _conv_stack(inputs, width, values, config.layers)
        self.step_net = _conv_stack(inputs + values, width, values, config.layers)
        self.head_net = _conv_stack(inputs + values, width, chunk, config.layers)
        self.attention = nn.Conv2d(inputs, 1, 1)

    def _map(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """`(B, To * channels, H, W)`: the normalised window's keys (sorted) as map channels."""
        norm = self.normalize_obs(obs)
        parts = []
        for key in sorted(self.shapes.obs):
            value = norm[key]  # (B, To, H, W) or (B, To, D)
            if value.ndim == 3:
                value = value[..., None, None].expand(*value.shape, *self.grid).flatten(1, 2)
            parts.append(value)
        return torch.cat(parts, dim=1)

    def _onehot(self, state: torch.Tensor) -> torch.Tensor:
        return F.one_hot(state, self.config.procedure_values).permute(0, 3, 1, 2).to(self.dtype)

    def _action(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Normalised chunk `(B, Ta * A)` read from the head at the attended cells; `state` is
        one-hot or soft `(B, V, H, W)`."""
        weights = torch.softmax(ATTENTION_SCALE * self.attention(x).flatten(1), dim=1)  # (B, H*W)
        per_cell = self.head_net(torch.cat([x, state], dim=1)).flatten(2)  # (B, Ta*A, H*W)
        return torch.einsum("bcn,bn->bc", per_cell, weights)

    def loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        x = self._map(batch["obs"])
        target = self.normalize_actions(batch["action"]).flatten(1)
        procedure = batch.get("procedure") if self.config.use_procedure else None
        if procedure is None:
            action_loss = F.mse_loss(self._action(x, torch.softmax(self.init_net(x), dim=1)), target)
            return action_loss, {"action_loss": float(action_loss.item())}
        layer, value = procedure["layer"].long(), procedure["value"].long()
        if value.min() < 0 or value.max() >= self.config.procedure_values:
            raise ValueError(f"procedure values must lie in 0..{self.config.procedure_values - 1}")
        last = layer.flatten(1).max(dim=1).values  # the iteration that wrote the final state
        k = (torch.rand(len(last), device=last.device) * last.clamp(min=1)).long()
        k = torch.minimum(k, (last - 1).clamp(min=0))

        def state(at: torch.Tensor) -> torch.Tensor:
            written = (layer >= 0) & (layer <= at[:, None, None])
            return torch.where(written, value, torch.zeros_like(value))

        init_loss = F.cross_entropy(self.init_net(x), state(torch.zeros_like(last)))
        now, after = state(k), state(torch.minimum(k + 1, last))
        per_cell = F.cross_entropy(self.step_net(torch.cat([x, self._onehot(now)], 1)), after, reduction="none")
        weight = 1.0 + self.config.frontier_weight * (now != after).to(per_cell.dtype)
        step_loss = (weight * per_cell).sum() / weight.sum()
        action_loss = F.mse_loss(self._action(x, self._onehot(state(last))), target)
        loss = action_loss + self.config.procedure_weight * (init_loss + step_loss)
        return loss, {"init_loss": float(init_loss.item()), "step_loss": float(step_loss.item()),
                      "action_loss": float(action_loss.item())}

    def iterate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The procedure's final states `(B, H, W)` (long) and iterations run per row."""
        state = self.init_net(x).argmax(1)
        attended = self.attention(x).flatten(1).argmax(1)
        rows = torch.arange(len(x), device=x.device)
        iterations = torch.zeros(len(x), dtype=torch.long, device=x.device)
        active = rows[state.flatten(1)[rows, attended] == 0]
        for _ in range(self.config.max_iterations):
            if len(active) == 0:
                break
            now = state[active]
            new = self.step_net(torch.cat([x[active], self._onehot(now)], 1)).argmax(1)
            new = torch.where(now > 0, now, new)  # a written cell keeps its value
            state[active] = new
            iterations[active] += 1
            moving = (new != now).flatten(1).any(1) & (new.flatten(1)[torch.arange(len(active)), attended[active]] == 0)
            active = active[moving]
        return state, iterations

    def predict_chunk(self, obs: Mapping[str, torch.Tensor], *, generator: Generators = None) -> torch.Tensor:
        x = self._map(obs)
        if self.config.use_procedure:
            state = self._onehot(self.iterate(x)[0])
        else:
            state = torch.softmax(self.init_net(x), dim=1)
        chunk = self._action(x, state).unflatten(1, (self.config.action_horizon, self.action_dim))
        return self.unnormalize_actions(chunk)
