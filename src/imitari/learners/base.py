"""The learner contract: a training algorithm owns its optimisers and phases, nothing else.

Like robomimic's `Algo`, a learner turns batches into updates; the shared loop
(`imitari.learners.loop`) keeps everything every learner needs the same way: drawing batches
keyed by (seed, step), EMA weights, logging, checkpoints, the CPU budget, resume and periodic
evaluation with the best checkpoint kept. A learner implements

    update(batch, step) -> metrics      one update at loop step `step` (0-based); 'loss' in metrics
                                        (online learners get batch None and draw their own)
    state_dict() / load_state_dict()    its training state ('model' = the policy's raw weights,
                                        plus optimisers, schedulers...), saved in train_state.pt
                                        (plain tensors and containers: loaded with weights_only)
    collect(engine, step) -> metrics    online learners only (`online = True`): act in the envs
                                        through a rollout engine whose sinks include a replay buffer

Interactive learners (`interactive = True`: DAgger, HG-DAgger) train in rounds instead
(`imitari.learners.rounds`): each round is one whole run of the shared loop on a dataset that
grows between rounds, with `actor(policy, expert, round, cfg)` acting and `keep()` choosing
the steps that join it.

Randomness inside `update` must come from generators seeded by (seed, step) so a resumed run
ends with the weights of an uninterrupted one. Learners are registered by name
(`imitari.learners.registry`); the contract tests run over every registered one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from imitari.config import ConfigError, from_dict
from imitari.policies.base import Policy

if TYPE_CHECKING:
    from imitari.learners.config import TrainConfig


class Learner(ABC):
    """Base class of training algorithms; constructed as `cls(policy, cfg, budget_spent=...)`."""

    default_policy: ClassVar[str] = "bc"
    """The policy a config that names none trains."""
    policy_defaults: ClassVar[Mapping[str, Any]] = {}
    """Policy config fields this learner trains with where the run config leaves them unset
    (as a policy's `train_defaults` are for `TrainConfig`); saved resolved in config.json."""
    online: ClassVar[bool] = False
    """Whether the loop calls `collect(engine, step)` before each update."""
    interactive: ClassVar[bool] = False
    """Whether it trains in rounds of collection and retraining (`imitari.learners.rounds`)."""
    Options: ClassVar[type | None] = None
    """The dataclass of the learner's own options, read from `TrainConfig.learner_config`
    (`--learner_config.FIELD`); None: it takes none."""

    def __init__(self, policy: Policy, cfg: TrainConfig, *, budget_spent: Callable[[], float]) -> None:
        """`budget_spent()`: the fraction of the run's CPU budget used so far (0 without one),
        for schedules that end with the budget."""
        self.policy = policy
        self.cfg = cfg
        self.budget_spent = budget_spent

    @abstractmethod
    def update(self, batch: Mapping[str, Any] | None, step: int) -> dict[str, float]:
        """One update on `batch` (torch tensors on the policy's device; None for online learners,
        which sample what they collected) at loop step `step`."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly; holds the policy weights as 'model'."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned (from this or an older imitari version)."""

    @classmethod
    def check_config(cls, cfg: TrainConfig) -> None:
        """ConfigError (one line) if `cfg` cannot train with this learner; called when the config is
        resolved, before anything is built."""
        if cls.Options is None and cfg.learner_config:
            raise ConfigError(f"learner '{cfg.learner}' takes no learner_config (got {sorted(cfg.learner_config)})")
        if cls.Options is not None:
            cls.parse_options(cfg)

    @classmethod
    def parse_options(cls, cfg: TrainConfig) -> Any:
        """The learner's `Options` from `cfg.learner_config` (ConfigError naming a bad key or value)."""
        assert cls.Options is not None, f"{cls.__name__} takes no options"
        return from_dict(cls.Options, cfg.learner_config, where="learner_config.")

    def collect(self, engine: Any, step: int) -> dict[str, float]:
        """Online learners: play in the envs through `engine` before update `step`."""
        raise NotImplementedError(f"{type(self).__name__} is an offline learner: it does not collect")
