"""robomimic HDF5 datasets, read and written with h5py.

Schema (robomimic's own files): group `data` with attrs `total` (steps) and `env_args`
(JSON: env_name, type, env_kwargs); one group `data/demo_N` per demonstration (ordered by N)
with attr `num_samples` and datasets `obs/<key>`, `next_obs/<key>`, `actions`, `rewards`,
`dones`, optionally `states`; `mask/<filter_key>` lists demo names.

Mapping: `obs/<key>` <-> `obs.<key>`, `actions` <-> `action`, `rewards` <-> `reward`,
`dones` <-> `done`; any other per-step dataset of a demo (e.g. `states`) keeps its name;
masks <-> filter keys. `next_obs` is `obs` shifted by one step plus the observation after the
last action, which imitari does not store: it is dropped on import and rebuilt on export
(last row repeated), with a warning either way.
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

NAME = "robomimic"
GYM_ENV_TYPE = 2  # robomimic's EnvType.GYM_TYPE
_RENAMED = {"actions": "action", "rewards": "reward", "dones": "done"}
_SKIPPED = {"obs", "next_obs"}
_DEMO_ATTRS = {"num_samples"}


def _demos(data: Any, path: Path) -> list[str]:
    names = [k for k in data if k.startswith("demo_") and k[5:].isdigit()]
    if not names:
        raise FormatError(f"{path}: robomimic file without demo_N groups under 'data'")
    return sorted(names, key=lambda k: int(k[5:]))


def _features(demo: Any) -> dict[str, tuple[tuple[int, ...], str]]:
    features = {f"obs.{k}": (tuple(v.shape[1:]), v.dtype.name) for k, v in demo["obs"].items()}
    for name, value in demo.items():
        if name not in _SKIPPED and hasattr(value, "shape"):
            features[_RENAMED.get(name, name)] = (tuple(value.shape[1:]), value.dtype.name)
    if "action" not in features:
        raise FormatError(f"demo {demo.name!r} has no 'actions'")
    return features


def _attr_json(attrs: Any, key: str) -> Any:
    value = attrs.get(key)
    return value.decode() if isinstance(value, bytes) else value


def _episode(demo: Any, features: dict[str, Any], warnings: list[str]) -> Episode:
    steps = {f"obs.{k}": v[()] for k, v in demo["obs"].items()}
    steps.update({_RENAMED.get(n, n): v[()] for n, v in demo.items() if n not in _SKIPPED and hasattr(v, "shape")})
    for name in demo:
        if name not in _SKIPPED and not hasattr(demo[name], "shape"):
            warnings.append(f"demo group {name!r} is not a per-step array: not kept")
    if set(steps) != set(features):
        raise FormatError(f"{demo.name}: datasets {sorted(steps)} differ from the first demo's {sorted(features)}")
    length = len(steps["action"])
    if int(demo.attrs.get("num_samples", length)) != length:
        raise FormatError(f"{demo.name}: num_samples {demo.attrs['num_samples']} but {length} actions")
    if "next_obs" in demo:
        nxt = demo["next_obs"]
        shifted = all(k in nxt and np.array_equal(nxt[k][:-1], steps[f"obs.{k}"][1:]) for k in demo["obs"])
        repeated = shifted and all(np.array_equal(nxt[k][-1], steps[f"obs.{k}"][-1]) for k in demo["obs"])
        if not repeated:  # else next_obs holds nothing new (as imitari's export writes it)
                    warnings.append("next_obs is not stored by imitari (obs shifted by one step" +
                                (")" if shifted else "; in this file it differs from the shifted obs)") +
                                ": dropped, including each demo's final observation")
    info = {}
    for key, value in demo.attrs.items():
        if key in _DEMO_ATTRS:
            continue
        if key == "model_file" or not isinstance(value, (str, bytes, int, float, np.number, np.bool_)):
            warnings.append(f"demo attribute {key!r} is not kept")
            continue
        info[key] = value.decode() if isinstance(value, bytes) else value.item() if isinstance(value, np.generic) else value
    return steps, info


def read(path: Path) -> Source:
    """Read a robomimic HDF5 file (see the module docstring for the mapping)."""
    h5py = need("h5py")
    warnings: list[str] = []
    with reading(path, NAME), h5py.File(path, "r") as f:
        data = f["data"]
        demos = _demos(data, path)
        features = _features(data[demos[0]])
        extra = read_sidecar(_attr_json(data.attrs, "imitari"), len(demos), warnings)
        env_args = json.loads(_attr_json(data.attrs, "env_args") or "{}")
        env = extra.get("env") or known_task(env_args.get("env_name"), warnings, "robomimic env_name")
        index = {name: i for i, name in enumerate(demos)}
        keys = {}
        for key, names in (f["mask"].items() if "mask" in f else []):
            ids = [index.get(n.decode() if isinstance(n, bytes) else str(n)) for n in names[()]]
            if None in ids:
                warnings.append(f"mask {key!r} names demos that are not in the file; those are left out")
            keys[key] = sorted({i for i in ids if i is not None})

    def episodes() -> Iterator[Episode]:
        infos = extra.get("episodes")
        with reading(path, NAME), h5py.File(path, "r") as f:
            for i, name in enumerate(demos):
                steps, info = _episode(f["data"][name], features, warnings)
                yield steps, {**info, **(infos[i] if infos else {})}

    return Source(features, episodes(), env=env, fps=extra.get("fps"), filter_keys=keys, warnings=warnings,
                  only=extra.get("features"))


def _demo_arrays(ep: dict[str, np.ndarray], keys: list[str]) -> dict[str, np.ndarray]:
    """The per-step datasets of one demo, other than obs/next_obs."""
    length = len(ep["action"])
    done = np.zeros(length, dtype=np.int64)
    done[-1] = 1  # robomimic marks the end of each demonstration
    out = {"actions": ep["action"], "rewards": ep.get("reward", np.zeros(length, dtype=np.float32)), "dones": done}
    back = {v: k for k, v in _RENAMED.items()}
    for name, value in ep.items():
        if not name.startswith("obs.") and name != "action":
            out[back.get(name, name)] = value
    return out


def write(ds: Dataset, dst: Path) -> list[str]:
    """Write `ds` as a robomimic HDF5 file at `dst`; returns the warnings."""
    h5py = need("h5py")
    check_exportable(ds, NAME)
    keys = obs_keys(ds)
    warnings = [final_obs_warning(NAME, "next_obs")]
    if "reward" not in ds.features:
        warnings.append("the dataset has no reward feature: robomimic rewards written as 0")
    with atomic_output(dst) as tmp, h5py.File(tmp, "w") as f:
        data = f.create_group("data")
        for i in range(ds.n_episodes):
            ep = ds.episode(i)
            demo = data.create_group(f"demo_{i}")
            demo.attrs["num_samples"] = len(ep["action"])
            for key in keys:
                obs = ep[f"obs.{key}"]
                demo.create_dataset(f"obs/{key}", data=obs)
                demo.create_dataset(f"next_obs/{key}", data=np.concatenate([obs[1:], obs[-1:]]))
            for name, value in _demo_arrays(ep, keys).items():
                demo.create_dataset(name, data=value)
        data.attrs["total"] = ds.n_steps
        data.attrs["env_args"] = json.dumps({"env_name": ds.env or "", "type": GYM_ENV_TYPE, "env_kwargs": {}})
        data.attrs["imitari"] = sidecar(ds)
        for key, ids in ds.filter_keys.items():
            f.create_dataset(f"mask/{key}", data=np.array([f"demo_{i}" for i in ids], dtype="S"))
    return warnings
