"""LeRobot v3.0 datasets, read and written with pyarrow (parquet) and PyAV (mp4).

Schema (LeRobot's own `datasets/utils.py`): `meta/info.json` (codebase_version "v3.0", fps,
features {name: dtype, shape, names}, totals, chunks_size, data_path, video_path, splits),
`data/chunk-XXX/file-XXX.parquet` (one row per frame: the features plus timestamp,
frame_index, episode_index, index, task_index), `meta/episodes/chunk-XXX/file-XXX.parquet`
(episode_index, tasks, length, data/chunk_index, data/file_index, dataset_from_index,
dataset_to_index, and per video key videos/<key>/{chunk_index, file_index, from_timestamp,
to_timestamp}), `meta/tasks.parquet` (task, task_index), `meta/stats.json`.

Mapping: `observation.<key>` <-> `obs.<key>`, `next.reward` <-> `reward`, `next.done` <->
`done`, other features keep their names; shape (1,) is a scalar (shape ()) in imitari. An
episode's task string is its info `task` (several: info `tasks` plus a per-frame `task`
feature indexing them). Image and video features hold (H, W, C) uint8 frames (`images.py`).
imitari's env, per-episode info and filter keys travel in `meta/imitari.json`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from imitari.data.formats import images
from imitari.data.formats.base import (
    Episode,
    FormatError,
    Source,
    atomic_output,
    check_exportable,
    known_task,
    need,
    read_sidecar,
    reading,
    sidecar,
)
from imitari.data.store import Dataset

NAME = "LeRobot v3.0"
VERSION = "v3.0"
DEFAULTS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
CHUNKS_SIZE = 1000
DATA_FILE_BYTES = 100 << 20
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
_RENAMED = {"next.reward": "reward", "next.done": "done"}
_BACK = {v: k for k, v in _RENAMED.items()}


def imitari_name(name: str) -> str:
    if name.startswith("observation."):
        return "obs." + name[len("observation."):]
    return _RENAMED.get(name, name)


def lerobot_name(name: str) -> str:
    if name.startswith("obs."):
        return "observation." + name[4:]
    return _BACK.get(name, name)


def _column(table: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A parquet column of fixed-size lists (any depth) or scalars as a (rows, *shape) array."""
    arr = table.column(name).combine_chunks()
    while hasattr(arr, "flatten") and hasattr(arr.type, "value_type"):
        arr = arr.flatten()
    return np.asarray(arr.to_numpy(zero_copy_only=False)).reshape(len(table), *shape)


def _read_info(path: Path) -> dict[str, Any]:
    info = json.loads((path / "meta/info.json").read_text())
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3"):
        raise FormatError(f"{path}: LeRobot codebase_version {version!r}; this reader knows v3.0 (convert older "
                          "datasets with LeRobot's convert_dataset_v21_to_v30 first)")
    return info


def _parquets(pq: Any, folder: Path) -> Any:
    files = sorted(folder.rglob("*.parquet"))
    if not files:
        raise FormatError(f"{folder}: no parquet files")
    return pq.concat_tables([pq.read_table(f) for f in files]) if len(files) > 1 else pq.read_table(files[0])


def _tasks(pq: Any, path: Path) -> dict[int, str]:
    table = pq.read_table(path / "meta/tasks.parquet")
    name = "task" if "task" in table.column_names else "__index_level_0__"
    return dict(zip(table.column("task_index").to_pylist(), table.column(name).to_pylist()))


