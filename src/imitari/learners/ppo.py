"""Proximal Policy Optimisation (Schulman et al. 2017) with GAE, on the learner seam.

One loop step is one minibatch update of the clipped surrogate, the value loss and the entropy
bonus, through one Adam optimiser over the `tanh_gaussian` actor and a value MLP. When the
current rollout's minibatches are used up, `collect` plays rounds of whole episodes with the
exploring policy until at least `rollout_steps` new transitions are in the replay buffer, then
computes their old log-probabilities, values and GAE(lambda) advantages (bootstrapping through
time-limit truncation, not through termination) and the minibatch order of `epochs` passes
(a permutation per pass from a generator seeded by (seed, rollout, pass)). The rollout's
tensors and the position in it are part of the training state, so a run killed in the middle of
a rollout resumes exactly. Defaults follow CleanRL's `ppo_continuous_action.py` (2048 steps,
10 epochs, minibatches of 64, clip 0.2, GAE 0.95, gradient norm 0.5, lr 3e-4) with its
observation and reward normalisation (`normalize_obs`, `normalize_reward`; without its
learning-rate annealing). The observation statistics are running moments of every observation
collected so far, written after each rollout into the policy's own "gaussian" normaliser (PPO
sets `--policy.obs_norm gaussian` unless told otherwise), so a checkpoint acts on raw
observations like any policy; rewards are divided by the running standard deviation of the
discounted return before GAE, which only rescales what the value network learns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from imitari.config import ConfigError, check_number
from imitari.learners.online import OnlineLearner, OnlineOptions
from imitari.policies.base import Policy
from imitari.policies.nn.mlp import MLP

if TYPE_CHECKING:
    from imitari.learners.config import TrainConfig
    from imitari.rollouts.engine import RolloutEngine


LOG_RATIO_BOUND = 20.0
"""|log pi_new - log pi_old| beyond this is clamped before exp() (a ratio of 5e8 is clipped anyway)."""


@dataclass
class PPOOptions(OnlineOptions):
    """PPO's options (`TrainConfig.learner_config`)."""

    rollout_steps: int = 2048
    """Env steps (at least; whole episodes) collected per rollout."""
    epochs: int = 10
    """Passes over each rollout."""
    minibatch_size: int = 64
    gae_lambda: float = 0.95
    clip: float = 0.2
    """Clip range of the probability ratio."""
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    max_grad_norm: float = 0.5
    value_hidden: tuple[int, ...] = (256, 256)
    normalize_obs: bool = True
    """Running mean/std of the observations into the policy's normaliser (CleanRL's NormalizeObservation)."""
    normalize_reward: bool = True
    """Rewards over the running std of the discounted return (CleanRL's NormalizeReward)."""
    buffer_size: int = 200_000
    """Replay ring capacity in transitions (PPO learns from the latest rollout only; the store keeps all)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("rollout_steps", "epochs", "minibatch_size", "buffer_size"):
            check_number(self, name, ge=1)
        check_number(self, "gae_lambda", ge=0, le=1)
        check_number(self, "clip", gt=0)
        for name in ("value_coef", "entropy_coef", "max_grad_norm"):
            check_number(self, name, ge=0)
        if self.minibatch_size > self.rollout_steps:
            raise ConfigError(f"learner_config.minibatch_size ({self.minibatch_size}) must be <= rollout_steps "
                              f"({self.rollout_steps})")
        if self.buffer_size < 2 * self.rollout_steps:
            raise ConfigError(f"learner_config.buffer_size ({self.buffer_size}) must be >= 2 * rollout_steps "
                              f"({2 * self.rollout_steps}): a rollout ends with whole episodes")
        self.value_hidden = tuple(self.value_hidden)


class Moments:
    """Running mean and variance of a stream of rows (Chan et al.'s parallel update), as in
    gymnasium's NormalizeObservation/NormalizeReward; its state is tensors and a float."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.mean, self.var, self.count = torch.zeros(shape, dtype=torch.float64), torch.ones(shape, dtype=torch.float64), 1e-4

    def update(self, rows: torch.Tensor) -> None:
        rows = rows.to(torch.float64)
        n, mean, var = len(rows), rows.mean(0), rows.var(0, unbiased=False)
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + var * n + delta**2 * self.count * n / total) / total
        self.count = total

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.mean, self.var, self.count = state["mean"], state["var"], float(state["count"])


