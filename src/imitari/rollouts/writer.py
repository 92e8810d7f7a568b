"""The dataset writer: a rollout-engine sink that appends finished episodes to an episode store.

Each episode's steps are buffered as they stream in -- the observation before each action,
the action (or, with `labelled`, the actor's label for the row: DAgger's expert action), the
reward after it and, when the dataset has an `actor` feature, who acted (the index in
`imitari.rollouts.engine.ACTORS`) -- and appended atomically when the episode ends, in
completion order. `keep` selects steps: an episode whose kept steps are not contiguous is
written as one dataset episode per run of kept steps (HG-DAgger keeps only the expert's
takeovers), each with its first step in `info["start_step"]`; an episode with no kept step
writes nothing. Every written episode's info holds its seed, the whole episode's success,
`source`, the return and length of its rows, the behaviour label (`route`) when the env
reports one, and `extra`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imitari.data.store import Dataset
from imitari.eval.metrics import BEHAVIOUR_KEY
from imitari.rollouts.engine import ACTORS, Sink, Transition

ACTOR_FEATURE = "actor"
"""The optional per-step feature recording who acted (uint8 index into `ACTORS`)."""


@dataclass
class _Episode:
    rows: list[tuple[int, Transition]] = field(default_factory=list)
    success: bool = False
    length: int = 0
    info: dict[str, Any] = field(default_factory=dict)


class EpisodeWriter(Sink):
    """Appends the engine's episodes (or their kept steps) to `ds`, opened as the writer."""

    def __init__(self, ds: Dataset, obs_keys: Sequence[str], *, source: str, labelled: bool = False,
                 keep: Callable[[Transition], bool] | None = None, extra: Mapping[str, Any] | None = None,
                 on_episode: Callable[[dict[str, Any]], None] | None = None) -> None:
        """on_episode(info): called once per engine episode, after its rows are written, with
        the whole episode's seed, success, length, the number of steps written ("written") and
        the return of those steps ("return": the episode's, when every step is kept)."""
        self.ds, self.obs_keys, self.source, self.labelled = ds, list(obs_keys), source, labelled
        self.keep, self.extra, self.on_episode = keep, dict(extra or {}), on_episode
        self.with_actor = ACTOR_FEATURE in ds.features
        self._dtypes = {key: ds.features[f"obs.{key}"][1] for key in self.obs_keys}  # uint8 for camera frames
        self._open: dict[int, _Episode] = {}

    def on_start(self, episode: int, seed: int, obs: dict[str, np.ndarray], frame: np.ndarray | None) -> None:
        self._open[episode] = _Episode()

    def on_step(self, t: Transition) -> None:
        ep = self._open[t.episode]
        ep.length += 1
        ep.success = ep.success or bool(t.info.get("success", False))
        if t.info.get(BEHAVIOUR_KEY) is not None:
            ep.info[BEHAVIOUR_KEY] = t.info[BEHAVIOUR_KEY]
        if self.keep is None or self.keep(t):
            ep.rows.append((t.step, t))

    def _segments(self, rows: list[tuple[int, Transition]]) -> list[list[Transition]]:
        """Runs of consecutive steps."""
        runs: list[list[Transition]] = []
        for step, t in rows:
            if runs and runs[-1][-1].step == step - 1:
                runs[-1].append(t)
            else:
                runs.append([t])
        return runs

    def _arrays(self, run: list[Transition]) -> dict[str, np.ndarray]:
        arrays = {f"obs.{key}": np.stack([np.asarray(t.obs[key], dtype=self._dtypes[key]) for t in run]) for key in self.obs_keys}
        arrays.update({f"procedure.{name}": np.stack([t.computed[name] for t in run]) for name in run[0].computed})
        actions = [t.label if self.labelled else t.action for t in run]
        if any(a is None for a in actions):
            raise ValueError("a labelled writer needs an actor with `labels` (the expert's action per row)")
        arrays["action"] = np.stack([np.asarray(a, dtype=np.float32) for a in actions])
        arrays["reward"] = np.asarray([t.reward for t in run], dtype=np.float32)
        if self.with_actor:
            arrays[ACTOR_FEATURE] = np.asarray([ACTORS.index(t.actor) for t in run], dtype=np.uint8)
        return arrays

    def on_end(self, episode: int, seed: int) -> None:
        ep = self._open.pop(episode)
        runs = self._segments(ep.rows)
        written, returned = 0, 0.0
        for run in runs:
            arrays = self._arrays(run)
            info: dict[str, Any] = {"seed": seed, "success": ep.success, "source": self.source,
                                    "return": sum(t.reward for t in run), "length": len(run), **ep.info, **self.extra}
            if self.keep is not None:
                info["start_step"] = run[0].step
            self.ds.append_episode(arrays, info=info)
            written, returned = written + len(run), returned + info["return"]
        if self.on_episode is not None:
            self.on_episode({"seed": seed, "success": ep.success, "written": written, "length": ep.length,
                             "return": returned})
