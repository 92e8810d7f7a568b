"""Meta-World acceptance table for the end-to-end loop: BC and diffusion vs. the scripted expert.

For each task: collect 50 scripted demonstrations (seeds 0-49), train each policy, evaluate 50
episodes on seeds 100000-100049 (disjoint from the demos), and evaluate the expert on the same
seeds. Rows go to a CSV as they finish; a killed run resumes where it stopped (finished rows
are skipped, and an interrupted training run continues from its last checkpoint).

    python benchmarks/metaworld_loop.py --out results/metaworld_loop --policies bc,diffusion
    python benchmarks/metaworld_loop.py --tasks push --policies bc --steps bc=3000

Prints the markdown table at the end and writes it next to the CSV.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

TASKS = ["reach", "push", "pick-place", "drawer-close", "button-press-topdown"]
DEFAULT_STEPS = {"bc": 5000, "diffusion": 20000}
DEFAULT_POLICY_ARGS: dict[str, dict] = {"bc": {}, "diffusion": {}}
FIELDS = [
    "task", "policy", "episodes", "successes", "success_rate", "ci_low", "ci_high", "mean_length",
    "expert_success_rate", "train_steps", "train_seconds", "params", "device",
]


def _done(csv_path: Path) -> set[tuple[str, str]]:
    if not csv_path.exists():
        return set()
    with csv_path.open() as f:
        return {(row["task"], row["policy"]) for row in csv.DictReader(f)}


def _append(csv_path: Path, row: dict) -> None:
    new = not csv_path.exists()
    with csv_path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def markdown(csv_path: Path) -> str:
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    lines = [
        "| task | policy | success (50 eps) | 95% CI | expert, same seeds | steps | train time | device |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['policy']} | {float(r['success_rate']):.0%} | "
            f"{float(r['ci_low']):.0%}-{float(r['ci_high']):.0%} | {float(r['expert_success_rate']):.0%} | "
            f"{r['train_steps']} | {float(r['train_seconds']):.0f} s | {r['device']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/metaworld_loop")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--policies", default="bc,diffusion")
    parser.add_argument("--steps", default="", help="per-policy steps, e.g. bc=5000,diffusion=20000")
    parser.add_argument("--demos", type=int, default=50)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the policy's)")
    parser.add_argument("--policy-args", default="{}", help='JSON: {"diffusion": {"down_dims": [64,128,256]}}')
    args = parser.parse_args()

    import torch

    from imitari.envs.collect import collect
    from imitari.eval.metrics import summarize
    from imitari.envs.experts import expert_policy
    from imitari.eval.rollout import evaluate
    from imitari.policies.loading import CheckpointError, find_checkpoint, load_policy
    from imitari.learners.loop import resume, train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "results.csv"
    steps = dict(DEFAULT_STEPS)
    for item in filter(None, args.steps.split(",")):
        name, value = item.split("=")
        steps[name] = int(value)
    policy_args = {**DEFAULT_POLICY_ARGS, **json.loads(args.policy_args)}
    seeds = list(range(100_000, 100_000 + args.episodes))
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
    done = _done(csv_path)
    expert_cache: dict[str, float] = {}
    for task in args.tasks.split(","):
        env = f"metaworld/{task}"
        data = out / "data" / task
        collect(env, data, episodes=args.demos, workers=args.workers)
        for policy in args.policies.split(","):
            if (task, policy) in done:
                print(f"{task}/{policy}: already in {csv_path}, skipped")
                continue
            run = out / "runs" / f"{task}-{policy}"
            start = time.perf_counter()
            try:
                find_checkpoint(run)
                resume(run, {"steps": steps[policy], "device": device})
            except CheckpointError:
                train({
                    "data": str(data), "out": str(run), "steps": steps[policy], "device": device, "lr": args.lr,
                    "policy": {"name": policy, **policy_args.get(policy, {})},
                })
            seconds = time.perf_counter() - start
            net = load_policy(run, device=device)
            results, _ = evaluate(net, env, seeds=seeds, num_envs=args.episodes, workers=args.workers)
            summary = summarize(results)
            if task not in expert_cache:
                expert_results, _ = evaluate(expert_policy(env), env, seeds=seeds, num_envs=10, workers=args.workers)
                expert_cache[task] = summarize(expert_results).success_rate
            row = {
                "task": task, "policy": policy, "episodes": summary.n,
                "successes": int(round(summary.success_rate * summary.n)),
                "success_rate": summary.success_rate, "ci_low": summary.ci_low, "ci_high": summary.ci_high,
                "mean_length": summary.mean_length, "expert_success_rate": expert_cache[task],
                "train_steps": steps[policy], "train_seconds": round(seconds, 1),
                "params": net.num_parameters(), "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            }
            _append(csv_path, row)
            print(f"{task}/{policy}: success {summary.success_rate:.0%} (expert {expert_cache[task]:.0%})")
    table = markdown(csv_path)
    (out / "results.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
