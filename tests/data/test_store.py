"""The episode store: round trip, validation, corruption detection, crash safety, stats, filter keys."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from imitari.data.store import Dataset, DatasetError

FEATURES = {"obs.state": ((3,), "float32"), "action": ((2,), "float32"), "reward": ((), "float32")}

# Episode contents as a deterministic function of the episode index, shared with the writer
# subprocess of the crash test (which runs this source too).
EPISODE_SRC = """
import numpy as np
def make_episode(i):
    T = 1 + (i * 37) % 150
    base = np.arange(T, dtype=np.float32)[:, None]
    return {"obs.state": base * 3 + np.arange(3, dtype=np.float32) + i,
            "action": base - np.arange(2, dtype=np.float32) * i,
            "reward": np.full(T, i % 5, dtype=np.float32)}
"""
namespace: dict = {}
exec(EPISODE_SRC, namespace)
make_episode = namespace["make_episode"]


def _filled(path: Path, n: int) -> Dataset:
    ds = Dataset.create(path, features=FEATURES, env="builtin/reach", fps=10.0)
    for i in range(n):
        ds.append_episode(make_episode(i), info={"seed": i, "success": i % 2 == 0, "source": "expert"})
    return ds


def _assert_episodes(ds: Dataset, n: int) -> None:
    for i in range(n):
        expected = make_episode(i)
        got = ds.episode(i)
        for name in FEATURES:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=f"episode {i} {name}")


def test_round_trip(tmp_path: Path) -> None:
    ds = _filled(tmp_path / "d", 5)
    again = Dataset.open(tmp_path / "d")
    assert again.n_episodes == 5 and again.env == "builtin/reach" and again.fps == 10.0
    assert again.features == {"obs.state": ((3,), "float32"), "action": ((2,), "float32"), "reward": ((), "float32")}
    lengths = [len(make_episode(i)["reward"]) for i in range(5)]
    assert again.episode_ends == np.cumsum(lengths).tolist() and again.n_steps == sum(lengths)
    assert again.episode_info[3] == {"seed": 3, "success": False, "source": "expert", "length": lengths[3]}
    assert again.episode_seeds == [0, 1, 2, 3, 4]
    arrays = again.arrays()
    for name in FEATURES:
        expected = np.concatenate([make_episode(i)[name] for i in range(5)])
        np.testing.assert_array_equal(arrays[name], expected)
        np.testing.assert_array_equal(ds.arrays()[name], expected)
        assert arrays[name].dtype == np.float32
    assert again.arrays() is arrays  # cached
    _assert_episodes(again, 5)
    with pytest.raises(IndexError):
        again.episode(5)


def test_safe_casts_and_numpy_info(tmp_path: Path) -> None:
    ds = Dataset.create(tmp_path / "d", features={"obs.pixels": ((2, 2), "uint8"), "action": ((1,), "float32")})
    ds.append_episode(
        {"obs.pixels": np.full((4, 2, 2), 7, dtype=np.int64), "action": np.ones((4, 1))},
        info={"seed": np.int64(9), "return": np.float32(1.5)},
    )
    again = Dataset.open(tmp_path / "d")
    assert again.arrays()["obs.pixels"].dtype == np.uint8 and again.episode_info[0]["seed"] == 9
    assert again.episode_seeds == [9] and again.env is None
    with pytest.raises(DatasetError, match="range of uint8"):
        ds.append_episode({"obs.pixels": np.full((1, 2, 2), 300), "action": np.ones((1, 1))})
    with pytest.raises(DatasetError, match="cannot store float64 as uint8"):
        ds.append_episode({"obs.pixels": np.ones((1, 2, 2)), "action": np.ones((1, 1))})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e["obs.state"].__setitem__((4, 1), np.nan), r"'obs.state': NaN or inf at step 4"),
        (lambda e: e["reward"].__setitem__(6, np.inf), r"'reward': NaN or inf at step 6"),
        (lambda e: e.__setitem__("action", np.zeros((len(e["action"]), 3))), r"'action': expected rows of shape \(T, 2\)"),
        (lambda e: e.pop("reward"), r"missing \['reward'\]"),
        (lambda e: e.__setitem__("extra", np.zeros(3)), r"not in the dataset \['extra'\]"),
        (lambda e: e.__setitem__("reward", e["reward"][:-1]), "same length"),
        (lambda e: e.__setitem__("obs.state", np.full(e["obs.state"].shape, 1e39)), r"'obs.state': NaN or inf"),
    ],
)
def test_bad_episode_is_rejected_and_nothing_changes(tmp_path: Path, change, message: str) -> None:
    ds = _filled(tmp_path / "d", 2)
    meta_before = (tmp_path / "d" / "meta.json").read_bytes()
    bad = make_episode(2)
    change(bad)
    with pytest.raises(DatasetError, match=message):
        ds.append_episode(bad)
    assert (tmp_path / "d" / "meta.json").read_bytes() == meta_before
    assert ds.n_episodes == 2
    ds.append_episode(make_episode(2), info={"seed": 2})
    again = Dataset.open(tmp_path / "d")
    assert again.n_episodes == 3
    _assert_episodes(again, 3)


def test_empty_episode_and_bad_info(tmp_path: Path) -> None:
    ds = _filled(tmp_path / "d", 1)
    with pytest.raises(DatasetError, match="T >= 1"):
        ds.append_episode({name: np.zeros((0, *shape)) for name, (shape, _) in FEATURES.items()})
    with pytest.raises(DatasetError, match="not JSON serialisable"):
        ds.append_episode(make_episode(1), info={"return": float("nan")})
    with pytest.raises(DatasetError, match="length"):
        ds.append_episode(make_episode(1), info={"length": 1000})
    assert Dataset.open(tmp_path / "d").n_episodes == 1


def test_create_refuses_bad_input(tmp_path: Path) -> None:
    _filled(tmp_path / "d", 1)
    with pytest.raises(DatasetError, match="not an empty directory"):
        Dataset.create(tmp_path / "d", features=FEATURES)
    with pytest.raises(DatasetError, match="dtype"):
        Dataset.create(tmp_path / "e", features={"action": ((2,), "U4")})
    with pytest.raises(DatasetError, match="feature name"):
        Dataset.create(tmp_path / "f", features={"a/b": ((2,), "float32")})


def test_open_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        Dataset.open(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no meta.json"):
        Dataset.open(tmp_path / "empty")
    _filled(tmp_path / "d", 3)
    meta_path = tmp_path / "d" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(meta_path.read_text()[:50])
    with pytest.raises(DatasetError, match="corrupt meta.json"):
        Dataset.open(tmp_path / "d")
    meta_path.write_text(json.dumps({**meta, "episode_ends": [5, 3, 9]}))
    with pytest.raises(DatasetError, match="corrupt meta.json.*episode_ends"):
        Dataset.open(tmp_path / "d")
    meta_path.write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(DatasetError, match="format version 99 is not known"):
        Dataset.open(tmp_path / "d")
    legacy = {k: v for k, v in meta.items() if k not in ("checksums", "meta_crc32")}  # as before checksums
    meta_path.write_text(json.dumps({**legacy, "episode_ends": [*meta["episode_ends"], meta["episode_ends"][-1] + 5],
                                     "episodes": [*meta["episodes"], {"length": 5}]}))
    with pytest.raises(DatasetError, match="truncated: array .* has .* rows but the 4 committed episodes need"):
        Dataset.open(tmp_path / "d")


def test_missing_and_damaged_chunks(tmp_path: Path) -> None:
    _filled(tmp_path / "d", 3)
    chunk = tmp_path / "d" / "data.zarr" / "action" / "c" / "0" / "0"
    data = chunk.read_bytes()
    chunk.unlink()
    with pytest.raises(DatasetError, match="truncated: chunk c/0/0 of array 'action'"):
        Dataset.open(tmp_path / "d")
    chunk.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="cannot read feature 'action'"):
        Dataset.open(tmp_path / "d").arrays()


def test_uncommitted_rows_are_ignored_then_overwritten(tmp_path: Path) -> None:
    _filled(tmp_path / "d", 2)
    n = Dataset.open(tmp_path / "d").n_steps
    group = zarr.open_group(tmp_path / "d" / "data.zarr", mode="r+")
    for name, (shape, _) in FEATURES.items():  # what a writer killed before its commit leaves
        group[name].resize((n + 500, *shape))
        group[name][n:] = 42.0
    ds = Dataset.open(tmp_path / "d")
    assert ds.n_steps == n and len(ds.arrays()["action"]) == n
    ds.append_episode(make_episode(2))
    again = Dataset.open(tmp_path / "d")
    assert again.n_steps == n + len(make_episode(2)["reward"])
    _assert_episodes(again, 3)


WRITER = EPISODE_SRC + """
import sys
from imitari.data.store import Dataset
ds = Dataset.open(sys.argv[1])
print("ready", flush=True)
while True:
    i = ds.n_episodes
    ds.append_episode(make_episode(i), info={"seed": i})
    print(ds.n_episodes, flush=True)
