"""Conditional behaviour entropy from repeated rollouts: repeats draw other random choices."""

from __future__ import annotations

from imitari.envs.experts import expert_policy
from imitari.eval.rollout import evaluate
from imitari.pipeline import repeated_entropy

ROUTES = "builtin/two_routes"


def test_expert_repeats_pick_other_routes_from_the_same_start() -> None:
    seeds = [100, 101, 102, 103]
    results, _ = evaluate(expert_policy(ROUTES), ROUTES, seeds=seeds, workers=1, progress=False)
    value = repeated_entropy(expert_policy(ROUTES), ROUTES, results, seeds=seeds, repeats=7, num_envs=4, workers=1)
    assert value is not None and value > 0.6  # the expert draws its side afresh for every repeat
    # A plain repeat (same seeds, same draws) replays each start exactly.
    again, _ = evaluate(expert_policy(ROUTES), ROUTES, seeds=seeds, workers=1, progress=False)
    assert [r.info["route"] for r in again] == [r.info["route"] for r in results]


def test_tasks_without_behaviour_labels_skip_the_repeats() -> None:
    results, _ = evaluate(expert_policy("builtin/reach"), "builtin/reach", seeds=[100], workers=1, progress=False)
    assert repeated_entropy(expert_policy("builtin/reach"), "builtin/reach", results, seeds=[100], repeats=3,
                            num_envs=1, workers=1) is None
