"""Minari (HDF5) <-> imitari: import (schema fixture with a Box space; Minari-written with a Dict
space where its peer venv has jax), export read back by imitari and by MinariDataset."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from format_fixtures import assert_same, peer_python, run_peer

from imitari.data.formats import FormatError, convert, detect
from imitari.data.store import Dataset


def _write_box_minari(src: Dataset, root: Path) -> None:
    """`src` as Minari's HDF5 storage holds a Box-observation dataset: N+1 observations, infos, seeds."""
    (root / "data").mkdir(parents=True)
    with h5py.File(root / "data/main_data.hdf5", "w") as f:
        for i in range(src.n_episodes):
            ep, g = src.episode(i), f.create_group(f"episode_{i}")
            n = len(ep["action"])
            g.attrs.update({"id": i, "total_steps": n, "seed": 100 + i})
            g["observations"] = np.concatenate([ep["obs.state"], ep["obs.state"][-1:] + 1])
            g["actions"], g["rewards"] = ep["action"], ep["reward"].astype(np.float64)
            g["terminations"], g["truncations"] = np.arange(n) == n - 1, np.zeros(n, bool)
            g["infos/success"] = np.arange(n + 1) == n
    box = {"type": "Box", "dtype": "float32", "shape": [4], "low": [-9.0] * 4, "high": [9.0] * 4}
    meta = {"dataset_id": root.name, "total_episodes": src.n_episodes, "total_steps": src.n_steps, "data_format": "hdf5",
            "observation_space": json.dumps(box), "minari_version": "0.5.4", "env_spec": json.dumps({"id": "builtin/reach"}),
            "action_space": json.dumps({**box, "shape": [2], "low": [-1.0] * 2, "high": [1.0] * 2})}
    (root / "data/metadata.json").write_text(json.dumps(meta))


def test_import_of_a_box_space_dataset(reach_dataset: Path, tmp_path: Path) -> None:
    src = Dataset.open(reach_dataset)
    _write_box_minari(src, tmp_path / "reach-v0")
    assert detect(tmp_path / "reach-v0") == detect(tmp_path / "reach-v0/data/main_data.hdf5") == "minari"
    done = convert(tmp_path / "reach-v0", tmp_path / "ds", to="imitari")
    ds = Dataset.open(tmp_path / "ds")
    assert ds.features == {"obs.state": ((4,), "float32"), "action": ((2,), "float32"), "reward": ((), "float64"),
                           "terminated": ((), "bool"), "truncated": ((), "bool")}
    np.testing.assert_array_equal(ds.arrays()["obs.state"], src.arrays()["obs.state"])
    assert ds.episode_seeds == [100 + i for i in range(30)] and ds.env == "builtin/reach"
    assert any("final row" in w for w in done.warnings) and any("infos (success)" in w for w in done.warnings)


def test_round_trip_through_minari_is_lossless_and_minari_reads_it(reach_dataset: Path, tmp_path: Path) -> None:
    done = convert(reach_dataset, tmp_path / "reach-v0", to="minari")
    assert len(done.warnings) == 1 and "observation after" in done.warnings[0]
    convert(tmp_path / "reach-v0", tmp_path / "back", to="imitari")
    src = Dataset.open(reach_dataset)
    assert_same(src, Dataset.open(tmp_path / "back"))
    python = peer_python("minari")
    if python is None:
        pytest.skip("no minari peer venv")
    seen = run_peer(python, "peer_minari.py", "read", tmp_path / "reach-v0")
    assert (seen["episodes"], seen["steps"], seen["id"], seen["obs_keys"]) == (30, src.n_steps, "reach-v0", ["state"])
    n = src.episode_ends[0]
    assert seen["obs_rows"] == n + 1 and seen["terminations"] == [False] * (n - 1) + [True]
    np.testing.assert_allclose(seen["actions"], src.episode(0)["action"])


def test_a_dict_space_dataset_written_by_minari_imports(tmp_path: Path) -> None:
    python = peer_python("minari")
    if python is None:
        pytest.skip("no minari peer venv")
    try:
        run_peer(python, "peer_minari.py", "write", tmp_path, "dot-v0")
    except AssertionError as e:
        if "jax is not installed" in str(e):
            pytest.skip("the minari peer venv lacks jax (minari[create]) for its DataCollector")
        raise
    convert(tmp_path / "dot-v0", tmp_path / "ds", to="imitari")
    ds = Dataset.open(tmp_path / "ds")
    assert set(ds.features) == {"obs.goal", "obs.pos", "action", "reward", "terminated", "truncated"}
    assert ds.n_episodes == 4 and ds.episode_seeds == [0, 1, 2, 3]
    pos, act = ds.episode(0)["obs.pos"], ds.episode(0)["action"]
    np.testing.assert_allclose(pos[1:], pos[:-1] + act[:-1], rtol=1e-5)  # rows line up: obs t, action t


def test_bad_minari_input_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "x-v0/data").mkdir(parents=True)
    with h5py.File(tmp_path / "x-v0/data/main_data.hdf5", "w") as f:
        f.create_group("episode_0")
    (tmp_path / "x-v0/data/metadata.json").write_text("{}")
    with pytest.raises(FormatError, match="not a readable Minari dataset"):
        convert(tmp_path / "x-v0", tmp_path / "o", to="imitari")
