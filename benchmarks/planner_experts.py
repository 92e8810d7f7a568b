"""The planner experts (PushT's CEM over pushes, PointMaze's shortest routes) on a range of seeds.

Each row is one task and one planner setting (`--set key=value,...`, PushT's PushPlannerConfig
fields; none: the registered default), evaluated through `imitari.eval.rollout.evaluate` in this
process; it records success with its Wilson interval, PushT's score, the behaviour entropy and
the CPU minutes the rollouts took; with `--repeats K` it also prints the conditional behaviour
entropy of K more rollouts from each seed, with fresh draws (`imitari.pipeline.repeated_entropy`). Rows go to `<out>/<split>.csv` as they finish (a rerun skips
finished ones) and the markdown table beside it is rewritten. Choose settings on validation
seeds (2000+), report on test seeds (1000+):

    python benchmarks/planner_experts.py --tasks pusht --seeds 2000-2049 --set samples=24,refine=8,replan_every=3 \\
        --out results/planner_experts
    python benchmarks/planner_experts.py --tasks pusht,pointmaze/medium,pointmaze/large --seeds 1000-1049 \\
        --out results/planner_experts
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from imitari import bench_table
from imitari.bench import parse_seeds
from imitari.envs.pusht_expert import PushPlannerConfig, PushTPlanner
from imitari.envs.registry import get_task
from imitari.eval.metrics import format_summary, summarize
from imitari.envs.experts import expert_policy
from imitari.eval.rollout import evaluate
from imitari.eval.seeds import split_of
from imitari.pipeline import repeated_entropy


def _setting(text: str) -> PushPlannerConfig:
    values = dict(item.split("=", 1) for item in text.split(",") if item)
    types = {f.name: f.type for f in dataclasses.fields(PushPlannerConfig)}
    return PushPlannerConfig(**{k: (int if types[k] == "int" else float)(v) for k, v in values.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="pusht", help="comma-separated task names")
    parser.add_argument("--seeds", required=True, help="e.g. 1000-1049")
    parser.add_argument("--set", default="", help="PushT planner fields, e.g. samples=24,refine=8")
    parser.add_argument("--out", default="results/planner_experts")
    parser.add_argument("--repeats", type=int, default=0, help="rollouts more from each seed, for the conditional "
                        "behaviour entropy (tasks with behaviour labels)")
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    split = split_of(seeds)
    csv_path = Path(args.out) / f"{split}.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    label = f"expert:{args.set}" if args.set else bench_table.EXPERT
    done = {bench_table.row_key(r) for r in bench_table.read_rows(csv_path)}
    for task in args.tasks.split(","):
        if (task, label, "") in done:
            print(f"{task} / {label}: already in {csv_path}, skipped")
            continue
        spec = get_task(task)
        if args.set:
            spec = dataclasses.replace(spec, make_expert=lambda env, s=_setting(args.set): PushTPlanner(s))
        start = time.process_time()
        results, _ = evaluate(expert_policy(spec), spec, seeds=seeds, workers=1, num_envs=1, progress=False)
        cpu = time.process_time() - start
        summary = summarize(results)
        bench_table.append_row(csv_path, bench_table.summary_row(
            task, label, summary, seeds=seeds, cpu_minutes=round(cpu / 60, 3)))
        print(f"{task} / {label}: {format_summary(summary)}  ({cpu / 60:.1f} CPU-minutes, "
              f"{1000 * cpu / sum(r.length for r in results):.1f} ms per step)", flush=True)
        repeated_entropy(expert_policy(spec), spec, results, seeds=seeds, repeats=args.repeats, num_envs=1, workers=1)
    rows = bench_table.read_rows(csv_path)
    (csv_path.with_suffix(".md")).write_text(bench_table.markdown(rows, split=split) + "\n")


if __name__ == "__main__":
    main()
