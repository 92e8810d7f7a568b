"""The PushT planner expert solves episodes; the 20-D keypoint observation carries the 5-D state."""

from __future__ import annotations

import numpy as np
import pytest

from imitari.envs.pusht import KEYPOINTS, keypoints_of, pose_of
from imitari.envs.registry import get_task
from imitari.envs.experts import expert_policy
from imitari.eval.rollout import evaluate


def test_pose_round_trips_through_the_keypoints() -> None:
    for pose in ([256.0, 256.0, np.pi / 4], [100.0, 400.0, 6.0], [300.0, 50.0, 0.1]):
        assert np.allclose(pose_of(keypoints_of(np.array(pose))), pose, atol=1e-9)
    assert KEYPOINTS.shape == (9, 2)


def test_keypoint_task_observes_the_same_state() -> None:
    pytest.importorskip("gym_pusht")
    state_env, kp_env = get_task("pusht").make(), get_task("pusht/keypoints").make()
    (s, _), (k, _) = state_env.reset(seed=7), kp_env.reset(seed=7)
    assert k["state"].shape == (20,) and kp_env.observation_space["state"].shape == (20,)
    assert np.allclose(k["state"][-2:], s["state"][:2])
    assert np.allclose(pose_of(k["state"][:-2]), s["state"][2:], atol=1e-3)


@pytest.mark.parametrize("task", ["pusht", "pusht/keypoints"])
def test_planner_solves_validation_seeds(task: str) -> None:
    pytest.importorskip("gym_pusht")
    spec = get_task(task)
    assert "pusht-push-cem v" in spec.expert(spec.make()).identity  # type: ignore[attr-defined]
    results, _ = evaluate(expert_policy(task), task, seeds=[2001, 2002], workers=1, progress=False)
    for r in results:  # validation seeds, solved in about 70 steps
        assert r.success and r.info["score"] == 1.0 and r.length < 150, (task, r)
