"""A JSON-friendly summary of a dataset and its text form (`imitari data info`)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from imitari.data.images import is_image
from imitari.data.store import Dataset


def _compact(stats: dict[str, Any]) -> dict[str, float]:
    """Per-element statistics folded to four numbers: mean of the means, mean of the stds,
    overall min and overall max. Enough to spot a broken feature without printing every dim."""
    return {
        "mean": float(np.mean(stats["mean"])),
        "std": float(np.mean(stats["std"])),
        "min": float(np.min(stats["min"])),
        "max": float(np.max(stats["max"])),
    }


def dataset_summary(ds: Dataset, *, verify: bool = False) -> dict[str, Any]:
    """Episodes, steps, features (shape, dtype, bytes raw and on disk, whether an image, compact
    statistics: per channel for images), episode lengths, success
    rate over the episodes that record "success", episode sources and filter-key sizes.

    `verify` first reads every row and checks it against its checksum (`Dataset.verify`), so
    what `imitari data info` prints is never taken from a cache of damaged data."""
    if verify:
        ds.verify()
    infos = ds.episode_info
    lengths = np.diff([0, *ds.episode_ends])
    stats = ds.stats() if ds.n_steps else {}
    with_success = [bool(info["success"]) for info in infos if info.get("success") is not None]
    return {
        "path": str(ds.path),
        "env": ds.env,
        "fps": ds.fps,
        "episodes": ds.n_episodes,
        "steps": ds.n_steps,
        "episode_length": (
            {"min": int(lengths.min()), "mean": float(lengths.mean()), "max": int(lengths.max())}
            if len(lengths)
            else None
        ),
        "features": {
            name: {"shape": list(shape), "dtype": dtype, **_bytes(ds, name),
                   **({"image": True} if is_image(shape, dtype) else {}),
                   **({"stats": _compact(stats[name])} if stats else {})}
            for name, (shape, dtype) in ds.features.items()
        },
        "success": {
            "episodes_with_info": len(with_success),
            "rate": sum(with_success) / len(with_success) if with_success else None,
        },
        "sources": dict(Counter(str(info.get("source", "unknown")) for info in infos)),
        "filter_keys": {name: len(ids) for name, ids in ds.filter_keys.items()},
    }


def _size(n: float) -> str:
    units, i = ("B", "KiB", "MiB", "GiB"), 0
    while n >= 1024 and i < len(units) - 1:
        n, i = n / 1024, i + 1
    return f"{n:.0f} B" if i == 0 else f"{n:.1f} {units[i]}"


def _bytes(ds: Dataset, name: str) -> dict[str, int]:
    """A feature's committed bytes uncompressed, and the bytes its chunk files take on disk."""
    shape, dtype = ds.features[name]
    folder = ds.path / "data.zarr" / name
    disk = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return {"bytes": ds.n_steps * math.prod(shape) * np.dtype(dtype).itemsize, "disk_bytes": disk}


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as readable lines for a terminal."""
    lines = [
        f"dataset   {summary['path']}",
        f"env       {summary['env'] or '-'}" + (f"  ({summary['fps']:g} fps)" if summary["fps"] else ""),
        f"episodes  {summary['episodes']}   steps {summary['steps']}",
    ]
    length = summary["episode_length"]
    if length:
        lines.append(f"length    min {length['min']}  mean {length['mean']:.1f}  max {length['max']}")
    success = summary["success"]
    if success["episodes_with_info"]:
        lines.append(
            f"success   {success['rate']:.1%} of the {success['episodes_with_info']} episodes that record it"
        )
    else:
        lines.append("success   not recorded")
    if summary["sources"]:
        lines.append("sources   " + ", ".join(f"{k} ({n})" for k, n in sorted(summary["sources"].items())))
    keys = summary["filter_keys"]
    lines.append("filters   " + (", ".join(f"{k} ({n})" for k, n in keys.items()) if keys else "none"))
    lines.append("features")
    width = max(len(name) for name in summary["features"])
    for name, feature in summary["features"].items():
        line = f"  {name:<{width}}  {feature['dtype']:<8} {str(tuple(feature['shape'])):<12} {_size(feature['disk_bytes']):>9}"
        line += " image" if feature.get("image") else ""
        if "stats" in feature:
            s = feature["stats"]
            line += f" mean {s['mean']:+.3g}  std {s['std']:.3g}  min {s['min']:+.3g}  max {s['max']:+.3g}"
        lines.append(line)
    return "\n".join(lines)
