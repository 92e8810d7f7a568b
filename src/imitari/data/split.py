"""Train/validation splits over episodes, stored as the dataset's "train" and "valid" filter keys."""

from __future__ import annotations

import numpy as np

from imitari.config import ConfigError, closest
from imitari.data.store import Dataset, DatasetError


def split_episodes(n_episodes: int, *, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split episode ids 0..n-1 into sorted (train_ids, val_ids), the same for the same arguments.

    The validation set holds round(n * val_fraction) episodes, but at least one (when
    val_fraction > 0 and n >= 2) and never all of them, so both sides can be used.
    """
    if n_episodes < 1:
        raise DatasetError(f"need at least one episode to split, got {n_episodes}")
    if not 0.0 <= val_fraction < 1.0:  # NaN fails too
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = round(n_episodes * val_fraction)
    if val_fraction > 0 and n_episodes >= 2:
        n_val = min(max(n_val, 1), n_episodes - 1)
    else:
        n_val = 0
    order = np.random.default_rng(seed).permutation(n_episodes)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def write_split(ds: Dataset, *, val_fraction: float = 0.1, seed: int = 0) -> tuple[list[int], list[int]]:
    """Split `ds`'s episodes, store them as filter keys "train" and "valid" (one atomic commit)
    and return (train_ids, val_ids)."""
    train_ids, val_ids = split_episodes(ds.n_episodes, val_fraction=val_fraction, seed=seed)
    ds.set_filter_keys({"train": train_ids, "valid": val_ids})
    return train_ids, val_ids


def filter_ids(ds: Dataset, name: str | None) -> list[int]:
    """The episode ids of filter key `name`; all episodes for None or "", or for the default "train"
    on a dataset that has no filter keys at all. Any other key the dataset lacks is a
    DatasetError listing the keys it has, so a typo never trains on validation episodes."""
    keys = ds.filter_keys
    if not name or (name == "train" and not keys):
        return list(range(ds.n_episodes))
    if name not in keys:
        have = ", ".join(keys) if keys else "none (run `imitari data split`)"
        raise DatasetError(f"{ds.path}: no filter key {name!r}{closest(name, keys)}; its filter keys: {have}")
    return list(keys[name])
