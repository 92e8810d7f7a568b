"""The replay buffer of online learners: a rollout-engine sink that keeps whole episodes.

Transitions of a running episode wait until it ends; then the episode joins the in-memory ring
(which grows by doubling up to `capacity` transitions, then overwrites the oldest) and, given a
`store` directory, is appended to an episode store (`imitari.data.store`) holding `obs.<key>`,
`next_obs.<key>` (so the final observation of an episode is kept), `action`, `reward`,
`terminated` and `truncated`, and per episode its seed, return and who acted. The store is a
dataset like any other (`imitari data info`, training BC on it), and it is how a run resumes:
`load(n)` rebuilds the ring from the store's first `n` episodes, exactly as it was when `n`
episodes had been added.

Appending (fsynced chunk files and meta.json, ~0.1 s an episode) runs on one writer thread, in
the order episodes finished, so the learner does not wait for the disk; `flush()` waits for it
(online learners flush before every checkpoint, so a checkpoint's episodes are always on disk).
A run resumed from a checkpoint replays the episodes played after that checkpoint and before
the kill; they are already in the store, so `on_end` skips appending an episode the store holds
already (checking its seed), and the store never holds an episode twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from imitari.rollouts.engine import Sink, Transition


class ReplayBuffer(Sink):
    """Finished episodes' transitions, in memory and (optionally) in an episode store."""

    def __init__(self, obs_shapes: Mapping[str, tuple[int, ...]], action_shape: tuple[int, ...], *,
                 capacity: int, store: str | Path | None = None, env: str | None = None, fps: float | None = None,
                 source: str = "policy") -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 (got {capacity})")
        self.capacity, self.source = capacity, source
        self.features: dict[str, tuple[tuple[int, ...], str]] = {}
        for key, shape in obs_shapes.items():
            self.features[f"obs.{key}"] = (tuple(shape), "float32")
            self.features[f"next_obs.{key}"] = (tuple(shape), "float32")
        self.features.update({"action": (tuple(action_shape), "float32"), "reward": ((), "float32"),
                              "terminated": ((), "bool"), "truncated": ((), "bool")})
        self._data = {name: np.empty((0, *shape), dtype) for name, (shape, dtype) in self.features.items()}
        self.size = 0
        """Transitions held (at most `capacity`)."""
        self.added = 0
        """Transitions ever added (the ring's write position is `added % capacity`)."""
        self.episodes = 0
        """Episodes ever added."""
        self.returns: list[float] = []
        """Returns of the episodes added since the last `pop_returns`."""
        self._pending: dict[int, list[Transition]] = {}
        self._store_path = None if store is None else Path(store)
        self._store: Any = None
        self._writer: ThreadPoolExecutor | None = None
        self._writes: list[Future[None]] = []
        self._env, self._fps = env, fps

    # --- the sink -----------------------------------------------------------------------
    def on_start(self, episode: int, seed: int, obs: dict[str, np.ndarray], frame: np.ndarray | None) -> None:
        self._pending[episode] = []

    def on_step(self, t: Transition) -> None:
        self._pending[t.episode].append(t)

    def on_end(self, episode: int, seed: int) -> None:
        steps = self._pending.pop(episode)
        rows = {f"obs.{k}": np.stack([t.obs[k] for t in steps]) for k in steps[0].obs}
        rows.update({f"next_obs.{k}": np.stack([t.next_obs[k] for t in steps]) for k in steps[0].obs})
        rows["action"] = np.stack([np.asarray(t.action, np.float32) for t in steps])
        rows["reward"] = np.array([t.reward for t in steps], np.float32)
        rows["terminated"] = np.array([t.terminated for t in steps], bool)
        rows["truncated"] = np.array([t.truncated for t in steps], bool)
        actors: dict[str, int] = {}
        for t in steps:
            actors[t.actor] = actors.get(t.actor, 0) + 1
        info = {"seed": int(seed), "return": float(rows["reward"].sum()), "source": self.source, "actors": actors}
        if self._store_path is not None:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imitari-replay")
            self._writes.append(self._writer.submit(self._write, rows, info, self.episodes))
        self.add(rows)
        self.returns.append(info["return"])

    # --- memory -------------------------------------------------------------------------
    def add(self, rows: Mapping[str, np.ndarray]) -> None:
        """Add one episode's rows (every feature, `(T, ...)`) to the ring."""
        n = len(rows["reward"])
        if self.size + n > len(self._data["reward"]) and len(self._data["reward"]) < self.capacity:
            grown = min(self.capacity, max(2 * len(self._data["reward"]), self.size + n, 1024))
            for name, arr in self._data.items():
                bigger = np.empty((grown, *arr.shape[1:]), arr.dtype)
                bigger[: self.size] = arr[: self.size]
                self._data[name] = bigger
        where = (self.added + np.arange(n)) % self.capacity
        for name, arr in self._data.items():
            arr[where] = rows[name]
        self.added += n
        self.size = min(self.size + n, self.capacity)
        self.episodes += 1

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """`batch_size` transitions drawn uniformly with replacement."""
        if self.size == 0:
            raise ValueError("the replay buffer is empty: collect before sampling")
        index = rng.integers(0, self.size, size=batch_size)
        return {name: arr[index] for name, arr in self._data.items()}

    def recent(self, n: int) -> dict[str, np.ndarray]:
        """The last `n` transitions added, oldest first (an on-policy learner's rollout)."""
        if not 0 < n <= self.size:
            raise ValueError(f"asked for the last {n} transitions of a buffer holding {self.size}")
        where = (self.added - n + np.arange(n)) % self.capacity
        return {name: arr[where] for name, arr in self._data.items()}

    def pop_returns(self) -> list[float]:
        """Returns of the episodes finished since the last call."""
        returns, self.returns = self.returns, []
        return returns

    # --- the store ----------------------------------------------------------------------
    def _open(self) -> Any:
        from imitari.data.store import Dataset

        assert self._store_path is not None
        if self._store is None:
            if (self._store_path / "meta.json").is_file():
                self._store = Dataset.open(self._store_path, writer=True)
            else:
                self._store = Dataset.create(self._store_path, features=self.features, env=self._env, fps=self._fps,
                                             writer=True)
        return self._store

    def _write(self, rows: Mapping[str, np.ndarray], info: dict[str, Any], index: int) -> None:
        """Append episode number `index` to the store (on the writer thread)."""
        store = self._open()
        if index < store.n_episodes:  # replayed after a resume: the store has it already
            stored = store.episode_seeds[index]
            if stored != info["seed"]:
                raise RuntimeError(f"{self._store_path}: episode {index} has seed {stored}, but the resumed run "
                                   f"played seed {info['seed']}; the store belongs to another run")
            return
        store.append_episode(rows, info=info)

    def flush(self) -> None:
        """Wait until every finished episode is in the store; re-raises a failed append."""
        writes, self._writes = self._writes, []
        for write in writes:
            write.result()

    def load(self, episodes: int) -> None:
        """Empty the ring, then refill it with the store's first `episodes` episodes."""
        self._data = {name: arr[:0] for name, arr in self._data.items()}
        self.size = self.added = self.episodes = 0
        self.returns, self._pending = [], {}
        self.flush()
        if episodes == 0:
            return
        if self._store_path is None:
            raise ValueError("this replay buffer has no store to load episodes from")
        store = self._open()
        if store.n_episodes < episodes:
            raise RuntimeError(f"{self._store_path} holds {store.n_episodes} episodes; the checkpoint needs {episodes}")
        arrays, ends = store.arrays(), [0, *store.episode_ends]
        for i in range(episodes):
            self.add({name: arrays[name][ends[i]:ends[i + 1]] for name in self.features})

    def close(self) -> None:
        """Flush, stop the writer thread and release the store's writer lock."""
        try:
            self.flush()
        finally:
            if self._writer is not None:
                self._writer.shutdown()
                self._writer = None
            if self._store is not None:
                self._store.close()
                self._store = None
