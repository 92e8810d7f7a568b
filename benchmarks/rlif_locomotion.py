"""RLIF against DAgger and HG-DAgger with a suboptimal expert on a locomotion task (docs/interactive.md).

    python benchmarks/rlif_locomotion.py --expert-run runs/hopper-sac [--task mujoco/hopper] \
        [--seeds 0,1,2] [--out runs/rlif_locomotion]

The suboptimal expert is an imitari SAC run's latest checkpoint (one trained for a fraction of
what the shipped expert had): it gives the demonstrations, labels DAgger's states, takes over in
HG-DAgger and RLIF, and its twin critic is RLIF's Q_ref (the paper's value rule). Every method
starts from the same `--demos` episodes of it. Learning curves: normalised return (random
actions 0, the task's shipped expert 1, both measured here on the same test seeds) against the
env steps each method played, on `--eval-episodes` test seeds (1000 up) per point:
* RLIF: SAC on intervention rewards only (demos in a second buffer), evaluated at `--points`
  updates (the run resumes from one point to the next); `--terminal-reward R` runs the variant
  whose falls also cost R (method `rlif terminal=R`);
* DAgger and HG-DAgger: the policy of each round, at the env steps played up to it.
One CSV row per (method, seed, point) in OUT/curves.csv; a rerun skips the rows it has and
resumes unfinished runs. Writes OUT/curves.md and OUT/curves.png.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

FIELDS = ["method", "seed", "env_steps", "updates", "cpu_minutes", "mean_return", "normalised", "takeovers_per_episode"]
ANCHORS = ("random", "expert", "suboptimal expert")


def returns(actor, task: str, seeds: list[int]) -> float:
    from imitari.eval.rollout import episode_returns

    return statistics.fmean(episode_returns(actor, task, seeds))


def rows_of(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open())) if path.is_file() else []


def append(path: Path, row: dict) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in FIELDS})
    print(" ".join(f"{k}={row.get(k, '')}" for k in FIELDS), flush=True)


def cpu_minutes(run: Path) -> float:
    """Process CPU minutes a run's training spent (its checkpoints' budget record)."""
    from imitari.bench import spent_in

    return spent_in(run)[1] / 60


def replay_steps(run: Path) -> int:
    """Env steps an online run had played at its latest checkpoint: its replay store's episodes then."""
    from imitari.data.store import Dataset
    from imitari.learners.checkpoint import load_train_state
    from imitari.policies.loading import find_checkpoint

    episodes = int(load_train_state(find_checkpoint(run))["replay_episodes"])
    with Dataset.open(run / "replay") as ds:
        return int(sum(info["length"] for info in ds.episode_info[:episodes]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--expert-run", required=True, help="an imitari SAC run of the task: the suboptimal expert")
    p.add_argument("--task", default="mujoco/hopper")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--demos", type=int, default=4)
    p.add_argument("--points", default="5000,10000,20000,30000", help="RLIF's evaluation points (env steps)")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--episodes-per-round", type=int, default=5)
    p.add_argument("--round-updates", type=int, default=3000, help="DAgger/HG-DAgger updates per round")
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--terminal-reward", type=float, default=0.0,
                   help="RLIF's reward on a fall (the paper: 0); nonzero runs a variant, method 'rlif terminal=R'")
    p.add_argument("--methods", default="dagger,hg_dagger,rlif", help="which of dagger, hg_dagger, rlif to run")
    p.add_argument("--out", default="runs/rlif_locomotion")
    args = p.parse_args()

    from imitari.envs.experts import ExpertPolicy, load_expert, random_policy
    from imitari.envs.collect import collect
    from imitari.learners.checkpoint import reported_checkpoint
    from imitari.learners.loop import resume, train
    from imitari.policies.loading import find_checkpoint, load_policy

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = out / "curves.csv"
    done = {(r["method"], r["seed"], r["updates"]) for r in rows_of(table)}  # a point is its updates
    seeds = list(range(1000, 1000 + args.eval_episodes))
    teacher = str(find_checkpoint(args.expert_run))  # its latest: the one whose critic judges
    anchors = {r["method"]: float(r["mean_return"]) for r in rows_of(table) if r["method"] in ANCHORS}
    for name, make in zip(ANCHORS, (lambda: random_policy(args.task), lambda: ExpertPolicy(args.task),
                                    lambda: load_expert(args.task, teacher))):
        if name not in anchors:
            anchors[name] = returns(make(), args.task, seeds)
            append(table, {"method": name, "mean_return": round(anchors[name], 1)})
    low, high = anchors["random"], anchors["expert"]

    def point(method: str, seed: int, env_steps: int, policy_dir: Path, cpu: float, **extra) -> None:
        value = returns(load_policy(policy_dir).eval(), args.task, seeds)
        append(table, {"method": method, "seed": seed, "env_steps": env_steps, "cpu_minutes": round(cpu, 2),
                       "mean_return": round(value, 1), "normalised": round((value - low) / (high - low), 3), **extra})

    demos = out / "demos"
    print(collect(args.task, demos, episodes=args.demos, workers=1, progress=False, expert=teacher))
    common = {"threads": 1, "progress": False}
    for seed in [int(s) for s in args.seeds.split(",")]:
        for learner in [m for m in ("dagger", "hg_dagger") if m in args.methods.split(",")]:
            run = out / f"{learner}_seed{seed}"
            if (run / "config.json").exists():
                resume(run)
            else:
                train({**common, "data": str(demos), "out": str(run), "learner": learner, "seed": seed,
                       "policy": {"name": "tanh_gaussian"}, "steps": args.round_updates,
                       "ckpt_every": args.round_updates,
                       "learner_config": {"expert": teacher, "rounds": args.rounds,
                                          "episodes_per_round": args.episodes_per_round, "warm_start": True}})
            played, cpu = 0, 0.0
            for record in json.loads((run / "rounds.json").read_text()):
                round_dir = run / "rounds" / f"round_{record['round']}"
                played, cpu = played + record["env_steps"], cpu + cpu_minutes(round_dir)
                if (learner, str(seed), str(args.round_updates * (record["round"] + 1))) not in done:
                    point(learner, seed, played, reported_checkpoint(round_dir), cpu,
                          updates=args.round_updates * (record["round"] + 1))
        if "rlif" not in args.methods.split(","):
            continue
        method = "rlif" if args.terminal_reward == 0 else f"rlif terminal={args.terminal_reward:g}"
        run = out / f"{method.replace(' ', '_')}_seed{seed}"
        lc = {"rule": "value", "reference": teacher, "expert": teacher, "learning_starts": 1000,
              "init_temperature": 0.1, "terminal_reward": args.terminal_reward}
        for target in [int(s) for s in args.points.split(",")]:
            if (method, str(seed), str(target)) in done:
                continue
            if (run / "config.json").exists():
                resume(run, {"steps": target})
            else:
                train({**common, "env": args.task, "data": str(demos), "out": str(run), "learner": "rlif",
                       "seed": seed, "steps": target, "ckpt_every": 1000, "learner_config": lc})
            last = [json.loads(line) for line in (run / "metrics.jsonl").open() if '"rollout/takeovers"' in line][-1]
            point(method, seed, replay_steps(run), find_checkpoint(run), cpu_minutes(run), updates=target,
                  takeovers_per_episode=round(last["rollout/takeovers"], 2))
    write_report(out, anchors)


def write_report(out: Path, anchors: dict[str, float]) -> None:
    """curves.md (one line per method and point, over the seeds) and curves.png."""
    by: dict[str, dict[int, list[dict[str, str]]]] = {}
    for r in rows_of(out / "curves.csv"):
        if r["method"] not in ANCHORS:
            by.setdefault(r["method"], {}).setdefault(int(r["updates"]), []).append(r)

    def mean(rows: list[dict[str, str]], key: str) -> float:
        return statistics.fmean(float(r[key]) for r in rows)

    lines = ["| method | updates | env steps played (mean) | seeds | normalised return (mean, min-max) | mean return "
             "| training CPU-min | takeovers per episode |", "|---|---|---|---|---|---|---|---|"]
    for method, points in by.items():
        for updates, rows in sorted(points.items()):
            values = [float(r["normalised"]) for r in rows]
            takeovers = f"{mean(rows, 'takeovers_per_episode'):.1f}" if rows[0]["takeovers_per_episode"] else "-"
            lines.append(f"| {method} | {updates:,} | {mean(rows, 'env_steps'):,.0f} | {len(rows)} | "
                         f"{statistics.fmean(values):.2f} ({min(values):.2f}-{max(values):.2f}) | "
                         f"{mean(rows, 'mean_return'):.0f} | {mean(rows, 'cpu_minutes'):.1f} | {takeovers} |")
    anchor_line = ", ".join(f"{k} {v:.0f}" for k, v in anchors.items())
    (out / "curves.md").write_text(f"Mean returns on the evaluation seeds: {anchor_line}.\n\n" + "\n".join(lines) + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, points in by.items():
        rows = [points[u] for u in sorted(points)]
        ax.plot([mean(r, "env_steps") for r in rows], [mean(r, "normalised") for r in rows], marker="o", label=method)
    sub = (anchors["suboptimal expert"] - anchors["random"]) / (anchors["expert"] - anchors["random"])
    ax.axhline(sub, color="grey", ls="--", label="suboptimal expert")
    ax.axhline(1.0, color="black", ls=":", lw=0.8, label="shipped expert")
    ax.set_xlabel("env steps played (mean over seeds)")
    ax.set_ylabel("normalised return")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=120)
    print(f"wrote {out / 'curves.md'} and {out / 'curves.png'}")


if __name__ == "__main__":
    main()
