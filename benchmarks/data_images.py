"""Camera-window throughput (`data_throughput.py --layout images`): imitari's store vs a naive
per-sample loader vs a bare in-memory gather, as ratios measured in one run.

Layout (defaults): 100 episodes x 200 steps of one 96x96 RGB camera (uint8) plus 4-D actions,
obs window 2, action window 16, batch 64. The frames are synthetic but image-like (discs moving
smoothly over a static textured backdrop, antialiased), so they compress roughly as rendered
scenes from a fixed camera do. The
dataset is written with `Dataset` to a temp dir and reopened; its files are in the OS page
cache, as they are after the first epoch of a run. Timed:

* store, disk: `Dataset.rows` (chunks read, checksummed and decoded as windows touch them)
  under `WindowSampler`, with no decoded-chunk cache and with the default 256 MiB one;
* store, memory: `Dataset.arrays()` (every frame decoded once, what training uses when the
  frames fit in memory) under `WindowSampler`; the one-off load time is printed too;
* naive: a per-sample `__getitem__` that reads each window's frames from the zarr array
  (one zarr read per window) and collates with `np.stack`, the usual hand-written loader;
* limit: a numpy gather over in-memory arrays with precomputed clipped indices.

The loaders are timed in turn, round after round (best of `--repeats`), so a busy machine slows
them alike.
"""

from __future__ import annotations

import argparse
import bisect
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import zarr
from tqdm.auto import tqdm

from imitari.data.store import Dataset
from imitari.data.windows import WindowSampler


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A static textured backdrop (grain stripes plus per-pixel variation), like a table top."""
    y, x = np.mgrid[:size, :size] / size
    grain = 12 * np.sin(40 * y + 3 * np.sin(6 * x)) + rng.normal(0, 4, (size, size))
    return np.clip(np.array([190, 150, 110], np.float32) + grain[..., None], 0, 255).astype(np.float32)


def frames(rng: np.random.Generator, backdrop: np.ndarray, steps: int) -> np.ndarray:
    """One episode of RGB frames: three discs moving along smooth random paths over `backdrop`."""
    size = backdrop.shape[0]
    grid = (np.arange(size) + 0.5) / size
    out = np.broadcast_to(backdrop, (steps, size, size, 3)).copy()
    t = np.linspace(0, 1, steps)[:, None]
    for colour, radius in (((40, 90, 210), 0.06), ((60, 170, 75), 0.08), ((200, 60, 50), 0.05)):
        start, end = rng.uniform(0.15, 0.85, (2, 2))
        centre = start + (end - start) * (3 * t**2 - 2 * t**3)
        dist = np.sqrt((grid[None, None, :] - centre[:, 0, None, None]) ** 2 + (grid[None, :, None] - centre[:, 1, None, None]) ** 2)
        cover = np.clip((radius - dist) * size + 0.5, 0, 1)[..., None]
        out += cover * (np.array(colour, np.float32) - out)
    return np.clip(out, 0, 255).astype(np.uint8)


def episodes_of(*, episodes: int, steps: int, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The benchmark's episodes, (frames, actions) each, the same in every process
    (benchmarks/peers/lerobot_video_loader.py stores them as LeRobot videos)."""
    rng = np.random.default_rng(0)
    backdrop = background(rng, size)
    for _ in range(episodes):
        yield frames(rng, backdrop, steps), rng.standard_normal((steps, 4), dtype=np.float32)


def make_dataset(path: Path, *, episodes: int, steps: int, size: int) -> None:
    ds = Dataset.create(path, features={"obs.image": ((size, size, 3), "uint8"), "action": ((4,), "float32")})
    made = episodes_of(episodes=episodes, steps=steps, size=size)
    for i, (image, action) in enumerate(tqdm(made, total=episodes, desc="write", leave=False)):
        ds.append_episode({"obs.image": image, "action": action}, info={"seed": i})


