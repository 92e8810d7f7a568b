"""MINT intent injection on builtin/two_routes: does the injected intent token pick the route?

builtin/two_routes has two equally good ways around an obstacle; the expert picks one per
episode, and the final step's `info["route"]` says which one the point took. This script trains
MINT on expert demonstrations (seeds 0..N-1), then rolls it out on held-out seeds three ways:

* free: plain `act(obs)`, the policy generates its own intent (the route shares it chooses);
* same scene: `act(obs, intent_from=demo)` with a demonstration of route r played by the expert
  on the evaluation seed itself (the expert's route forced to r);
* nearest scene: the demonstration of route r, from a separate pool collected with
  `imitari.envs.collect.collect` (seeds 1000..), whose start-to-goal direction is closest to the
  evaluation layout's (one-shot transfer from another, similar scene).

For each injected route it prints the share of rollouts that passed the obstacle on that route
and the success rate.

    python benchmarks/mint_intent.py [--demos 200] [--steps 3000] [--episodes 50]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imitari.data.store import Dataset
from imitari.envs.builtin.point_tasks import TwoRoutesEnv, TwoRoutesExpert
from imitari.envs.collect import collect
from imitari.eval.rollout import eval_seeds, evaluate
from imitari.policies.loading import load_policy
from imitari.learners.loop import train
from imitari.policies.mint import MintPolicy

TASK = "builtin/two_routes"


class Injected:
    """A MINT policy that takes each episode's intent from the demonstration chosen for its seed."""

    def __init__(self, policy: MintPolicy, demos: dict[int, np.ndarray]) -> None:
        self.policy, self.demos = policy, demos
        self.slot_demos: dict[int, np.ndarray | None] = {}

    def reset(self, env_ids: Sequence[int] | None = None, *, seeds: Sequence[int | None] | None = None) -> None:
        self.policy.reset(env_ids, seeds=seeds)
        ids = list(env_ids) if env_ids is not None else list(range(len(seeds or [])))
        for env_id, seed in zip(ids, seeds or [None] * len(ids)):
            self.slot_demos[int(env_id)] = None if seed is None else self.demos[int(seed)]

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(obs.values())))
        return self.policy.act(obs, intent_from=[self.slot_demos.get(i) for i in range(n)])


def direction(state: np.ndarray) -> float:
    """Angle of the start-to-goal direction of a two_routes layout (state = [pos, goal, centre])."""
    delta = state[2:4] - state[0:2]
    return float(np.arctan2(delta[1], delta[0]))


def forced_demo(seed: int, route: int) -> tuple[np.ndarray, np.ndarray]:
    """(first state, actions) of the expert on `seed` with its route forced to `route`."""
    env, expert = TwoRoutesEnv(), TwoRoutesExpert()
    obs, _ = env.reset(seed=seed)
    first, actions = obs["state"].copy(), []
    expert.route = route
    for _ in range(50):
        action = expert(obs)
        actions.append(action)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    return first, np.stack(actions)


def pool_demos(path: Path) -> list[tuple[float, int, np.ndarray]]:
    """(layout direction, route, actions) of each episode of a collected two_routes dataset."""
    ds = Dataset.open(path)
    arrays, ends = ds.arrays(), np.asarray(ds.episode_ends)
    starts = np.concatenate([[0], ends[:-1]])
    return [(direction(arrays["obs.state"][s]), int(info["route"]), arrays["action"][s:e])
            for s, e, info in zip(starts, ends, ds.episode_info) if info.get("route") is not None]


def shares(policy: Any, seeds: list[int], route: int | None) -> tuple[float, float, float]:
    """(share of rollouts on `route` (route 0 when None), share with a route, success rate)."""
    results, _ = evaluate(policy, TASK, seeds=seeds, num_envs=25, workers=1, progress=False)
    routes = [r.info.get("route") for r in results]
    on = sum(r == (route or 0) for r in routes) / len(routes)
    return on, sum(r is not None for r in routes) / len(routes), sum(r.success for r in results) / len(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demos", type=int, default=200, help="training demonstrations")
    parser.add_argument("--pool", type=int, default=200, help="demonstrations to inject from (nearest scene)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--episodes", type=int, default=50, help="held-out evaluation seeds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        collect(TASK, root / "train", episodes=args.demos, workers=1, progress=False)
        collect(TASK, root / "pool", episodes=args.pool, seed_start=1000, workers=1, progress=False)
        run = train({"data": str(root / "train"), "out": str(root / "run"), "steps": args.steps,
                     "batch_size": args.batch_size, "progress": False, "seed": 0, "ckpt_every": args.steps,
                     "policy": {"name": "mint", "dropout": 0.0}})
        policy = load_policy(run)
        assert isinstance(policy, MintPolicy)
        pool = pool_demos(root / "pool")
        seeds = eval_seeds(args.episodes)
        left, with_route, success = shares(policy, seeds, None)
        print(f"free: route 0 {left:.0%}, route 1 {with_route - left:.0%}, success {success:.0%}")
        for route in (0, 1):
            same, nearest = {}, {}
            for seed in seeds:
                first, same[seed] = forced_demo(seed, route)
                angle = direction(first)
                gaps = [abs(np.angle(np.exp(1j * (a - angle)))) if r == route else np.inf for a, r, _ in pool]
                nearest[seed] = pool[int(np.argmin(gaps))][2]
            for name, demos in (("same scene", same), ("nearest scene", nearest)):
                on, _, success = shares(Injected(policy, demos), seeds, route)
                print(f"inject route {route} ({name}): followed {on:.0%}, success {success:.0%}")


if __name__ == "__main__":
    main()
