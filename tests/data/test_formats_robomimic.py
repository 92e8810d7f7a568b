"""robomimic HDF5 <-> imitari: import (schema fixture), train and evaluate on it, export read back
by imitari and by robomimic 0.3.0's own SequenceDataset (where its peer venv exists)."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from format_fixtures import assert_same, peer_python, run_peer, train_and_eval
from format_fixtures.robomimic_file import write_robomimic

from imitari.cli import main
from imitari.data.formats import FormatError, convert, detect
from imitari.data.store import Dataset


@pytest.fixture()
def reach_copy(reach_dataset: Path, tmp_path: Path) -> Path:
    """A copy of the shared reach dataset that a test may give filter keys."""
    shutil.copytree(reach_dataset, tmp_path / "reach")
    return tmp_path / "reach"


@pytest.fixture()
def robomimic_file(reach_dataset: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demos.hdf5"
    write_robomimic(Dataset.open(reach_dataset), path)
    return path


def test_import_keeps_everything_robomimic_holds_and_names_the_rest(robomimic_file: Path, reach_dataset: Path,
                                                                    tmp_path: Path) -> None:
    assert detect(robomimic_file) == "robomimic"
    done = convert(robomimic_file, tmp_path / "ds", to="imitari")
    ds, src = Dataset.open(tmp_path / "ds"), Dataset.open(reach_dataset)
    assert ds.env == "builtin/reach" and ds.n_episodes == src.n_episodes == done.episodes
    assert ds.features == {"obs.state": ((4,), "float64"), "action": ((2,), "float64"), "reward": ((), "float64"),
                           "done": ((), "int64"), "states": ((5,), "float64")}
    np.testing.assert_array_equal(ds.arrays()["obs.state"], src.arrays()["obs.state"].astype(np.float64))
    np.testing.assert_array_equal(ds.arrays()["action"], src.arrays()["action"].astype(np.float64))
    assert ds.filter_keys == {"train": list(range(27)), "valid": [27, 28, 29]}
    assert ds.episode_ends == src.episode_ends and ds.arrays()["done"][np.array(ds.episode_ends) - 1].all()
    assert any("next_obs" in w for w in done.warnings)  # its final rows differ: named, not dropped silently
    assert any("model_file" in w for w in done.warnings)


def test_imported_dataset_trains_and_evaluates(robomimic_file: Path, tmp_path: Path, capsys) -> None:
    assert main(["data", "convert", str(robomimic_file), str(tmp_path / "ds"), "--to", "imitari"]) == 0
    assert "warning: next_obs" in capsys.readouterr().err
    result = train_and_eval(tmp_path / "ds", tmp_path, capsys)
    assert result["summary"]["n"] == 4 and result["meta"]["task"] == "builtin/reach"


def test_round_trip_through_robomimic_is_lossless(reach_copy: Path, tmp_path: Path) -> None:
    with Dataset.open(reach_copy, writer=True) as ds:
        ds.set_filter_keys({"train": list(range(25)), "valid": [25, 26, 29]})
    done = convert(reach_copy, tmp_path / "x.hdf5", to="robomimic")
    assert len(done.warnings) == 1 and "next_obs" in done.warnings[0]
    with h5py.File(tmp_path / "x.hdf5") as f:
        assert f["data"].attrs["total"] == done.steps
        assert [n.decode() for n in f["mask/valid"][()]] == ["demo_25", "demo_26", "demo_29"]
        demo = f["data/demo_3"]
        assert demo.attrs["num_samples"] == len(demo["actions"]) and demo["dones"][-1] == 1
    back = convert(tmp_path / "x.hdf5", tmp_path / "back", to="imitari")
    assert back.warnings == ()  # next_obs held nothing new; the sidecar restored the rest
    assert_same(Dataset.open(reach_copy), Dataset.open(tmp_path / "back"))


def test_robomimic_own_loader_reads_the_export(reach_copy: Path, tmp_path: Path) -> None:
    python = peer_python("robomimic")
    if python is None:
        pytest.skip("no robomimic peer venv (bash benchmarks/peers/robomimic_venv.sh makes one)")
    with Dataset.open(reach_copy, writer=True) as ds:
        ds.set_filter_keys({"valid": [2, 5]})
    convert(reach_copy, tmp_path / "x.hdf5", to="robomimic")
    seen = run_peer(python, "peer_robomimic.py", tmp_path / "x.hdf5", "state", "valid")
    ds = Dataset.open(reach_copy)
    assert seen["samples"] == ds.n_steps and len(seen["demos"]) == ds.n_episodes
    assert seen["filter_demos"] == ["demo_2", "demo_5"] and seen["env_name"] == "builtin/reach"
    assert (seen["action_dim"], seen["obs_shape"]) == (2, [4])
    np.testing.assert_allclose(seen["obs0"], ds.arrays()["obs.state"][0])
    np.testing.assert_allclose(seen["next_obs0"], ds.arrays()["obs.state"][1])
    np.testing.assert_allclose(seen["action0"], ds.arrays()["action"][0])


def test_bad_inputs_are_one_line_errors(tmp_path: Path, reach_dataset: Path, capsys) -> None:
    bad = tmp_path / "bad.hdf5"
    with h5py.File(bad, "w") as f:
        f.create_group("data/demo_0/obs").create_dataset("state", data=np.zeros((3, 2)))
    with pytest.raises(FormatError, match="no 'actions'"):
        convert(bad, tmp_path / "out", to="imitari")
    assert not (tmp_path / "out").exists()  # nothing half-written
    (tmp_path / "junk.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    assert main(["data", "convert", str(tmp_path / "junk.hdf5"), str(tmp_path / "o"), "--to", "imitari"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a readable robomimic dataset" in err
    assert main(["data", "convert", str(reach_dataset), str(tmp_path), "--to", "robomimic"]) == 2
    assert "already exists" in capsys.readouterr().err