"""


def test_killed_writer_never_damages_committed_episodes(tmp_path: Path) -> None:
    path = tmp_path / "d"
    _filled(path, 1)
    rand = random.Random(0)
    reported = 1
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        first = int(proc.stdout.readline())  # one committed append per round, however busy the machine
        time.sleep(rand.uniform(0.05, 0.6))  # then a kill at a random point of the later ones
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        counts = [first] + [int(line) for line in out.split()]
        reported = counts[-1]
        ds = Dataset.open(path)
        assert ds.n_episodes >= reported
        assert ds.episode_seeds == list(range(ds.n_episodes))
        _assert_episodes(ds, ds.n_episodes)
    assert reported > 4, "the writer never got to append; the test proves nothing"
    n = ds.n_episodes
    ds.append_episode(make_episode(n), info={"seed": n})
    again = Dataset.open(path)
    assert again.n_episodes == n + 1
    _assert_episodes(again, n + 1)
    assert not list(path.rglob("*.partial"))


def test_stats_match_numpy_and_follow_appends(tmp_path: Path) -> None:
    ds = _filled(tmp_path / "d", 3)
    with pytest.raises(DatasetError, match="no episodes"):
        Dataset.create(tmp_path / "empty", features=FEATURES).stats()
    for n in (3, 4):
        stats = Dataset.open(tmp_path / "d").stats()
        for name in FEATURES:
            x = np.concatenate([make_episode(i)[name] for i in range(n)]).astype(np.float64)
            for key, fn in [("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max)]:
                np.testing.assert_allclose(stats[name][key], fn(x, axis=0), rtol=1e-12, atol=1e-12)
        assert np.shape(stats["obs.state"]["mean"]) == (3,) and np.shape(stats["reward"]["std"]) == ()
        assert json.loads((tmp_path / "d" / "stats.json").read_text())["n_steps"] == Dataset.open(tmp_path / "d").n_steps
        ds.append_episode(make_episode(3))


def test_filter_keys_persist_and_validate(tmp_path: Path) -> None:
    ds = _filled(tmp_path / "d", 4)
    ds.set_filter_key("train", [0, 2, np.int64(3)])
    ds.set_filter_keys({"valid": [1], "empty": []})
    assert Dataset.open(tmp_path / "d").filter_keys == {"train": [0, 2, 3], "valid": [1], "empty": []}
    for ids, message in [([4], "out of range"), ([1, 1], "duplicate"), ([0.5], "integers")]:
        with pytest.raises(DatasetError, match=message):
            ds.set_filter_key("bad", ids)
    ds.append_episode(make_episode(4))
    assert Dataset.open(tmp_path / "d").filter_keys["train"] == [0, 2, 3]
