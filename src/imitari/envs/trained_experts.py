"""Experts trained by imitari's own RL learners and shipped with the package (the locomotion tasks').

A shipped expert is a policy checkpoint's inference files (`config.json`, `model.safetensors`,
`normalizer.json`, `manifest.json`: safetensors and JSON, nothing that runs code on load) in
`expert_checkpoints/<task slug>/`, beside an `expert.json` card saying how it was trained and
what it measured (its mean return over 50 test episodes, a random policy's on the same seeds:
the anchors of normalised return). `benchmarks/ship_expert.py` writes both from a finished run.
A task registers `trained_expert(task)` as its `make_expert`, so `imitari collect`, `eval
--expert`, DAgger and RLIF use it like a scripted expert; a task without shipped files has no
expert (None).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

EXPERTS_DIR = Path(__file__).with_name("expert_checkpoints")
CARD = "expert.json"
POLICY_FILES = ("config.json", "model.safetensors", "normalizer.json", "manifest.json")
"""The files of a checkpoint that make up a shipped expert (no training state, no critic)."""


def expert_dir(task: str, root: Path = EXPERTS_DIR) -> Path:
    """Where the shipped expert of `task` lives (`mujoco/hopper` -> `<root>/mujoco-hopper`)."""
    return root / task.replace("/", "-")


def expert_card(task: str, root: Path = EXPERTS_DIR) -> dict[str, Any] | None:
    """The shipped expert's `expert.json` (training, measured returns), None if there is none."""
    path = expert_dir(task, root) / CARD
    return json.loads(path.read_text()) if path.is_file() else None


class CheckpointExpert:
    """A trained policy as a task expert: `reset(seed)` and `expert(obs) -> action` on one
    observation, acting with the policy's deterministic action (the mean, for `tanh_gaussian`)."""

    def __init__(self, path: Path, identity: str) -> None:
        from imitari.policies.loading import load_policy

        self.policy = load_policy(path)
        self.identity = identity

    def reset(self, seed: int | None = None) -> None:
        self.policy.reset()

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.policy.act({k: np.asarray(v)[None] for k, v in obs.items()})[0]


def trained_expert(task: str, root: Path = EXPERTS_DIR) -> Callable[[Any], CheckpointExpert] | None:
    """A `TaskSpec.make_expert` for the expert shipped for `task`, or None if none is shipped."""
    card = expert_card(task, root)
    if card is None:
        return None
    identity = f"{card.get('learner', 'rl')} {task} {card.get('version', '')}".strip()
    return functools.partial(_make, expert_dir(task, root), identity)


def _make(path: Path, identity: str, env: Any) -> CheckpointExpert:
    return CheckpointExpert(path, identity)
