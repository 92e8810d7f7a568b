"""Training-window throughput: imitari's store + WindowSampler vs a naive loader vs plain numpy.

A fixed synthetic layout (default: 100 episodes x 200 steps, 39-D float32 obs, 4-D actions,
obs window 2, action window 16, batch 256) is written to a temp dir with `Dataset`, reopened
from disk and sampled with `WindowSampler`. The same windows are produced by

* naive: a torch-style per-sample `__getitem__` (episode lookup, slicing and edge padding per
  sample, Python loops) collated with `np.stack`, the usual hand-written loader;
* limit: a plain vectorised gather over in-memory arrays with a precomputed (clipped) index
  matrix per step, i.e. the least work any sampler has to do.

Each figure is the best of `--repeats` timings of `--batches` batches after a warm-up.
The last two lines are `store/naive = <R>x` and `store/limit = <R>x`.

`--layout images` (data_images.py) times camera windows instead: 100 episodes x 200 steps of
one 96x96 RGB camera, windows 2/16, batch 64, read by imitari's store from disk, by a naive
per-sample loader and by a bare in-memory gather (docs/images.md).

    python benchmarks/data_throughput.py
    python benchmarks/data_throughput.py --layout images
"""

from __future__ import annotations

import argparse
import bisect
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from imitari.data.store import Dataset
from imitari.data.windows import WindowSampler


def make_dataset(path: Path, *, episodes: int, steps: int, obs_dim: int, action_dim: int) -> None:
    rng = np.random.default_rng(0)
    ds = Dataset.create(
        path,
        features={"obs.state": ((obs_dim,), "float32"), "action": ((action_dim,), "float32")},
        env="synthetic",
    )
    for i in range(episodes):
        ds.append_episode(
            {
                "obs.state": rng.standard_normal((steps, obs_dim), dtype=np.float32),
                "action": rng.standard_normal((steps, action_dim), dtype=np.float32),
            },
            info={"seed": i},
        )


class NaiveWindows:
    """A torch-style map dataset: one window per `__getitem__`, built with Python slicing."""

    def __init__(self, obs: np.ndarray, action: np.ndarray, ends: list[int], *, to: int, ta: int) -> None:
        self.obs, self.action, self.ends, self.to, self.ta = obs, action, ends, to, ta

    def __len__(self) -> int:
        return self.ends[-1]

    def __getitem__(self, t: int) -> dict[str, np.ndarray]:
        episode = bisect.bisect_right(self.ends, t)
        first = self.ends[episode - 1] if episode else 0
        last = self.ends[episode] - 1
        s = t - (self.to - 1)
        obs = [self.obs[min(max(s + k, first), last)] for k in range(self.to)]
        lo, hi = max(s, first), min(s + self.ta, last + 1)
        chunk = self.action[lo:hi]
        before, after = lo - s, self.ta - (hi - s)
        action = np.concatenate([np.repeat(chunk[:1], before, 0), chunk, np.repeat(chunk[-1:], after, 0)])
        is_pad = np.array([s + k > last for k in range(self.ta)])
        return {"obs": np.stack(obs), "action": action, "action_is_pad": is_pad}


def naive_batch(data: NaiveWindows, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    items = [data[int(i)] for i in rng.integers(0, len(data), size=batch)]
    return {key: np.stack([item[key] for item in items]) for key in items[0]}


def throughput(fn: Callable[[], object], *, batch: int, batches: int, repeats: int) -> float:
    """Samples per second: best of `repeats` timings of `batches` calls after a warm-up."""
    for _ in range(max(1, batches // 10)):
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batches):
            fn()
        best = min(best, time.perf_counter() - start)
    return batch * batches / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", choices=["state", "images"], default="state")
    known, _ = parser.parse_known_args()
    if known.layout == "images":
        from data_images import main as images_main

        images_main()
        return
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--steps", type=int, default=200, help="steps per episode")
    parser.add_argument("--obs-dim", type=int, default=39)
    parser.add_argument("--action-dim", type=int, default=4)
    parser.add_argument("--obs-horizon", type=int, default=2)
    parser.add_argument("--action-horizon", type=int, default=16)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batches", type=int, default=500, help="batches per timing")
    parser.add_argument("--naive-batches", type=int, default=20, help="batches per timing, naive loader")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    to, ta, batch = args.obs_horizon, args.action_horizon, args.batch
    timing = dict(batch=batch, repeats=args.repeats)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic"
        start = time.perf_counter()
        make_dataset(path, episodes=args.episodes, steps=args.steps, obs_dim=args.obs_dim, action_dim=args.action_dim)
        print(f"layout: {args.episodes} episodes x {args.steps} steps, obs {args.obs_dim}-D, "
              f"action {args.action_dim}-D, To={to}, Ta={ta}, batch {batch}")
        print(f"create: {time.perf_counter() - start:.2f} s")
        start = time.perf_counter()
        ds = Dataset.open(path)
        arrays = ds.arrays()
        print(f"open + first arrays(): {(time.perf_counter() - start) * 1e3:.1f} ms")
        ends = ds.episode_ends

    rng = np.random.default_rng(0)
    sampler = WindowSampler(arrays, ends, obs_keys=["state"], obs_horizon=to, action_horizon=ta)
    store = throughput(lambda: sampler.sample(batch, rng), batches=args.batches, **timing)

    naive_data = NaiveWindows(arrays["obs.state"], arrays["action"], ends, to=to, ta=ta)
    naive = throughput(lambda: naive_batch(naive_data, batch, rng), batches=args.naive_batches, **timing)

    obs, action = arrays["obs.state"], arrays["action"]
    bounds = np.searchsorted(ends, np.arange(ends[-1]), side="right")
    first = np.concatenate([[0], ends])[bounds][:, None]
    last = np.asarray(ends)[bounds][:, None] - 1
    t = np.arange(ends[-1])[:, None] - (to - 1)
    obs_index = np.clip(t + np.arange(to), first, last)
    action_index = np.clip(t + np.arange(ta), first, last)

    def limit_batch() -> tuple[np.ndarray, np.ndarray]:
        i = rng.integers(0, len(obs_index), size=batch)
        return obs[obs_index[i]], action[action_index[i]]

    limit = throughput(limit_batch, batches=args.batches, **timing)
    print(f"timing: best of {args.repeats} repeats ({args.batches} batches, naive {args.naive_batches})")
    print(f"store (Dataset.open + WindowSampler): {store:,.0f} samples/s")
    print(f"naive (per-sample __getitem__ + np.stack): {naive:,.0f} samples/s")
    print(f"limit (numpy gather, precomputed indices): {limit:,.0f} samples/s")
    print(f"store/naive = {store / naive:.2f}x")
    print(f"store/limit = {store / limit:.2f}x")


if __name__ == "__main__":
    main()
