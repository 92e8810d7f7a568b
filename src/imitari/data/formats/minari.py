"""Minari datasets (HDF5 storage), read and written with h5py.

Schema (Minari's own `hdf5_storage.py`, `minari_storage.py`): `<id>/data/metadata.json`
(dataset_id, total_episodes, total_steps, data_format "hdf5", observation_space and
action_space as serialized-space JSON strings, env_spec, minari_version) and
`<id>/data/main_data.hdf5` with one group `episode_N` per episode (attrs id, total_steps,
seed) holding `observations` (N+1 rows: a dataset for a Box space, a group of datasets for a
Dict space), `actions`, `rewards`, `terminations`, `truncations` (N rows) and `infos`.

Mapping: a Dict observation's `<key>` <-> `obs.<key>` (a Box observation is `obs.state`),
`actions` <-> `action`, `rewards` <-> `reward`, `terminations` <-> `terminated`,
`truncations` <-> `truncated`, episode attr `seed` <-> info `seed`. Not held by imitari, named
in a warning: the final observation (row N), `infos`, episode options.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from imitari.data.formats.base import (
    Episode,
    FormatError,
    Source,
    atomic_output,
    check_exportable,
    final_obs_warning,
    known_task,
    need,
    obs_keys,
    read_sidecar,
    reading,
    sidecar,
)
from imitari.data.store import Dataset

NAME = "Minari"
MINARI_VERSION = "0.5.4"  # the dataset version written (one Minari 0.5.x lists as supported)
_RENAMED = {"actions": "action", "rewards": "reward", "terminations": "terminated", "truncations": "truncated"}
_BACK = {v: k for k, v in _RENAMED.items()}


def _data_dir(path: Path) -> Path:
    if path.is_file():
        return path.parent
    return path / "data" if (path / "data" / "main_data.hdf5").is_file() else path


def _episodes(f: Any, path: Path) -> list[str]:
    names = [k for k in f if k.startswith("episode_") and k[8:].isdigit()]
    if not names:
        raise FormatError(f"{path}: Minari file without episode_N groups")
    return sorted(names, key=lambda k: int(k[8:]))


def _observations(group: Any) -> dict[str, np.ndarray]:
    if hasattr(group, "shape"):
        return {"obs.state": group[()]}
    out = {}
    for key, value in group.items():
        if not hasattr(value, "shape"):
            raise FormatError(f"{group.name}/{key}: nested observation spaces are not supported")
        out[f"obs.{key}"] = value[()]
    return out


def _episode(group: Any, warnings: list[str]) -> Episode:
    steps = {name: value[:-1] for name, value in _observations(group["observations"]).items()}
    for key, name in _RENAMED.items():
        if not hasattr(group[key], "shape"):
            raise FormatError(f"{group.name}/{key}: only Box action spaces are supported")
        steps[name] = group[key][()]
    n = len(steps["action"])
    if any(len(v) != n for v in steps.values()):
        raise FormatError(f"{group.name}: observations need {n + 1} rows and the other arrays {n}")
    if "infos" in group and len(group["infos"]):
        warnings.append(f"infos ({', '.join(sorted(group['infos']))}) are not kept")
    if any(k.startswith("options") for k in group.attrs):
        warnings.append("episode reset options are not kept")
    seed = group.attrs.get("seed")
    return steps, ({} if seed is None else {"seed": int(seed)})


def read(path: Path) -> Source:
    """Read a Minari dataset (its `<id>` folder, `data` folder or main_data.hdf5)."""
    h5py = need("h5py")
    data = _data_dir(path)
    warnings: list[str] = []
    with reading(path, NAME):
        meta = json.loads((data / "metadata.json").read_text())
        if meta.get("data_format", "hdf5") != "hdf5":
            raise FormatError(f"{path}: Minari data_format {meta['data_format']!r}; this reader knows hdf5")
        with h5py.File(data / "main_data.hdf5", "r") as f:
            names = _episodes(f, path)
            steps, _ = _episode(f[names[0]], [])
        features = {name: (tuple(v.shape[1:]), v.dtype.name) for name, v in steps.items()}
        extra = read_sidecar(meta.get("imitari"), len(names), warnings)
        env_id = json.loads(meta["env_spec"]).get("id") if meta.get("env_spec") else None
        env = extra.get("env") or known_task(env_id, warnings, "Minari env id")
        if not extra:  # else the final rows are imitari's own repeats
            warnings.append("Minari observations' final row (after each episode's last action) is not stored by "
                            "imitari: dropped")

    def episodes() -> Iterator[Episode]:
        infos = extra.get("episodes")
        with reading(path, NAME), h5py.File(data / "main_data.hdf5", "r") as f:
            for i, name in enumerate(names):
                steps, info = _episode(f[name], warnings)
                yield steps, {**info, **(infos[i] if infos else {})}

    return Source(features, episodes(), env=env, fps=extra.get("fps"), filter_keys=extra.get("filter_keys") or {},
                  warnings=warnings, only=extra.get("features"))


def _box(shape: tuple[int, ...], dtype: str) -> dict[str, Any]:
    full = np.full(shape, np.inf).tolist()
    return {"type": "Box", "dtype": dtype, "shape": list(shape), "low": np.negative(full).tolist(), "high": full}


def write(ds: Dataset, dst: Path) -> list[str]:
    """Write `ds` as a Minari dataset folder `dst` (its name is the dataset id); returns the warnings."""
    h5py = need("h5py")
    check_exportable(ds, NAME)
    keys = obs_keys(ds)
    warnings = [final_obs_warning(NAME, "observations")]
    extra = [n for n in ds.features if not n.startswith("obs.") and n not in _BACK]
    if extra:
        warnings.append(f"features {extra} have no Minari field: kept in the imitari sidecar only (as names), not as data")
    if "reward" not in ds.features:
        warnings.append("the dataset has no reward feature: Minari rewards written as 0")
    with atomic_output(dst) as tmp:
        (tmp / "data").mkdir(parents=True)
        with h5py.File(tmp / "data/main_data.hdf5", "w", track_order=True) as f:
            for i in range(ds.n_episodes):
                ep, info = ds.episode(i), ds.episode_info[i]
                group = f.create_group(f"episode_{i}")
                n = len(ep["action"])
                group.attrs.update({"id": i, "total_steps": n, **({"seed": info["seed"]} if info.get("seed") is not None else {})})
                for key in keys:
                    obs = ep[f"obs.{key}"]
                    group.create_dataset(f"observations/{key}", data=np.concatenate([obs, obs[-1:]]))
                last = np.arange(n) == n - 1
                success = bool(info.get("success", True))
                defaults = {"reward": np.zeros(n, np.float32), "terminated": last & success, "truncated": last & (not success)}
                for name, key in _BACK.items():
                    group.create_dataset(key, data=ep.get(name, defaults.get(name)))
                group.create_group("infos")
        obs_space = {"type": "Dict", "subspaces": {k: _box(*ds.features[f"obs.{k}"]) for k in keys}}
        meta = {"dataset_id": dst.name, "total_episodes": ds.n_episodes, "total_steps": ds.n_steps,
                "data_format": "hdf5", "jpeg_encoding": False, "minari_version": MINARI_VERSION,
                "observation_space": json.dumps(obs_space), "action_space": json.dumps(_box(*ds.features["action"])),
                "imitari": sidecar(ds)}
        (tmp / "data/metadata.json").write_text(json.dumps(meta))
    return warnings
