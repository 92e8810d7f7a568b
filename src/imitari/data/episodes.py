"""What an appended episode must be: its rows fit the features, finite; its info storable.

Checked before anything is written, so a rejected episode leaves the dataset as it was.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from imitari.data.meta import DatasetError, FeatureSpec, check_episode_info


def json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def first_nonfinite(value: np.ndarray) -> int | None:
    """Index of the first row holding NaN or inf (None if all rows are finite or not floats)."""
    if value.dtype.kind != "f" or not len(value):
        return None
    bad = ~np.isfinite(value.reshape(len(value), -1)).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def validated_steps(features: Mapping[str, FeatureSpec], steps: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], int]:
    """Cast an episode's arrays to the features' dtypes; DatasetError if they do not fit."""
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
        step = first_nonfinite(value)
        if step is not None:
            raise DatasetError(f"feature {name!r}: NaN or inf at step {step} (after casting to {dtype})")
        out[name] = value
    return out, lengths[next(iter(features))]


def episode_record(info: Mapping[str, Any] | None, length: int, where: str) -> dict[str, Any]:
    """An episode's info as stored: JSON-clean (numpy scalars become numbers) with `length`
    added; DatasetError (prefixed with `where`) if it cannot be stored or does not fit."""
    try:
        record = json.loads(json.dumps(dict(info or {}), allow_nan=False, default=json_default))
    except (TypeError, ValueError) as e:
        raise DatasetError(f"episode info is not JSON serialisable: {e}") from e
    if record.setdefault("length", length) != length:
        raise DatasetError(f"episode info says length {record['length']} but the episode has {length} steps")
    why = check_episode_info(record, length)
    if why:
        raise DatasetError(f"{where}: {why}")
    return record
