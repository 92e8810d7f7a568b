"""Evaluation flags a policy whose actions are NaN or inf instead of reporting 0% success."""

from __future__ import annotations

import numpy as np
import pytest

from imitari.eval.rollout import evaluate


class _Broken:
    """Acts like a policy whose weights overflowed: finite for one env, NaN for the other."""

    def reset(self, env_ids=None) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        actions = np.zeros((len(obs["state"]), 2), dtype=np.float32)
        actions[1:] = np.nan
        return actions


def test_nonfinite_actions_are_an_error_naming_the_seed() -> None:
    with pytest.raises(FloatingPointError, match=r"NaN or inf actions for 1 of 2 envs \(first: seed 100001, step 0\)"):
        evaluate(_Broken(), "builtin/reach", seeds=[100_000, 100_001], num_envs=2, workers=1, progress=False)
