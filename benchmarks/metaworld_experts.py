"""Success of every Meta-World v3 scripted expert on fresh layouts, over N evaluation seeds.

A learned policy can only be judged against what its demonstrations could do: this plays
each task's expert (`metaworld.policies`, through the imitari registry: fresh seeded layouts,
episode ends at the first success, 500-step cap) once on each seed and writes, per task,
successes, episodes, the 95% Wilson interval and the mean episode length to
`<out>/results.csv` and `<out>/results.md`. Rows are appended as each task finishes and
finished tasks are skipped on a rerun, so an interrupted measurement resumes.

    nice -n 10 python benchmarks/metaworld_experts.py               # all 50 tasks, 20 seeds from 1000
    python benchmarks/metaworld_experts.py --tasks push,shelf-place --episodes 5
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from imitari.envs.metaworld_tasks import TASKS
from imitari.bench_table import append_csv, read_csv
from imitari.eval.metrics import summarize
from imitari.envs.experts import expert_policy
from imitari.eval.rollout import evaluate

FIELDS = ["task", "successes", "episodes", "success_rate", "ci_low", "ci_high", "mean_length", "seed_start"]


def measure(name: str, seeds: list[int], workers: int) -> dict[str, object]:
    """One CSV row: the expert of `metaworld/<name>` played once on each seed."""
    task = f"metaworld/{name}"
    results, _ = evaluate(expert_policy(task), task, seeds=seeds, num_envs=min(len(seeds), 10), workers=workers,
                          progress=False)
    s = summarize(results)
    return {"task": name, "successes": s.successes, "episodes": s.n, "success_rate": round(s.success_rate, 4),
            "ci_low": round(s.ci_low, 4), "ci_high": round(s.ci_high, 4), "mean_length": round(s.mean_length, 1),
            "seed_start": seeds[0]}


def markdown(rows: list[dict[str, str]]) -> str:
    """The table, worst success first (ties by name), with a one-line summary above it."""
    rows = sorted(rows, key=lambda r: (float(r["success_rate"]), r["task"]))
    perfect = sum(1 for r in rows if r["successes"] == r["episodes"])
    lines = [f"{perfect} of {len(rows)} experts succeed on every seed.", "",
             "| task | successes | episodes | success (95% CI) | mean length |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['successes']} | {r['episodes']} | {float(r['success_rate']):.0%} "
                     f"({float(r['ci_low']):.0%}-{float(r['ci_high']):.0%}) | {float(r['mean_length']):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names (default: all 50)")
    parser.add_argument("--episodes", type=int, default=20, help="seeds per task")
    parser.add_argument("--seed-start", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="env processes per task (1: in this process)")
    parser.add_argument("--out", default="results/metaworld_experts")
    args = parser.parse_args()
    names = [t.strip().removeprefix("metaworld/") for t in args.tasks.split(",") if t.strip()]
    if unknown := [n for n in names if n not in TASKS]:
        raise SystemExit(f"metaworld_experts: unknown task(s) {', '.join(unknown)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "results.csv"
    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    rows = read_csv(csv_path)
    if any(int(r["episodes"]) != len(seeds) or int(r["seed_start"]) != seeds[0] for r in rows):
        raise SystemExit(f"metaworld_experts: {csv_path} holds another seed range; pick another --out")
    done = {r["task"] for r in rows}
    for name in names:
        if name in done:
            continue
        start = time.perf_counter()
        row = measure(name, seeds, args.workers)
        append_csv(csv_path, row, FIELDS)
        print(f"{name}: {row['successes']}/{row['episodes']}, mean length {row['mean_length']} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    table = markdown(read_csv(csv_path))
    (out / "results.md").write_text(
        f"# Meta-World v3 scripted experts\n\nEach task's expert (`metaworld.policies`) on fresh layouts, "
        f"seeds {seeds[0]}-{seeds[-1]}; an episode ends at the first success (500-step cap; a failed "
        f"episode counts 500 steps in the mean length). Made by "
        f"`python benchmarks/metaworld_experts.py --episodes {len(seeds)} --seed-start {seeds[0]}`.\n\n{table}\n"
    )
    print(table)


if __name__ == "__main__":
    main()
