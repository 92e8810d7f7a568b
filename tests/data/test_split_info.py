"""Train/valid splits and the dataset summary behind `imitari data info`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imitari.data.info import dataset_summary, format_summary
from imitari.data.split import split_episodes, write_split
from imitari.data.store import Dataset, DatasetError

FEATURES = {"obs.state": ((2,), "float32"), "action": ((1,), "float32")}


def _dataset(path: Path, infos: list[dict]) -> Dataset:
    ds = Dataset.create(path, features=FEATURES, env="builtin/reach", fps=20.0)
    for i, info in enumerate(infos):
        t = np.arange(2 + i, dtype=np.float32)
        ds.append_episode({"obs.state": np.stack([t, -t], axis=1), "action": t[:, None] * 0 + i}, info=info)
    return ds


@pytest.mark.parametrize("n", [2, 3, 10, 57])
@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5, 0.9])
def test_split_is_a_deterministic_partition(n: int, fraction: float) -> None:
    train, val = split_episodes(n, val_fraction=fraction, seed=7)
    assert (train, val) == split_episodes(n, val_fraction=fraction, seed=7)
    assert sorted(train + val) == list(range(n)) and train == sorted(train) and val == sorted(val)
    assert 1 <= len(val) <= n - 1
    assert len(val) == min(max(round(n * fraction), 1), n - 1)


def test_split_edge_cases() -> None:
    assert split_episodes(1, val_fraction=0.5, seed=0) == ([0], [])
    assert split_episodes(5, val_fraction=0.0, seed=0) == ([0, 1, 2, 3, 4], [])
    assert split_episodes(100, val_fraction=0.2, seed=0) != split_episodes(100, val_fraction=0.2, seed=1)
    with pytest.raises(DatasetError, match="at least one episode"):
        split_episodes(0, val_fraction=0.1, seed=0)
    with pytest.raises(ValueError, match="val_fraction"):
        split_episodes(5, val_fraction=1.0, seed=0)


def test_write_split_persists(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "d", [{"seed": i} for i in range(10)])
    train, val = write_split(ds, val_fraction=0.2, seed=3)
    assert Dataset.open(tmp_path / "d").filter_keys == {"train": train, "valid": val}
    assert len(val) == 2


def test_summary_content_and_text(tmp_path: Path) -> None:
    infos = [
        {"seed": 0, "success": True, "source": "expert"},
        {"seed": 1, "success": False, "source": "expert"},
        {"seed": 2, "success": True, "source": "human"},
        {"seed": 3},
    ]
    ds = _dataset(tmp_path / "d", infos)
    ds.set_filter_key("train", [0, 1, 2])
    summary = dataset_summary(ds)
    json.dumps(summary)  # the learner stores it as JSON
    assert summary["env"] == "builtin/reach" and summary["episodes"] == 4 and summary["steps"] == 2 + 3 + 4 + 5
    assert summary["episode_length"] == {"min": 2, "mean": 3.5, "max": 5}
    assert summary["success"] == {"episodes_with_info": 3, "rate": pytest.approx(2 / 3)}
    assert summary["sources"] == {"expert": 2, "human": 1, "unknown": 1}
    assert summary["filter_keys"] == {"train": 3}
    action = summary["features"]["action"]
    assert action["shape"] == [1] and action["dtype"] == "float32"
    assert action["stats"]["min"] == 0.0 and action["stats"]["max"] == 3.0
    assert summary["features"]["obs.state"]["stats"]["min"] == -4.0

    text = format_summary(summary)
    for fragment in ["builtin/reach", "episodes  4", "steps 14", "66.7% of the 3 episodes", "expert (2)",
                     "train (3)", "obs.state", "float32"]:
        assert fragment in text, fragment


def test_summary_of_an_empty_dataset(tmp_path: Path) -> None:
    summary = dataset_summary(_dataset(tmp_path / "d", []))
    assert summary["episodes"] == 0 and summary["episode_length"] is None
    assert "stats" not in summary["features"]["action"]
    assert "success   not recorded" in format_summary(summary)
