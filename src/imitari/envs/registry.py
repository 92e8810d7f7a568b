"""The task registry: every environment imitari can collect from, train for and evaluate on.

A task is a `TaskSpec`: how to build its gymnasium env, its limits and observation keys, and
(optionally) a scripted expert. Every env follows one contract (docs/architecture.md):

* observations are dicts `{key: np.float32 array}` with keys `spec.obs_keys` (e.g. "state"),
  or uint8 (H, W, 3) camera frames (`"image"` of a `<task>:pixels` variant, envs/pixels.py);
* `reset(seed=s)` gives the same layout for the same seed in any process;
* `info["success"]` is a bool at every step and the episode terminates at the first success;
* the episode is truncated (`truncated=True`) after `spec.max_steps` steps;
* made with `render=True`, `render()` returns an (H, W, 3) uint8 frame.

The built-in tasks and the simulator tasks are registered when this module is imported. The
simulator modules import their simulator only inside `make`/`make_expert`, so the registry
(and `imitari tasks`) works without the optional extras installed.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np


class TaskError(ValueError):
    """An unknown or duplicate task name, or a task asked for something it does not have."""


class MissingExtraError(TaskError, ImportError):
    """A task's simulator is not installed; the message names the pip extra to install."""


class Expert(Protocol):
    """A scripted demonstrator: maps one observation to one action.

    It sees only observations (never the env), so it can act on observations of an env that
    lives in another process. `reset(seed)` starts a new episode; an expert with random
    choices (e.g. which route to take) draws them from an rng seeded by `seed`, so the same
    seed gives the same demonstration.
    """

    def reset(self, seed: int | None = None) -> None: ...

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class TaskSpec:
    """One registered task.

    `make(render=False)` builds a fresh env; `make_expert(env)` builds the task's expert for
    that env (None when the task has none: use `expert(env)` for a clear error instead).
    `extra` names the pip extra the task needs (`imitari[extra]`), None for built-in tasks.
    """

    name: str
    make: Callable[..., gym.Env]
    max_steps: int
    obs_keys: tuple[str, ...]
    fps: float
    description: str
    make_expert: Callable[[gym.Env], Expert] | None = None
    extra: str | None = None
    pixels: int | None = None
    """Frame side of the task's `<name>:pixels` variant (its env draws frames with `camera(size)`);
    None: the task has no pixel variant."""
    points: str = ""
    """The task's 3-D points as a `relative_points` spec "KEY:i,j,..." (what `relative_points
    auto` resolves to for its datasets); "" for none."""
    policy_defaults: Mapping[str, Mapping[str, Any]] | None = None
    """Per policy variant ("bc", "bc:head=gmm": learners/config.py `variant_name`), the settings
    its offline training on this task's data takes where the user
    leaves them unset: run fields, and policy fields under "policy" (learners/config.py); chosen
    on validation seeds of several tasks of the family (docs/generalisation.md)."""
    procedure_features: tuple[tuple[str, tuple[int, ...]], ...] = ()
    """(name, shape) of what the expert computes per step beside its action (its `procedure`
    dict after each call, e.g. a planner's intermediate maps); collected as `procedure.<name>`."""

    def expert(self, env: gym.Env) -> Expert:
        """The task's expert for `env`; TaskError if the task has no expert."""
        if self.make_expert is None:
            raise TaskError(f"task {self.name} has no expert yet")
        return self.make_expert(env)


_TASKS: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    """Add `spec` to the registry and return it; TaskError if its name is already taken."""
    if spec.name in _TASKS:
        raise TaskError(f"task {spec.name!r} is already registered")
    _TASKS[spec.name] = spec
    return spec


def get_task(name: str) -> TaskSpec:
    """The task registered as `name` (or the `:pixels` variant of one, envs/pixels.py); TaskError
    (a ValueError) naming the closest names if none."""
    from imitari.envs.pixels import SUFFIX, pixel_variant

    base = _TASKS.get(name.removesuffix(SUFFIX))
    if name.endswith(SUFFIX) and base is not None:
        if base.pixels is None:
            raise TaskError(f"task {base.name} has no pixel variant (its env draws no camera frames)")
        return pixel_variant(base)
    try:
        return _TASKS[name]
    except KeyError:
        close = _closest(name)
        hint = f"did you mean {' or '.join(close)}?" if close else "see `imitari tasks` for the list"
        raise TaskError(f"unknown task {name!r}: {hint}") from None


def _closest(name: str) -> list[str]:
    """Up to three registered names nearest to `name` (difflib ratio of the whole names, or of
    the parts after the last '/', whichever is higher; case-insensitive), all about as close
    as the best."""

    name = name.lower()

    def similarity(candidate: str) -> float:
        whole = difflib.SequenceMatcher(None, name, candidate).ratio()
        last = difflib.SequenceMatcher(None, name.rsplit("/", 1)[-1], candidate.rsplit("/", 1)[-1]).ratio()
        return max(whole, last)

    scored = sorted(((similarity(c), c) for c in _TASKS), key=lambda sc: (-sc[0], sc[1]))
    if not scored:
        return []
    best = scored[0][0]
    return [c for score, c in scored[:3] if score >= max(0.6, best - 0.05)]


def find_task(name: str) -> TaskSpec | None:
    """The task registered as `name`, or None (where a missing task is no error, e.g. a dataset's
    task that a settings lookup may not find here)."""
    try:
        return get_task(name) if name else None
    except TaskError:
        return None


def list_tasks() -> list[str]:
    """Names of all registered tasks, sorted."""
    return sorted(_TASKS)


def import_extra(module: str, *, task: str, extra: str) -> Any:
    """Import a simulator package for `task`, or raise MissingExtraError naming the pip extra."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(
            f"{task} needs the {extra} extra: pip install 'imitari[{extra}]' ({e})"
        ) from e


# Registration: each module registers its tasks on import (kept last: they import this module).
from imitari.envs import gymnasium_tasks, metaworld_tasks, pointmaze, pusht  # noqa: E402, F401
from imitari.envs.builtin import gridmaze, memory_task, point_tasks, track_task  # noqa: E402, F401
