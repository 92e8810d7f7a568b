"""What the format converters share: their error, the imported-dataset record, lazy imports of
the `formats` extra, atomic outputs, and the imitari sidecar.

Every importer returns a `Source` (features, then episodes streamed one at a time) that
`write_imitari` stores through the episode store's own API, so an imported dataset gets the
store's checks, checksums and atomic commits; it is built in a temporary sibling folder and
renamed into place, so a failed import leaves nothing behind. Exporters write into
`atomic_output`'s temporary path, renamed into place once complete.

The sidecar is a small JSON (env, fps, per-episode info, filter keys) that exporters store
where the target format has room for it and its own readers look past it, so imitari ->
format -> imitari keeps what the format has no field for.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imitari.data.episodes import json_default
from imitari.data.meta import DatasetError
from imitari.data.store import Dataset

SIDECAR = "imitari.sidecar"

Episode = tuple[dict[str, np.ndarray], dict[str, Any]]


class FormatError(DatasetError):
    """A dataset in another format is missing, corrupt, not of the expected schema, or cannot
    hold what is asked of it (one line, printed by the CLI without a traceback)."""


def need(module: str) -> Any:
    """Import a module of the `formats` extra, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise FormatError(f"{module} is not installed ({e}); install the extra: pip install 'imitari[formats]'") from None


@dataclass
class Source:
    """A dataset read from another format, ready to be stored: episodes may be a generator."""

    features: dict[str, tuple[tuple[int, ...], str]]
    episodes: Iterable[Episode]
    env: str | None = None
    fps: float | None = None
    filter_keys: dict[str, list[int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    only: dict[str, Any] | None = None
    """A sidecar's features {name: [shape, dtype]}: keep only these, in these shapes (drops what
    the exporter had to add, such as robomimic's dones)."""


@contextlib.contextmanager
def reading(path: Path, fmt: str) -> Iterator[None]:
    """Turn whatever a malformed file raises while it is read into one FormatError line."""
    try:
        yield
    except DatasetError:
        raise
    except (KeyError, ValueError, TypeError, IndexError, AttributeError, OSError, RuntimeError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FormatError(f"{path}: not a readable {fmt} dataset ({type(e).__name__}: {why})") from e


def _temp_beside(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.partial")


def _check_free(dst: Path) -> None:
    if dst.exists() and not (dst.is_dir() and not any(dst.iterdir())):
        raise FormatError(f"{dst}: already exists; convert into a new path")


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_output(dst: Path) -> Iterator[Path]:
    """Yield a temporary path beside `dst` to write a file or folder into; on success it is
    renamed to `dst` (which must not exist, or be an empty folder), on failure removed."""
    _check_free(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(dst)
    try:
        yield tmp
        if dst.is_dir():
            dst.rmdir()
        os.replace(tmp, dst)
    except BaseException:
        _remove(tmp)
        raise


def write_imitari(source: Source, dst: Path) -> Dataset:
    """Store `source` as an imitari dataset at `dst` (new path or empty folder), atomically."""
    features = dict(source.features)
    if source.only is not None:  # the sidecar's names and shapes (a format may store () as (1,))
        features = {n: (tuple(source.only[n][0]), spec[1]) for n, spec in features.items() if n in source.only}
    with atomic_output(dst) as tmp:
        with Dataset.create(tmp, features=features, env=source.env, fps=source.fps, writer=True) as ds:
            for steps, info in source.episodes:
                ds.append_episode({n: np.reshape(v, (len(v), *features[n][0])) for n, v in steps.items()
                                   if n in features}, info=info)
            if not ds.n_episodes:
                raise FormatError(f"{dst}: the source holds no episodes")
            if source.filter_keys:
                ds.set_filter_keys(source.filter_keys)
    return Dataset.open(dst)


def sidecar(ds: Dataset) -> str:
    """The imitari sidecar of `ds` as JSON text."""
    return json.dumps({"format": SIDECAR, "env": ds.env, "fps": ds.fps, "features": {n: [list(s), d] for n, (s, d) in ds.features.items()},
                       "episodes": ds.episode_info, "filter_keys": ds.filter_keys}, default=json_default)


def read_sidecar(text: Any, n_episodes: int, warnings: list[str]) -> dict[str, Any]:
    """A sidecar's content, or {} (with a warning) if it is unreadable or describes another
    number of episodes (the file was edited by another tool since imitari wrote it)."""
    if text is None:
        return {}
    try:
        raw = json.loads(text.decode() if isinstance(text, bytes) else text)
        ok = isinstance(raw, dict) and raw.get("format") == SIDECAR and isinstance(raw.get("episodes"), list)
    except (ValueError, UnicodeDecodeError):
        ok = False
    if not ok:
        warnings.append("the imitari sidecar is unreadable; ignored (env, fps and episode info come from the format alone)")
        return {}
    if len(raw["episodes"]) != n_episodes:
        warnings.append(f"the imitari sidecar describes {len(raw['episodes'])} episodes, the file holds {n_episodes}; ignored")
        return {}
    for info in raw["episodes"]:
        info.pop("length", None)  # recomputed by the store
    return raw


def known_task(name: Any, warnings: list[str], what: str) -> str | None:
    """`name` if it is a registered imitari task, else None with a warning (env is then unset)."""
    from imitari.envs.registry import list_tasks

    if isinstance(name, str) and name in list_tasks():
        return name
    if name:
        warnings.append(f"{what} {name!r} is not an imitari task; env left unset (evaluation needs one)")
    return None


def obs_keys(ds: Dataset) -> list[str]:
    """Observation keys of `ds` (features named `obs.<key>`)."""
    return [name[4:] for name in ds.features if name.startswith("obs.")]


def check_exportable(ds: Dataset, fmt: str, required: Iterable[str] = ("action",)) -> None:
    missing = [name for name in required if name not in ds.features]
    if missing or not obs_keys(ds):
        raise FormatError(f"{ds.path}: {fmt} needs obs.* and {', '.join(required)} features; it has {sorted(ds.features)}")
    if not ds.n_episodes:
        raise FormatError(f"{ds.path}: no episodes to export")


def final_obs_warning(fmt: str, field_name: str) -> str:
    return (f"{fmt} {field_name} holds the observation after each episode's last action, which imitari does not "
            "store: written as a repeat of the last observation")


Reader = Callable[[Path], Source]
Writer = Callable[[Dataset, Path], list[str]]
