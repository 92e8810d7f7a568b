"""Policy registry: name -> (policy class, config class).

Registration is explicit (one line per policy at the bottom of this file), so `imitari
policies`, config parsing and checkpoint loading all see the same set, and a misspelt name is
an error that names the closest registered one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imitari.config import ConfigError, closest
from imitari.policies.act import ActConfig, ActPolicy
from imitari.policies.base import Policy, PolicyConfig, Shapes
from imitari.policies.bc import BCConfig, BCPolicy
from imitari.policies.bc_rnn import BCRNNConfig, BCRNNPolicy
from imitari.policies.bc_transformer import BCTransformerConfig, BCTransformerPolicy
from imitari.policies.diffusion import DiffusionConfig, DiffusionPolicy
from imitari.policies.diffusion_transformer import DiffusionTransformerConfig, DiffusionTransformerPolicy
from imitari.policies.mint import MintConfig, MintPolicy
from imitari.policies.procedure_cloning import ProcedureCloningConfig, ProcedureCloningPolicy
from imitari.policies.streaming_diffusion import StreamingDiffusionConfig, StreamingDiffusionPolicy
from imitari.policies.tanh_gaussian import TanhGaussianConfig, TanhGaussianPolicy
from imitari.policies.vq_bet import VQBeTConfig, VQBeTPolicy

_REGISTRY: dict[str, tuple[type[Policy], type[PolicyConfig]]] = {}


def register_policy(name: str, policy_cls: type[Policy], config_cls: type[PolicyConfig]) -> None:
    """Make `policy_cls` (configured by `config_cls`) available as `name`."""
    if name in _REGISTRY:
        raise ValueError(f"policy '{name}' is already registered")
    if not (issubclass(policy_cls, Policy) and issubclass(config_cls, PolicyConfig)):
        raise TypeError(f"policy '{name}': need a Policy subclass and a PolicyConfig subclass")
    _REGISTRY[name] = (policy_cls, config_cls)


def policy_names() -> list[str]:
    """Registered policy names, sorted."""
    return sorted(_REGISTRY)


def get_policy(name: str) -> tuple[type[Policy], type[PolicyConfig]]:
    """(policy class, config class) of a registered name; ValueError naming the closest if unknown."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown policy '{name}'{closest(name, _REGISTRY)}; registered: {', '.join(policy_names())}")
    return _REGISTRY[name]


def make_policy(
    name: str, config: PolicyConfig | None, *, shapes: Shapes, stats: Mapping[str, Mapping[str, Any]]
) -> Policy:
    """Build policy `name` from its config (None: the config class's defaults) and data stats."""
    policy_cls, config_cls = get_policy(name)
    if config is None:
        config = config_cls()
    if not isinstance(config, config_cls):
        raise ConfigError(f"policy '{name}' needs a {config_cls.__name__}, got a {type(config).__name__}")
    return policy_cls(config, shapes=shapes, stats=stats)


register_policy("bc", BCPolicy, BCConfig)
register_policy("diffusion", DiffusionPolicy, DiffusionConfig)
register_policy("diffusion_transformer", DiffusionTransformerPolicy, DiffusionTransformerConfig)
register_policy("streaming_diffusion", StreamingDiffusionPolicy, StreamingDiffusionConfig)
register_policy("mint", MintPolicy, MintConfig)
register_policy("bc_rnn", BCRNNPolicy, BCRNNConfig)
register_policy("bc_transformer", BCTransformerPolicy, BCTransformerConfig)
register_policy("act", ActPolicy, ActConfig)
register_policy("vq_bet", VQBeTPolicy, VQBeTConfig)
register_policy("tanh_gaussian", TanhGaussianPolicy, TanhGaussianConfig)
register_policy("procedure_cloning", ProcedureCloningPolicy, ProcedureCloningConfig)
