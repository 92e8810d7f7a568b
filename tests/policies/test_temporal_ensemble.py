"""Temporal ensembling (ACT's) as an option of every chunking policy: BC with it predicts every
step and executes the weighted average of its chunks' rows for the step; bad combinations fail."""

from __future__ import annotations

import numpy as np
import pytest

from imitari.config import ConfigError
from imitari.policies.base import Shapes
from imitari.policies.env_buffers import TemporalEnsemble
from imitari.config import from_dict
from imitari.policies.registry import get_policy, make_policy


def _config(name: str, fields: dict):
    return from_dict(get_policy(name)[1], fields)

STATS = {"obs.state": {"min": [-1.0] * 3, "max": [1.0] * 3, "mean": [0.0] * 3, "std": [1.0] * 3},
         "action": {"min": [-1.0] * 2, "max": [1.0] * 2, "mean": [0.0] * 2, "std": [1.0] * 2}}


def test_bc_with_temporal_ensembling_executes_the_ensemble_every_step() -> None:
    config = _config("bc", {"hidden": "16", "obs_horizon": 2, "action_horizon": 5, "exec_horizon": 2,
                            "temporal_ensemble": True, "ensemble_m": 0.2})
    policy = make_policy("bc", config,
                         shapes=Shapes(obs={"state": (3,)}, action=(2,)), stats=STATS).eval()
    chunks = np.random.default_rng(0).normal(size=(7, 2, 5, 2)).astype(np.float32)
    calls: list[np.ndarray] = []
    policy.predict_envs = lambda ids: (calls.append(ids), chunks[len(calls) - 1][ids])[1]  # type: ignore[method-assign]
    policy.reset()
    reference = TemporalEnsemble(2, 4, 2, m=0.2)  # rows 1..4 of each chunk: the current step onward
    obs = np.random.default_rng(1).normal(size=(6, 2, 3)).astype(np.float32)
    for step in range(6):
        action = policy.act({"state": obs[step]})
        reference.push(chunks[step][:, 1:])
        np.testing.assert_allclose(action, reference.average(), rtol=1e-6)
    assert len(calls) == 6, "a chunk every step, not every exec_horizon steps"
    policy.reset(env_ids=[1])
    policy.act({"state": obs[0]})
    assert len(calls) == 7


@pytest.mark.parametrize(("name", "fields", "message"), [
    ("bc", {"obs_horizon": 2, "past_horizon": 1, "ptp_candidates": 4, "temporal_ensemble": True},
     "use one of the two"),
    ("bc", {"temporal_ensemble": True, "ensemble_m": float("inf")}, "ensemble_m must be a finite number"),
    ("streaming_diffusion", {"temporal_ensemble": True}, "not for streaming_diffusion"),
    ("mint", {"temporal_ensemble": True}, "not for mint"),
])
def test_bad_ensembling_configs_fail_in_one_line(name: str, fields: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(name, fields)
