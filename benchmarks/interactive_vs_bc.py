"""DAgger and HG-DAgger against behaviour cloning at an equal number of expert labels.

For each training seed: DAgger and HG-DAgger start from the first `--demos` demonstrations and
run `--rounds` rounds of `--episodes-per-round` episodes; each ends with some number L of
expert-labelled steps (demonstration steps plus labelled or takeover steps). BC then trains on
the fewest demonstrations (seeds 0, 1, ...) holding at least L steps, so it has at least as
many expert labels. BC on the `--demos` demonstrations alone is the starting point. Every
policy is evaluated on test seeds (from 1000); rows (success with a 95% Wilson interval) are
appended to `--csv` as they finish, and a rerun skips finished rows and resumes runs; the
markdown table beside it (same name, .md) pools each method's episodes over training seeds.

    python benchmarks/interactive_vs_bc.py --task builtin/reach --demos 3 --rounds 3 \
        --episodes-per-round 5 --steps 500 --seeds 0,1,2 --csv results/interactive/builtin_reach.csv
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from imitari.bench_table import append_csv, read_csv
from imitari.data.store import Dataset
from imitari.envs.collect import collect
from imitari.eval.metrics import summarize, wilson_interval
from imitari.eval.rollout import evaluate
from imitari.eval.seeds import TEST_SEED_START
from imitari.learners.checkpoint import reported_checkpoint
from imitari.learners.loop import resume, train
from imitari.policies.loading import load_policy

FIELDS = ["task", "method", "seed", "expert_labels", "demos", "rounds", "episodes_per_round", "steps",
          "successes", "episodes", "success_rate", "ci_low", "ci_high", "mean_return"]


def _train(run: Path, config: dict[str, Any]) -> Path:
    """Train (or finish) the run at `run`."""
    if (run / "config.json").exists():
        return resume(run)
    return train({**config, "out": str(run)})


def _first(pool: Dataset, k: int) -> str:
    """A filter key of the pool's first `k` demonstrations by seed."""
    name = f"first_{k}"
    if name not in pool.filter_keys:
        order = sorted(range(pool.n_episodes), key=lambda i: pool.episode_seeds[i])
        with Dataset.open(pool.path, writer=True) as ds:
            ds.set_filter_key(name, order[:k])
    return name


def table(csv_path: Path) -> str:
    """Markdown: per task and method, mean expert labels and success pooled over training seeds."""
    rows = read_csv(csv_path)
    lines = ["| task | method | training seeds | expert labels (mean) | demos (mean) | success (pooled) | 95% CI |",
             "|---|---|---|---|---|---|---|"]
    for task, method in dict.fromkeys((r["task"], r["method"]) for r in rows):
        group = [r for r in rows if (r["task"], r["method"]) == (task, method)]
        wins, n = sum(int(r["successes"]) for r in group), sum(int(r["episodes"]) for r in group)
        low, high = wilson_interval(wins, n)
        labels = sum(int(r["expert_labels"]) for r in group) / len(group)
        demos = sum(int(r["demos"]) for r in group) / len(group)
        lines.append(f"| {task} | {method} | {len(group)} | {labels:.0f} | {demos:.1f} | {wins}/{n} = {wins / n:.0%} | "
                     f"{low:.0%}-{high:.0%} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True)
    p.add_argument("--policy", default="bc")
    p.add_argument("--closed-loop", action="store_true",
                   help="obs, action and exec horizons 1: a reactive policy, as in the DAgger papers")
    p.add_argument("--demos", type=int, default=3, help="demonstrations DAgger starts from")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--episodes-per-round", type=int, default=5)
    p.add_argument("--steps", type=int, default=500, help="updates per training (each round's and BC's)")
    p.add_argument("--seeds", default="0", help="training seeds, comma-separated")
    p.add_argument("--eval-episodes", type=int, default=50)
    p.add_argument("--pool", type=int, default=60, help="demonstrations collected for BC's label matching")
    p.add_argument("--out", default="/tmp/interactive_vs_bc")
    p.add_argument("--csv", required=True)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    out, csv_path = Path(args.out) / args.task.replace("/", "_"), Path(args.csv)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["method"], r["seed"]) for r in read_csv(csv_path)}
    collect(args.task, out / "demos", episodes=args.demos, progress=False)
    collect(args.task, out / "pool", episodes=args.pool, progress=False)
    pool = Dataset.open(out / "pool")
    lengths = [info["length"] for info in sorted(pool.episode_info, key=lambda i: i["seed"])]
    policy: dict[str, Any] = {"name": args.policy}
    if args.closed_loop:
        policy.update(obs_horizon=1, action_horizon=1, exec_horizon=1)
    common = {"policy": policy, "steps": args.steps, "threads": args.threads, "progress": False,
              "warmup_steps": min(200, args.steps // 10)}
    seeds_eval = list(range(TEST_SEED_START, TEST_SEED_START + args.eval_episodes))
    for seed in [int(s) for s in args.seeds.split(",")]:
        runs: dict[str, tuple[Path, int, int]] = {}  # method -> (run, expert labels, demos)
        for learner in ("dagger", "hg_dagger"):
            run = _train(out / f"{learner}_s{seed}", {
                **common, "data": str(out / "demos"), "learner": learner, "seed": seed,
                "learner_config": {"rounds": args.rounds, "episodes_per_round": args.episodes_per_round}})
            labels = json.loads((run / "rounds.json").read_text())[-1]["expert_labels"]
            runs[learner] = (run, labels, args.demos)
        targets = {"bc_demos": sum(lengths[: args.demos]),
                   **{f"bc_at_{m}": labels for m, (_, labels, _) in runs.items()}}
        for method, target in targets.items():
            k = next((i + 1 for i in range(len(lengths)) if sum(lengths[: i + 1]) >= target), None)
            if k is None:
                raise SystemExit(f"--pool {args.pool} holds fewer than {target} steps: raise it")
            run = _train(out / f"bc_{k}demos_s{seed}", {**common, "data": str(out / "pool"),
                                                        "train_filter": _first(pool, k), "seed": seed})
            runs[method] = (run, sum(lengths[:k]), k)
        for method, (run, labels, demos) in runs.items():
            if (method, str(seed)) in done:
                continue
            policy = load_policy(reported_checkpoint(run)).eval()
            results, _ = evaluate(policy, args.task, seeds=seeds_eval, num_envs=10, workers=1, progress=False)
            s = summarize(results)
            append_csv(csv_path, {
                "task": args.task, "method": method, "seed": seed, "expert_labels": labels, "demos": demos,
                "rounds": args.rounds if "dagger" in method and not method.startswith("bc") else 0,
                "episodes_per_round": args.episodes_per_round, "steps": args.steps,
                "successes": round(s.success_rate * s.n), "episodes": s.n, "success_rate": round(s.success_rate, 4),
                "ci_low": round(s.ci_low, 4), "ci_high": round(s.ci_high, 4), "mean_return": round(s.mean_return, 4),
            }, FIELDS)
            print(f"{args.task} {method} seed {seed}: {labels} labels, success {s.success_rate:.2f} "
                  f"[{s.ci_low:.2f}, {s.ci_high:.2f}]", flush=True)
    csv_path.with_suffix(".md").write_text(table(csv_path))
    print(table(csv_path))


if __name__ == "__main__":
    main()
