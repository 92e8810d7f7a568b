"""Collecting expert demonstrations: parallel workers, exact seeds, resume, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imitari.data.store import Dataset, DatasetError
from imitari.envs.collect import collect
from imitari.envs.registry import TaskError, get_task


def test_collect_in_workers_writes_the_seeds(tmp_path: Path) -> None:
    summary = collect("builtin/two_routes", tmp_path / "d", episodes=8, seed_start=3, workers=2, progress=False)
    assert (summary.collected, summary.skipped, summary.successes, summary.success_rate) == (8, 0, 8, 1.0)
    ds = Dataset.open(tmp_path / "d")
    assert ds.env == "builtin/two_routes" and ds.fps == get_task("builtin/two_routes").fps
    assert ds.features == {"obs.state": ((6,), "float32"), "action": ((2,), "float32"), "reward": ((), "float32")}
    assert ds.n_episodes == 8 and ds.n_steps == summary.steps
    infos = ds.episode_info
    assert sorted(info["seed"] for info in infos) == list(range(3, 11))
    for i, info in enumerate(infos):
        assert info["source"] == "expert" and info["success"] is True and info["route"] in (0, 1)
        episode = ds.episode(i)
        assert info["length"] == len(episode["action"]) and info["return"] == pytest.approx(episode["reward"].sum())
        # The first observation is the seed's reset observation.
        reset_obs = get_task("builtin/two_routes").make().reset(seed=info["seed"])[0]["state"]
        np.testing.assert_array_equal(episode["obs.state"][0], reset_obs)
    assert "collected 8 episodes" in str(summary) and "8/8" in str(summary)


def test_resume_adds_only_the_missing_seeds(tmp_path: Path) -> None:
    path = tmp_path / "reach"
    first = collect("builtin/reach", path, episodes=4, workers=1, progress=False)
    before = Dataset.open(path).arrays()["obs.state"].copy()
    resumed = collect("builtin/reach", path, episodes=10, workers=2, progress=False)
    assert (first.collected, resumed.collected, resumed.skipped) == (4, 6, 4)
    ds = Dataset.open(path)
    seeds = [info["seed"] for info in ds.episode_info]
    assert sorted(seeds) == list(range(10)) and seeds[:4] == [0, 1, 2, 3]
    np.testing.assert_array_equal(ds.arrays()["obs.state"][: len(before)], before)
    again = collect("builtin/reach", path, episodes=10, workers=2, progress=False)
    assert (again.collected, again.skipped, again.success_rate) == (0, 10, None)
    assert Dataset.open(path).n_episodes == 10


def test_interrupted_collection_continues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imitari.envs.experts import ExpertPolicy

    reset = ExpertPolicy.reset

    def crash_on_seed_5(self: ExpertPolicy, env_ids=None, *, seeds=None):  # type: ignore[no-untyped-def]
        if seeds is not None and 5 in seeds:
            raise KeyboardInterrupt
        return reset(self, env_ids, seeds=seeds)

    monkeypatch.setattr(ExpertPolicy, "reset", crash_on_seed_5)
    with pytest.raises(KeyboardInterrupt):
        collect("builtin/reach", tmp_path / "d", episodes=8, workers=1, progress=False)
    assert [info["seed"] for info in Dataset.open(tmp_path / "d").episode_info] == [0, 1, 2, 3, 4]
    monkeypatch.undo()
    summary = collect("builtin/reach", tmp_path / "d", episodes=8, workers=1, progress=False)
    assert (summary.collected, summary.skipped) == (3, 5)
    assert sorted(info["seed"] for info in Dataset.open(tmp_path / "d").episode_info) == list(range(8))


def test_collect_refuses_another_task_dataset(tmp_path: Path) -> None:
    collect("builtin/reach", tmp_path / "d", episodes=1, workers=1, progress=False)
    with pytest.raises(DatasetError, match="holds episodes of 'builtin/reach', not 'builtin/two_routes'"):
        collect("builtin/two_routes", tmp_path / "d", episodes=1, workers=1, progress=False)


def test_collect_needs_an_expert_and_a_known_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from imitari.envs import registry

    unplanned = replace(registry.get_task("builtin/reach"), name="builtin/unplanned", make_expert=None)
    monkeypatch.setitem(registry._TASKS, unplanned.name, unplanned)
    with pytest.raises(TaskError, match="builtin/unplanned has no expert"):
        collect("builtin/unplanned", tmp_path / "p", episodes=1, progress=False)
    with pytest.raises(ValueError, match="did you mean builtin/reach"):
        collect("builtin/rech", tmp_path / "r", episodes=1, progress=False)
    assert not (tmp_path / "p").exists() and not (tmp_path / "r").exists()
