"""meta.json of a dataset: its structure, the checks run on open, and the seal over it.

meta.json is the dataset's commit point, so everything it claims is checked before any array
is trusted: known keys only, `episode_ends` strictly increasing integers that agree with every
episode's recorded `length`, fps/seed/success of the right types and signs, filter keys that
name existing episodes, and per-chunk checksums laid out for the committed rows. The file
carries `meta_crc32`, a CRC-32 over its own canonical JSON, so an edited or bit-flipped file is
refused instead of silently describing other data. Files without it (written before
checksums existed) are read unverified.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "imitari.dataset"
FORMAT_VERSION = 1
SEAL = "meta_crc32"
KEYS = {"format", "version", "env", "fps", "features", "episode_ends", "episodes", "filter_keys", "checksums", SEAL}
_FEATURE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")

FeatureSpec = tuple[tuple[int, ...], str]


class DatasetError(Exception):
    """A dataset is missing, corrupt, truncated, or an episode does not fit its features."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _canonical(meta: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in meta.items() if k != SEAL}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def seal(meta: Mapping[str, Any]) -> dict[str, Any]:
    """`meta` with its `meta_crc32` (re)computed: what gets written to meta.json."""
    return {**{k: v for k, v in meta.items() if k != SEAL}, SEAL: zlib.crc32(_canonical(meta))}


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def loads(text: str) -> Any:
    """Strict JSON (no NaN/Infinity literals)."""
    return json.loads(text, parse_constant=_reject_constant)


def parse_features(features: Mapping[str, Any]) -> dict[str, FeatureSpec]:
    """Normalise `{name: (shape, dtype)}`; raise DatasetError on a bad name, shape or dtype."""
    if not features:
        raise DatasetError("a dataset needs at least one feature")
    parsed: dict[str, FeatureSpec] = {}
    for name, spec in features.items():
        if not isinstance(name, str) or not _FEATURE_NAME.match(name):
            raise DatasetError(f"feature name {name!r}: use letters, digits, '_', '.', '-'")
        try:
            shape_like, dtype_like = spec
            if isinstance(shape_like, (str, bytes)) or any(isinstance(d, (bool, float)) for d in shape_like):
                raise TypeError(shape_like)
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


def check_episode_info(record: Mapping[str, Any], length: int) -> str | None:
    """Why an episode's info is unusable (None when it is fine): `length` must equal the
    episode's rows, `seed` be an integer >= 0 or null, `success` a bool or null."""
    if not _is_int(record.get("length")) or record["length"] != length:
        return f"its 'length' {record.get('length')!r} does not match its {length} rows in 'episode_ends'"
    seed = record.get("seed")
    if seed is not None and not (_is_int(seed) and seed >= 0):
        return f"its 'seed' {seed!r} is not an integer >= 0"
    if record.get("success") is not None and not isinstance(record["success"], bool):
        return f"its 'success' {record['success']!r} is not true, false or null"
    return None


def _check_checksums(raw: Any, features: Mapping[str, FeatureSpec], n_steps: int) -> str | None:
    if not isinstance(raw, dict) or set(raw) != set(features):
        return "'checksums' does not hold one entry per feature"
    for name, entry in raw.items():
        if not isinstance(entry, dict) or set(entry) != {"rows", "crc32"}:
            return f"checksums of {name!r} are not {{rows, crc32}}"
        rows, crcs = entry["rows"], entry["crc32"]
        if not (_is_int(rows) and rows >= 1 and isinstance(crcs, list)) or len(crcs) != -(-n_steps // rows):
            return f"checksums of {name!r} do not cover the {n_steps} committed rows"
        if not all(_is_int(c) and 0 <= c < 1 << 32 for c in crcs):
            return f"checksums of {name!r} are not CRC-32 values"
    return None


def parse_meta(raw: Any, where: Path) -> dict[str, FeatureSpec]:
    """Check a decoded meta.json (see the module docstring); return its features, normalised."""

    def bad(why: str) -> DatasetError:
        return DatasetError(f"{where}: corrupt meta.json ({why})")

    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise bad(f"not an imitari dataset: 'format' is not {FORMAT!r}")
    if raw.get("version") != FORMAT_VERSION or not _is_int(raw.get("version")):
        raise DatasetError(
            f"{where}: dataset format version {raw.get('version')!r} is not known to this "
            f"imitari (it reads version {FORMAT_VERSION}); upgrade imitari or re-create the dataset"
        )
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise bad(f"unknown keys {unknown}")
    for key, kind in [("features", dict), ("episode_ends", list), ("episodes", list), ("filter_keys", dict)]:
        if not isinstance(raw.get(key), kind):
            raise bad(f"'{key}' missing or not a {kind.__name__}")
    if not isinstance(raw.get("env"), (str, type(None))):
        raise bad("'env' is not a string or null")
    fps = raw.get("fps")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0):
        raise bad(f"'fps' {fps!r} is not a positive number or null")
    ends = raw["episode_ends"]
    if not all(_is_int(e) for e in ends) or any(b <= a for a, b in zip([0, *ends], ends)):
        raise bad("'episode_ends' is not a strictly increasing list of positive integers")
    if len(raw["episodes"]) != len(ends) or not all(isinstance(e, dict) for e in raw["episodes"]):
        raise bad(f"'episodes' does not hold one info dict per episode ({len(ends)})")
    for i, (start, end, info) in enumerate(zip([0, *ends], ends, raw["episodes"])):
        why = check_episode_info(info, end - start)
        if why:
            raise bad(f"episode {i}: {why}")
    for name, ids in raw["filter_keys"].items():
        if not isinstance(ids, list) or not all(_is_int(i) and 0 <= i < len(ends) for i in ids) or len(set(ids)) != len(ids):
            raise bad(f"filter key {name!r} is not a list of distinct episode ids")
    try:
        features = parse_features({k: (v["shape"], v["dtype"]) for k, v in raw["features"].items()})
    except (DatasetError, KeyError, TypeError) as e:
        raise bad(f"bad 'features': {e}") from e
    if (SEAL in raw) != ("checksums" in raw):
        raise bad(f"'checksums' and '{SEAL}' must be both present or both absent")
    if SEAL in raw:
        why = _check_checksums(raw["checksums"], features, ends[-1] if ends else 0)
        if why:
            raise bad(why)
        if raw[SEAL] != zlib.crc32(_canonical(raw)):
            raise bad(f"its {SEAL} does not match its contents: the file was changed or damaged")
    return features


def read(data: bytes, where: Path) -> tuple[dict[str, Any], dict[str, FeatureSpec]]:
    """Decode and check meta.json's bytes: (the meta dict, its features); DatasetError otherwise."""
    try:
        raw = loads(data.decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise DatasetError(f"{where}: corrupt meta.json (cannot parse: {str(e).splitlines()[0]})") from e
    return raw, parse_meta(raw, where)
