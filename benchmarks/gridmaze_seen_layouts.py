"""The other half of the gridmaze table: each trained run on the layouts it was trained on.

`imitari bench --suite gridmaze` reports success on unseen layouts. This evaluates the same
checkpoints (the ones the bench reported) on seeds 500-549 of their own task: seeds below the
test range play layout seed mod K, so these are the K training layouts with starts and goals
not in the demos (seeds 0-99). A policy that is good here and poor on unseen layouts fits its
layouts without generalising; one poor on both did not learn in its budget.

    python benchmarks/gridmaze_seen_layouts.py BENCH_OUT --out results/gridmaze/seen_layouts.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

from imitari.bench_table import append_csv, read_csv
from imitari.eval.metrics import summarize
from imitari.eval.rollout import evaluate
from imitari.learners.checkpoint import reported_checkpoint
from imitari.policies.loading import load_policy

SEEDS = list(range(500, 550))
FIELDS = ["task", "policy", "train_seed", "episodes", "successes", "success_rate", "ci_low", "ci_high", "eval_seeds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", type=Path, help="output folder of `imitari bench --suite gridmaze`")
    parser.add_argument("--out", type=Path, required=True, help="CSV to append rows to (resumes)")
    args = parser.parse_args()
    done = {(r["task"], r["policy"], r["train_seed"]) for r in read_csv(args.out)}
    for row in read_csv(args.bench / "results.csv"):
        key = (row["task"], row["policy"], row["train_seed"])
        if row["policy"] == "expert" or key in done:
            continue
        run = args.bench / "runs" / row["task"].replace("/", "-") / row["policy"].replace(":", "__") / f"seed{row['train_seed']}"
        policy = load_policy(reported_checkpoint(run)).eval()
        results, _ = evaluate(policy, row["task"], seeds=SEEDS, num_envs=len(SEEDS), workers=1, progress=False)
        s = summarize(results)
        append_csv(args.out, {"task": row["task"], "policy": row["policy"], "train_seed": row["train_seed"],
                              "episodes": s.n, "successes": s.successes, "success_rate": s.success_rate,
                              "ci_low": round(s.ci_low, 4), "ci_high": round(s.ci_high, 4),
                              "eval_seeds": f"{SEEDS[0]}-{SEEDS[-1]}"}, FIELDS)
        print(f"{row['task']} / {row['policy']} / seed {row['train_seed']}: seen layouts {s.successes}/{s.n}, "
              f"unseen {row['successes']}/{row['episodes']}", flush=True)


if __name__ == "__main__":
    main()
