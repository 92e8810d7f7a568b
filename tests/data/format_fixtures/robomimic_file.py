"""A robomimic HDF5 file written to robomimic's documented schema (as its own datasets are)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from imitari.data.store import Dataset


def write_robomimic(src: Dataset, path: Path, *, env_name: str = "builtin/reach") -> None:
    """Demos of `src` as robomimic holds them: float64 obs, next_obs with the true final observation,
    int64 dones, simulator `states`, robosuite-style `model_file`, masks of byte strings."""
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        for i in range(src.n_episodes):
            ep = src.episode(i)
            obs = ep["obs.state"].astype(np.float64)
            demo = data.create_group(f"demo_{i}")
            demo.attrs["num_samples"] = len(obs)
            demo.attrs["model_file"] = "<mujoco model='reach'/>"
            demo.create_dataset("obs/state", data=obs)
            demo.create_dataset("next_obs/state", data=np.concatenate([obs[1:], obs[-1:] + 0.01]))
            demo.create_dataset("actions", data=ep["action"].astype(np.float64))
            demo.create_dataset("rewards", data=ep["reward"].astype(np.float64))
            demo.create_dataset("dones", data=(np.arange(len(obs)) == len(obs) - 1).astype(np.int64))
            demo.create_dataset("states", data=np.concatenate([obs, obs[:, :1]], axis=1))
        data.attrs["total"] = src.n_steps
        data.attrs["env_args"] = json.dumps({"env_name": env_name, "type": 2, "env_kwargs": {"render": False}})
        ids = list(range(src.n_episodes))
        f.create_dataset("mask/train", data=np.array([f"demo_{i}".encode() for i in ids[:-3]]))
        f.create_dataset("mask/valid", data=np.array([f"demo_{i}".encode() for i in ids[-3:]]))
