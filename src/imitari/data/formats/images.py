"""Image features of LeRobot datasets: (H, W, C) uint8 frames, stored as PNG bytes in the
parquet rows (dtype "image") or as mp4 files holding several episodes each (dtype "video",
`videos/<key>/chunk-XXX/file-XXX.mp4`, an episode located by its from/to timestamps), decoded
with PyAV. The exporter writes "image" (PNG is lossless, so a round trip keeps every pixel).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from imitari.data.formats.base import FormatError, need
from imitari.data.images import is_image

__all__ = ["KINDS", "VideoReader", "decode_column", "encode_column", "feature_info", "hwc", "is_image"]

KINDS = ("image", "video")


def hwc(shape: tuple[int, ...], names: Any) -> tuple[int, ...]:
    """(H, W, C) of a LeRobot image feature, whose shape is (H, W, C) unless its names say channels first."""
    if isinstance(names, list) and names and names[0] in ("channels", "channel", "c"):
        return (shape[1], shape[2], shape[0])
    return tuple(shape)


def feature_info(shape: tuple[int, ...]) -> dict[str, Any]:
    return {"dtype": "image", "shape": list(shape), "names": ["height", "width", "channels"]}


def _pil() -> Any:
    return need("PIL.Image")


def encode_column(pa: Any, frames: np.ndarray) -> Any:
    """PNG bytes per frame, as the {bytes, path} struct LeRobot (via HF datasets' Image) stores."""
    pil, out = _pil(), []
    for frame in frames:
        buf = io.BytesIO()
        pil.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame).save(buf, format="PNG")
        out.append({"bytes": buf.getvalue(), "path": None})
    return pa.array(out, pa.struct([("bytes", pa.binary()), ("path", pa.string())]))


def decode_column(table: Any, key: str) -> np.ndarray:
    pil, frames = _pil(), []
    for cell in table.column(key).to_pylist():
        if not cell or cell.get("bytes") is None:
            raise FormatError(f"image feature {key!r}: a frame without embedded bytes (image files are not read)")
        frame = np.asarray(pil.open(io.BytesIO(cell["bytes"])))
        frames.append(frame[..., None] if frame.ndim == 2 else frame)
    return np.stack(frames).astype(np.uint8)


class VideoReader:
    """Frames of the video features of one dataset, one decoded mp4 file kept at a time."""

    def __init__(self, root: Path, info: dict[str, Any], warnings: list[str]) -> None:
        self.root, self.info = root, info
        self.keys = [k for k, ft in info["features"].items() if ft["dtype"] == "video"]
        self._cache: dict[str, tuple[Path, np.ndarray, np.ndarray]] = {}
        if self.keys:
            warnings.append(f"video features {self.keys} are decoded to uint8 frames (mp4 compression is lossy; "
                            "an export writes them as lossless PNG images)")

    def _decoded(self, key: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
        if key not in self._cache or self._cache[key][0] != path:
            av = need("av")
            if not path.is_file():
                raise FormatError(f"{self.root}: video {path.relative_to(self.root)} is missing")
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                frames = [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
            times = np.array([t for t, _ in frames])
            self._cache[key] = (path, times, np.stack([f for _, f in frames]))
        return self._cache[key][1], self._cache[key][2]

    def frames(self, key: str, ep: dict[str, Any]) -> np.ndarray:
        """The frames of episode `ep` (its metadata row): those stamped in [from, to)."""
        path = self.root / self.info["video_path"].format(
            video_key=key, chunk_index=ep[f"videos/{key}/chunk_index"], file_index=ep[f"videos/{key}/file_index"])
        times, frames = self._decoded(key, path)
        start, end = ep[f"videos/{key}/from_timestamp"], ep[f"videos/{key}/to_timestamp"]
        half = 0.5 / float(self.info["fps"])
        picked = frames[(times >= start - half) & (times < end - half)]
        if len(picked) != ep["length"]:
            raise FormatError(f"{path.name}: {len(picked)} frames between {start} s and {end} s, episode "
                              f"{ep['episode_index']} has {ep['length']}")
        return picked