class PPOLearner(OnlineLearner):
    """PPO with a clipped surrogate, GAE and a separate value network."""

    Options = PPOOptions
    policy_defaults = {"obs_norm": "gaussian"}
    capacity_option = "buffer_size"
    options: PPOOptions

    def __init__(self, policy: Policy, cfg: TrainConfig, *, budget_spent: Callable[[], float],
                 run_dir: Path | None = None) -> None:
        super().__init__(policy, cfg, budget_spent=budget_spent, run_dir=run_dir)
        in_dim = sum(math.prod(s) for s in self.policy.shapes.obs.values())
        self.value = MLP(in_dim, 1, hidden=self.options.value_hidden, activation="tanh").to(self.policy.device)
        self.params = [*self.policy.parameters(), *self.value.parameters()]
        self.optimizer = torch.optim.Adam(self.params, lr=self.lr, eps=1e-5)
        self.rollout: dict[str, Any] = {}
        """The current rollout: obs windows, normalised actions, old log-probs, advantages, returns."""
        self.order = torch.zeros(0, dtype=torch.long)
        """Row indices of the rollout's remaining minibatches, concatenated."""
        self.rollouts = 0
        if self.options.normalize_obs and policy.config.obs_norm != "gaussian":
            raise ConfigError("learner_config.normalize_obs writes running statistics into a 'gaussian' observation "
                              f"normaliser: use --policy.obs_norm gaussian (got {policy.config.obs_norm!r}) or "
                              "--learner_config.normalize_obs false")
        self.obs_moments = {k: Moments(tuple(shape)) for k, shape in self.policy.shapes.obs.items()}
        self.return_moments = Moments(())

    def _values(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """V(s) on the policy's normalised observations."""
        normed = {k: self.policy.normalizer.normalize(f"obs.{k}", v) for k, v in obs.items()}
        return self.value(self.flat_obs(normed)).squeeze(-1)

    def _normalise(self, b: dict[str, Any], ends: np.ndarray) -> np.ndarray:
        """Update the running statistics with a new rollout (observations into the policy's
        normaliser) and return its rewards, scaled by the discounted return's running std."""
        opts, reward = self.options, b["reward"].numpy().astype(np.float64)
        if opts.normalize_obs:
            for key, moments in self.obs_moments.items():
                moments.update(b["obs"][key][:, 0])
                self.policy.normalizer.stat(f"obs.{key}", "mean").copy_(moments.mean)
                self.policy.normalizer.stat(f"obs.{key}", "std").copy_(moments.var.sqrt())
        if not opts.normalize_reward:
            return reward
        discounted, running = np.zeros_like(reward), 0.0
        for t in range(len(reward)):  # whole episodes in time order: the return so far restarts at each
            running = running * opts.gamma + reward[t]
            discounted[t] = running
            running = 0.0 if ends[t] else running
        self.return_moments.update(torch.as_tensor(discounted))
        return reward / math.sqrt(float(self.return_moments.var) + 1e-8)

    def collect(self, engine: RolloutEngine, step: int) -> dict[str, float]:
        if len(self.order):
            return {}
        opts, start = self.options, self.replay.added
        metrics: dict[str, float] = {}
        while self.replay.added - start < opts.rollout_steps:
            metrics = self.play(engine)
        b = self.tensors(self.replay.recent(self.replay.added - start))
        terminated = b["terminated"].numpy()
        ends = np.logical_or(terminated, b["truncated"].numpy())
        reward = self._normalise(b, ends)
        with torch.no_grad():
            logp, _ = self.policy.log_prob(b["obs"], b["action"])
            value, next_value = self._values(b["obs"]), self._values(b["next_obs"])
        delta = reward + opts.gamma * (1 - terminated) * next_value.numpy() - value.numpy()
        advantage = np.zeros_like(delta)
        running = 0.0
        for t in range(len(delta) - 1, -1, -1):  # rows are whole episodes, each in time order
            running = delta[t] + opts.gamma * opts.gae_lambda * (0.0 if ends[t] else running)
            advantage[t] = running
        adv = torch.as_tensor(advantage)
        self.rollout = {"obs": b["obs"], "action": b["action"], "logp": logp, "advantage": adv, "return": adv + value}
        n, per_pass = len(adv), len(adv) // opts.minibatch_size * opts.minibatch_size
        rng = [np.random.default_rng([self.cfg.seed, self.rollouts, e]) for e in range(opts.epochs)]
        self.order = torch.as_tensor(np.concatenate([r.permutation(n)[:per_pass] for r in rng]))
        self.rollouts += 1
        return {**metrics, "rollout/steps": float(n)}

    def update(self, batch: Mapping[str, Any] | None, step: int) -> dict[str, float]:
        """One minibatch of the current rollout (the loop's `batch` is None for online learners)."""
        opts = self.options
        index, self.order = self.order[: opts.minibatch_size], self.order[opts.minibatch_size:]
        r = self.rollout
        obs = {k: v[index] for k, v in r["obs"].items()}
        logp, entropy = self.policy.log_prob(obs, r["action"][index])
        # bounded log-ratio: an executed action at the edge of the box (tanh saturated in float32)
        # is re-scored at the clamped edge, where its old log-density can be -100 nats; exp() of
        # a move that large overflows, and such rows add no gradient once the ratio is clipped
        ratio = (logp - r["logp"][index]).clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND).exp()
        adv = r["advantage"][index]
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - opts.clip, 1 + opts.clip)).mean()
        value_loss = 0.5 * ((self._values(obs) - r["return"][index]) ** 2).mean()
        loss = policy_loss - opts.entropy_coef * entropy.mean() + opts.value_coef * value_loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(self.params, opts.max_grad_norm or float("inf")))
        if not math.isfinite(norm):
            raise FloatingPointError(f"PPO gradient norm is {norm}; the last checkpoint is intact (lower --lr)")
        self.optimizer.step()
        with torch.no_grad():
            clipped = ((ratio - 1).abs() > opts.clip).float().mean().item()
        return {"loss": loss.item(), "policy_loss": policy_loss.item(), "value_loss": value_loss.item(),
                "entropy": entropy.mean().item(), "clip_fraction": clipped, "grad_norm": norm}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.policy.state_dict(), "value": self.value.state_dict(),
                "optimizer": self.optimizer.state_dict(), "rollout": self.rollout, "order": self.order,
                "rollouts": self.rollouts, "obs_moments": {k: m.state_dict() for k, m in self.obs_moments.items()},
                "return_moments": self.return_moments.state_dict(), **self.online_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.policy.load_state_dict(state["model"])
        self.value.load_state_dict(state["value"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rollout, self.order, self.rollouts = dict(state["rollout"]), state["order"], int(state["rollouts"])
        for key, moments in self.obs_moments.items():
            if key in state.get("obs_moments", {}):  # absent in a run saved before normalisation existed
                moments.load_state_dict(state["obs_moments"][key])
        if "return_moments" in state:
            self.return_moments.load_state_dict(state["return_moments"])
        self.load_online_state(state)
