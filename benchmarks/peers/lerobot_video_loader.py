"""LeRobotDataset on the image benchmark's frames stored as its mp4 videos, against imitari's
store on the same frames, as ratios measured in one run (docs/images.md).

The frames and actions are `benchmarks/data_images.py`'s (same seed): 100 episodes x 200 steps,
one 96x96 RGB camera, windows 2/16 (LeRobot's `delta_timestamps`: the camera at t-1 and t, the
actions t-1 .. t+14), batch 64, random order through a torch DataLoader with no worker
processes (imitari's sampler runs in the training process too). LeRobot writes the videos with
its own encoder and decodes them per sample, as its training does.

Run with the LeRobot peer venv (benchmarks/peers/lerobot_venv.sh), imitari on the path:
    PYTHONPATH=src:benchmarks ~/.cache/imitari-peers/lerobot/bin/python benchmarks/peers/lerobot_video_loader.py

LeRobot 0.4.4 decodes video with torchcodec, or with torchvision's `io.VideoReader`, which
torchvision 0.28 no longer has; the venv script installs torchcodec 0.13.0, the last CPU build
(it loads beside torch 2.13.0 and decodes with the system FFmpeg: `apt-get install ffmpeg`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from data_images import episodes_of, make_dataset
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from tqdm.auto import tqdm

from imitari.data.store import Dataset
from imitari.data.windows import WindowSampler

FPS = 10


def write_lerobot(root: Path, *, episodes: int, steps: int, size: int) -> None:
    features = {"observation.images.cam": {"dtype": "video", "shape": (size, size, 3),
                                           "names": ["height", "width", "channels"]},
                "action": {"dtype": "float32", "shape": (4,), "names": None}}
    ds = LeRobotDataset.create("local/bench", fps=FPS, root=root, features=features, use_videos=True)
    made = episodes_of(episodes=episodes, steps=steps, size=size)
    for image, action in tqdm(made, total=episodes, desc="lerobot write", leave=False):
        for t in range(steps):
            ds.add_frame({"observation.images.cam": image[t], "action": action[t], "task": "bench"})
        ds.save_episode()
    ds.finalize()


def batches_of(dataset, batch: int):
    """Shuffled batches from a torch DataLoader without end (a new epoch when one runs out)."""
    while True:
        yield from torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=0)


def rate(batches: int, batch: int, draw) -> float:
    draw()  # warm-up
    start = time.perf_counter()
    for _ in range(batches):
        draw()
    return batches * batch / (time.perf_counter() - start)


def main() -> None:
    import importlib.util

    if importlib.util.find_spec("torchcodec") is None:
        raise SystemExit("LeRobot cannot decode its videos in this venv: install torchcodec for its torch "
                         "(torchvision 0.28 has no io.VideoReader for LeRobot's pyav path)")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=10, help="batches timed per loader")
    parser.add_argument("--dir", help="folder for the datasets (default: a temp dir)")
    args = parser.parse_args()
    layout = dict(episodes=args.episodes, steps=args.steps, size=args.size)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        start = time.perf_counter()
        write_lerobot(Path(tmp) / "lerobot", **layout)
        written = time.perf_counter() - start
        videos = sum(p.stat().st_size for p in (Path(tmp) / "lerobot" / "videos").rglob("*.mp4"))
        make_dataset(Path(tmp) / "imitari", **layout)
        delta = {"observation.images.cam": [-1 / FPS, 0.0], "action": [k / FPS for k in range(-1, 15)]}
        lerobot = LeRobotDataset("local/bench", root=Path(tmp) / "lerobot", delta_timestamps=delta)
        loader = batches_of(lerobot, args.batch)
        first = next(loader)
        assert tuple(first["observation.images.cam"].shape) == (args.batch, 2, 3, args.size, args.size)
        lerobot_rate = rate(args.batches, args.batch, lambda: next(loader))
        ds = Dataset.open(Path(tmp) / "imitari")
        rng = np.random.default_rng(0)
        window = dict(obs_keys=["image"], obs_horizon=2, action_horizon=16)
        disk = WindowSampler(ds.sampling_arrays(memory_limit=0), ds.episode_ends, **window)
        disk_rate = rate(args.batches * 5, args.batch, lambda: disk.sample(args.batch, rng))
        memory = WindowSampler(Dataset.open(Path(tmp) / "imitari").arrays(), ds.episode_ends, **window)
        memory_rate = rate(args.batches * 50, args.batch, lambda: memory.sample(args.batch, rng))
    print(f"layout: {args.episodes} episodes x {args.steps} steps, one {args.size}x{args.size} camera, windows 2/16, "
          f"batch {args.batch}; LeRobot wrote {videos / 2**20:.1f} MiB of mp4 in {written:.0f} s")
    print(f"lerobot (LeRobotDataset, mp4, DataLoader): {lerobot_rate:,.0f} samples/s")
    print(f"imitari store, disk (ChunkedRows): {disk_rate:,.0f} samples/s")
    print(f"imitari store, memory (arrays()): {memory_rate:,.0f} samples/s")
    print(f"imitari-disk/lerobot = {disk_rate / lerobot_rate:.1f}x")
    print(f"imitari-memory/lerobot = {memory_rate / lerobot_rate:.1f}x")


if __name__ == "__main__":
    main()
