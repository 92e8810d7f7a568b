"""LeRobot v3.0 <-> imitari: import (schema fixture; LeRobot-written with video where its peer venv
exists), train and evaluate on it, export read back by imitari and by LeRobotDataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from format_fixtures import assert_same, peer_python, run_peer, train_and_eval
from format_fixtures.lerobot_folder import write_lerobot

from imitari.data.formats import FormatError, convert, detect
from imitari.data.store import Dataset


@pytest.fixture()
def lerobot_folder(reach_dataset: Path, tmp_path: Path) -> Path:
    write_lerobot(Dataset.open(reach_dataset), tmp_path / "lr")
    return tmp_path / "lr"


@pytest.fixture()
def image_dataset(tmp_path: Path) -> Path:
    """Three episodes with a (6, 8, 3) uint8 camera, a (1,)-shaped feature and tasks on two of them."""
    rng = np.random.default_rng(0)
    features = {"obs.state": ((3,), "float32"), "obs.images.top": ((6, 8, 3), "uint8"), "action": ((2,), "float32"),
                "gripper": ((1,), "float64")}
    with Dataset.create(tmp_path / "img", features=features, env="builtin/reach", fps=12.5) as ds:
        for i, n in enumerate([5, 3, 7]):
            steps = {"obs.state": rng.normal(size=(n, 3)), "obs.images.top": rng.integers(0, 256, (n, 6, 8, 3)),
                     "action": rng.normal(size=(n, 2)), "gripper": rng.normal(size=(n, 1))}
            ds.append_episode(steps, info={"seed": i, **({"task": f"task {i}"} if i else {})})
        ds.set_filter_keys({"valid": [0, 2]})
    return tmp_path / "img"


def test_import_keeps_tasks_splits_and_scalars(lerobot_folder: Path, reach_dataset: Path, tmp_path: Path) -> None:
    assert detect(lerobot_folder) == "lerobot"
    done = convert(lerobot_folder, tmp_path / "ds", to="imitari")
    ds, src = Dataset.open(tmp_path / "ds"), Dataset.open(reach_dataset)
    assert ds.features == {"obs.state": ((4,), "float32"), "action": ((2,), "float32"), "reward": ((), "float32"),
                           "done": ((), "bool")}
    assert (ds.env, ds.fps, ds.episode_ends) == ("builtin/reach", 10.0, src.episode_ends)
    for name in ("obs.state", "action", "reward"):
        np.testing.assert_array_equal(ds.arrays()[name], src.arrays()[name])
    assert [i["task"] for i in ds.episode_info[:3]] == ["reach the goal", "reach the goal quickly", "reach the goal"]
    assert ds.filter_keys == {"train": list(range(26)), "valid": [26, 27, 28, 29]}
    assert done.warnings == ("per-dimension feature names are not kept",)


def test_imported_dataset_trains_and_evaluates(lerobot_folder: Path, tmp_path: Path, capsys) -> None:
    convert(lerobot_folder, tmp_path / "ds", to="imitari")
    result = train_and_eval(tmp_path / "ds", tmp_path, capsys)
    assert result["summary"]["n"] == 4 and result["meta"]["task"] == "builtin/reach"


def test_round_trip_keeps_images_tasks_and_shapes(image_dataset: Path, tmp_path: Path) -> None:
    done = convert(image_dataset, tmp_path / "lr", to="lerobot")
    assert any("fps is an integer" in w for w in done.warnings)
    assert any("'valid' is not a range" in w for w in done.warnings)
    info = json.loads((tmp_path / "lr/meta/info.json").read_text())
    assert info["features"]["observation.images.top"]["dtype"] == "image" and info["total_frames"] == 15
    convert(tmp_path / "lr", tmp_path / "back", to="imitari")
    assert_same(Dataset.open(image_dataset), Dataset.open(tmp_path / "back"))


def _lerobot() -> Path:
    python = peer_python("lerobot")
    if python is None:
        pytest.skip("no lerobot peer venv")
    return python


def test_lerobot_dataset_reads_the_export(reach_dataset: Path, tmp_path: Path) -> None:
    python = _lerobot()
    convert(reach_dataset, tmp_path / "lr", to="lerobot")
    seen = run_peer(python, "peer_lerobot.py", "read", tmp_path / "lr")
    src = Dataset.open(reach_dataset)
    assert (seen["episodes"], seen["frames"], seen["fps"], seen["task0"]) == (30, src.n_steps, 10, "builtin/reach")
    np.testing.assert_allclose(seen["state0"], src.arrays()["obs.state"][0])


def test_a_video_dataset_written_by_lerobot_imports(reach_dataset: Path, tmp_path: Path) -> None:
    python, src = _lerobot(), Dataset.open(reach_dataset)
    run_peer(python, "peer_lerobot.py", "write", reach_dataset, tmp_path / "own")
    done = convert(tmp_path / "own", tmp_path / "back", to="imitari")
    ds = Dataset.open(tmp_path / "back")
    assert any("video features" in w for w in done.warnings)
    np.testing.assert_array_equal(ds.arrays()["obs.state"], src.arrays()["obs.state"])
    top = ds.arrays()["obs.images.top"]  # frame t of episode i is a flat grey of (40 i + 8 t) % 256
    want = np.concatenate([(40 * i + 8 * np.arange(n)) % 256 for i, n in enumerate(np.diff([0, *src.episode_ends]))])
    assert top.shape == (src.n_steps, 16, 16, 3) and np.abs(top[:, 8, 8, 0].astype(int) - want).max() <= 3
    assert ds.episode_info[1]["task"] == "reach goal 1"


def test_wrong_version_and_damage_are_one_line_errors(lerobot_folder: Path, tmp_path: Path) -> None:
    info = json.loads((lerobot_folder / "meta/info.json").read_text())
    shutil.copytree(lerobot_folder, tmp_path / "old")
    (tmp_path / "old/meta/info.json").write_text(json.dumps({**info, "codebase_version": "v2.1"}))
    with pytest.raises(FormatError, match="v2.1"):
        convert(tmp_path / "old", tmp_path / "o1", to="imitari")
    (lerobot_folder / "data/chunk-000/file-001.parquet").write_bytes(b"PAR1 not parquet")
    with pytest.raises(FormatError, match="not a readable LeRobot"):
        convert(lerobot_folder, tmp_path / "o2", to="imitari")
    assert not (tmp_path / "o2").exists()
