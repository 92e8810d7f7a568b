"""Learner registry: name -> learner class, explicit and loud like the policy registry.

`TrainConfig.learner` names one; the contract tests (tests/test_contracts.py) run over every
registered learner, so a new one cannot skip them.
"""

from __future__ import annotations

from imitari.config import ConfigError, closest
from imitari.learners.base import Learner
from imitari.learners.dagger import DAggerLearner, HGDAggerLearner
from imitari.learners.offline import OfflineLearner
from imitari.learners.ppo import PPOLearner
from imitari.learners.rlif import RLIFLearner
from imitari.learners.sac import SACLearner

_REGISTRY: dict[str, type[Learner]] = {}


def register_learner(name: str, learner_cls: type[Learner]) -> None:
    """Make `learner_cls` available as `name`."""
    if name in _REGISTRY:
        raise ValueError(f"learner '{name}' is already registered")
    if not issubclass(learner_cls, Learner):
        raise TypeError(f"learner '{name}': need a Learner subclass")
    _REGISTRY[name] = learner_cls


def learner_names() -> list[str]:
    """Registered learner names, sorted."""
    return sorted(_REGISTRY)


def get_learner(name: str) -> type[Learner]:
    """The learner class of a registered name; ConfigError naming the closest if unknown."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown learner '{name}'{closest(name, _REGISTRY)}; registered: {', '.join(learner_names())}")
    return _REGISTRY[name]


register_learner("offline", OfflineLearner)
register_learner("dagger", DAggerLearner)
register_learner("hg_dagger", HGDAggerLearner)
register_learner("sac", SACLearner)
register_learner("ppo", PPOLearner)
register_learner("rlif", RLIFLearner)
