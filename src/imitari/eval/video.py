"""Rollout videos: H.264 mp4 through the ffmpeg binary that imageio-ffmpeg ships, GIF fallback.

mp4 is the format every browser plays inside `<video>`; yuv420p H.264 needs even frame
sizes, so frames are padded by one edge row/column where needed. If ffmpeg cannot run (a
platform without a bundled binary, a broken install), the video is written as an animated GIF
with Pillow instead, which the report embeds as an image.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from imitari.data.store import Dataset


@contextlib.contextmanager
def quiet_render_failure() -> Iterator[None]:
    """Silence what a failing GL setup prints besides its exception (GLFW warnings, the
    half-built `mujoco.Renderer`'s `__del__`), so that skipping videos costs one line."""
    hook = sys.unraisablehook
    sys.unraisablehook = lambda _: None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.unraisablehook = hook


def _check_frames(frames: list[np.ndarray]) -> list[np.ndarray]:
    if not frames:
        raise ValueError("save_video needs at least one frame")
    checked = [np.asarray(f) for f in frames]
    shape = checked[0].shape
    for i, frame in enumerate(checked):
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame {i}: expected an (H, W, 3) uint8 image, got {frame.shape} {frame.dtype}")
        if frame.shape != shape:
            raise ValueError(f"frame {i}: shape {frame.shape} differs from the first frame's {shape}")
    return checked


def _pad_even(frame: np.ndarray) -> np.ndarray:
    """Repeat the last row/column so that height and width are even (needed by yuv420p)."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _write_mp4(frames: list[np.ndarray], path: Path, fps: float) -> None:
    import imageio_ffmpeg

    h, w = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(
        str(path), (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p", macro_block_size=1,
        output_params=["-movflags", "+faststart"], ffmpeg_log_level="error",
    )
    writer.send(None)  # start the ffmpeg process
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
    finally:
        writer.close()


def _write_gif(frames: list[np.ndarray], path: Path, fps: float) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)


def save_video(frames: list[np.ndarray], path: str | os.PathLike[str], *, fps: float) -> Path:
    """Write (H, W, 3) uint8 frames as an mp4 at `path`; returns the path actually written.

    Falls back to a GIF next to it (same name, `.gif` suffix) when mp4 writing fails, and
    says so in one line.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive (got {fps})")
    checked = [_pad_even(f) for f in _check_frames(frames)]
    path = Path(path).with_suffix(".mp4")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write_mp4(checked, path, fps)
        if path.stat().st_size == 0:
            raise RuntimeError("ffmpeg wrote an empty file")
        return path
    except Exception as exc:
        path.unlink(missing_ok=True)
        gif = path.with_suffix(".gif")
        reason = (str(exc).strip().splitlines() or [""])[0]
        print(f"mp4 writing failed ({type(exc).__name__}: {reason}); writing {gif.name} instead")
        _write_gif(checked, gif, fps)
        return gif


def episode_video(ds: Dataset, episode: int, path: str | os.PathLike[str], *, fps: float | None = None) -> Path:
    """Write the camera frames of a dataset's episode as a video (`imitari data show`): every
    image feature side by side, in name order, at the dataset's fps (10 if it has none)."""
    from imitari.data.images import is_image
    from imitari.data.store import DatasetError

    keys = sorted(name for name, (shape, dtype) in ds.features.items() if is_image(shape, dtype))
    if not keys:
        raise DatasetError(f"{ds.path}: no image features to show (features: {', '.join(ds.features)})")
    rows = ds.episode(episode)
    height = max(ds.features[k][0][0] for k in keys)
    views = []
    for key in keys:
        frames = rows[key][..., :3]
        frames = np.repeat(frames, 3, axis=-1) if frames.shape[-1] == 1 else frames
        views.append(np.pad(frames, ((0, 0), (0, height - frames.shape[1]), (0, 0), (0, 0))))
    tiled = np.concatenate(views, axis=2)
    return save_video(list(tiled), path, fps=fps or ds.fps or 10.0)


def rendering_available() -> tuple[bool, str]:
    """Whether MuJoCo can render offscreen here, and why (not): a tiny scene is rendered.

    The backend is chosen by MUJOCO_GL (osmesa, egl or glfw) when mujoco is first imported.
    """
    backend = os.environ.get("MUJOCO_GL", "default (glfw)")
    with quiet_render_failure():
        try:
            import mujoco

            model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='0.1'/></worldbody></mujoco>")
            renderer = mujoco.Renderer(model, height=16, width=16)
            try:
                renderer.update_scene(mujoco.MjData(model))
                renderer.render()
            finally:
                renderer.close()
        except Exception as exc:
            first = str(exc).strip().splitlines()
            reason = first[0] if first else type(exc).__name__
            return False, f"MuJoCo offscreen rendering with MUJOCO_GL={backend} failed: {reason}"
    return True, f"MuJoCo offscreen rendering works (MUJOCO_GL={backend})"
