"""Per-env buffers a policy keeps while it acts: the observation window, the queue of chunk
actions still to execute, the actions already executed (for past-token verification), and the
chunks predicted for the coming steps (temporal ensembling).

Each holds one row per parallel env, and an env's row is cleared on its own reset, so envs that
end at different steps never see each other's history (`Policy.act`/`reset` in policies/base.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


class ObsHistory:
    """The last `horizon` observations of each of `n` envs; an env's first one fills its window."""

    def __init__(self, n: int, horizon: int) -> None:
        self.n, self.horizon = n, horizon
        self._windows: dict[str, np.ndarray] = {}
        self._fresh = np.ones(n, dtype=bool)

    def push(self, obs: Mapping[str, np.ndarray]) -> None:
        """Append one step `{key: (n, ...)}`, dropping each env's oldest observation."""
        for key, value in obs.items():
            value = np.asarray(value)
            window = self._windows.get(key)
            if window is None:
                dtype = np.result_type(value.dtype, np.float32)
                window = self._windows[key] = np.empty((self.n, self.horizon, *value.shape[1:]), dtype=dtype)
            window[:, :-1] = window[:, 1:]
            window[:, -1] = value
            window[self._fresh] = value[self._fresh, None]
        self._fresh[:] = False

    def windows(self, env_ids: np.ndarray) -> dict[str, np.ndarray]:
        """`{key: (len(env_ids), horizon, ...)}`, oldest step first."""
        return {key: window[env_ids] for key, window in self._windows.items()}

    def clear(self, env_ids: Sequence[int]) -> None:
        """Forget these envs' history: their next observation fills their window."""
        self._fresh[list(env_ids)] = True


class ActionQueue:
    """Per-env queue of up to `length` actions still to execute."""

    def __init__(self, n: int, length: int, action_dim: int) -> None:
        self.length = length
        self._actions = np.zeros((n, length, action_dim), dtype=np.float32)
        self._next = np.full(n, length, dtype=np.int64)

    def empty(self) -> np.ndarray:
        """Indices of the envs with no action left."""
        return np.flatnonzero(self._next >= self.length)

    def fill(self, env_ids: np.ndarray, actions: np.ndarray) -> None:
        """Replace these envs' queues with `actions` (len(env_ids), length, A)."""
        self._actions[env_ids] = actions
        self._next[env_ids] = 0

    def pop(self) -> np.ndarray:
        """The next action of every env, (n, A); no queue may be empty."""
        if (self._next >= self.length).any():
            raise RuntimeError("pop() from an empty action queue; fill() the envs returned by empty() first")
        actions = self._actions[np.arange(len(self._next)), self._next]
        self._next += 1
        return actions

    def clear(self, env_ids: Sequence[int]) -> None:
        self._next[list(env_ids)] = self.length


class PastActions:
    """Per-env record of the last `length` actions executed since the env's reset."""

    def __init__(self, n: int, length: int, action_dim: int) -> None:
        self.actions = np.zeros((n, length, action_dim), dtype=np.float32)
        """Row length-1 is the latest action; rows before `count` from the end are stale."""
        self.count = np.zeros(n, dtype=np.int64)
        """Actions executed since the reset, capped at `length`."""

    def push(self, actions: np.ndarray) -> None:
        """Record one executed action per env, `(n, action_dim)`."""
        self.actions[:, :-1] = self.actions[:, 1:]
        self.actions[:, -1] = actions
        self.count = np.minimum(self.count + 1, self.actions.shape[1])

    def clear(self, env_ids: Sequence[int]) -> None:
        self.count[list(env_ids)] = 0


class TemporalEnsemble:
    """Per-env chunk predictions for the coming steps, averaged per step as in ACT's temporal
    ensembling: weights exp(-m * i) over an env's predictions for a step, i = 0 the oldest.

    `push` takes one new chunk per env (rows for the current step onward), `average` gives each
    env's weighted average for the current step; pushing the next chunks moves on one step.
    """

    def __init__(self, n: int, horizon: int, action_dim: int, *, m: float) -> None:
        self.n, self.horizon, self.m = n, horizon, m
        # [env, age]: the chunk predicted `age` steps ago; its row `age` is for the current step.
        self._chunks = np.zeros((n, horizon, horizon, action_dim))
        self._valid = np.zeros((n, horizon), dtype=bool)

    def push(self, chunks: np.ndarray) -> None:
        """Add every env's new chunk `(n, horizon, A)`; older chunks age by one step."""
        self._chunks[:, 1:] = self._chunks[:, :-1]
        self._valid[:, 1:] = self._valid[:, :-1]
        self._chunks[:, 0] = chunks
        self._valid[:, 0] = True

    def average(self) -> np.ndarray:
        """Each env's weighted average of its predictions for the current step, `(n, A)`."""
        ages = np.arange(self.horizon)
        predictions = self._chunks[:, ages, ages]  # (n, age, A)
        oldest = np.where(self._valid, ages, -1).max(axis=1, keepdims=True)
        if (oldest < 0).any():
            raise RuntimeError("average() of an env without predictions; push() a chunk first")
        weights = np.where(self._valid, np.exp(-self.m * np.maximum(oldest - ages, 0)), 0.0)
        return np.einsum("na,nad->nd", weights, predictions) / weights.sum(axis=1, keepdims=True)

    def clear(self, env_ids: Sequence[int]) -> None:
        """Forget these envs' predictions (a new episode)."""
        self._valid[list(env_ids)] = False
