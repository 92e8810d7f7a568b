"""Why robomimic's plain BC beat imitari's on few demos: one difference at a time, and sweeps of
candidate defaults over several tasks.

The built-in rows start from imitari's BC set up like robomimic 0.3.0's default BC (MLP
1024x1024, one observation, one action, no observation or action normalisation, tanh output,
Adam 1e-4 constant, batch 100, every step once per epoch, no gradient clipping, 10k updates)
and switch one setting at a time back to imitari's old default. `--rows-file` (YAML: label ->
train config, as `imitari train --config` reads) sweeps other configurations instead. Every
row trains on each dataset with each training seed and is evaluated on the same seeds (with
`--anchors`, the task's expert and random actions too, so tasks without a success criterion
read as normalised returns); rows are appended to `<out>/results.csv` as they finish and a
rerun skips finished ones and continues a killed run from its last checkpoint, so a killed
sweep resumes; a second sweep into the same `--out` stops at once. Evaluate on validation seeds
(2000+) to choose, on test seeds (1000+) to report;
`--trained OUT` reports the runs another `--out` trained (its CPU-minutes with them) instead of
training them again, so the test seeds see the very networks the validation seeds chose.

    python benchmarks/bc_ablation.py --data data/shelf-place --out results/bc_ablation --seed-start 2000
    python benchmarks/bc_ablation.py --data data/shelf-place,data/disassemble \\
        --rows-file benchmarks/configs/bc_defaults.yaml --out results/bc_defaults --seed-start 2000
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

import torch

from imitari.config import ConfigError, load_file
from imitari.data.lock import lock_out
from imitari import bench_table
from imitari.bench import spent_in
from imitari.eval.metrics import format_summary, summarize
from imitari.eval.rollout import evaluate
from imitari.eval.seeds import split_of
from imitari.data.store import Dataset
from imitari.envs.experts import expert_policy, random_policy
from imitari.learners.checkpoint import reported_checkpoint
from imitari.policies.loading import CheckpointError, find_checkpoint, load_policy, read_checkpoint_config
from imitari.learners.loop import resume, train

ROBOMIMIC = {
    "task_defaults": False, "steps": 10_000, "batch_size": 100, "lr": 1e-4, "weight_decay": 0.0, "warmup_steps": 0,
    "lr_schedule": "constant", "sampling": "epochs", "grad_clip": 0.0,
    "policy": {"name": "bc", "hidden": "1024,1024", "obs_horizon": 1, "action_horizon": 1, "exec_horizon": 1,
               "obs_norm": "none", "action_norm": "none", "squash": True},
}
"""imitari's BC with robomimic 0.3.0's default BC settings (and none of the settings Meta-World
registers for BC since: docs/generalisation.md section 10)."""

OLD = {"obs_norm": "limits", "action_norm": "limits", "squash": False, "lr_schedule": "cosine",
       "sampling": "uniform", "grad_clip": 10.0, "weight_decay": 1e-6}
"""imitari's previous default of each setting the rows switch."""

POLICY_FIELDS = {"obs_norm", "action_norm", "squash", "obs_range_floor"}


def variant(changes: dict) -> dict:
    config = {**ROBOMIMIC, "policy": dict(ROBOMIMIC["policy"])}
    for key, value in changes.items():
        (config["policy"] if key in POLICY_FIELDS else config)[key] = value
    return config


ABLATION: dict[str, dict] = {
    "robomimic settings": variant({}),
    **{f"{key}={value}": variant({key: value}) for key, value in OLD.items()},
    "all old settings": variant(OLD),
    "all old, obs_range_floor=1": variant({**OLD, "obs_range_floor": 1.0}),
}


def _step(ckpt: Path) -> int:
    """The update count of a checkpoint directory (`step_00001000` -> 1000)."""
    return int(ckpt.name.rsplit("_", 1)[1])


