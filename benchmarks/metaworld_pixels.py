"""Policies on Meta-World from 84x84 pixels only, next to the same policy from state (docs/images.md).

    MUJOCO_GL=osmesa python benchmarks/metaworld_pixels.py --tasks push,pick-place --policies bc,diffusion:denoiser=mlp \
        --out runs/mw_pixels

For each task: `imitari collect` 50 demos (seeds 0-49) of `metaworld/TASK` and of
`metaworld/TASK:pixels` (the camera frame only; the scripted expert acts on the state the
variant keeps out of the dataset), then for each policy `imitari train --policy NAME` for 5,000
updates on each (batch 256 from state, 64 from pixels: the CNN's cost) into
`runs/NAME/TASK-KIND`, and `imitari eval` on the 50 test seeds 1000-1049. The settings are the
policies' defaults, not tuned for pixels. Each step resumes or is skipped when done; the table
(`results/images/metaworld_pixels.{csv,md}` by default) is rewritten from every evaluated run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

UPDATES = 5000
BATCH = {"state": 256, "pixels": 64}


def imitari(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "imitari", *args], check=True)


def run_task(task: str, policy: str, out: Path) -> None:
    """`policy` is a bench spec, NAME[:field=value...] (e.g. diffusion:denoiser=mlp)."""
    from imitari.bench import parse_spec

    spec = parse_spec(policy)  # validates the fields before any work
    options = [arg for key, value in spec.fields.items() for arg in (f"--policy.{key}", str(value))]
    for kind, suffix in (("state", ""), ("pixels", ":pixels")):
        data, run = out / "data" / f"{task}-{kind}", out / "runs" / policy.replace(":", "__") / f"{task}-{kind}"
        imitari("collect", "--env", f"metaworld/{task}{suffix}", "--episodes", "50", "--out", str(data), "--workers", "1")
        if not (run / "config.json").is_file():
            imitari("train", "--policy", spec.name, *options, "--data", str(data), "--steps", str(UPDATES), "--batch-size",
                    str(BATCH[kind]), "--threads", "1", "--out", str(run), "--progress", "false")
        elif not (run / "checkpoints" / f"step_{UPDATES:08d}").is_dir():
            imitari("train", "--resume", str(run), "--progress", "false")
        if not list((run / "eval").glob(f"step_{UPDATES:08d}.json")):
            imitari("eval", str(run), "--episodes", "50", "--seed-start", "1000", "--workers", "1", "--num-envs", "10")


def table(out: Path, results: Path) -> str:
    from imitari.learners.checkpoint import load_train_state
    from imitari.policies.loading import find_checkpoint

    lines = ["| task | policy | observation | success (test seeds 1000-1049) | 95% CI | updates x batch "
             "| training CPU-min |", "|---|---|---|---|---|---|---|"]
    rows = []
    for run in sorted((out / "runs").glob("*/*")):
        evals = sorted((run / "eval").glob("step_*.json"))
        if not evals:
            continue
        s = json.loads(evals[-1].read_text())["summary"]
        cfg = json.loads((run / "config.json").read_text())
        cpu = load_train_state(find_checkpoint(run))["cpu_seconds"] / 60
        task, kind = run.name.rsplit("-", 1)
        policy = run.parent.name.replace("__", ":")
        rows.append(f"{task},{policy},{kind},{s['successes']},{s['n']},{s['ci_low']:.4f},{s['ci_high']:.4f},{cfg['steps']},"
                    f"{cfg['batch_size']},{cpu:.2f}")
        obs = "84x84 camera only" if kind == "pixels" else "39-D state"
        lines.append(f"| {task} | `{policy}` | {obs} | {s['successes']}/{s['n']} = {100 * s['success_rate']:.0f}% | "
                     f"{100 * s['ci_low']:.0f}-{100 * s['ci_high']:.0f}% | {cfg['steps']} x {cfg['batch_size']} | {cpu:.2f} |")
    results.mkdir(parents=True, exist_ok=True)
    (results / "metaworld_pixels.csv").write_text(
        "task,policy,observation,successes,episodes,ci_low,ci_high,updates,batch,cpu_minutes\n" + "\n".join(rows) + "\n")
    text = "\n".join(lines)
    (results / "metaworld_pixels.md").write_text(
        "# Meta-World from 84x84 pixels vs from state (50 demos, seeds 0-49)\n\n"
        "`MUJOCO_GL=osmesa python benchmarks/metaworld_pixels.py --policies bc,diffusion:denoiser=mlp` (docs/images.md); "
        "the policies' defaults, 5,000 updates.\n\n"
        + text + "\n")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="push,pick-place")
    parser.add_argument("--policies", default="bc,diffusion:denoiser=mlp", help="comma-separated bench specs")
    parser.add_argument("--out", default="runs/mw_pixels")
    parser.add_argument("--results", default="results/images")
    args = parser.parse_args()
    out = Path(args.out)
    for policy in args.policies.split(","):
        for task in args.tasks.split(","):
            run_task(task, policy, out)
    print(table(out, Path(args.results)))


if __name__ == "__main__":
    main()
