"""Past-Token Prediction on builtin/memory: does predicting past actions help a long-context
diffusion policy remember, and does test-time selection by the past help further?

Torne et al., "Learning Long-Context Diffusion Policies via Past-Token Prediction" (2025), find
that long-context diffusion policies fail to use their history, and that predicting the past
actions of the window alongside the future ones (PTP), plus choosing at test time among sampled
chunks the one whose past rows agree with the actions taken, fixes much of that.
builtin/memory needs that history: a cue seen only at steps 0 and 1 says which of two goals is
right, and the choice is made 8-11 steps later at a gate, so a window of 12 observations holds
the cue and a policy without it succeeds at most half the time.

The script collects expert demonstrations (seeds 0..N-1), trains the same diffusion policy
(window `--obs-horizon`, chunk 16, 4 executed per chunk) twice on them, with seed 0:
* without PTP: past_horizon 0, the chunk holds the current step and 15 future ones;
* with PTP: past_horizon obs_horizon - 1, the chunk starts at the window's first step;
and evaluates on held-out seeds (100000..) the first, the second, and the second with
`ptp_candidates` = `--candidates` (same weights, selection only at test time). It prints the
success rate with its 95% Wilson interval and how the failures ended: at the wrong goal (a
memory failure) or at neither (an execution failure).

    python benchmarks/ptp_memory.py [--demos 300] [--steps 4000] [--episodes 50] [--denoiser mlp]

With the defaults each training takes about 1.5 minutes on one core of this 2-core CPU; with
`--denoiser unet --steps 3000 --batch-size 64` about 2.5 minutes.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from imitari.envs.collect import collect
from imitari.eval.metrics import EpisodeResult, summarize
from imitari.eval.rollout import eval_seeds, evaluate
from imitari.policies.loading import load_policy
from imitari.learners.loop import train
from imitari.policies.base import Policy

TASK = "builtin/memory"


def report(label: str, results: list[EpisodeResult], seconds: float) -> None:
    summary = summarize(results)
    wrong = sum(1 for r in results if not r.success and r.info.get("route") is not None)
    neither = sum(1 for r in results if r.info.get("route") is None)
    print(f"{label:<28} {summary.successes:>3}/{summary.n:<3} {summary.success_rate:6.0%}  "
          f"[{summary.ci_low:4.0%}, {summary.ci_high:4.0%}]  wrong goal {wrong:>3}  neither {neither:>3}  "
          f"({seconds:.0f} s)")


def run(policy: Policy, episodes: int) -> tuple[list[EpisodeResult], float]:
    start = time.perf_counter()
    results, _ = evaluate(policy, TASK, seeds=eval_seeds(episodes), num_envs=25, workers=1, progress=False)
    return results, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demos", type=int, default=300)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--obs-horizon", type=int, default=12)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--denoiser", choices=["mlp", "unet"], default="mlp",
                        help="mlp: the residual MLP denoiser (fast on a CPU); unet: a small temporal U-Net")
    args = parser.parse_args()
    torch.set_num_threads(1)

    policy: dict[str, Any] = {"name": "diffusion", "denoiser": args.denoiser, "obs_horizon": args.obs_horizon,
                              "action_horizon": 16, "exec_horizon": 4}
    if args.denoiser == "unet":
        policy.update(down_dims=[16, 32, 64], diffusion_step_embed_dim=32)
    print(f"{TASK}: {args.demos} demos, diffusion ({args.denoiser}) obs_horizon {args.obs_horizon}, "
          f"{args.steps} steps at batch {args.batch_size}, {args.episodes} held-out seeds")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "memory"
        collect(TASK, data, episodes=args.demos, workers=1, progress=False)
        trained = {}
        for label, past in (("without PTP", 0), ("with PTP", args.obs_horizon - 1)):
            start = time.perf_counter()
            out = train({"data": str(data), "out": str(Path(tmp) / f"past{past}"), "steps": args.steps,
                         "batch_size": args.batch_size, "progress": False, "seed": 0, "ckpt_every": args.steps,
                         "policy": {**policy, "past_horizon": past}})
            trained[label] = load_policy(out)
            print(f"  trained {label} (past_horizon {past}) in {time.perf_counter() - start:.0f} s")
        print(f"{'':<28} success  95% Wilson     failures")
        for label, model in trained.items():
            report(label, *run(model, args.episodes))
        selecting = trained["with PTP"]
        selecting.config = dataclasses.replace(selecting.config, ptp_candidates=args.candidates)
        selecting.reset()
        report(f"with PTP + {args.candidates} candidates", *run(selecting, args.episodes))


if __name__ == "__main__":
    main()
