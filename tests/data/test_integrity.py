"""Nothing lost, nothing silent: the writer lock, checksums, validation on open, NaN, permissions.

Each test is one row of issue 16's probe table, checked through the library and the CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import zarr

from imitari.cli import main
from imitari.data.meta import seal
from imitari.data.store import Dataset, DatasetError

FEATURES = {"obs.state": ((3,), "float32"), "action": ((2,), "float32")}


def _episode(i: int, length: int = 30) -> dict[str, np.ndarray]:
    t = np.arange(length, dtype=np.float32)[:, None]
    return {"obs.state": t + np.arange(3, dtype=np.float32) + i, "action": t * np.float32([0.5, -1.0]) - i}


def _dataset(path: Path, n: int = 4) -> Path:
    ds = Dataset.create(path, features=FEATURES, env="builtin/reach", fps=10.0)
    for i in range(n):
        ds.append_episode(_episode(i), info={"seed": i, "success": True})
    return path


def _rewrite_meta(path: Path, resealed: bool = True, **changes: object) -> None:
    meta = {**json.loads((path / "meta.json").read_text()), **changes}
    (path / "meta.json").write_text(json.dumps(seal(meta) if resealed else meta))


def _chunk(path: Path, name: str = "action") -> Path:
    return path / "data.zarr" / name / "c" / "0" / "0"


HOLDER = """
import sys, time
from imitari.data.store import Dataset
ds = Dataset.open(sys.argv[1], writer=True)
print("holding", flush=True)
time.sleep(60)
"""


def test_a_second_writer_fails_at_once_naming_the_holder(tmp_path: Path, capsys) -> None:
    path = _dataset(tmp_path / "d")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(DatasetError, match=f"another writer is using this dataset: pid {holder.pid} .* since "):
            Dataset.open(path, writer=True)
        reader = Dataset.open(path)  # readers never block
        assert reader.n_episodes == 4 and reader.arrays()["action"].shape == (120, 2)
        with pytest.raises(DatasetError, match="another writer"):
            reader.append_episode(_episode(9))
        # the probe: a second `collect` into the dataset, and a `data split`, both exit 2 at once
        assert main(["collect", "--env", "builtin/reach", "--episodes", "3", "--out", str(path), "--workers", "1"]) == 2
        assert main(["data", "split", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 2 and all(f"pid {holder.pid}" in line for line in err)
    finally:
        holder.kill()
        holder.wait()
    assert Dataset.open(path).n_episodes == 4 and Dataset.open(path).filter_keys == {}
    assert main(["data", "split", str(path)]) == 0, "the lock dies with its holder"


def test_a_stale_writer_cannot_overwrite_another_ones_episodes(tmp_path: Path) -> None:
    path = _dataset(tmp_path / "d")
    first, second = Dataset.open(path), Dataset.open(path)
    first.append_episode(_episode(4), info={"seed": 4})
    with pytest.raises(DatasetError, match="changed by another writer since it was opened"):
        second.append_episode(_episode(5), info={"seed": 5})
    again = Dataset.open(path)
    assert again.episode_seeds == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(again.episode(4)["action"], _episode(4)["action"])


def test_a_flipped_byte_in_a_chunk_is_found(tmp_path: Path, capsys) -> None:
    path = _dataset(tmp_path / "d")
    zarr.open_group(path / "data.zarr", mode="r+")["action"][5] = [99.0, 99.0]  # valid chunk, wrong rows
    with pytest.raises(DatasetError, match=r"damaged: chunk 0 of feature 'action' \(rows 0..119\) does not match"):
        Dataset.open(path).arrays()
    with pytest.raises(DatasetError, match="damaged"):
        Dataset.open(path).episode(0)
    assert main(["data", "verify", str(path)]) == 2
    assert main(["data", "info", str(path)]) == 2
    assert main(["train", "--data", str(path), "--steps", "1", "--out", str(tmp_path / "run")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all("does not match its checksum" in line for line in lines)


def test_a_truncated_chunk_is_found_even_with_stats_cached(tmp_path: Path, capsys) -> None:
    path = _dataset(tmp_path / "d")
    assert main(["data", "info", str(path)]) == 0 and (path / "stats.json").is_file()
    chunk = _chunk(path)
    chunk.write_bytes(chunk.read_bytes()[:-7])
    assert main(["data", "info", str(path)]) == 2
    assert main(["data", "verify", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("'action'" in line for line in err)


def test_verify_reports_a_healthy_dataset(tmp_path: Path, capsys) -> None:
    path = _dataset(tmp_path / "d")
    assert main(["data", "verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ok: 4 episodes, 120 steps" in out and "every chunk matches its checksum" in out


def test_stats_cache_is_keyed_by_the_chunks_not_only_the_step_count(tmp_path: Path) -> None:
    path = _dataset(tmp_path / "d")
    before = Dataset.open(path).stats()["action"]["mean"]
    cache = json.loads((path / "stats.json").read_text())
    assert cache["fingerprint"] is not None
    (path / "stats.json").write_text(json.dumps({**cache, "fingerprint": cache["fingerprint"] + 1,
                                                 "stats": {k: {**v, "mean": [7.0] * len(v["mean"])}
                                                           for k, v in cache["stats"].items()}}))
    assert Dataset.open(path).stats()["action"]["mean"] == before, "a cache for other chunks is recomputed"


def _ends(path: Path) -> list[int]:
    return json.loads((path / "meta.json").read_text())["episode_ends"]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: {"episode_ends": [*m["episode_ends"][:-1], m["episode_ends"][-1] - 3]}, "episode 3: its 'length' 30"),
        (lambda m: {"episode_ends": [True, *m["episode_ends"][1:]]}, "'episode_ends' is not a strictly increasing"),
        (lambda m: {"episode_ends": [30.0, *m["episode_ends"][1:]]}, "'episode_ends' is not a strictly increasing"),
        (lambda m: {"fps": -10.0}, "'fps' -10.0 is not a positive number"),
        (lambda m: {"fps": "10"}, "'fps' '10' is not a positive number"),
        (lambda m: {"episodes": [{**m["episodes"][0], "length": -30}, *m["episodes"][1:]]}, "episode 0: its 'length' -30"),
        (lambda m: {"episodes": [{**m["episodes"][0], "seed": -1}, *m["episodes"][1:]]}, "episode 0: its 'seed' -1"),
        (lambda m: {"episodes": [{**m["episodes"][0], "seed": True}, *m["episodes"][1:]]}, "episode 0: its 'seed' True"),
        (lambda m: {"episodes": [{**m["episodes"][0], "success": "yes"}, *m["episodes"][1:]]}, "its 'success' 'yes'"),
        (lambda m: {"filter_keys": {"train": [0, 0]}}, "filter key 'train' is not a list of distinct"),
        (lambda m: {"extra": 1}, r"unknown keys \['extra'\]"),
    ],
)
def test_meta_json_is_validated_on_open(tmp_path: Path, change, message: str) -> None:
    path = _dataset(tmp_path / "d")
    _rewrite_meta(path, **change(json.loads((path / "meta.json").read_text())))
    with pytest.raises(DatasetError, match=message):
        Dataset.open(path)


def test_an_edited_meta_json_fails_its_seal(tmp_path: Path) -> None:
    path = _dataset(tmp_path / "d")
    meta = json.loads((path / "meta.json").read_text())
    meta["episodes"][2]["seed"] = 7  # valid on its own, but not what was committed
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="meta_crc32 does not match its contents"):
        Dataset.open(path)


def test_nan_on_disk_is_named_not_a_traceback(tmp_path: Path, capsys) -> None:
    path = _dataset(tmp_path / "d")
    zarr.open_group(path / "data.zarr", mode="r+")["action"][65] = [np.nan, 0.0]  # episode 2, step 5
    meta = json.loads((path / "meta.json").read_text())  # as a dataset written before checksums
    (path / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k not in ("checksums", "meta_crc32")}))
    with pytest.raises(DatasetError, match=r"feature 'action' holds NaN or inf in episode 2 \(seed 2\) at step 5"):
        Dataset.open(path).stats()
    assert main(["data", "info", str(path)]) == 2
    assert main(["train", "--data", str(path), "--steps", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("episode 2 (seed 2) at step 5" in line for line in err)


def test_nan_at_append_names_the_episode_and_feature(tmp_path: Path) -> None:
    ds = Dataset.open(_dataset(tmp_path / "d"))
    bad = _episode(4)
    bad["action"][3, 1] = np.inf
    with pytest.raises(DatasetError, match=r"episode 4 \(seed 40\): feature 'action': NaN or inf at step 3"):
        ds.append_episode(bad, info={"seed": 40})
    assert Dataset.open(tmp_path / "d").n_episodes == 4


def test_older_datasets_without_checksums_still_open_and_gain_them(tmp_path: Path) -> None:
    path = _dataset(tmp_path / "d")
    meta = json.loads((path / "meta.json").read_text())
    (path / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k not in ("checksums", "meta_crc32")}))
    ds = Dataset.open(path)
    assert not ds.has_checksums and ds.verify()["checksums"] is False
    ds.append_episode(_episode(4), info={"seed": 4})
    again = Dataset.open(path)
    assert again.has_checksums and again.verify()["checksums"] is True
    expected = zlib.crc32(np.concatenate([_episode(i)["action"] for i in range(5)]).tobytes())
    assert json.loads((path / "meta.json").read_text())["checksums"]["action"]["crc32"] == [expected]


def test_an_unreadable_dataset_says_permission_denied(tmp_path: Path, monkeypatch) -> None:
    path = _dataset(tmp_path / "d")
    read_bytes = Path.read_bytes

    def denied(self: Path) -> bytes:  # what chmod 000 does for a user that is not root
        if self.name == "meta.json":
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(DatasetError, match=r"cannot read meta.json \(Permission denied\)$"):
        Dataset.open(path)
