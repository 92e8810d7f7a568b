"""`<task>:pixels` variants: camera frames as observations, collected with the task's expert."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imitari.cli import main
from imitari.data.store import Dataset
from imitari.envs.builtin.point_tasks import CAMERA_VIEW
from imitari.envs.collect import collect
from imitari.envs.registry import TaskError, get_task


def _blue_centre(frame: np.ndarray) -> np.ndarray:
    """World (x, y) of the blue point's pixels, weighted by how blue they are."""
    weight = np.clip(frame[..., 2].astype(float) - frame[..., 0], 0, None) ** 2
    size = frame.shape[0]
    ys, xs = np.mgrid[:size, :size]
    centre = (np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum() + 0.5) / size * 2 - 1
    return CAMERA_VIEW * np.array([centre[0], -centre[1]])


@pytest.mark.parametrize("name", ["builtin/reach", "builtin/two_routes"])
def test_builtin_pixel_frames_show_the_point_where_the_state_has_it(name: str) -> None:
    spec = get_task(f"{name}:pixels")
    assert spec.obs_keys == ("image",) and spec.max_steps == get_task(name).max_steps
    env, expert = spec.make(), spec.expert(spec.make())
    obs, _ = env.reset(seed=4)
    assert obs["image"].shape == (32, 32, 3) and obs["image"].dtype == np.uint8
    assert env.observation_space["image"].contains(obs["image"])
    for _ in range(3):
        np.testing.assert_allclose(_blue_centre(obs["image"]), obs["state"][:2], atol=0.04)
        obs, *_ = env.step(expert(obs))
    again, _ = spec.make().reset(seed=4)
    other, _ = spec.make().reset(seed=5)
    assert np.array_equal(again["image"], env.reset(seed=4)[0]["image"]) and not np.array_equal(again["image"], other["image"])


def test_a_task_without_a_camera_has_no_pixel_variant() -> None:
    with pytest.raises(TaskError, match="builtin/memory has no pixel variant"):
        get_task("builtin/memory:pixels")
    with pytest.raises(TaskError, match="unknown task"):
        get_task("builtin/nothing:pixels")


def test_collect_stores_frames_only_and_data_show_writes_them(tmp_path: Path, capsys) -> None:
    import av

    summary = collect("builtin/reach:pixels", tmp_path / "d", episodes=3, workers=1, progress=False)
    assert summary.successes == 3
    ds = Dataset.open(tmp_path / "d")
    assert ds.features["obs.image"] == ((32, 32, 3), "uint8") and "obs.state" not in ds.features
    assert main(["data", "show", str(tmp_path / "d"), "--episode", "1", "--out", str(tmp_path / "ep.mp4")]) == 0
    with av.open(str(tmp_path / "ep.mp4")) as video:
        frames = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
    assert len(frames) == ds.episode_info[1]["length"] and frames[0].shape == (32, 32, 3)
    assert np.abs(frames[0].astype(int) - ds.episode(1)["obs.image"][0]).mean() < 8, "the episode's first frame"
    assert main(["data", "show", str(tmp_path / "d"), "--episode", "3"]) == 2
    assert "episodes 0..2" in capsys.readouterr().err


def _rendering() -> tuple[bool, str]:
    from imitari.eval.video import rendering_available

    return rendering_available()


@pytest.mark.metaworld
@pytest.mark.skipif(not _rendering()[0], reason="no offscreen OpenGL (MUJOCO_GL=osmesa needs libosmesa6)")
def test_metaworld_pixels_render_84px_frames_that_follow_the_arm() -> None:
    pytest.importorskip("metaworld")
    spec = get_task("metaworld/push:pixels")
    env = spec.make()
    expert = spec.expert(env)
    obs, _ = env.reset(seed=0)
    first = obs["image"]
    assert first.shape == (84, 84, 3) and first.dtype == np.uint8 and first.std() > 10
    for _ in range(20):
        obs, *_ = env.step(expert(obs))
    assert np.abs(obs["image"].astype(int) - first).mean() > 0.5, "the arm moved in the frame"
    env.close()
