"""Soft Actor-Critic (Haarnoja et al. 2018, with the automatic entropy temperature of the
"SAC: Algorithms and Applications" version), on the learner seam.

One loop step is one update of the twin critics, the `tanh_gaussian` actor and the temperature
on a batch drawn uniformly from the replay buffer (numpy generator seeded by (seed, step); the
actor's and the target's samples from torch's generator seeded the same way). Before update k,
`collect` plays rounds of whole episodes until the data is ahead of the updates: first
`learning_starts` env steps of uniformly random actions, then the exploring policy whenever
k >= (env steps - learning_starts) * `updates_per_step`. Targets bootstrap through truncation
(time limits) and stop at termination. The twin critics are one batched module (two MLPs as
one `baddbmm` per layer), which halves the kernel calls on a CPU. Defaults follow CleanRL's
`sac_continuous_action.py` (256x256, lr 3e-4, tau 0.005, batch 256; TrainConfig's batch_size
and lr); `TrainConfig.grad_clip` clips each network's gradient norm.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imitari.config import ConfigError, check_number
from imitari.learners.online import OnlineLearner, OnlineOptions
from imitari.policies.base import Policy

if TYPE_CHECKING:
    from imitari.learners.config import TrainConfig
    from imitari.rollouts.engine import RolloutEngine


@dataclass
class SACOptions(OnlineOptions):
    """SAC's options (`TrainConfig.learner_config`)."""

    tau: float = 0.005
    """Polyak rate of the target critics."""
    buffer_size: int = 1_000_000
    """Replay ring capacity in transitions."""
    learning_starts: int = 5000
    """Env steps of uniformly random actions before the first update."""
    updates_per_step: float = 1.0
    """Updates per env step once learning started (the update-to-data ratio)."""
    critic_hidden: tuple[int, ...] = (256, 256)
    init_temperature: float = 1.0
    target_entropy: float | None = None
    """None: -action_dim."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number(self, "tau", gt=0, le=1)
        check_number(self, "buffer_size", ge=1)
        check_number(self, "learning_starts", ge=1)
        check_number(self, "updates_per_step", gt=0)
        check_number(self, "init_temperature", gt=0)
        self.critic_hidden = tuple(self.critic_hidden)
        if not self.critic_hidden or any(w < 1 for w in self.critic_hidden):
            raise ConfigError(f"learner_config.critic_hidden: widths must be >= 1 (got {self.critic_hidden})")


class TwinCritic(nn.Module):
    """`n` Q-networks [obs, action] -> value evaluated as one batched MLP: `(B, D)` -> `(n, B)`."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], n: int = 2) -> None:
        super().__init__()
        widths = [in_dim, *hidden, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            bound = 1 / math.sqrt(fan_in)  # nn.Linear's default initialisation, per network
            self.weights.append(nn.Parameter(torch.empty(n, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n, 1, fan_out).uniform_(-bound, bound)))
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.expand(self.n, *x.shape)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < len(self.weights) - 1:
                h = F.relu(h)
        return h.squeeze(-1)


def q_values(net: TwinCritic, obs: Mapping[str, torch.Tensor], action: torch.Tensor) -> torch.Tensor:
    """The twin critic's values `(2, B)` of observations `{key: (B, ...)}` and normalised actions `(B, A)`."""
    return net(torch.cat([OnlineLearner.flat_obs(obs), action], dim=1))


class SACLearner(OnlineLearner):
    """SAC with twin critics, target critics and a learned temperature."""

    Options = SACOptions
    capacity_option = "buffer_size"
    options: SACOptions

    def __init__(self, policy: Policy, cfg: TrainConfig, *, budget_spent: Callable[[], float],
                 run_dir: Path | None = None) -> None:
        super().__init__(policy, cfg, budget_spent=budget_spent, run_dir=run_dir)
        opts = self.options
        in_dim = sum(math.prod(s) for s in self.policy.shapes.obs.values()) + self.policy.action_dim
        self.critic = TwinCritic(in_dim, opts.critic_hidden).to(self.policy.device)
        self.target = TwinCritic(in_dim, opts.critic_hidden).to(self.policy.device)
        self.target.load_state_dict(self.critic.state_dict())
        self.target.requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(opts.init_temperature), device=self.policy.device, requires_grad=True)
        self.target_entropy = -float(self.policy.action_dim) if opts.target_entropy is None else opts.target_entropy
        self.actor_opt = torch.optim.Adam(self.policy.parameters(), lr=self.lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=self.lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=self.lr)

    def collect(self, engine: RolloutEngine, step: int) -> dict[str, float]:
        opts, metrics = self.options, {}
        while self.replay.added < opts.learning_starts:
            metrics = self.play(engine, random=True)
        while step >= (self.replay.added - opts.learning_starts) * opts.updates_per_step:
            metrics = self.play(engine)
        return metrics

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """An update's replay rows (a learner with demonstrations mixes them in)."""
        return self.replay.sample(batch_size, rng)

    def _q(self, net: TwinCritic, obs: Mapping[str, torch.Tensor], action: torch.Tensor) -> torch.Tensor:
        return q_values(net, obs, action)

    def _step(self, opt: torch.optim.Optimizer, loss: torch.Tensor, params: Any) -> float:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
        if not math.isfinite(norm):
            raise FloatingPointError(f"SAC gradient norm is {norm}; the last checkpoint is intact (lower --lr)")
        opt.step()
        return norm

    def update(self, batch: Mapping[str, Any] | None, step: int) -> dict[str, float]:
        """One SAC update on a replay batch (the loop's `batch` is None for online learners)."""
        cfg, opts = self.cfg, self.options
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        b = self.tensors(self.sample(cfg.batch_size, np.random.default_rng([cfg.seed, step, 11])))
        alpha = self.log_alpha.detach().exp()
        with torch.no_grad():
            next_action, next_logp = self.policy.sample(b["next_obs"])
            next_q = self._q(self.target, b["next_obs"], next_action).min(0).values - alpha * next_logp
            target = b["reward"] + opts.gamma * (1 - b["terminated"]) * next_q
        q = self._q(self.critic, b["obs"], b["action"])
        critic_loss = 0.5 * ((q - target) ** 2).mean(1).sum()
        critic_norm = self._step(self.critic_opt, critic_loss, self.critic.parameters())

        action, logp = self.policy.sample(b["obs"])
        self.critic.requires_grad_(False)  # the actor's loss needs d/d(action), not the critic's weights
        q_pi = self._q(self.critic, b["obs"], action).min(0).values
        self.critic.requires_grad_(True)
        actor_loss = (alpha * logp - q_pi).mean()
        actor_norm = self._step(self.actor_opt, actor_loss, self.policy.parameters())
        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(self.target.parameters()), list(self.critic.parameters()), opts.tau)
        return {"loss": critic_loss.item(), "actor_loss": actor_loss.item(), "alpha": alpha.item(),
                "entropy": -logp.mean().item(), "q": q.mean().item(), "grad_norm": critic_norm,
                "actor_grad_norm": actor_norm}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.policy.state_dict(), "critic": self.critic.state_dict(),
                "target": self.target.state_dict(), "log_alpha": self.log_alpha.detach().clone(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "alpha_opt": self.alpha_opt.state_dict(), **self.online_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.policy.load_state_dict(state["model"])
        self.critic.load_state_dict(state["critic"])
        self.target.load_state_dict(state["target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])
        self.load_online_state(state)
