"""The episode store: a directory holding `meta.json` (the commit point) and a zarr v3 group.

Layout (see docs/architecture.md)::

    <dataset>/meta.json   format version, env, fps, features, episode_ends, per-episode info,
                          filter keys
    <dataset>/data.zarr/  one array per feature; the rows of all episodes concatenated
    <dataset>/stats.json  per-feature mean/std/min/max, a cache keyed by the number of steps

Crash safety: an append first writes the episode's rows past the committed end of every array,
then replaces `meta.json` atomically. Every file (chunks included) is written to a temporary
file in the same directory, fsynced and moved into place with `os.replace`, so a writer killed
at any moment leaves the previously committed episodes intact; rows past `episode_ends[-1]`
are ignored on open and overwritten by the next append. One writer at a time is supported.
"""

from __future__ import annotations

import asyncio
import json
import math
import operator
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.core.buffer import Buffer
from zarr.storage import LocalStore

FORMAT = "imitari.dataset"
FORMAT_VERSION = 1
_MAX_CHUNK_ROWS = 65536
_CHUNK_BYTES = 1 << 20
_FEATURE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_PARTIAL_SUFFIX = ".partial"

FeatureSpec = tuple[tuple[int, ...], str]


class DatasetError(Exception):
    """A dataset is missing, corrupt, truncated, or an episode does not fit its features."""


