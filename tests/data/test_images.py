"""Image features in the store: chunking, disk-backed window gathers, checksums, statistics, info."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from imitari.data.chunked_rows import ChunkedRows
from imitari.data.info import dataset_summary, format_summary
from imitari.data.store import Dataset, DatasetError
from imitari.data.windows import WindowSampler

FEATURES = {"obs.image": ((24, 20, 3), "uint8"), "obs.state": ((2,), "float32"), "action": ((2,), "float32")}


def _episode(i: int, length: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(i)
    return {"obs.image": rng.integers(0, 256, (length, 24, 20, 3), dtype=np.uint8),
            "obs.state": rng.normal(size=(length, 2)).astype(np.float32),
            "action": rng.normal(size=(length, 2)).astype(np.float32)}


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    ds = Dataset.create(tmp_path / "d", features=FEATURES, fps=10.0)
    for i, length in enumerate([37, 5, 60, 21]):
        ds.append_episode(_episode(i, length), info={"seed": i})
    return tmp_path / "d"


def test_image_features_get_small_compressed_chunks(images: Path) -> None:
    ds = Dataset.open(images)
    image = ds._zarrays["obs.image"]
    assert image.chunks[0] * 24 * 20 * 3 <= 1 << 17 < (image.chunks[0] + 1) * 24 * 20 * 3
    assert [type(c).__name__ for c in image.metadata.codecs] == ["BytesCodec", "BloscCodec"]
    assert ds._zarrays["obs.state"].chunks[0] > image.chunks[0]


def test_disk_rows_gather_what_memory_holds(images: Path) -> None:
    ds = Dataset.open(images)
    lazy = ds.sampling_arrays(memory_limit=0)
    assert isinstance(lazy["obs.image"], ChunkedRows) and isinstance(lazy["obs.state"], np.ndarray)
    memory = Dataset.open(images).arrays()
    rows = np.random.default_rng(0).integers(0, ds.n_steps, (16, 3))
    np.testing.assert_array_equal(lazy["obs.image"][rows], memory["obs.image"][rows])
    args = dict(obs_keys=["image", "state"], obs_horizon=2, action_horizon=4)
    a = WindowSampler(lazy, ds.episode_ends, **args).sample(32, np.random.default_rng(1))
    b = WindowSampler(memory, ds.episode_ends, **args).sample(32, np.random.default_rng(1))
    assert a["obs"]["image"].shape == (32, 2, 24, 20, 3) and a["obs"]["image"].dtype == np.uint8
    np.testing.assert_array_equal(a["obs"]["image"], b["obs"]["image"])
    with pytest.raises(IndexError, match="outside"):
        lazy["obs.image"][np.array([ds.n_steps])]


def test_a_damaged_image_chunk_is_named_when_a_window_touches_it(images: Path) -> None:
    ds = Dataset.open(images)
    rows = ds.rows("obs.image")
    zarr.open_group(images / "data.zarr", mode="r+")["obs.image"][rows.chunk_rows + 1] = 7  # valid chunk, wrong rows
    rows[np.array([0, 1])]  # chunk 0 is intact
    with pytest.raises(DatasetError, match="chunk 1 of feature 'obs.image'"):
        rows[np.array([rows.chunk_rows + 1])]
    with pytest.raises(DatasetError, match="obs.image"):
        Dataset.open(images).verify()


def test_images_get_per_channel_statistics_and_info_shows_them(images: Path) -> None:
    ds = Dataset.open(images)
    stats = ds.stats()["obs.image"]
    frames = ds.arrays()["obs.image"].reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(stats["mean"], frames.mean(0))
    np.testing.assert_allclose(stats["std"], frames.std(0))
    assert stats["min"] == frames.min(0).tolist() and stats["max"] == frames.max(0).tolist()
    summary = dataset_summary(ds)
    image = summary["features"]["obs.image"]
    assert image["image"] and image["shape"] == [24, 20, 3] and image["bytes"] == ds.n_steps * 24 * 20 * 3
    assert 0 < image["disk_bytes"] and "image" not in summary["features"]["obs.state"]
    line = next(line for line in format_summary(summary).splitlines() if "obs.image" in line)
    assert "uint8" in line and "(24, 20, 3)" in line and "KiB" in line and "image" in line.split("KiB")[1]
