"""RL throughput: env steps/s and updates/s of SAC and PPO at their default sizes, as ratios to a
bare gymnasium stepping loop measured in the same run.

Everything is timed in process CPU seconds (`time.process_time()`), so the figures do not move
with other processes' load on a shared machine. Collection runs the real path (rollout engine,
in this process, the exploring `tanh_gaussian` policy, the replay buffer with its store on
disk); updates run the learners' `update` on a buffer filled with random-action episodes.

    python benchmarks/rl_throughput.py [--env mujoco/hopper] [--seconds 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import torch

from imitari.envs.gymnasium_tasks import _TASKS
from imitari.learners.config import resolve_config
from imitari.learners.loop import Trainer
from imitari.rollouts.engine import RolloutEngine


def bare_steps_per_s(env_id: str, seconds: float) -> float:
    env = gym.make(env_id)
    env.reset(seed=0)
    steps, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        if terminated or truncated:
            env.reset()
    return steps / (time.process_time() - start)


def learner_rates(learner: str, env: str, run: Path, *, seconds: float, num_envs: int) -> tuple[float, float]:
    """(env steps/s collecting with the policy, updates/s) of `learner` at its defaults."""
    train_cfg, policy_cfg = resolve_config({"learner": learner, "env": env, "num_envs": num_envs, "progress": False})
    trainer = Trainer(train_cfg, policy_cfg, run_dir=run)
    lrn = trainer.learner
    with RolloutEngine(env, num_envs=num_envs, workers=1) as engine:
        while lrn.replay.added < 5000:
            lrn.play(engine, random=True)
        before, start = lrn.replay.added, time.process_time()
        while time.process_time() - start < seconds:
            lrn.play(engine)
        env_rate = (lrn.replay.added - before) / (time.process_time() - start)
        if learner == "ppo":
            lrn.collect(engine, 0)
    lrn.replay.flush()  # the store's writer thread would otherwise share the update's CPU time
    updates, start = 0, time.process_time()
    while time.process_time() - start < seconds and (learner != "ppo" or len(lrn.order)):
        lrn.update(None, updates)
        updates += 1
    lrn.close()
    return env_rate, updates / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="mujoco/hopper")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--num-envs", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bare = bare_steps_per_s(_TASKS[args.env][0], args.seconds)
    print(f"{args.env}: bare gymnasium loop (random actions) {bare:,.0f} env steps/s (CPU)")
    with tempfile.TemporaryDirectory() as tmp:
        for learner in ("sac", "ppo"):
            env_rate, update_rate = learner_rates(learner, args.env, Path(tmp) / learner, seconds=args.seconds,
                                                  num_envs=args.num_envs)
            print(f"{learner}: collecting {env_rate:,.0f} env steps/s ({env_rate / bare:.2f}x bare), "
                  f"{update_rate:,.1f} updates/s ({update_rate / bare:.4f}x bare) per CPU second, "
                  f"{args.num_envs} env slot(s), {args.threads} thread(s)")


if __name__ == "__main__":
    main()