def run_row(label: str, config: dict, data: str, run: Path, seed: int, seeds: list[int], threads: int,
            trained_cpu: float | None = None) -> dict:
    """Train one row on one dataset, evaluate its reported checkpoint; the CSV row. A run that a
    killed sweep left with a checkpoint continues from it (with the config it saved); one without
    starts afresh. With `trained_cpu` (CPU-minutes) the run at `run` was trained already: evaluate
    it only."""
    if trained_cpu is None:
        try:
            find_checkpoint(run)
        except CheckpointError:
            shutil.rmtree(run, ignore_errors=True)
            train({**config, "data": data, "out": str(run), "seed": seed, "progress": False, "threads": threads})
        else:
            print(f"resuming {run} from its last checkpoint", flush=True)
            resume(run, {"progress": False, "threads": threads})
        cpu_minutes = round(spent_in(run)[1] / 60, 2)  # the trainer's count, over every call
    else:
        cpu_minutes = trained_cpu
    ckpt = reported_checkpoint(run)
    task = read_checkpoint_config(ckpt)["task"]
    policy = load_policy(ckpt)
    results, _ = evaluate(policy, task, seeds=seeds, num_envs=10, progress=False)
    summary = summarize(results)
    print(f"{task} / {label}: {format_summary(summary)}", flush=True)
    return bench_table.summary_row(
        task, label, summary, seeds=seeds, train_seed=seed, reported_step=_step(ckpt),
        updates=_step(find_checkpoint(run)),
        cpu_minutes=cpu_minutes, params=policy.num_parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="comma-separated imitari datasets")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed-start", type=int, default=2000)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--train-seeds", default="0")
    parser.add_argument("--rows", default=None, help="';'-separated row labels, in order (default: all)")
    parser.add_argument("--rows-file", default=None, help="YAML: label -> train config (instead of the ablation)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--anchors", action="store_true", help="also evaluate the expert and random actions")
    parser.add_argument("--trained", default=None, help="an --out whose trained runs to evaluate instead of training")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = load_file(args.rows_file) if args.rows_file else ABLATION
    out = Path(args.out)
    try:  # one sweep per --out: a second would retrain (rmtree) the runs the first is training
        sweep_lock = lock_out(out, what="sweep")  # noqa: F841 - held until the process exits
    except ConfigError as e:
        raise SystemExit(f"bc_ablation: {e}") from None
    csv_path = out / "results.csv"
    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    done = {(r["task"], r["policy"], r.get("train_seed") or "0") for r in bench_table.read_rows(csv_path)}
    trained = {(r["task"], r["policy"], r.get("train_seed") or "0"): r
               for r in bench_table.read_rows(Path(args.trained) / "results.csv")} if args.trained else {}
    for data in args.data.split(",") if args.anchors else []:
        task = Dataset.open(data).env
        for label, make in ((bench_table.EXPERT, expert_policy), (bench_table.RANDOM, random_policy)):
            if (task, label, "") not in done:
                results, _ = evaluate(make(task), task, seeds=seeds, num_envs=10, progress=False)
                bench_table.append_row(csv_path, bench_table.summary_row(task, label, summarize(results), seeds=seeds))
    for label in args.rows.split(";") if args.rows else list(rows):
        for data in args.data.split(","):
            for seed in map(int, args.train_seeds.split(",")):
                key = (Dataset.open(data).env, label, str(seed))
                if key in done:
                    continue
                run = Path(args.trained or out) / "runs" / Path(data).name / f"{re.sub(r'[^A-Za-z0-9.]+', '_', label)}-s{seed}"
                trained_cpu = None
                if args.trained:
                    if key not in trained:
                        raise SystemExit(f"{args.trained} has no finished run of {label!r} on {key[0]}, seed {seed}")
                    trained_cpu = float(trained[key]["cpu_minutes"])
                bench_table.append_row(csv_path, run_row(label, rows[label], data, run, seed, seeds, args.threads,
                                                         trained_cpu))
    render(csv_path, split_of(seeds))


def render(csv_path: Path, split: str) -> None:
    """`results.md` beside the CSV: one line per (task, row), pooled over training seeds."""
    table = bench_table.markdown(bench_table.read_rows(csv_path), split=split)
    csv_path.with_suffix(".md").write_text(f"# {csv_path.stem}\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
