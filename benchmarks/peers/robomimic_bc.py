"""robomimic 0.3.0's BC, trained by robomimic's own train.py on an imitari dataset, evaluated on
imitari's env with the same seeds as imitari's policies.

Run it with the peer venv's python (made by `benchmarks/peers/robomimic_venv.sh`):

    ~/.cache/imitari-peers/robomimic/bin/python benchmarks/peers/robomimic_bc.py \\
        --data data/shelf-place --out results/peers/robomimic_bc/shelf-place --seed-start 1000

What it does: writes the demos as a robomimic HDF5 file (`imitari data convert --to robomimic`:
`data/demo_i/{obs/state, next_obs/state, actions, rewards, dones}`), writes a
config from robomimic's own `config_factory("bc")` defaults (MLP 1024x1024, L2 loss, Adam 1e-4
constant, batch 100, 100 steps per epoch, no observation normalisation) with only the run
length, the output folder, the seed and the observation key changed, trains with
`python -m robomimic.scripts.train`, loads the last checkpoint with robomimic's
`policy_from_checkpoint` and rolls its `RolloutPolicy` out in `imitari.eval.rollout.evaluate`.
What differs from robomimic's own runs: rollouts during training are off (robomimic would keep
the checkpoint with the best rollout success on its own rollout seeds; here the last one is
evaluated, as for imitari's rows), and the env is imitari's Meta-World wrapper (terminate at
success, 500 steps), not a robomimic env class. Rows are appended to `<out>/results.csv`; a
finished (training seed, evaluation seeds) is skipped on rerun, and a trained run is reused, so
`--seed-start 2000` then `--seed-start 1000` on one `--out` evaluates one run on both ranges.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np


def write_hdf5(data_dir: str, path: Path) -> str:
    """The imitari dataset as a robomimic HDF5 file (`imitari.data.formats.robomimic`); its task."""
    from imitari.data.formats import robomimic
    from imitari.data.store import Dataset

    ds = Dataset.open(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # derived from the dataset: rewrite it
    robomimic.write(ds, path)
    return ds.env


def write_config(hdf5: Path, run_root: Path, *, steps: int, seed: int) -> Path:
    from robomimic.config import config_factory

    config = config_factory("bc")
    with config.values_unlocked():
        config.experiment.name = f"seed{seed}"
        config.experiment.validate = False
        config.experiment.logging.log_tb = False
        config.experiment.rollout.enabled = False
        config.experiment.render_video = False
        config.experiment.save.every_n_epochs = steps // config.experiment.epoch_every_n_steps
        config.train.data = str(hdf5)
        config.train.output_dir = str(run_root)
        config.train.num_epochs = steps // config.experiment.epoch_every_n_steps
        config.train.seed = seed
        config.train.cuda = False
        config.observation.modalities.obs.low_dim = ["state"]
    path = run_root / f"config_seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    return path


class RobomimicPolicy:
    """robomimic's RolloutPolicy behind the batch `act`/`reset` that imitari's rollouts call."""

    def __init__(self, ckpt: Path) -> None:
        import robomimic.utils.file_utils as FileUtils

        self.policy, _ = FileUtils.policy_from_checkpoint(ckpt_path=str(ckpt), device="cpu")
        self.policy.start_episode()

    def reset(self, env_ids=None) -> None:
        self.policy.start_episode()  # BC-MLP keeps no state between steps

    def act(self, obs: dict) -> np.ndarray:
        return np.stack([self.policy({"state": row}) for row in obs["state"]]).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="an imitari dataset")
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--train-seeds", default="1", help="robomimic's default seed is 1")
    parser.add_argument("--seed-start", type=int, default=1000)
    parser.add_argument("--episodes", type=int, default=50)
    args = parser.parse_args()
    from imitari import bench_table
    from imitari.eval.metrics import format_summary, summarize
    from imitari.eval.rollout import evaluate

    out = Path(args.out)
    task = write_hdf5(args.data, out / "demos.hdf5")
    csv_path = out / "results.csv"
    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    split = f"{seeds[0]}-{seeds[-1]}"  # one trained run is evaluated on each seed range asked for
    done = {(r["policy"], r.get("train_seed") or "", r.get("eval_seeds") or "") for r in bench_table.read_rows(csv_path)}
    for seed in map(int, args.train_seeds.split(",")):
        label = "robomimic bc"
        if (label, str(seed), split) in done:
            continue
        run_root = out / "runs"
        config = write_config(out / "demos.hdf5", run_root, steps=args.steps, seed=seed)
        run_dir = run_root / f"seed{seed}"
        final = list(run_dir.glob(f"*/models/model_epoch_{args.steps // 100}.pth"))
        cpu_file = run_dir / "cpu_minutes.txt"
        if not final:  # train afresh (robomimic's train.py cannot resume)
            shutil.rmtree(run_dir, ignore_errors=True)  # train.py asks on stdin before overwriting
            before = os.times()
            child = subprocess.run([sys.executable, "-m", "robomimic.scripts.train", "--config", str(config)],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)
            if child.returncode != 0:
                raise SystemExit(f"robomimic train.py failed: {child.stderr.strip().splitlines()[-1:]}")
            after = os.times()
            used = (after.children_user + after.children_system - before.children_user - before.children_system) / 60
            cpu_file.write_text(f"{used:.2f}\n")
            final = list(run_dir.glob(f"*/models/model_epoch_{args.steps // 100}.pth"))
        cpu_minutes = float(cpu_file.read_text()) if cpu_file.is_file() else float("nan")  # nan: not recorded
        policy = RobomimicPolicy(final[0])
        results, _ = evaluate(policy, task, seeds=seeds, num_envs=10, progress=False)
        summary = summarize(results)
        bench_table.append_row(csv_path, bench_table.summary_row(
            task, label, summary, seeds=seeds, train_seed=seed, updates=args.steps,
            cpu_minutes=round(cpu_minutes, 2)))
        print(f"{label}: {format_summary(summary)} (trained in {cpu_minutes:.1f} CPU-minutes)", flush=True)


if __name__ == "__main__":
    main()
