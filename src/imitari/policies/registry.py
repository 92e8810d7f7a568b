"""Policy registry: name -> (policy class, config class). Registration is explicit and loud."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imitari.config import ConfigError, closest
from imitari.policies.base import Policy, PolicyConfig, Shapes
from imitari.policies.bc import BCConfig, BCPolicy
from imitari.policies.diffusion import DiffusionConfig, DiffusionPolicy

_REGISTRY: dict[str, tuple[type[Policy], type[PolicyConfig]]] = {}


def register_policy(name: str, policy_cls: type[Policy], config_cls: type[PolicyConfig]) -> None:
    if name in _REGISTRY:
        raise ValueError(f"policy '{name}' is already registered")
    _REGISTRY[name] = (policy_cls, config_cls)


def policy_names() -> list[str]:
    return sorted(_REGISTRY)


def get_policy(name: str) -> tuple[type[Policy], type[PolicyConfig]]:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown policy '{name}'{closest(name, _REGISTRY)}; registered: {', '.join(policy_names())}")
    return _REGISTRY[name]


def make_policy(name: str, config: PolicyConfig, *, shapes: Shapes, stats: Mapping[str, Mapping[str, Any]]) -> Policy:
    policy_cls, config_cls = get_policy(name)
    if not isinstance(config, config_cls):
        raise ConfigError(f"policy '{name}' needs a {config_cls.__name__}, got {type(config).__name__}")
    return policy_cls(config, shapes=shapes, stats=stats)


register_policy("bc", BCPolicy, BCConfig)
register_policy("diffusion", DiffusionPolicy, DiffusionConfig)
