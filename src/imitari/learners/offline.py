"""Offline learning from demonstration windows: one AdamW optimiser, the policy's phases by step.

The learner of every policy in the zoo. It minimises `policy.phase_loss(batch, phase)` with
AdamW under a warm-up + cosine (or constant) schedule and global gradient-norm clipping; the
phase of update k is `phase_at(policy.training_phases(), k)`, so VQ-BeT trains its VQ-VAE and
MINT its tokeniser first, and a resumed run continues in the phase of its step. torch's global
generator is seeded by (seed, step) before the loss, the noise source of every policy's loss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch

from imitari.learners.base import Learner
from imitari.learners.schedule import lr_factor
from imitari.policies.base import Policy
from imitari.policies.phases import phase_at

if TYPE_CHECKING:
    from imitari.learners.config import TrainConfig


class OfflineLearner(Learner):
    """Behaviour cloning (and its phased variants) on batches of dataset windows."""

    def __init__(self, policy: Policy, cfg: TrainConfig, *, budget_spent: Callable[[], float]) -> None:
        super().__init__(policy, cfg, budget_spent=budget_spent)
        lr = cfg.lr if cfg.lr is not None else type(policy).all_train_defaults()["lr"]
        self.optimizer = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: lr_factor(s, warmup=cfg.warmup_steps, total=cfg.steps, spent=budget_spent(),
                              schedule=cfg.lr_schedule),
        )
        self.phases = policy.training_phases()

    def phase(self, step: int) -> str:
        """The training phase of update `step`."""
        return phase_at(self.phases, step)

    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        torch.manual_seed(self.cfg.seed * 1_000_003 + step)
        self.policy.train()
        loss, metrics = self.policy.phase_loss(batch, self.phase(step))
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss is {loss.item()} at step {step}; the last checkpoint is intact "
                "(lower --lr or check the data with `imitari data info`)"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), clip)
        if not torch.isfinite(grad_norm):  # stepping would make every weight NaN
            raise FloatingPointError(
                f"gradient norm is {float(grad_norm)} at step {step}; the last checkpoint is intact "
                "(lower --lr or check the data with `imitari data verify`)"
            )
        self.optimizer.step()
        self.scheduler.step()
        return {
            **metrics,
            "loss": float(loss.item()),
            "lr": float(self.scheduler.get_last_lr()[0]),
            "grad_norm": float(grad_norm),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.policy.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
