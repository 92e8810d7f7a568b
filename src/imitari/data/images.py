"""Image features in the episode store: what counts as one, how its rows are chunked and
compressed, and its statistics.

An image feature is a camera's frames, uint8 `(H, W, C)` with C in 1, 3 or 4 (LeRobot's and
robomimic's layout). Its chunks are small (about 128 KiB, a few frames) so a batch of random
windows decodes little beyond the frames it needs, and compressed with blosc-lz4 without
shuffling (pixels are single bytes; bit-shuffling made rendered frames both larger and slower
to decode), which decodes several times faster than zstd for a somewhat larger file
(docs/images.md has the measurements). Images get no per-pixel statistics: policies scale them
to [0, 1] by a constant (`imitari.policies.nn.image_encoders.scale_images`), so the statistics
kept are per channel, for `imitari data info` only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

IMAGE_CHUNK_BYTES = 1 << 17
"""Uncompressed bytes per chunk of an image feature (rounded down to whole frames)."""


def is_image(shape: tuple[int, ...], dtype: str) -> bool:
    """Whether a feature of this per-step shape and dtype holds camera frames (H, W, C)."""
    return dtype == "uint8" and len(shape) == 3 and shape[-1] in (1, 3, 4)


def image_compressors() -> list[Any]:
    """The zarr codecs of an image feature's chunks."""
    from zarr.codecs import BloscCodec

    return [BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle", typesize=1)]


def image_stats(chunks: Iterable[np.ndarray], channels: int) -> dict[str, list[float]]:
    """Per-channel mean, std, min and max over frames streamed chunk by chunk (bounded memory)."""
    total, sq, lo, hi, n = np.zeros(channels), np.zeros(channels), np.full(channels, 255.0), np.zeros(channels), 0
    for chunk in chunks:
        pixels = chunk.reshape(-1, channels)
        wide = pixels.astype(np.float64)
        total += wide.sum(0)
        sq += (wide**2).sum(0)
        lo, hi = np.minimum(lo, pixels.min(0)), np.maximum(hi, pixels.max(0))
        n += len(pixels)
    mean = total / max(n, 1)
    std = np.sqrt(np.maximum(sq / max(n, 1) - mean**2, 0.0))
    return {"mean": mean.tolist(), "std": std.tolist(), "min": lo.tolist(), "max": hi.tolist()}
