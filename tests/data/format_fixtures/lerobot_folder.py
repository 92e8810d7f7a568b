"""A LeRobot v3.0 folder written with pyarrow to LeRobot's documented schema (not by imitari)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from imitari.data.store import Dataset


def _vectors(x: np.ndarray) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])


def write_lerobot(src: Dataset, root: Path, *, episodes_per_file: int = 4) -> None:
    """`src`'s episodes as LeRobot holds them: observation.state, action, next.reward (1,), next.done,
    two task strings, data split over several parquet files, tasks.parquet with the task as index."""
    tasks = ["reach the goal", "reach the goal quickly"]
    rows, episodes, first = [], [], 0
    for i in range(src.n_episodes):
        ep = src.episode(i)
        n, file = len(ep["action"]), i // episodes_per_file
        rows.append((file, pa.table({
            "observation.state": _vectors(ep["obs.state"]), "action": _vectors(ep["action"]),
            "next.reward": pa.array(ep["reward"]), "next.done": pa.array(np.arange(n) == n - 1),
            "timestamp": pa.array(np.arange(n, dtype=np.float32) / 10), "frame_index": pa.array(np.arange(n)),
            "episode_index": pa.array(np.full(n, i)), "index": pa.array(first + np.arange(n)),
            "task_index": pa.array(np.full(n, i % 2))})))
        episodes.append({"episode_index": i, "tasks": [tasks[i % 2]], "length": n, "data/chunk_index": 0,
                         "data/file_index": file, "dataset_from_index": first, "dataset_to_index": first + n,
                         "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        first += n
    for file in sorted({f for f, _ in rows}):
        path = root / f"data/chunk-000/file-{file:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables([t for f, t in rows if f == file]), path)
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(episodes), root / "meta/episodes/chunk-000/file-000.parquet")
    pq.write_table(pa.table({"task_index": [0, 1], "task": tasks}), root / "meta/tasks.parquet")
    scalar = {"shape": [1], "names": None}
    features = {"observation.state": {"dtype": "float32", "shape": [4], "names": ["x", "y", "gx", "gy"]},
                "action": {"dtype": "float32", "shape": [2], "names": None},
                "next.reward": {"dtype": "float32", **scalar}, "next.done": {"dtype": "bool", **scalar},
                "timestamp": {"dtype": "float32", **scalar},
                **{k: {"dtype": "int64", **scalar} for k in ["frame_index", "episode_index", "index", "task_index"]}}
    info = {"codebase_version": "v3.0", "robot_type": "builtin/reach", "fps": 10, "features": features,
            "total_episodes": src.n_episodes, "total_frames": first, "total_tasks": 2, "chunks_size": 1000,
            "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            "splits": {"train": f"0:{src.n_episodes - 4}", "valid": f"{src.n_episodes - 4}:{src.n_episodes}"}}
    (root / "meta/info.json").write_text(json.dumps(info))
    (root / "meta/stats.json").write_text("{}")
