"""Shared pieces of the format tests: dataset comparison, a tiny train + eval, peer-library runs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np

from imitari.cli import main
from imitari.data.store import Dataset

HERE = Path(__file__).parent


def assert_same(a: Dataset, b: Dataset) -> None:
    """Everything an imitari dataset holds is equal in `a` and `b`."""
    assert a.features == b.features
    assert a.episode_ends == b.episode_ends
    assert a.episode_info == b.episode_info
    assert a.filter_keys == b.filter_keys
    assert (a.env, a.fps) == (b.env, b.fps)
    for name in a.features:
        np.testing.assert_array_equal(a.arrays()[name], b.arrays()[name], err_msg=name)


def train_and_eval(data: Path, tmp: Path, capsys) -> dict:
    """Train a tiny diffusion policy (MLP denoiser) on `data`, evaluate it on its registered env;
    the eval JSON."""
    run = tmp / "run"
    assert main(["train", "--policy", "diffusion", "--policy.denoiser", "mlp", "--data", str(data), "--out", str(run), "--steps", "150",
                 "--batch-size", "32", "--progress", "false"]) == 0
    assert main(["eval", str(run), "--episodes", "4", "--num-envs", "2", "--workers", "1"]) == 0
    capsys.readouterr()
    (result,) = (run / "eval").glob("*.json")
    return json.loads(result.read_text())


def peer_python(name: str) -> Path | None:
    """The python of the peer venv for library `name` (benchmarks/peers/), if it exists here."""
    for root in (os.environ.get(f"IMITARI_PEER_{name.upper()}"), Path.home() / ".cache/imitari-peers" / name,
                 Path("/work/peers") / name):
        if root and (Path(root) / "bin/python").is_file():
            return Path(root) / "bin/python"
    return None


def run_peer(python: Path, script: str, *args: str) -> dict:
    """Run format_fixtures/`script` with a peer venv's python; the JSON it prints last."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PYTHONPATH"] = str(HERE.parents[2] / "src")  # imitari's own code, for scripts that read its datasets
    done = subprocess.run([str(python), str(HERE / script), *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=HERE)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
