"""DAgger (Ross et al. 2011) and HG-DAgger (Kelly et al. 2019): interactive imitation in rounds.

Both train any registered policy by behaviour cloning (their `update` is the offline
learner's) on a dataset that grows between rounds (`imitari.learners.rounds` runs the rounds;
each round's training is one run of the shared loop). What they differ in is who acts while
the new data is gathered and which steps join the data:

* DAgger: in round i the expert acts with probability beta_i = beta * beta_decay^(i-1) at each
  step and the policy otherwise; every visited state joins, labelled with the expert's action.
* HG-DAgger: the policy acts; the expert takes over when the policy leaves its tolerance (the
  L2 distance between the policy's and the expert's action exceeds `tolerance`), keeps control
  for at least `min_takeover` steps and hands back once the distance is within tolerance again;
  only the takeover steps join (the expert's own actions). The expert is queried at every
  step to decide, as a watching human would; only takeovers count as labels.

Choices are drawn from generators seeded by (seed, round, episode seed, step), so a resumed
round replays exactly the episodes an uninterrupted one plays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from imitari.config import ConfigError, check_number, check_types
from imitari.envs.experts import TASK_EXPERT
from imitari.learners.offline import OfflineLearner
from imitari.rollouts.engine import Actor, Transition, accepts_seeds

if TYPE_CHECKING:
    from imitari.learners.config import TrainConfig


@dataclass
class DAggerOptions:
    """The rounds of an interactive learner (`--learner dagger|hg_dagger`): `TrainConfig.learner_config`,
    `--learner_config.FIELD` on the command line, as every learner's options."""

    rounds: int = 3
    """Rounds of collection after the first training on the demonstrations (then a retraining each)."""
    episodes_per_round: int = 10
    """Episodes played per round (their labelled steps join the dataset)."""
    expert: str = TASK_EXPERT
    """'task' (the task's registered expert) or an imitari run/checkpoint directory."""
    warm_start: bool = False
    """Retrain each round from the previous round's weights (else from scratch, as Ross et al.)."""
    beta: float = 0.5
    """DAgger: the expert's probability of acting in the first collection round."""
    beta_decay: float = 0.5
    """DAgger: beta_i = beta * beta_decay^(i-1) in round i (1-based)."""
    tolerance: float = 0.5
    """HG-DAgger: the expert takes over when |a_policy - a_expert|_2 exceeds this."""
    min_takeover: int = 5
    """HG-DAgger: steps the expert keeps control after taking over, at least."""
    rollout_seed_start: int = 10_000
    """Round i's episodes use seeds rollout_seed_start + (i-1) * episodes_per_round + j; kept out
    of the validation and test ranges (1000-2999) and of `imitari eval`'s (from 100000)."""
    num_envs: int = 5
    """Episodes in flight while collecting (stepped in this process)."""

    def __post_init__(self) -> None:
        check_types(self)
        for name in ("rounds", "episodes_per_round", "min_takeover", "num_envs"):
            check_number(self, name, ge=1)
        check_number(self, "beta", ge=0, le=1)
        check_number(self, "beta_decay", ge=0, le=1)
        check_number(self, "tolerance", gt=0)
        check_number(self, "rollout_seed_start", ge=0)
        last = self.rollout_seed_start + self.rounds * self.episodes_per_round
        if self.rollout_seed_start < 3000 and last > 1000 or last > 100_000:
            raise ConfigError(f"rollout seeds {self.rollout_seed_start}-{last - 1} overlap the evaluation seeds "
                              "(1000-2999 and from 100000): pick --learner_config.rollout_seed_start from 3000")

    def seeds(self, round_: int) -> list[int]:
        """The episode seeds of collection round `round_` (1-based)."""
        first = self.rollout_seed_start + (round_ - 1) * self.episodes_per_round
        return list(range(first, first + self.episodes_per_round))