def read(path: Path) -> Source:
    """Read a LeRobot v3.0 dataset folder (see the module docstring for the mapping)."""
    pq = need("pyarrow.parquet")
    warnings: list[str] = []
    with reading(path, NAME):
        info = _read_info(path)
        fps = float(info["fps"])
        spec = {k: v for k, v in info["features"].items() if k not in DEFAULTS}
        features = {}
        for key, ft in spec.items():
            shape = tuple(int(d) for d in ft["shape"])
            if ft["dtype"] in images.KINDS:
                features[imitari_name(key)] = (images.hwc(shape, ft.get("names")), "uint8")
            elif ft["dtype"] == "string":
                warnings.append(f"string feature {key!r} is not kept (imitari features are numeric)")
            else:
                features[imitari_name(key)] = ((), ft["dtype"]) if shape == (1,) else (shape, ft["dtype"])
        if any(ft.get("names") for ft in spec.values() if ft["dtype"] not in images.KINDS):
            warnings.append("per-dimension feature names are not kept")
        episodes = _parquets(pq, path / "meta/episodes").sort_by("episode_index")
        tasks = _tasks(pq, path)
        extra = read_sidecar(_maybe_text(path / "meta/imitari.json"), episodes.num_rows, warnings)
        multi = any(len(t) > 1 for t in episodes.column("tasks").to_pylist())
        if multi:
            features["task"] = ((), "int64")
        filter_keys = extra.get("filter_keys") or _split_ids(info.get("splits") or {}, episodes.num_rows, warnings)
        env = extra.get("env") or known_task(info.get("robot_type"), [], "robot_type")

    def frames() -> Iterator[Episode]:
        with reading(path, NAME):
            data_files = sorted((path / "data").rglob("*.parquet"))
            rows = episodes.to_pylist()
            current: tuple[Path | None, Any] = (None, None)
            video = images.VideoReader(path, info, warnings)
            for i, ep in enumerate(rows):
                file = path / info["data_path"].format(chunk_index=ep["data/chunk_index"], file_index=ep["data/file_index"])
                if file not in data_files:
                    raise FormatError(f"{path}: episode {ep['episode_index']} points at missing {file.name}")
                if current[0] != file:
                    current = (file, pq.read_table(file))
                table = current[1]
                index = table.column("episode_index").to_numpy()
                table = table.take(np.flatnonzero(index == ep["episode_index"]))
                if table.num_rows != ep["length"]:
                    raise FormatError(f"{path}: episode {ep['episode_index']} has {table.num_rows} frames, its "
                                      f"metadata says {ep['length']}")
                yield _episode(table, ep, spec, features, tasks, video, extra.get("episodes"), i)

    return Source(features, frames(), env=env, fps=extra.get("fps") or fps, filter_keys=filter_keys, warnings=warnings,
                  only=extra.get("features"))


def _episode(table: Any, ep: dict[str, Any], spec: dict[str, Any], features: dict[str, Any], tasks: dict[int, str],
             video: Any, infos: list[dict[str, Any]] | None, i: int) -> Episode:
    steps = {}
    for key, ft in spec.items():
        name = imitari_name(key)
        if name not in features or ft["dtype"] == "video":
            continue
        shape, _ = features[name]
        steps[name] = images.decode_column(table, key) if ft["dtype"] == "image" else _column(table, key, shape)
    for key in video.keys:
        steps[imitari_name(key)] = video.frames(key, ep)
    names = [tasks[int(t)] for t in table.column("task_index").to_pylist()]
    info: dict[str, Any] = {"task": names[0]} if "task" not in features else {"tasks": list(dict.fromkeys(names))}
    if "task" in features:
        steps["task"] = np.array([info["tasks"].index(n) for n in names], dtype=np.int64)
    return steps, (infos[i] if infos else info)  # the sidecar's info holds the task if the episode had one


def _maybe_text(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def _split_ids(splits: dict[str, Any], n: int, warnings: list[str]) -> dict[str, list[int]]:
    """LeRobot splits ("start:end" episode ranges) as filter keys; "train" over all is implied."""
    keys = {}
    for name, value in splits.items():
        try:
            start, end = (int(x) for x in str(value).split(":"))
        except ValueError:
            warnings.append(f"split {name!r} = {value!r} is not a 'start:end' range; not kept")
            continue
        if (start, end) != (0, n) or name != "train":
            keys[name] = list(range(max(0, start), min(n, end)))
    return keys


# --- writing -------------------------------------------------------------------------------
def _feature_info(ds: Dataset) -> dict[str, dict[str, Any]]:
    features = {}
    for name, (shape, dtype) in ds.features.items():
        key = lerobot_name(name)
        if images.is_image(shape, dtype):
            features[key] = images.feature_info(shape)
        else:
            features[key] = {"dtype": dtype, "shape": list(shape) or [1], "names": None}
    features.update({
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        **{k: {"dtype": "int64", "shape": [1], "names": None} for k in DEFAULTS[1:]},
    })
    return features


def _arrow_column(pa: Any, value: np.ndarray) -> Any:
    flat = pa.array(np.ascontiguousarray(value).reshape(-1))
    for size in reversed(value.shape[1:]):
        flat = pa.FixedSizeListArray.from_arrays(flat, size)
    return flat


def _episode_tasks(ds: Dataset) -> tuple[list[str], list[int]]:
    """Task strings (dataset-wide, in order of first use) and each episode's task index."""
    names = [info.get("task") or ds.env or "default" for info in ds.episode_info]
    table = list(dict.fromkeys(names))
    return table, [table.index(n) for n in names]


def _tasks_table(pa: Any, tasks: list[str]) -> Any:
    """meta/tasks.parquet as pandas writes it (task as the index), so LeRobot's pandas reader sees it."""
    pandas_meta = {"index_columns": ["task"], "column_indexes": [], "columns": [
        {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
        {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None}]}
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    return table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)})


