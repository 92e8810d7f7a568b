"""What the RL learners share: their options, the task's shapes, rounds of episodes, the replay buffer.

An online learner (SAC, PPO) trains a `tanh_gaussian` policy in `TrainConfig.env`, with no
dataset: the loop calls `collect(engine, step)` before every update, and the learner plays
*rounds* of whole episodes through the rollout engine when it needs data, into its
`ReplayBuffer` (kept on disk in `<run>/replay`, a dataset like any other). Playing whole episodes
means every checkpoint falls between episodes, so a killed run resumes exactly: the buffer is
rebuilt from the store's first N episodes, the next round replays the same seeds, and each
episode's actions come from the policy's per-episode generators (seeded by the episode seed).

Training episode seeds are TRAIN_SEED_START + 1,000,000 * seed + episode index, far from the
demonstration (0..), test (1000..) and validation (2000..2999) ranges, so the run's periodic
evaluation and every reported evaluation play layouts it never trained on. Options specific to
a learner live in its `Options` dataclass, given as `TrainConfig.learner_config`
(`--learner_config.gamma 0.98` on the command line) and checked when the config is resolved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces

from imitari.config import ConfigError, check_number, check_types
from imitari.envs.experts import UniformActor
from imitari.learners.base import Learner
from imitari.policies.base import Policy, Shapes
from imitari.policies.tanh_gaussian import TanhGaussianPolicy
from imitari.rollouts.replay import ReplayBuffer

if TYPE_CHECKING:
    from imitari.learners.config import TrainConfig
    from imitari.rollouts.engine import RolloutEngine

TRAIN_SEED_START = 10_000_000
POLICY = "tanh_gaussian"
"""The policy online learners train (and the default for `--learner sac|ppo`)."""


def task_shapes(task: str) -> tuple[Shapes, dict[str, dict[str, Any]]]:
    """The task's observation and action shapes, and normaliser statistics built from its spaces:
    the action's min/max are the action bounds (a tanh policy spans them exactly); observations
    get unit statistics (raw observations under any normalisation mode; PPO writes running ones)."""
    from imitari.envs.registry import get_task

    env = get_task(task).make()
    try:
        obs_space, act_space = env.observation_space, env.action_space
    finally:
        env.close()
    if not isinstance(act_space, spaces.Box) or not isinstance(obs_space, spaces.Dict):
        raise ConfigError(f"{task}: online learners need a Box action space and Dict observations")
    obs = {key: tuple(space.shape or ()) for key, space in obs_space.spaces.items()}
    low, high = act_space.low.astype(np.float64), act_space.high.astype(np.float64)
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ConfigError(f"{task}: the action space must be bounded for a tanh policy")
    stats: dict[str, dict[str, Any]] = {
        f"obs.{key}": {"mean": np.zeros(shape).tolist(), "std": np.ones(shape).tolist(),
                       "min": (-np.ones(shape)).tolist(), "max": np.ones(shape).tolist()}
        for key, shape in obs.items()
    }
    stats["action"] = {"mean": ((low + high) / 2).tolist(), "std": ((high - low) / 2).tolist(),
                       "min": low.tolist(), "max": high.tolist()}
    return Shapes(obs=obs, action=tuple(act_space.shape)), stats


@dataclass
class OnlineOptions:
    """Options every online learner has."""

    gamma: float = 0.99
    """Discount factor."""
    episodes_per_round: int = 0
    """Episodes played per round of collection; 0: `TrainConfig.num_envs` (one per env slot)."""

    def __post_init__(self) -> None:
        check_types(self)
        check_number(self, "gamma", gt=0, le=1)
        check_number(self, "episodes_per_round", ge=0)


class OnlineLearner(Learner):
    """Base of the RL learners: the replay buffer, rounds of episodes, the exact-resume state."""

    online = True
    default_policy = POLICY
    Options: ClassVar[type | None] = OnlineOptions
    takes_demos: ClassVar[bool] = False
    """Whether `--data` (demonstrations beside its own data) is allowed."""
    capacity_option: ClassVar[str] = ""
    """Name of the option that sizes the replay ring (transitions)."""

    def __init__(self, policy: Policy, cfg: TrainConfig, *, budget_spent: Callable[[], float],
                 run_dir: Path | None = None) -> None:
        super().__init__(policy, cfg, budget_spent=budget_spent)
        if not isinstance(policy, TanhGaussianPolicy):
            raise ConfigError(f"learner '{cfg.learner}' trains the {POLICY} policy (got {type(policy).__name__})")
        self.policy: TanhGaussianPolicy = policy
        self.options = self.parse_options(cfg)
        self.replay = ReplayBuffer(policy.shapes.obs, policy.shapes.action, capacity=self.capacity(),
                                   store=None if run_dir is None else run_dir / "replay", env=cfg.env or None,
                                   source=cfg.learner)
        self.random_actor = UniformActor(policy.normalizer.stat("action", "min").numpy(),
                                         policy.normalizer.stat("action", "max").numpy(), cfg.seed)
        self._round_start = 0
        self.lr = cfg.lr if cfg.lr is not None else type(policy).all_train_defaults()["lr"]

    @classmethod
    def check_config(cls, cfg: TrainConfig) -> None:
        if not cfg.env:
            raise ConfigError(f"learner '{cfg.learner}' acts in an env: pass --env TASK (e.g. mujoco/hopper)")
        if cfg.data and not cls.takes_demos:
            raise ConfigError(f"learner '{cfg.learner}' collects its own data; drop --data")
        from imitari.envs.registry import get_task

        get_task(cfg.env)  # an unknown task fails here, naming the closest
        if cfg.policy != POLICY:
            raise ConfigError(f"learner '{cfg.learner}' trains the {POLICY} policy (got --policy {cfg.policy})")
        super().check_config(cfg)

    def capacity(self) -> int:
        return int(getattr(self.options, self.capacity_option))

    # --- collecting -----------------------------------------------------------------------
    def play(self, engine: RolloutEngine, *, random: bool = False) -> dict[str, float]:
        """One round of whole episodes into the replay buffer, with the exploring policy (or
        uniformly random actions); returns the round's mean return and the env steps so far."""
        episodes = self.options.episodes_per_round or self.cfg.num_envs
        self._round_start = self.replay.episodes
        first = TRAIN_SEED_START + 1_000_000 * self.cfg.seed + self.replay.episodes
        seeds = list(range(first, first + episodes))
        actor, name = (self.random_actor, "random") if random else (self.policy, "policy")
        with self.policy.exploring():
            self.policy.eval()
            engine.run(self.rollout_actor(actor), seeds, [self.rollout_sink()], actor_name=name)
            self.policy.train()
        self._round_start = self.replay.episodes
        returns = self.replay.pop_returns()
        return {"rollout/return": float(np.mean(returns)), "env_steps": float(self.replay.added)}

    def rollout_actor(self, actor: Any) -> Any:
        """Who acts in a round, given the learner's own actor (a learner with a teacher wraps it)."""
        return actor

    def rollout_sink(self) -> Any:
        """Where a round's transitions go: the replay buffer (a learner may relabel on the way)."""
        return self.replay

    # --- batches --------------------------------------------------------------------------
    def tensors(self, rows: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Replay rows as torch: `obs`/`next_obs` windows `{key: (B, 1, ...)}`, the normalised
        `action` `(B, A)`, and `reward`, `terminated`, `truncated` `(B,)` floats."""
        device = self.policy.device

        def t(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x, np.float32), device=device)

        out: dict[str, Any] = {
            "obs": {k: t(rows[f"obs.{k}"])[:, None] for k in self.policy.shapes.obs},
            "next_obs": {k: t(rows[f"next_obs.{k}"])[:, None] for k in self.policy.shapes.obs},
        }
        out["action"] = self.policy.normalize_actions(t(rows["action"])[:, None])[:, 0]
        for name in ("reward", "terminated", "truncated"):
            out[name] = t(rows[name])
        return out

    @staticmethod
    def flat_obs(obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Observation windows `{key: (B, 1, ...)}` flattened and concatenated, `(B, D)` (critic input)."""
        return torch.cat([obs[k].flatten(1) for k in sorted(obs)], dim=1)

    # --- state ----------------------------------------------------------------------------
    def online_state(self) -> dict[str, Any]:
        """The replay's episode count; interrupted inside a round (Ctrl-C), that of the round's
        start, so the resumed run plays the whole round again as the uninterrupted one did.
        Waits until the store holds every finished episode (a checkpoint needs them on disk)."""
        self.replay.flush()
        return {"replay_episodes": self._round_start}

    def load_online_state(self, state: Mapping[str, Any]) -> None:
        self.replay.load(int(state["replay_episodes"]))
        self._round_start = self.replay.episodes

    def close(self) -> None:
        self.replay.close()
