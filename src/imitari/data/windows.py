"""Training windows drawn from concatenated episodes, vectorised over the batch.

Window semantics (diffusion_policy's, see docs/architecture.md): a current step t is drawn
uniformly over the steps of the chosen episodes; observation row k is step
clip(t - (To - 1) + k, episode_start, episode_end - 1), so the last one is t, and action row k
is step clip(t - P + k, ...), P = `past_horizon` (To - 1 by default: the chunk starts with the
observations; 0: it starts at t). `action_is_pad` marks action rows past the episode's end.
`procedure.<name>` features (what an expert computed for its action, e.g. BFS maps) are taken
at the current step t alone, as `batch["procedure"][name]` (B, ...), for Procedure Cloning.

Everything per step that does not depend on the draw (the step's episode bounds) is computed
once in `__init__`, so a batch costs a handful of numpy gathers and no Python loop per sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

Batch = dict[str, np.ndarray | dict[str, np.ndarray]]


class WindowSampler:
    """Draws (obs history, action chunk) windows from the steps of some episodes.

    `arrays` maps feature names (`obs.<key>`, `action`) to rows of all episodes concatenated, as
    returned by `Dataset.arrays()`; `episode_ends` gives each episode's exclusive end row.
    `past_horizon`: action rows before the current step (None: obs_horizon - 1).
    """

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        episode_ends: Sequence[int] | np.ndarray,
        *,
        obs_keys: Sequence[str],
        obs_horizon: int,
        action_horizon: int,
        episode_ids: Sequence[int] | np.ndarray | None = None,
        past_horizon: int | None = None,
        procedure_keys: Sequence[str] = (),
    ) -> None:
        if obs_horizon < 1 or action_horizon < 1:
            raise ValueError(f"horizons must be >= 1, got obs {obs_horizon}, action {action_horizon}")
        past = obs_horizon - 1 if past_horizon is None else past_horizon
        if past < 0:
            raise ValueError(f"past_horizon must be >= 0 (got {past_horizon})")
        ends = np.asarray(episode_ends, dtype=np.int64).reshape(-1)
        if len(ends) == 0 or ends[0] < 1 or np.any(np.diff(ends) < 1):
            raise ValueError("episode_ends must be a non-empty, strictly increasing list of positive ends")
        starts = np.concatenate([[0], ends[:-1]])
        ids = np.arange(len(ends)) if episode_ids is None else np.asarray(episode_ids, dtype=np.int64).reshape(-1)
        if len(ids) == 0:
            raise ValueError("no episodes to sample windows from (episode_ids is empty)")
        if ids.min() < 0 or ids.max() >= len(ends):
            raise ValueError(f"episode ids must lie in 0..{len(ends) - 1}, got {ids.min()}..{ids.max()}")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("episode_ids has duplicates (they would be sampled more often)")
        names = [f"obs.{k}" for k in obs_keys] + ["action"] + [f"procedure.{k}" for k in procedure_keys]
        for name in names:
            if name not in arrays:
                raise ValueError(f"no array {name!r} (have {sorted(arrays)})")
            if len(arrays[name]) < ends[-1]:
                raise ValueError(f"array {name!r} has {len(arrays[name])} rows, episodes need {ends[-1]}")
        self.obs_keys = list(obs_keys)
        self.obs_horizon = obs_horizon
        self.action_horizon = action_horizon
        self._obs = {k: arrays[f"obs.{k}"] for k in self.obs_keys}
        self._action = arrays["action"]
        self._procedure = {k: arrays[f"procedure.{k}"] for k in procedure_keys}
        # Per-step episode bounds over all steps (any global t can be gathered), and the
        # candidate current steps: every step of the chosen episodes.
        lengths = ends - starts
        self._first = np.repeat(starts, lengths)
        self._last = np.repeat(ends - 1, lengths)
        self._steps = np.concatenate([np.arange(starts[i], ends[i]) for i in ids])
        self._obs_offsets = np.arange(-(obs_horizon - 1), 1)
        self._action_offsets = np.arange(action_horizon) - past

    def __len__(self) -> int:
        """Number of distinct windows: one per step of the chosen episodes."""
        return len(self._steps)

    @property
    def steps(self) -> np.ndarray:
        """Global step indices a window may be centred on (read-only view)."""
        view = self._steps.view()
        view.flags.writeable = False
        return view

    def draw(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """Current steps t for a batch: uniform over the steps of the chosen episodes."""
        return self._steps[rng.integers(0, len(self._steps), size=batch_size)]

    def gather(self, t: np.ndarray) -> Batch:
        """The batch of windows whose current steps are the global step indices `t`."""
        t = np.asarray(t, dtype=np.int64)
        first = self._first[t][:, None]
        last = self._last[t][:, None]
        obs_rows = np.maximum(t[:, None] + self._obs_offsets, first)
        action_rows = t[:, None] + self._action_offsets
        action_is_pad = action_rows > last
        np.clip(action_rows, first, last, out=action_rows)
        batch: Batch = {
            "obs": {k: self._obs[k][obs_rows] for k in self.obs_keys},
            "action": self._action[action_rows],
            "action_is_pad": action_is_pad,
        }
        if self._procedure:
            batch["procedure"] = {k: v[t] for k, v in self._procedure.items()}
        return batch

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """A batch of `batch_size` random windows: `gather(draw(batch_size, rng))`.

        Returns {"obs": {key: (B, To, ...)}, "action": (B, Ta, ...), "action_is_pad": (B, Ta) bool}.
        """
        return self.gather(self.draw(batch_size, rng))
