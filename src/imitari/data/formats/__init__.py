"""Converters between imitari datasets and LeRobot v3.0, robomimic HDF5 and Minari (`imitari data
convert`). One module per format, each with `read(path) -> Source` and `write(ds, path) ->
warnings`; a conversion between two foreign formats goes through a temporary imitari dataset.
See docs/formats.md for what each format keeps.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from imitari.data.formats.base import FormatError, write_imitari
from imitari.data.store import Dataset

FORMATS = ("imitari", "lerobot", "robomimic", "minari")


def _module(fmt: str) -> ModuleType:
    if fmt == "lerobot":
        from imitari.data.formats import lerobot as module
    elif fmt == "robomimic":
        from imitari.data.formats import robomimic as module
    elif fmt == "minari":
        from imitari.data.formats import minari as module
    else:
        raise FormatError(f"unknown format {fmt!r}; one of: {', '.join(FORMATS)}")
    return module


def _is_hdf5(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def detect(path: str | os.PathLike[str]) -> str:
    """The format of the dataset at `path`: imitari, lerobot, robomimic or minari."""
    p = Path(path)
    if not p.exists():
        raise FormatError(f"{p}: no such file or folder")
    if p.is_dir():
        if (p / "meta.json").is_file():
            return "imitari"
        if (p / "meta" / "info.json").is_file():
            return "lerobot"
        if (p / "data" / "main_data.hdf5").is_file() or (p / "main_data.hdf5").is_file():
            return "minari"
    elif _is_hdf5(p):
        if p.name == "main_data.hdf5":
            return "minari"
        return "robomimic"
    raise FormatError(f"{p}: not a dataset of a known format (imitari meta.json, LeRobot meta/info.json, "
                      "robomimic .hdf5, Minari data/main_data.hdf5)")


@dataclass(frozen=True)
class Converted:
    """What `convert` did."""

    src_format: str
    dst_format: str
    path: Path
    episodes: int
    steps: int
    warnings: tuple[str, ...]
    """What the target cannot hold or had to make up, one line each (never dropped silently)."""


def _unique(lines: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(lines))


def convert(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, to: str, env: str | None = None) -> Converted:
    """Convert the dataset at `src` (format detected) into format `to` at `dst` (a new path).

    `env` names the imitari task of the episodes when the source does not record one."""
    if to not in FORMATS:
        raise FormatError(f"unknown target format {to!r}; one of: {', '.join(FORMATS)}")
    src_p, dst_p = Path(src), Path(dst)
    src_format = detect(src_p)
    if src_format == to:
        raise FormatError(f"{src_p} is already a {to} dataset")
    warnings: list[str] = []
    scratch = None
    try:
        if src_format == "imitari":
            ds = Dataset.open(src_p)
        else:
            source = _module(src_format).read(src_p)
            if env is not None:
                source.env = env
            target = dst_p if to == "imitari" else Path(tempfile.mkdtemp(prefix="imitari-convert-")) / "dataset"
            scratch = None if to == "imitari" else target.parent
            ds = write_imitari(source, target)
            warnings += source.warnings
        if to != "imitari":
            warnings += _module(to).write(ds, dst_p)
        return Converted(src_format, to, dst_p, ds.n_episodes, ds.n_steps, _unique(warnings))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
