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
are ignored on open and overwritten by the next append.

One writer at a time: every write holds the dataset's writer lock (data/lock.py) and first
checks that meta.json is still the one it read, so a second writer fails at once instead of
overwriting the first one's rows. Every committed chunk has a checksum in meta.json
(data/checksums.py), verified whenever rows are read; meta.json checks itself (data/meta.py).
"""

from __future__ import annotations

import bisect
import contextlib
import json
import math
import operator
import os
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from imitari.data import checksums
from imitari.data.chunked_rows import CACHE_BYTES, ChunkedRows
from imitari.data.episodes import episode_record, first_nonfinite, validated_steps
from imitari.data.files import PARTIAL_SUFFIX, DurableLocalStore, write_json_atomic
from imitari.data.images import IMAGE_CHUNK_BYTES, image_compressors, image_stats, is_image
from imitari.data.lock import LOCK_NAME, LockHeld, WriterLock
from imitari.data.meta import (
    FORMAT,
    FORMAT_VERSION,
    DatasetError,
    FeatureSpec,
    loads,
    parse_features,
    seal,
)
from imitari.data.meta import read as read_meta

__all__ = ["FORMAT", "FORMAT_VERSION", "Dataset", "DatasetError", "FeatureSpec"]

_MAX_CHUNK_ROWS = 65536
_CHUNK_BYTES = 1 << 20


def _chunk_rows(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Rows per chunk: about 1 MiB uncompressed (128 KiB for images), at most 65536 rows."""
    row_bytes = max(1, math.prod(shape) * dtype.itemsize)
    target = IMAGE_CHUNK_BYTES if is_image(shape, dtype.name) else _CHUNK_BYTES
    return max(1, min(_MAX_CHUNK_ROWS, target // row_bytes))


class Dataset:
    """An episode store on disk; use `Dataset.create` or `Dataset.open`, not the constructor.

    Opened with `writer=True` (or used in a `with` block after that) it holds the writer lock
    until `close()`; otherwise each write takes the lock for its own duration."""

    def __init__(self, path: Path, meta: dict[str, Any], features: dict[str, FeatureSpec], group: zarr.Group,
                 *, meta_bytes: bytes, lock: WriterLock | None = None) -> None:
        self.path = path
        self._meta = meta  # as in meta.json
        self._meta_bytes = meta_bytes  # meta.json as last read or written: a changed file means another writer
        self._features = features
        self._lock = lock
        # Every chunk is written, even one equal to the fill value, so a missing chunk file
        # always means damage (checked by `open`).
        self._zarrays = {name: group[name].with_config({"write_empty_chunks": True}) for name in features}
        self._arrays: dict[str, np.ndarray] | None = None
        self._stats: dict[str, dict[str, Any]] | None = None
        self._cleaned = False

    # --- construction -------------------------------------------------------------------
    @staticmethod
    def _take_lock(root: Path) -> WriterLock:
        try:
            return WriterLock(root)
        except LockHeld as e:
            raise DatasetError(str(e)) from None
        except OSError as e:
            raise DatasetError(f"{root}: cannot write to this dataset ({e.strerror or e})") from e

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        features: Mapping[str, tuple[Sequence[int], Any]],
        env: str | None = None,
        fps: float | None = None,
        writer: bool = False,
    ) -> Dataset:
        """Make an empty dataset at `path` (a new or empty directory) with these features.

        `features` maps a name (`obs.<key>`, `action`, `reward`, ...) to (per-step shape, dtype).
        `writer=True` keeps the writer lock until `close()`.
        """
        root = Path(path)
        if root.exists() and not root.is_dir():
            raise DatasetError(f"{root}: already exists and is not an empty directory")
        spec = parse_features(features)
        if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < math.inf):
            raise DatasetError(f"fps must be a positive number or None (got {fps!r})")
        if env is not None and not isinstance(env, str):
            raise DatasetError(f"env must be a task name or None (got {env!r})")
        root.mkdir(parents=True, exist_ok=True)
        lock = cls._take_lock(root)
        try:
            if any(p.name != LOCK_NAME for p in root.iterdir()):
                raise DatasetError(f"{root}: already exists and is not an empty directory")
            group = zarr.open_group(store=DurableLocalStore(root / "data.zarr"), mode="w")
            sums = {}
            for name, (shape, dtype) in spec.items():
                chunks = (_chunk_rows(shape, np.dtype(dtype)), *shape)
                codecs = {"compressors": image_compressors()} if is_image(shape, dtype) else {}
                group.create_array(name, shape=(0, *shape), chunks=chunks, dtype=dtype, **codecs)
                sums[name] = {"rows": chunks[0], "crc32": []}
            meta = seal({
                "format": FORMAT, "version": FORMAT_VERSION, "env": env, "fps": None if fps is None else float(fps),
                "features": {k: {"shape": list(s), "dtype": d} for k, (s, d) in spec.items()},
                "episode_ends": [], "episodes": [], "filter_keys": {}, "checksums": sums,
            })
            meta_bytes = write_json_atomic(root / "meta.json", meta)
        except BaseException:
            lock.release()
            raise
        if not writer:
            lock.release()
        return cls(root, meta, spec, group, meta_bytes=meta_bytes, lock=lock if writer else None)

    @staticmethod
    def _read_meta(root: Path) -> tuple[dict[str, Any], dict[str, FeatureSpec], bytes]:
        try:
            data = (root / "meta.json").read_bytes()
        except FileNotFoundError as e:
            raise DatasetError(f"{root}: not a dataset (no meta.json)") from e
        except OSError as e:
            raise DatasetError(f"{root}: cannot read meta.json ({e.strerror or e})") from e
        return (*read_meta(data, root), data)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, writer: bool = False) -> Dataset:
        """Open the committed state of the dataset at `path`.

        Raises DatasetError if the directory or meta.json is missing, unreadable or corrupt
        (see data/meta.py for what is checked), the format version is unknown, or the arrays
        hold fewer rows than the committed episodes need. `writer=True` takes the writer lock
        first (DatasetError at once if another process holds it) and keeps it until `close()`.
        """
        root = Path(path)
        if not root.is_dir():
            raise DatasetError(f"{root}: no dataset here (directory does not exist)")
        lock = cls._take_lock(root) if writer else None
        try:
            return cls._open_locked(root, lock)
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    @classmethod
    def _open_locked(cls, root: Path, lock: WriterLock | None) -> Dataset:
        raw, features, meta_bytes = cls._read_meta(root)
        n_steps = raw["episode_ends"][-1] if raw["episode_ends"] else 0
        if not (root / "data.zarr").is_dir():
            raise DatasetError(f"{root}: corrupt dataset (data.zarr is missing)")
        try:
            group = zarr.open_group(store=DurableLocalStore(root / "data.zarr"), mode="r+")
            present = set(group.array_keys())
            arrays = {name: group[name] for name in features if name in present}
        except Exception as e:  # zarr raises several types for a missing or broken group
            raise DatasetError(f"{root}: cannot open data.zarr ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from e
        for name, (shape, dtype) in features.items():
            if name not in arrays:
                raise DatasetError(f"{root}: data.zarr has no array for feature {name!r}")
            arr = arrays[name]
            if tuple(arr.shape[1:]) != shape or arr.dtype != np.dtype(dtype) or len(arr.chunks) != len(shape) + 1:
                raise DatasetError(f"{root}: array {name!r} is {arr.dtype}{arr.shape[1:]}, meta.json says {dtype}{shape}")
            if arr.shape[0] < n_steps:
                raise DatasetError(
                    f"{root}: truncated: array {name!r} has {arr.shape[0]} rows but the "
                    f"{len(raw['episode_ends'])} committed episodes need {n_steps}"
                )
            rows = arr.chunks[0]
            if "checksums" in raw and raw["checksums"][name]["rows"] != rows:
                raise DatasetError(f"{root}: array {name!r} has chunks of {rows} rows, its checksums expect "
                                   f"{raw['checksums'][name]['rows']}")
            for i in range(-(-n_steps // rows)):
                key = arr.metadata.encode_chunk_key((i,) + (0,) * len(shape))
                if not (root / "data.zarr" / name / key).is_file():
                    raise DatasetError(
                        f"{root}: truncated: chunk {key} of array {name!r} (rows "
                        f"{i * rows}..{min(n_steps, (i + 1) * rows) - 1}) is missing"
                    )
        return cls(root, raw, features, group, meta_bytes=meta_bytes, lock=lock)

    def close(self) -> None:
        """Give up the writer lock, if this instance holds it (reading still works)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    @property
    def has_checksums(self) -> bool:
        """False for a dataset written before checksums existed (its rows are read unverified)."""
        return "checksums" in self._meta

    def _bounds(self, i: int) -> tuple[int, int]:
        if not 0 <= i < self.n_episodes:
            raise IndexError(f"episode {i} out of range: the dataset has {self.n_episodes} episodes")
        ends = self._meta["episode_ends"]
        return (ends[i - 1] if i else 0), ends[i]

    def _where(self, row: int) -> str:
        """'episode i (seed s) at step t' for a global row index."""
        i = bisect.bisect_right(self._meta["episode_ends"], row)
        seed = self._meta["episodes"][i].get("seed")
        return f"episode {i}{'' if seed is None else f' (seed {seed})'} at step {row - self._bounds(i)[0]}"

    # --- reading ------------------------------------------------------------------------
    def _read(self, name: str, start: int, end: int) -> np.ndarray:
        """Rows start..end of feature `name`, with every chunk they touch checked against its
        committed checksum; DatasetError names the chunk that is damaged."""
        arr = self._zarrays[name]
        rows = arr.chunks[0]
        lo, hi = start // rows * rows, min(self.n_steps, -(-end // rows) * rows)
        try:
            data = np.ascontiguousarray(arr[lo:hi])
        except Exception as e:  # a damaged chunk: zarr/codec errors vary
            raise DatasetError(f"{self.path}: cannot read feature {name!r} ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from e
        if self.has_checksums:
            bad = checksums.bad_chunks(data, rows, self._meta["checksums"][name]["crc32"], lo // rows)
            if bad:
                raise DatasetError(
                    f"{self.path}: damaged: chunk {bad[0]} of feature {name!r} (rows {bad[0] * rows}.."
                    f"{min(self.n_steps, (bad[0] + 1) * rows) - 1}) does not match its checksum"
                    + (f" ({len(bad)} chunks in all)" if len(bad) > 1 else "")
                )
        return data[start - lo : end - lo]

    def arrays(self) -> dict[str, np.ndarray]:
        """Feature name -> all committed rows, verified, loaded once and cached (read-only arrays)."""
        if self._arrays is None:
            arrays = {}
            for name in self._zarrays:
                data = self._read(name, 0, self.n_steps)
                data.flags.writeable = False
                arrays[name] = data
            self._arrays = arrays
        return self._arrays

    def rows(self, name: str, *, cache_bytes: int = CACHE_BYTES) -> ChunkedRows:
        """Feature `name`'s committed rows, read from disk chunk by chunk as they are indexed
        (verified; for features too large to hold in memory, such as camera frames), keeping
        up to `cache_bytes` of decoded chunks."""
        crcs = self._meta["checksums"][name]["crc32"] if self.has_checksums else None
        return ChunkedRows(self._zarrays[name], folder=self.path / "data.zarr" / name, n_rows=self.n_steps,
                           crcs=crcs, name=name, cache_bytes=cache_bytes)

    def sampling_arrays(self, *, memory_limit: int = 1 << 31) -> dict[str, np.ndarray | ChunkedRows]:
        """What the window sampler gathers from: `arrays()` when every feature fits in
        `memory_limit` bytes together, else the image features as `rows()` read from disk."""
        sizes = {name: self.n_steps * math.prod(shape) * np.dtype(dtype).itemsize
                 for name, (shape, dtype) in self._features.items()}
        if self._arrays is not None or sum(sizes.values()) <= memory_limit:
            return dict(self.arrays())
        return {name: self.rows(name) if is_image(*self._features[name]) else self._read(name, 0, self.n_steps)
                for name in self._features}

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """Feature name -> the rows of episode `i` (verified)."""
        start, end = self._bounds(i)
        if self._arrays is not None:
            return {name: data[start:end] for name, data in self._arrays.items()}
        return {name: self._read(name, start, end) for name in self._zarrays}

    def _check_finite(self, names: Iterable[str]) -> None:
        """Read these features' rows (checking every chunk's checksum) and that all are finite."""
        for name in names:
            start = 0
            for piece in self._chunks_of(name):
                row = first_nonfinite(piece)
                if row is not None:
                    raise DatasetError(f"{self.path}: feature {name!r} holds NaN or inf in {self._where(start + row)}")
                start += len(piece)

    def verify(self) -> dict[str, Any]:
        """Read every committed row, check every chunk's checksum and that all values are finite.

        Returns {"episodes", "steps", "chunks", "checksums"} (checksums False for a dataset
        written before they existed); raises DatasetError naming the first problem."""
        self._arrays = None  # re-read from disk
        self._check_finite(self._features)
        chunks = sum(-(-self.n_steps // arr.chunks[0]) for arr in self._zarrays.values())
        return {"episodes": self.n_episodes, "steps": self.n_steps, "chunks": chunks, "checksums": self.has_checksums}

    def _fingerprint(self) -> int | None:
        """What the stats cache is keyed by: the committed chunks' checksums (None without)."""
        if not self.has_checksums:
            return None
        return zlib.crc32(json.dumps(self._meta["checksums"], sort_keys=True).encode())

    def _chunks_of(self, name: str, piece_bytes: int = 1 << 24) -> Iterator[np.ndarray]:
        """Feature `name`'s committed rows in verified pieces of whole chunks, about `piece_bytes` each."""
        shape, dtype = self._features[name]
        step = max(1, piece_bytes // max(1, math.prod(shape) * np.dtype(dtype).itemsize))
        step = -(-step // self._zarrays[name].chunks[0]) * self._zarrays[name].chunks[0]
        for lo in range(0, self.n_steps, step):
            yield self._read(name, lo, min(self.n_steps, lo + step))

    def stats(self) -> dict[str, dict[str, Any]]:
        """Feature name -> {"mean", "std", "min", "max"}, each a (nested) list of the feature's shape;
        for an image feature, one value per channel (data/images.py).

        Computed over all committed steps in float64 (std is the population std), cached in
        memory and in stats.json, keyed by the number of steps and the chunks' checksums so a
        cache never outlives the rows it describes. DatasetError if a value is NaN or inf.
        """
        if self._stats is not None:
            return self._stats
        if self.n_steps == 0:
            raise DatasetError(f"{self.path}: no episodes, so no statistics")
        stats_path = self.path / "stats.json"
        key = {"n_steps": self.n_steps, "fingerprint": self._fingerprint()}
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
            cached = loads(stats_path.read_text())
            if all(cached.get(k) == v for k, v in key.items()) and set(cached["stats"]) == set(self.features):
                self._stats = cached["stats"]
                return self._stats
        self._check_finite(name for name, (_, dtype) in self._features.items() if np.dtype(dtype).kind == "f")
        stats = {}
        for name, (shape, dtype) in self._features.items():
            if is_image(shape, dtype):
                stats[name] = image_stats(self._chunks_of(name), shape[-1])
                continue
            x = (self._arrays[name] if self._arrays is not None else self._read(name, 0, self.n_steps)).astype(np.float64)
            stats[name] = {key: getattr(x, key)(axis=0).tolist() for key in ("mean", "std", "min", "max")}
        with contextlib.suppress(OSError):  # a read-only dataset still gets its statistics, just not cached
            write_json_atomic(stats_path, {**key, "stats": stats})
        self._stats = stats
        return stats

    # --- writing ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the writer lock for one write (unless this instance holds it already), and
        refuse to write if meta.json changed since this instance read or wrote it."""
        lock = None if self._lock is not None else self._take_lock(self.path)
        try:
            try:
                current = (self.path / "meta.json").read_bytes()
            except OSError as e:
                raise DatasetError(f"{self.path}: cannot read meta.json ({e.strerror or e})") from e
            if current != self._meta_bytes:
                raise DatasetError(f"{self.path}: changed by another writer since it was opened; open it again")
            self._remove_partials()
            yield
        finally:
            if lock is not None:
                lock.release()

    def _remove_partials(self) -> None:
        """Delete temp files a killed writer may have left (once per instance, before writing)."""
        if not self._cleaned:
            for tmp in self.path.rglob(f".*{PARTIAL_SUFFIX}"):
                tmp.unlink(missing_ok=True)
            self._cleaned = True

    def _commit(self, meta: dict[str, Any]) -> None:
        meta = seal(meta)
        self._meta_bytes = write_json_atomic(self.path / "meta.json", meta)
        self._meta = meta

    def _committed_checksums(self) -> dict[str, dict[str, Any]]:
        """The checksums of the committed rows; computed from them once for an older dataset."""
        if self.has_checksums:
            return self._meta["checksums"]
        arrays = self.arrays()
        return {name: {"rows": arr.chunks[0], "crc32": checksums.compute(arrays[name], arr.chunks[0])}
                for name, arr in self._zarrays.items()}

    def append_episode(self, steps: Mapping[str, Any], *, info: Mapping[str, Any] | None = None) -> int:
        """Append one episode atomically and return its index.

        `steps` maps every feature to its (T, *shape) rows; `info` (JSON-serialisable: seed,
        success, source, return, ...) is stored with `length` = T added. Everything is validated
        first, so a rejected episode writes nothing.
        """
        seed = (info or {}).get("seed")
        where = f"episode {self.n_episodes}" + ("" if seed is None else f" (seed {seed})")
        try:
            data, length = validated_steps(self._features, steps)
        except DatasetError as e:
            raise DatasetError(f"{where}: {e}") from None
        record = episode_record(info, length, where)
        with self._writing():
            start = self.n_steps
            sums = self._committed_checksums()
            for name, arr in self._zarrays.items():
                arr.resize((start + length, *arr.shape[1:]))
                arr[start : start + length] = data[name]
            sums = {name: {"rows": entry["rows"], "crc32": checksums.extend(entry["crc32"], entry["rows"], start, data[name])}
                    for name, entry in sums.items()}
            ends, episodes = self._meta["episode_ends"], self._meta["episodes"]
            self._commit({**self._meta, "episode_ends": [*ends, start + length], "episodes": [*episodes, record],
                          "checksums": sums})
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
        with self._writing():
            self._commit({**self._meta, "filter_keys": updated, "checksums": self._committed_checksums()})

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r}, episodes={self.n_episodes}, steps={self.n_steps})"
