"""RLIF (Luo et al. 2023, "RLIF: Interactive Imitation Learning as Reinforcement Learning"): SAC
whose only reward is an expert's interventions.

The policy acts; an interactive expert watches every step it is in control and takes over by
a rule, keeps control for `intervention_steps` steps, then hands back for at least a step. The transitions go to
SAC's replay buffer with the task's reward replaced: -1 on the policy's step that led into a
takeover (the state-action pair the expert judged by stepping in), 0 on every other step,
the expert's included. So the policy learns to avoid the states where it gets corrected,
without any task reward, and can end above an expert that is itself suboptimal: the expert
only needs to know when things go wrong, not how to do them best.

Intervention rules (`rule`), judged while the policy is in control, against a *reference*
(the expert without noise, or the `reference` checkpoint):
* `value`, the paper's: Q_ref(s, a_policy) < `value_alpha` * Q_ref(s, a_ref), with Q_ref the
  critic of an imitari SAC run (`reference`, e.g. the run that trained the expert);
* `distance`: |a_policy - a_ref|_2 > `tolerance` (HG-DAgger's rule);
* `random`: on a `random_rate` share of the steps, whatever the policy does.
When the rule fires the expert steps in with probability `confidence` (0.95), and otherwise
with 1 - `confidence`, as in the paper's experiments. The intervening expert can be made
suboptimal: a worse checkpoint as `expert`, or Gaussian `expert_noise` on its actions.

Demonstrations (`--data`, optional) sit in a second buffer with reward 0, and each batch draws
`demo_ratio` of its rows from them (RLPD's symmetric sampling, as HIL-SERL uses). All draws
(interventions, noise) come from generators keyed by (seed, episode seed, step), so a resumed
run replays exactly what an uninterrupted one plays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from imitari.config import ConfigError, check_number
from imitari.envs.experts import TASK_EXPERT, load_expert
from imitari.learners.dagger import Mixture
from imitari.learners.sac import SACLearner, SACOptions, TwinCritic, q_values
from imitari.policies.base import Policy
from imitari.rollouts.engine import Actor, Sink, Transition
from imitari.rollouts.replay import ReplayBuffer

if TYPE_CHECKING:
    from imitari.learners.config import TrainConfig

RULES = ("value", "distance", "random")


@dataclass
class RLIFOptions(SACOptions):
    """RLIF's options (`TrainConfig.learner_config`), beyond SAC's."""

    expert: str = TASK_EXPERT
    """Who intervenes: 'task' (the task's registered expert) or an imitari run/checkpoint directory."""
    expert_noise: float = 0.0
    """Std of Gaussian noise on the intervening expert's actions (a suboptimal expert), in action units."""
    reference: str = ""
    """Who judges: '' for the expert without noise, or a run directory; the `value` rule needs an
    imitari SAC run here (its critic is Q_ref, its policy gives a_ref)."""
    rule: str = "distance"
    """'value', 'distance' or 'random' (module docstring)."""
    value_alpha: float = 0.975
    tolerance: float = 0.5
    random_rate: float = 0.05
    confidence: float = 0.95
    """Probability of stepping in when the rule fires (1 - it when it does not)."""
    intervention_steps: int = 5
    """Steps the expert keeps control once it took over."""
    demo_ratio: float = 0.5
    """Share of each batch drawn from the demonstrations of `--data` (ignored without)."""
    terminal_reward: float = 0.0
    """Reward of a step that ends the episode by termination (a fall), beside its takeover reward:
    0 in the paper. Negative values take away the incentive to end an episode early, where no
    more takeovers can come (-1 / (1 - gamma) makes a fall as bad as a takeover at every step)."""
    learning_starts: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rule not in RULES:
            raise ConfigError(f"learner_config.rule must be one of {', '.join(RULES)} (got {self.rule!r})")
        check_number(self, "expert_noise", ge=0)
        check_number(self, "value_alpha", gt=0)
        check_number(self, "tolerance", gt=0)
        check_number(self, "random_rate", ge=0, le=1)
        check_number(self, "confidence", ge=0.5, le=1)
        check_number(self, "intervention_steps", ge=1)
        check_number(self, "demo_ratio", ge=0, lt=1)
        check_number(self, "terminal_reward", le=0)
        for name in ("expert", "reference"):
            source = getattr(self, name)
            if source not in ("", TASK_EXPERT) and not Path(source).exists():
                raise ConfigError(f"learner_config.{name} '{source}' does not exist (give 'task' or a run directory)")
        if self.rule == "value" and not self.reference:
            raise ConfigError("learner_config.rule value judges with a SAC run's critic: pass "
                              "--learner_config.reference RUN_DIR")


class ReferenceCritic:
    """Q_ref of the `value` rule: the twin critic of an imitari SAC run (minimum of the two)."""

    def __init__(self, run: str | Path, device: str = "cpu") -> None:
        from imitari.learners.checkpoint import load_train_state
        from imitari.policies.loading import find_checkpoint, load_policy, read_checkpoint_config

        ckpt = find_checkpoint(Path(run))
        config = read_checkpoint_config(ckpt)
        state = load_train_state(ckpt)
        if "critic" not in state:
            raise ConfigError(f"reference {run}: not a SAC run (its training state holds no critic)")
        self.policy = load_policy(ckpt, device=device).eval()
        hidden = tuple(config.get("learner_config", {}).get("critic_hidden", SACOptions.critic_hidden))
        in_dim = state["critic"]["weights.0"].shape[1]
        self.critic = TwinCritic(in_dim, hidden).to(device)
        self.critic.load_state_dict(state["critic"])
        self.critic.requires_grad_(False)

    def __call__(self, obs: Mapping[str, np.ndarray], actions: np.ndarray) -> np.ndarray:
        """Q_ref(s, a) per row, `(n,)`, for raw observations `{key: (n, ...)}` and actions `(n, A)`."""
        device = self.policy.device
        windows = {k: torch.as_tensor(np.asarray(v, np.float32), device=device) for k, v in obs.items()}
        act = self.policy.normalize_actions(torch.as_tensor(actions, dtype=torch.float32, device=device)[:, None])[:, 0]
        with torch.no_grad():
            return q_values(self.critic, windows, act).min(0).values.cpu().numpy()


class Intervening(Mixture):
    """RLIF's actor: the learner's actor, until the rule fires and the expert takes over."""

    expert_source = "intervention"

    def __init__(self, policy: Actor, expert: Actor, *, seed: int, options: RLIFOptions,
                 bounds: tuple[np.ndarray, np.ndarray], reference: Actor | None = None,
                 critic: Callable[[Mapping[str, np.ndarray], np.ndarray], np.ndarray] | None = None) -> None:
        super().__init__(policy, expert, seed=seed, round_=0)
        self.options, self.bounds, self.reference, self.critic = options, bounds, reference, critic
        self.held: dict[int, int] = {}  # slot -> steps left under the expert's control (-1: handed back)

    def actors(self) -> tuple[Actor, ...]:
        return super().actors() + (() if self.reference is None else (self.reference,))

    def slot_reset(self, slot: int) -> None:
        self.held[slot] = 0

    def _uniforms(self, n: int, stream: int) -> np.ndarray:
        """One uniform draw per row from its slot's keyed generator (`Mixture.rng`)."""
        return np.array([self.rng(i, stream).random() for i in range(n)])

    def choose(self, obs: dict[str, np.ndarray], mine: np.ndarray, theirs: np.ndarray) -> list[bool]:
        opts = self.options
        n = len(mine)
        fires = self._fires(obs, mine, theirs)  # judged against the reference, before the expert's noise
        if opts.expert_noise > 0:  # the suboptimal expert acts with noise (in place: what runs and is labelled)
            noise = opts.expert_noise * np.stack([self.rng(i, 7).normal(size=theirs.shape[1:]) for i in range(n)])
            theirs[:] = np.clip(theirs + noise, *self.bounds)
        steps_in = self._uniforms(n, 11) < np.where(fires, opts.confidence, 1 - opts.confidence)
        chosen = []
        for i in range(n):
            held = self.held.get(i, 0)  # > 0: steps the expert still holds; -1: it just handed back
            if held == 0 and steps_in[i]:
                held = opts.intervention_steps
            chosen.append(held > 0)
            self.held[i] = -1 if held == 1 else max(held - 1, 0)  # the policy acts at least one step between
        return chosen

    def _fires(self, obs: dict[str, np.ndarray], mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
        """Per row, whether the rule says the policy's action calls for the expert."""
        opts, n = self.options, len(mine)
        if opts.rule == "random":
            return self._uniforms(n, 13) < opts.random_rate
        with torch.no_grad():
            ref = theirs if self.reference is None else np.asarray(self.reference.act(obs), np.float32)
        if opts.rule == "distance":
            return np.linalg.norm((mine - ref).reshape(n, -1), axis=1) > opts.tolerance
        assert self.critic is not None
        return self.critic(obs, mine) < opts.value_alpha * self.critic(obs, ref)


class InterventionReward(Sink):
    """Passes transitions on to `sink` with RLIF's reward (-1 on the policy's step that led into
    a takeover, else 0; `terminal_reward` on a terminating step), holding each one back a step
    to know; counts takeovers and task returns."""

    def __init__(self, sink: Sink, terminal_reward: float = 0.0) -> None:
        self.sink, self.terminal_reward = sink, terminal_reward
        self.held: dict[int, Transition | None] = {}
        self._task_return: dict[int, float] = {}
        self._takeovers: dict[int, int] = {}
        self.finished: list[tuple[float, int]] = []
        """(task return, takeovers) of each episode finished since the last `pop`."""

    def on_start(self, episode: int, seed: int, obs: dict[str, np.ndarray], frame: np.ndarray | None) -> None:
        self.sink.on_start(episode, seed, obs, frame)
        self.held[episode], self._task_return[episode], self._takeovers[episode] = None, 0.0, 0

    def on_step(self, t: Transition) -> None:
        before = self.held[t.episode]
        takeover = t.actor == "intervention" and (before is None or before.actor != "intervention")
        self._takeovers[t.episode] += int(takeover)
        self._task_return[t.episode] += float(t.reward)
        if before is not None:
            self.sink.on_step(replace(before, reward=-1.0 if takeover else 0.0))
        self.held[t.episode] = t

    def on_end(self, episode: int, seed: int) -> None:
        last = self.held.pop(episode)
        if last is not None:
            self.sink.on_step(replace(last, reward=self.terminal_reward if last.terminated else 0.0))
        self.sink.on_end(episode, seed)
        self.finished.append((self._task_return.pop(episode), self._takeovers.pop(episode)))

    def pop(self) -> list[tuple[float, int]]:
        finished, self.finished = self.finished, []
        return finished


def demo_buffer(path: str, replay: ReplayBuffer) -> ReplayBuffer:
    """The demonstrations of `path` as transitions with reward 0 (next obs = the next row; an
    episode's last row is kept, as terminal, only when the episode succeeded)."""
    from imitari.data.store import Dataset

    with Dataset.open(path) as data:
        arrays, ends, infos = data.arrays(), [0, *data.episode_ends], data.episode_info
        keys = [name[len("next_obs."):] for name in replay.features if name.startswith("next_obs.")]
        missing = [f"obs.{k}" for k in keys if f"obs.{k}" not in arrays] + ([] if "action" in arrays else ["action"])
        if missing:
            raise ConfigError(f"{path}: demonstrations lack {', '.join(missing)} for this task")
        total = data.n_steps
        demos = ReplayBuffer({k: replay.features[f"obs.{k}"][0] for k in keys}, replay.features["action"][0],
                             capacity=max(total, 1))
        for i in range(data.n_episodes):
            lo, hi = ends[i], ends[i + 1]
            done = bool(infos[i].get("success", False))
            keep = hi - lo if done else hi - lo - 1
            if keep < 1:
                continue
            obs = {k: arrays[f"obs.{k}"][lo:hi] for k in keys}
            rows = {f"obs.{k}": v[:keep] for k, v in obs.items()}
            rows.update({f"next_obs.{k}": np.concatenate([v[1:], v[-1:]])[:keep] for k, v in obs.items()})
            rows["action"] = arrays["action"][lo:lo + keep]
            rows["reward"] = np.zeros(keep, np.float32)
            rows["terminated"] = np.arange(keep) == keep - 1 if done else np.zeros(keep, bool)
            rows["truncated"] = np.zeros(keep, bool)
            demos.add(rows)
    if demos.size == 0:
        raise ConfigError(f"{path}: no demonstration transitions to use")
    return demos


class RLIFLearner(SACLearner):
    """SAC on intervention rewards, with an interactive expert in the loop."""

    Options = RLIFOptions
    options: RLIFOptions
    takes_demos = True

    def __init__(self, policy: Policy, cfg: TrainConfig, *, budget_spent: Callable[[], float],
                 run_dir: Path | None = None) -> None:
        super().__init__(policy, cfg, budget_spent=budget_spent, run_dir=run_dir)
        opts, device = self.options, self.policy.device
        self.expert = load_expert(cfg.env, opts.expert, device=str(device))
        reference: Actor | None = None
        self.critic_ref: ReferenceCritic | None = None
        if opts.reference:
            self.critic_ref = ReferenceCritic(opts.reference, device=str(device)) if opts.rule == "value" else None
            reference = self.critic_ref.policy if self.critic_ref is not None else load_expert(cfg.env, opts.reference)
        self.reference = reference
        self.bounds = (self.random_actor.low, self.random_actor.high)
        self.relabel = InterventionReward(self.replay, opts.terminal_reward)
        self.demos = demo_buffer(cfg.data, self.replay) if cfg.data else None

    def rollout_actor(self, actor: Any) -> Any:
        return Intervening(actor, self.expert, seed=self.cfg.seed, options=self.options, bounds=self.bounds,
                           reference=self.reference, critic=self.critic_ref)

    def rollout_sink(self) -> Any:
        return self.relabel

    def play(self, engine: Any, *, random: bool = False) -> dict[str, float]:
        metrics = super().play(engine, random=random)
        finished = self.relabel.pop()
        metrics["rollout/return"] = float(np.mean([r for r, _ in finished]))  # the task's, not RLIF's reward
        metrics["rollout/takeovers"] = float(np.mean([k for _, k in finished]))
        return metrics

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if self.demos is None:
            return super().sample(batch_size, rng)
        n_demo = int(round(batch_size * self.options.demo_ratio))
        online, demo = self.replay.sample(batch_size - n_demo, rng), self.demos.sample(n_demo, rng)
        return {name: np.concatenate([online[name], demo[name]]) for name in online}
