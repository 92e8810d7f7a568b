"""Learning tests: each policy trains for real on a built-in task and must succeed >= 90%.

Evaluation seeds (100000+) never overlap the demonstration seeds (0..N-1), so these numbers
measure generalisation to unseen start/goal layouts, not memorisation.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imitari.eval.metrics import summarize
from imitari.eval.rollout import eval_seeds, evaluate
from imitari.learners.checkpoint import load_policy
from imitari.learners.loop import train

CASES = {
    "bc": ({"name": "bc"}, 2000, 256),
    "bc_gmm": ({"name": "bc", "head": "gmm"}, 2000, 256),
    "diffusion": ({"name": "diffusion", "down_dims": [32, 64], "action_horizon": 8, "exec_horizon": 4}, 1500, 64),
}


@pytest.fixture(scope="module")
def reach_demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from imitari.envs.collect import collect

    path = tmp_path_factory.mktemp("learn") / "reach"
    collect("builtin/reach", path, episodes=100, workers=1, progress=False)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_policy_learns_builtin_reach(name: str, reach_demos: Path, tmp_path: Path) -> None:
    policy_cfg, steps, batch = CASES[name]
    run = train({
        "data": str(reach_demos), "out": str(tmp_path / name), "policy": policy_cfg, "steps": steps,
        "batch_size": batch, "progress": False, "seed": 0, "ckpt_every": steps,
    })
    policy = load_policy(run)
    results, _ = evaluate(policy, "builtin/reach", seeds=eval_seeds(50), num_envs=25, workers=1, progress=False)
    summary = summarize(results)
    assert summary.success_rate >= 0.9, f"{name}: {summary}"