class Mixture:
    """Both actors on every row; a rule picks whose action runs. `sources` and `labels` (the
    expert's actions) describe the last `act` for the engine."""

    def __init__(self, policy: Actor, expert: Actor, *, seed: int, round_: int) -> None:
        self.policy, self.expert, self.seed, self.round = policy, expert, seed, round_
        self.episode_seeds: dict[int, int] = {}
        self.steps: dict[int, int] = {}
        self.sources: list[str] = []
        self.labels: np.ndarray | None = None

    def reset(self, env_ids: Sequence[int] | None = None, *, seeds: Sequence[int] | None = None) -> None:
        ids = list(env_ids if env_ids is not None else self.steps)
        for actor in self.actors():
            if accepts_seeds(actor):
                actor.reset(env_ids=ids, seeds=seeds)  # type: ignore[call-arg]
            else:
                actor.reset(env_ids=ids)
        for i, slot in enumerate(ids):
            self.episode_seeds[slot] = int(seeds[i]) if seeds is not None else 0
            self.steps[slot] = 0
            self.slot_reset(slot)

    def actors(self) -> tuple[Actor, ...]:
        """The actors reset with each episode."""
        return self.policy, self.expert

    def slot_reset(self, slot: int) -> None:
        """A new episode starts in `slot`."""

    def rng(self, slot: int, *stream: int) -> np.random.Generator:
        """A generator keyed by (seed, *stream, `slot`'s episode seed, its step): a slot's draws
        depend on its own episode only, and replay exactly on resume."""
        return np.random.default_rng([self.seed, *stream, self.episode_seeds.get(slot, 0), self.steps.get(slot, 0)])

    def uniform(self, slot: int) -> float:
        """A uniform draw keyed by (seed, round, episode seed, step)."""
        return float(self.rng(slot, self.round).random())

    def choose(self, obs: dict[str, np.ndarray], mine: np.ndarray, theirs: np.ndarray) -> list[bool]:
        """Per row, whether the expert's action runs (`expert_acts` on the L2 distance of the two actions)."""
        distance = np.linalg.norm((mine - theirs).reshape(len(mine), -1), axis=1)
        return [self.expert_acts(i, float(distance[i])) for i in range(len(mine))]

    def expert_acts(self, slot: int, distance: float) -> bool:
        raise NotImplementedError

    expert_source: ClassVar[str] = "expert"

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            mine = np.asarray(self.policy.act(obs), dtype=np.float32)
            theirs = np.asarray(self.expert.act(obs), dtype=np.float32)
        chosen = self.choose(obs, mine, theirs)
        for i in range(len(mine)):
            self.steps[i] = self.steps.get(i, 0) + 1
        self.sources = [self.expert_source if c else "policy" for c in chosen]
        self.labels = theirs
        return np.where(np.asarray(chosen).reshape(-1, *[1] * (mine.ndim - 1)), theirs, mine)


class _BetaMixture(Mixture):
    """DAgger's actor: the expert with probability beta at each step, else the policy."""

    def __init__(self, policy: Actor, expert: Actor, *, seed: int, round_: int, beta: float) -> None:
        super().__init__(policy, expert, seed=seed, round_=round_)
        self.beta = beta

    def expert_acts(self, slot: int, distance: float) -> bool:
        return self.uniform(slot) < self.beta


class _Takeover(Mixture):
    """HG-DAgger's actor: the policy, until it leaves the tolerance and the expert takes over."""

    expert_source = "intervention"

    def __init__(self, policy: Actor, expert: Actor, *, seed: int, round_: int, tolerance: float,
                 min_takeover: int) -> None:
        super().__init__(policy, expert, seed=seed, round_=round_)
        self.tolerance, self.min_takeover = tolerance, min_takeover
        self.held: dict[int, int] = {}  # slot -> steps the expert has been in control (0: the policy is)

    def slot_reset(self, slot: int) -> None:
        self.held[slot] = 0

    def expert_acts(self, slot: int, distance: float) -> bool:
        held = self.held.get(slot, 0)
        if held == 0:
            held = 1 if distance > self.tolerance else 0
        elif held >= self.min_takeover and distance <= self.tolerance:
            held = 0
        else:
            held += 1
        self.held[slot] = held
        return held > 0


class DAggerLearner(OfflineLearner):
    """DAgger: behaviour cloning on the aggregate of all rounds' expert-labelled states."""

    interactive = True
    source: ClassVar[str] = "dagger"
    """The `source` of the episodes this learner adds."""

    Options = DAggerOptions

    @classmethod
    def actor(cls, policy: Actor, expert: Actor, round_: int, cfg: TrainConfig) -> Actor:
        """Who acts while round `round_` (1-based) is collected."""
        opts = cls.parse_options(cfg)
        beta = opts.beta * opts.beta_decay ** (round_ - 1)
        return _BetaMixture(policy, expert, seed=cfg.seed, round_=round_, beta=beta)

    @classmethod
    def keep(cls) -> Callable[[Transition], bool] | None:
        """Which collected steps join the dataset (None: all)."""
        return None


class HGDAggerLearner(DAggerLearner):
    """HG-DAgger: behaviour cloning on the demonstrations plus the expert's takeovers."""

    source = "hg_dagger"

    @classmethod
    def actor(cls, policy: Actor, expert: Actor, round_: int, cfg: TrainConfig) -> Actor:
        icfg = cls.parse_options(cfg)
        return _Takeover(policy, expert, seed=cfg.seed, round_=round_, tolerance=icfg.tolerance,
                         min_takeover=icfg.min_takeover)

    @classmethod
    def keep(cls) -> Callable[[Transition], bool] | None:
        return _takeover_step


def _takeover_step(t: Transition) -> bool:
    return t.actor == "intervention"