def _splits(ds: Dataset, warnings: list[str]) -> dict[str, str]:
    splits = {"train": f"0:{ds.n_episodes}"}
    for key, ids in ds.filter_keys.items():
        if ids and ids == list(range(ids[0], ids[-1] + 1)):
            splits[key] = f"{ids[0]}:{ids[-1] + 1}"
        else:
            warnings.append(f"filter key {key!r} is not a range of episodes, which LeRobot splits cannot hold: "
                            "kept in meta/imitari.json only")
    return splits


def write(ds: Dataset, dst: Path) -> list[str]:
    """Write `ds` as a LeRobot v3.0 dataset folder at `dst`; returns the warnings."""
    pa, pq = need("pyarrow"), need("pyarrow.parquet")
    check_exportable(ds, NAME)
    warnings: list[str] = []
    fps = ds.fps or 10.0
    if ds.fps is None:
        warnings.append("the dataset has no fps; LeRobot needs one: wrote 10")
    elif fps != round(fps):
        warnings.append(f"LeRobot fps is an integer: {fps} written as {round(fps)} (exact value in meta/imitari.json)")
    fps_int = max(1, round(fps))
    features = _feature_info(ds)
    task_names, ep_task = _episode_tasks(ds)
    if not all(info.get("task") for info in ds.episode_info):
        warnings.append(f"episodes without a 'task' get the env name {ds.env or 'default'!r} as their LeRobot task")
    with atomic_output(dst) as tmp:
        rows_per_file = max(1, DATA_FILE_BYTES // max(1, _row_bytes(ds)))
        episodes, tables, file_index, first = [], [], 0, 0
        for i in range(ds.n_episodes):
            ep = ds.episode(i)
            length = len(ep["action"])
            if tables and first + length > rows_per_file * (file_index + 1):
                _write_data(pq, pa, tmp, tables, file_index)
                tables, file_index = [], file_index + 1
            cols = {k: (images.encode_column(pa, v) if features[k]["dtype"] == "image" else _arrow_column(pa, v))
                    for n, v in ep.items() for k in [lerobot_name(n)]}
            frame = np.arange(length)
            cols.update(timestamp=pa.array((frame / fps_int).astype(np.float32)), frame_index=pa.array(frame),
                        episode_index=pa.array(np.full(length, i)), index=pa.array(first + frame),
                        task_index=pa.array(np.full(length, ep_task[i])))
            tables.append(pa.table(cols))
            record = {"episode_index": i, "tasks": [task_names[ep_task[i]]], "length": length,
                      "data/chunk_index": file_index // CHUNKS_SIZE, "data/file_index": file_index % CHUNKS_SIZE,
                      "dataset_from_index": first, "dataset_to_index": first + length,
                      "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
            episodes.append(record)
            first += length
        _write_data(pq, pa, tmp, tables, file_index)
        path = tmp / EPISODES_PATH.format(chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(episodes), path)
        pq.write_table(_tasks_table(pa, task_names), tmp / "meta/tasks.parquet")
        info = {"codebase_version": VERSION, "robot_type": None, "total_episodes": ds.n_episodes,
                "total_frames": ds.n_steps, "total_tasks": len(task_names), "chunks_size": CHUNKS_SIZE,
                "data_files_size_in_mb": DATA_FILE_BYTES >> 20, "video_files_size_in_mb": 200, "fps": fps_int,
                "splits": _splits(ds, warnings), "data_path": DATA_PATH,
                "video_path": None, "features": features}
        (tmp / "meta/info.json").write_text(json.dumps(info, indent=4))
        (tmp / "meta/stats.json").write_text(json.dumps(_stats(ds), indent=4))
        (tmp / "meta/imitari.json").write_text(sidecar(ds))
    return warnings


def _row_bytes(ds: Dataset) -> int:
    return sum(int(np.prod(s)) * np.dtype(d).itemsize for s, d in ds.features.values())


def _write_data(pq: Any, pa: Any, root: Path, tables: list[Any], file_index: int) -> None:
    path = root / DATA_PATH.format(chunk_index=file_index // CHUNKS_SIZE, file_index=file_index % CHUNKS_SIZE)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.concat_tables(tables), path)


def _stats(ds: Dataset) -> dict[str, dict[str, Any]]:
    """meta/stats.json: min, max, mean, std and count per feature (images per channel, as LeRobot)."""
    out = {}
    for name, data in ds.arrays().items():
        x = data.astype(np.float64).reshape(len(data), -1) if data.ndim <= 2 else data.astype(np.float64)
        if images.is_image(data.shape[1:], data.dtype.name):
            x = x.reshape(-1, data.shape[-1]) / 255.0  # per channel, in [0, 1] as LeRobot's
            stat = {k: getattr(x, k)(axis=0).reshape(-1, 1, 1).tolist() for k in ("min", "max", "mean", "std")}
        else:
            stat = {k: getattr(x, k)(axis=0).tolist() for k in ("min", "max", "mean", "std")}
        out[lerobot_name(name)] = {**stat, "count": [len(data)]}
    return out