class NaiveDiskWindows:
    """One window per `__getitem__`: the window's frames read from the zarr array, clipped at the
    episode's edges in Python (a map-style dataset over the store's files)."""

    def __init__(self, image: zarr.Array, action: np.ndarray, ends: list[int], *, to: int, ta: int) -> None:
        self.image, self.action, self.ends, self.to, self.ta = image, action, ends, to, ta

    def __len__(self) -> int:
        return self.ends[-1]

    def __getitem__(self, t: int) -> dict[str, np.ndarray]:
        episode = bisect.bisect_right(self.ends, t)
        first, last = (self.ends[episode - 1] if episode else 0), self.ends[episode] - 1
        lo = max(t - (self.to - 1), first)
        window = self.image[lo : t + 1]
        obs = np.concatenate([np.repeat(window[:1], self.to - len(window), 0), window])
        rows = np.clip(np.arange(t - (self.to - 1), t - (self.to - 1) + self.ta), first, last)
        return {"obs": obs, "action": self.action[rows], "action_is_pad": np.arange(self.ta) + t - (self.to - 1) > last}


def codec_table(size: int, steps: int) -> None:
    """Compression ratio and decode time (best of 5) per chunk of one episode's frames, for the codecs the
    store could use (`--codecs`: how data/images.py's choice was made)."""
    import numcodecs

    rng = np.random.default_rng(0)
    episode = frames(rng, background(rng, size), steps)
    codecs = {"blosc lz4 noshuffle (the store's)": numcodecs.Blosc("lz4", 5, numcodecs.Blosc.NOSHUFFLE),
              "blosc lz4 bitshuffle": numcodecs.Blosc("lz4", 5, numcodecs.Blosc.BITSHUFFLE),
              "blosc zstd-1 noshuffle": numcodecs.Blosc("zstd", 1, numcodecs.Blosc.NOSHUFFLE),
              "zstd-3 (zarr's default)": numcodecs.Zstd(3)}
    for rows in (1, 4):
        chunks = [episode[i : i + rows].tobytes() for i in range(0, steps, rows)]
        for name, codec in codecs.items():
            encoded = [codec.encode(c) for c in chunks]
            per_chunk = float("inf")
            for _ in range(6):  # best of 5 after a warm-up pass
                start = time.perf_counter()
                for e in encoded:
                    codec.decode(e)
                per_chunk = min(per_chunk, (time.perf_counter() - start) / len(encoded))
            ratio = sum(map(len, chunks)) / sum(map(len, encoded))
            print(f"{rows} frame(s)/chunk  {name:34s} ratio {ratio:5.2f}  decode {per_chunk * 1e3:.3f} ms/chunk")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", choices=["images"], default="images")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--steps", type=int, default=200, help="steps per episode")
    parser.add_argument("--size", type=int, default=96, help="camera frame side")
    parser.add_argument("--obs-horizon", type=int, default=2)
    parser.add_argument("--action-horizon", type=int, default=16)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=50, help="batches per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", help="folder to keep the dataset in and reuse it from (default: a temp dir)")
    parser.add_argument("--codecs", action="store_true", help="only print the codec table")
    args = parser.parse_args()
    if args.codecs:
        codec_table(args.size, args.steps)
        return
    to, ta, batch = args.obs_horizon, args.action_horizon, args.batch
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.dir or tmp)
        path = root / f"images-{args.episodes}x{args.steps}-{args.size}px"
        start = time.perf_counter()
        if not (path / "meta.json").is_file() or Dataset.open(path).n_episodes != args.episodes:
            shutil.rmtree(path, ignore_errors=True)
            make_dataset(path, episodes=args.episodes, steps=args.steps, size=args.size)
        print(f"layout: {args.episodes} episodes x {args.steps} steps, one {args.size}x{args.size} RGB camera, "
              f"To={to}, Ta={ta}, batch {batch}")
        disk = sum(p.stat().st_size for p in (path / "data.zarr" / "obs.image").rglob("*") if p.is_file())
        raw = args.episodes * args.steps * args.size**2 * 3
        print(f"create (or reuse): {time.perf_counter() - start:.1f} s; frames {raw / 2**20:.0f} MiB raw, "
              f"{disk / 2**20:.0f} MiB on disk ({raw / disk:.1f}x)")
        lazy = Dataset.open(path).sampling_arrays(memory_limit=0)  # frames stay on disk
        ends, action = Dataset.open(path).episode_ends, lazy["action"]
        window = dict(obs_keys=["image"], obs_horizon=to, action_horizon=ta)
        uncached = WindowSampler({"obs.image": Dataset.open(path).rows("obs.image", cache_bytes=0), "action": action},
                                 ends, **window)
        cached = WindowSampler({"obs.image": Dataset.open(path).rows("obs.image"), "action": action}, ends, **window)
        naive_data = NaiveDiskWindows(zarr.open_array(path / "data.zarr" / "obs.image", mode="r"), action, ends, to=to, ta=ta)

        def naive_batch() -> dict[str, np.ndarray]:
            items = [naive_data[int(i)] for i in rng.integers(0, len(naive_data), size=batch)]
            return {key: np.stack([item[key] for item in items]) for key in items[0]}

        start = time.perf_counter()
        memory = Dataset.open(path).arrays()
        load = time.perf_counter() - start
        in_memory = WindowSampler(memory, ends, **window)
        image = memory["obs.image"]
        bounds = np.searchsorted(ends, np.arange(ends[-1]), side="right")
        first = np.concatenate([[0], ends])[bounds][:, None]
        last = np.asarray(ends)[bounds][:, None] - 1
        t = np.arange(ends[-1])[:, None] - (to - 1)
        obs_index, action_index = np.clip(t + np.arange(to), first, last), np.clip(t + np.arange(ta), first, last)

        def limit_batch() -> tuple[np.ndarray, np.ndarray]:
            i = rng.integers(0, len(obs_index), size=batch)
            return image[obs_index[i]], memory["action"][action_index[i]]

        slow = max(1, args.batches // 5)
        methods = {  # label -> (one batch, batches per timing)
            "store, disk, no chunk cache": (lambda: uncached.sample(batch, rng), args.batches),
            "store, disk, 256 MiB chunk cache": (lambda: cached.sample(batch, rng), args.batches),
            "naive (per-sample zarr read + np.stack)": (naive_batch, slow),
            "store, memory (arrays() + WindowSampler)": (lambda: in_memory.sample(batch, rng), args.batches * 10),
            "limit (numpy gather, precomputed indices)": (limit_batch, args.batches * 10),
        }
        figures = interleaved(methods, batch=batch, repeats=args.repeats)
    naive, limit = figures["naive (per-sample zarr read + np.stack)"], figures["limit (numpy gather, precomputed indices)"]
    print(f"timing: best of {args.repeats} rounds, each timing every loader in turn ({args.batches} batches; naive "
          f"{slow}, in-memory {args.batches * 10}); arrays() decodes every frame once in {load:.1f} s")
    for label, rate in figures.items():
        print(f"{label}: {rate:,.0f} samples/s  ({rate / naive:.2f}x naive, {rate / limit:.3f}x limit)")
    disk_rate = figures["store, disk, no chunk cache"]
    print(f"store-disk/naive = {disk_rate / naive:.2f}x")
    print(f"store-memory/limit = {figures['store, memory (arrays() + WindowSampler)'] / limit:.2f}x")


def interleaved(methods: dict[str, tuple[Callable[[], object], int]], *, batch: int, repeats: int) -> dict[str, float]:
    """Samples per second of each method: the best of `repeats` rounds, each round timing every
    method in turn after one warm-up call, so a busy machine slows all of them alike."""
    best = {label: 0.0 for label in methods}
    for fn, _ in methods.values():
        fn()
    for _ in range(repeats):
        for label, (fn, batches) in methods.items():
            start = time.perf_counter()
            for _ in range(batches):
                fn()
            best[label] = max(best[label], batch * batches / (time.perf_counter() - start))
    return best