def _write_bytes_atomic(path: Path, data: Any, *, exclusive: bool = False) -> None:
    """Write `data` to a temp file beside `path`, fsync it, then move it into place.

    `exclusive` keeps zarr's `set_if_not_exists` semantics: an existing `path` is left alone
    (no race to guard against: a dataset has a single writer).
    """
    if exclusive and path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}{_PARTIAL_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_json_atomic(path: Path, obj: Any) -> None:
    """The commit primitive: atomic, durable replacement of a JSON file (strict JSON, no NaN)."""
    _write_bytes_atomic(path, (json.dumps(obj, indent=1, allow_nan=False) + "\n").encode())
    fd = os.open(path.parent, os.O_RDONLY)  # make the rename itself durable
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _DurableLocalStore(LocalStore):
    """zarr's LocalStore whose writes are fsynced before the atomic rename.

    LocalStore already writes through a temp file + rename, which survives a killed process;
    the fsync makes chunk contents durable before `meta.json` (fsynced too) can commit them.
    """

    async def _set(self, key: str, value: Buffer, exclusive: bool = False) -> None:
        if not self._is_open:
            await self._open()
        self._check_writable()
        await asyncio.to_thread(_write_bytes_atomic, self.root / key, value.as_buffer_like(), exclusive=exclusive)

    def set_sync(self, key: str, value: Buffer) -> None:
        self._ensure_open_sync()
        self._check_writable()
        _write_bytes_atomic(self.root / key, value.as_buffer_like())


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _chunk_rows(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Rows per chunk: about 1 MiB uncompressed, at most 65536 rows."""
    row_bytes = max(1, math.prod(shape) * dtype.itemsize)
    return max(1, min(_MAX_CHUNK_ROWS, _CHUNK_BYTES // row_bytes))


def _parse_features(features: Mapping[str, Any]) -> dict[str, FeatureSpec]:
    """Normalise `{name: (shape, dtype)}`; raise DatasetError on a bad name, shape or dtype."""
    if not features:
        raise DatasetError("a dataset needs at least one feature")
    parsed: dict[str, FeatureSpec] = {}
    for name, spec in features.items():
        if not isinstance(name, str) or not _FEATURE_NAME.match(name):
            raise DatasetError(f"feature name {name!r}: use letters, digits, '_', '.', '-'")
        try:
            shape_like, dtype_like = spec
            shape = tuple(int(d) for d in shape_like)
            dtype = np.dtype(dtype_like)
        except (TypeError, ValueError) as e:
            raise DatasetError(f"feature {name!r}: expected (shape, dtype), got {spec!r}") from e
        if any(d < 1 for d in shape):
            raise DatasetError(f"feature {name!r}: shape {shape} has a dimension < 1")
        if dtype.kind not in "biuf":
            raise DatasetError(f"feature {name!r}: dtype {dtype} is not bool, integer or float")
        parsed[name] = (shape, dtype.name)
    return parsed


def _parse_meta(raw: Any, where: Path) -> dict[str, FeatureSpec]:
    """Check the structure of a decoded meta.json; return its features, normalised."""

    def bad(why: str) -> DatasetError:
        return DatasetError(f"{where}: corrupt meta.json ({why})")

    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise bad(f"not an imitari dataset: 'format' is not {FORMAT!r}")
    if raw.get("version") != FORMAT_VERSION:
        raise DatasetError(
            f"{where}: dataset format version {raw.get('version')!r} is not known to this "
            f"imitari (it reads version {FORMAT_VERSION}); upgrade imitari or re-create the dataset"
        )
    for key, kind in [("features", dict), ("episode_ends", list), ("episodes", list), ("filter_keys", dict)]:
        if not isinstance(raw.get(key), kind):
            raise bad(f"'{key}' missing or not a {kind.__name__}")
    if not isinstance(raw.get("env"), (str, type(None))):
        raise bad("'env' is not a string or null")
    if not isinstance(raw.get("fps"), (int, float, type(None))):
        raise bad("'fps' is not a number or null")
    ends = raw["episode_ends"]
    if not all(isinstance(e, int) for e in ends) or any(b <= a for a, b in zip([0, *ends], ends)):
        raise bad("'episode_ends' is not a strictly increasing list of positive integers")
    if len(raw["episodes"]) != len(ends) or not all(isinstance(e, dict) for e in raw["episodes"]):
        raise bad(f"'episodes' does not hold one info dict per episode ({len(ends)})")
    for name, ids in raw["filter_keys"].items():
        if not isinstance(ids, list) or not all(isinstance(i, int) and 0 <= i < len(ends) for i in ids):
            raise bad(f"filter key {name!r} is not a list of episode ids")
    try:
        return _parse_features({k: (v["shape"], v["dtype"]) for k, v in raw["features"].items()})
    except (DatasetError, KeyError, TypeError) as e:
        raise bad(f"bad 'features': {e}") from e


class Dataset:
    """An episode store on disk; use `Dataset.create` or `Dataset.open`, not the constructor."""

    def __init__(self, path: Path, meta: dict[str, Any], features: dict[str, FeatureSpec], group: zarr.Group) -> None:
        self.path = path
        self._meta = meta  # as in meta.json
        self._features = features
        # Every chunk is written, even one equal to the fill value, so a missing chunk file
        # always means damage (checked by `open`).
        self._zarrays = {name: group[name].with_config({"write_empty_chunks": True}) for name in features}
        self._arrays: dict[str, np.ndarray] | None = None
        self._stats: dict[str, dict[str, Any]] | None = None
        self._cleaned = False

    # --- construction -------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        features: Mapping[str, tuple[Sequence[int], Any]],
        env: str | None = None,
        fps: float | None = None,
    ) -> Dataset:
        """Make an empty dataset at `path` (a new or empty directory) with these features.

        `features` maps a name (`obs.<key>`, `action`, `reward`, ...) to (per-step shape, dtype).
        """
        root = Path(path)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise DatasetError(f"{root}: already exists and is not an empty directory")
        spec = _parse_features(features)
        root.mkdir(parents=True, exist_ok=True)
        group = zarr.open_group(store=_DurableLocalStore(root / "data.zarr"), mode="w")
        for name, (shape, dtype) in spec.items():
            chunks = (_chunk_rows(shape, np.dtype(dtype)), *shape)
            group.create_array(name, shape=(0, *shape), chunks=chunks, dtype=dtype)
        meta = {
            "format": FORMAT, "version": FORMAT_VERSION, "env": env, "fps": None if fps is None else float(fps),
            "features": {k: {"shape": list(s), "dtype": d} for k, (s, d) in spec.items()},
            "episode_ends": [], "episodes": [], "filter_keys": {},
        }
        _write_json_atomic(root / "meta.json", meta)
        return cls(root, meta, spec, group)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Dataset:
        """Open the committed state of the dataset at `path`.

        Raises DatasetError if the directory or meta.json is missing or corrupt, the format
        version is unknown, or the arrays hold fewer rows than the committed episodes need.
        """
        root = Path(path)
        if not root.is_dir():
            raise DatasetError(f"{root}: no dataset here (directory does not exist)")
        meta_path = root / "meta.json"
        try:
            raw = json.loads(meta_path.read_text())
        except FileNotFoundError as e:
            raise DatasetError(f"{root}: not a dataset (no meta.json)") from e
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DatasetError(f"{root}: corrupt meta.json (cannot parse: {e})") from e
        features = _parse_meta(raw, root)
        n_steps = raw["episode_ends"][-1] if raw["episode_ends"] else 0
        if not (root / "data.zarr").is_dir():
            raise DatasetError(f"{root}: corrupt dataset (data.zarr is missing)")
        try:
            group = zarr.open_group(store=_DurableLocalStore(root / "data.zarr"), mode="r+")
            present = set(group.array_keys())
        except Exception as e:  # zarr raises several types for a missing or broken group
            raise DatasetError(f"{root}: cannot open data.zarr ({e})") from e
        for name, (shape, dtype) in features.items():
            if name not in present:
                raise DatasetError(f"{root}: data.zarr has no array for feature {name!r}")
            arr = group[name]
            if tuple(arr.shape[1:]) != shape or arr.dtype != np.dtype(dtype):
                raise DatasetError(f"{root}: array {name!r} is {arr.dtype}{arr.shape[1:]}, meta.json says {dtype}{shape}")
            if arr.shape[0] < n_steps:
                raise DatasetError(
                    f"{root}: truncated: array {name!r} has {arr.shape[0]} rows but the "
                    f"{len(raw['episode_ends'])} committed episodes need {n_steps}"
                )
            rows = arr.chunks[0]
            for i in range(-(-n_steps // rows)):
                key = arr.metadata.encode_chunk_key((i,) + (0,) * len(shape))
                if not (root / "data.zarr" / name / key).is_file():
                    raise DatasetError(
                        f"{root}: truncated: chunk {key} of array {name!r} (rows "
                        f"{i * rows}..{min(n_steps, (i + 1) * rows) - 1}) is missing"
                    )
        return cls(root, raw, features, group)

    # --- committed state ----------------------------------------------------------------
    @property
    def env(self) -> str | None:
        """Task name the episodes come from (e.g. `metaworld/push`), if known."""
        return self._meta["env"]

    @property
    def fps(self) -> float | None:
        return self._meta["fps"]

    @property
    def features(self) -> dict[str, FeatureSpec]:
        """Feature name -> (per-step shape, dtype name)."""
        return dict(self._features)

    @property
    def episode_ends(self) -> list[int]:
        """Exclusive end row of each episode; episode i spans rows ends[i-1] (or 0) .. ends[i]."""
        return list(self._meta["episode_ends"])

    @property
    def n_episodes(self) -> int:
        return len(self._meta["episode_ends"])

    @property
    def n_steps(self) -> int:
        ends = self._meta["episode_ends"]
        return ends[-1] if ends else 0

    @property
    def episode_info(self) -> list[dict[str, Any]]:
        """Per-episode info: `length` plus whatever was passed to `append_episode`."""
        return [dict(info) for info in self._meta["episodes"]]

    @property
    def episode_seeds(self) -> list[int | None]:
        """The reset seed of each episode (None where it was not recorded)."""
        return [info.get("seed") for info in self._meta["episodes"]]

    @property
    def filter_keys(self) -> dict[str, list[int]]:
        """Named episode-id lists (robomimic-style), e.g. "train" and "valid"."""
        return {k: list(v) for k, v in self._meta["filter_keys"].items()}

    def _bounds(self, i: int) -> tuple[int, int]:
        if not 0 <= i < self.n_episodes:
            raise IndexError(f"episode {i} out of range: the dataset has {self.n_episodes} episodes")
        ends = self._meta["episode_ends"]
        return (ends[i - 1] if i else 0), ends[i]

    # --- reading ------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        """Feature name -> all committed rows, loaded once and cached (read-only arrays)."""
        if self._arrays is None:
            arrays = {}
            for name, arr in self._zarrays.items():
                try:
                    data = np.ascontiguousarray(arr[: self.n_steps])
                except Exception as e:  # a damaged chunk: zarr/codec errors vary
                    raise DatasetError(f"{self.path}: cannot read feature {name!r} ({e})") from e
                data.flags.writeable = False
                arrays[name] = data
            self._arrays = arrays
        return self._arrays

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """Feature name -> the rows of episode `i`."""
        start, end = self._bounds(i)
        if self._arrays is not None:
            return {name: data[start:end] for name, data in self._arrays.items()}
        return {name: np.asarray(arr[start:end]) for name, arr in self._zarrays.items()}

    def stats(self) -> dict[str, dict[str, Any]]:
        """Feature name -> {"mean", "std", "min", "max"}, each a (nested) list of the feature's shape.

        Computed over all committed steps in float64 (std is the population std), cached in
        memory and in stats.json; recomputed when the number of steps has changed.
        """
        if self._stats is not None:
            return self._stats
        if self.n_steps == 0:
            raise DatasetError(f"{self.path}: no episodes, so no statistics")
        stats_path = self.path / "stats.json"
        try:
            cached = json.loads(stats_path.read_text())
            if cached.get("n_steps") == self.n_steps and set(cached["stats"]) == set(self.features):
                self._stats = cached["stats"]
                return self._stats
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # absent or unreadable cache: recompute below
        stats = {}
        for name, data in self.arrays().items():
            x = data.astype(np.float64)
            stats[name] = {key: getattr(x, key)(axis=0).tolist() for key in ("mean", "std", "min", "max")}
        try:
            _write_json_atomic(stats_path, {"n_steps": self.n_steps, "stats": stats})
        except OSError:
            pass  # a read-only dataset still gets its statistics, just not cached on disk
        self._stats = stats
        return stats

    # --- writing ------------------------------------------------------------------------
    def _validated(self, steps: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], int]:
        """Cast an episode's arrays to the features' dtypes; DatasetError if they do not fit."""
        features = self._features
        missing = sorted(set(features) - set(steps))
        unknown = sorted(set(steps) - set(features))
        if missing or unknown:
            raise DatasetError(f"episode features: missing {missing}, not in the dataset {unknown}")
        values = {name: np.asarray(steps[name]) for name in features}
        for name, (shape, _) in features.items():
            if values[name].ndim != len(shape) + 1 or values[name].shape[1:] != shape:
                want = ", ".join(["T", *map(str, shape)])
                raise DatasetError(f"feature {name!r}: expected rows of shape ({want}), got {values[name].shape}")
        lengths = {name: len(value) for name, value in values.items()}
        if len(set(lengths.values())) != 1 or min(lengths.values()) < 1:
            raise DatasetError(f"episode features must all have the same length T >= 1, got {lengths}")
        out: dict[str, np.ndarray] = {}
        for name, (_, dtype_name) in features.items():
            value, dtype = values[name], np.dtype(dtype_name)
            integers = value.dtype.kind in "iu" and dtype.kind in "iu"  # range checked below
            if not (integers or np.can_cast(value.dtype, dtype, casting="same_kind")):
                raise DatasetError(f"feature {name!r}: cannot store {value.dtype} as {dtype}")
            if integers and (value.min() < np.iinfo(dtype).min or value.max() > np.iinfo(dtype).max):
                raise DatasetError(f"feature {name!r}: values outside the range of {dtype}")
            with np.errstate(over="ignore"):  # overflow to inf is reported just below
                value = np.ascontiguousarray(value, dtype=dtype)
            if dtype.kind == "f":
                bad_rows = ~np.isfinite(value.reshape(len(value), -1)).all(axis=1)
                if bad_rows.any():
                    step = int(np.argmax(bad_rows))
                    raise DatasetError(f"feature {name!r}: NaN or inf at step {step} (after casting to {dtype})")
            out[name] = value
        return out, lengths[next(iter(features))]

    def _remove_partials(self) -> None:
        """Delete temp files a killed writer may have left (once per instance, before writing)."""
        if not self._cleaned:
            for tmp in self.path.rglob(f".*{_PARTIAL_SUFFIX}"):
                tmp.unlink(missing_ok=True)
            self._cleaned = True

    def _commit(self, meta: dict[str, Any]) -> None:
        _write_json_atomic(self.path / "meta.json", meta)
        self._meta = meta

    def append_episode(self, steps: Mapping[str, Any], *, info: Mapping[str, Any] | None = None) -> int:
        """Append one episode atomically and return its index.

        `steps` maps every feature to its (T, *shape) rows; `info` (JSON-serialisable: seed,
        success, source, return, ...) is stored with `length` = T added. Everything is validated
        first, so a rejected episode writes nothing.
        """
        data, length = self._validated(steps)
        try:
            record = json.loads(json.dumps(dict(info or {}), allow_nan=False, default=_json_default))
        except (TypeError, ValueError) as e:
            raise DatasetError(f"episode info is not JSON serialisable: {e}") from e
        if record.setdefault("length", length) != length:
            raise DatasetError(f"episode info says length {record['length']} but the episode has {length} steps")
        self._remove_partials()
        start = self.n_steps
        for name, arr in self._zarrays.items():
            arr.resize((start + length, *arr.shape[1:]))
            arr[start : start + length] = data[name]
        ends, episodes = self._meta["episode_ends"], self._meta["episodes"]
        self._commit({**self._meta, "episode_ends": [*ends, start + length], "episodes": [*episodes, record]})
        self._arrays, self._stats = None, None
        return self.n_episodes - 1

    def set_filter_key(self, name: str, ids: Sequence[int]) -> None:
        """Store (or replace) the named episode-id list `name`; committed atomically."""
        self.set_filter_keys({name: ids})

    def set_filter_keys(self, keys: Mapping[str, Sequence[int]]) -> None:
        """Store (or replace) several named episode-id lists in one atomic commit."""
        updated = dict(self._meta["filter_keys"])
        for name, ids in keys.items():
            if not isinstance(name, str) or not name:
                raise DatasetError(f"filter key name must be a non-empty string, got {name!r}")
            try:
                clean = [operator.index(i) for i in ids]
            except TypeError as e:
                raise DatasetError(f"filter key {name!r}: episode ids must be integers ({e})") from e
            outside = [i for i in clean if not 0 <= i < self.n_episodes]
            if outside:
                raise DatasetError(f"filter key {name!r}: ids {outside[:5]} out of range 0..{self.n_episodes - 1}")
            if len(set(clean)) != len(clean):
                raise DatasetError(f"filter key {name!r}: duplicate episode ids")
            updated[name] = clean
        self._commit({**self._meta, "filter_keys": updated})

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r}, episodes={self.n_episodes}, steps={self.n_steps})"
