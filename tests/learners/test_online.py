"""The online learners (SAC, PPO) and their replay buffer: they learn, their data is a dataset,
bad configs fail in one line. Exact resume after a crash is a contract test (tests/test_contracts.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from imitari.config import ConfigError
from imitari.data.store import Dataset
from imitari.eval.metrics import summarize
from imitari.eval.rollout import evaluate
from imitari.eval.seeds import TEST_SEED_START
from imitari.learners.config import resolve_config
from imitari.learners.loop import train
from imitari.envs.experts import UniformActor
from imitari.policies.loading import find_checkpoint, load_policy
from imitari.rollouts.engine import RolloutEngine
from imitari.rollouts.replay import ReplayBuffer

ZERO_ACTION_RETURN = -66.7
"""builtin/track: the return of always acting 0 (random actions: -133, the expert: 0)."""


def _test_return(run: Path, episodes: int = 20) -> float:
    policy = load_policy(find_checkpoint(run))
    results, _ = evaluate(policy, "builtin/track", seeds=range(TEST_SEED_START, TEST_SEED_START + episodes),
                          num_envs=4, workers=1, progress=False)
    return summarize(results).mean_return


SMALL = {"env": "builtin/track", "policy": {"hidden": [64, 64]}, "num_envs": 4, "threads": 1, "progress": False,
         "log_every": 100, "ckpt_every": 10_000}


def test_sac_learns_to_track(tmp_path: Path) -> None:
    run = train({**SMALL, "learner": "sac", "steps": 600, "batch_size": 128, "out": str(tmp_path / "sac"),
                 "learner_config": {"learning_starts": 400, "critic_hidden": [64, 64]}})
    # 1200 env steps, 600 updates: within a quarter of the zero action's error
    assert _test_return(run) > ZERO_ACTION_RETURN / 4


def test_ppo_learns_to_track(tmp_path: Path) -> None:
    run = train({**SMALL, "learner": "ppo", "steps": 1200, "lr": 1e-3, "out": str(tmp_path / "ppo"),
                 "learner_config": {"rollout_steps": 640, "value_hidden": [64, 64]}})
    # 12 rollouts of 800 env steps: well under half of the zero action's error
    assert _test_return(run) > ZERO_ACTION_RETURN / 2


def test_ppo_normalises_observations_with_the_moments_of_everything_it_collected(tmp_path: Path) -> None:
    run = train({**SMALL, "learner": "ppo", "steps": 40, "out": str(tmp_path / "ppo"),
                 "learner_config": {"rollout_steps": 200, "minibatch_size": 50, "epochs": 1, "value_hidden": [8]}})
    seen = Dataset.open(run / "replay").arrays()["obs.state"]
    policy = load_policy(find_checkpoint(run))
    assert policy.config.obs_norm == "gaussian", "PPO's policy default"
    np.testing.assert_allclose(policy.normalizer.stat("obs.state", "mean").numpy(), seen.mean(0), atol=1e-4)
    np.testing.assert_allclose(policy.normalizer.stat("obs.state", "std").numpy(), seen.std(0), rtol=1e-3)
    with pytest.raises(ConfigError, match="normalize_obs"):
        train({**SMALL, "learner": "ppo", "steps": 1, "out": str(tmp_path / "none"), "policy": {"obs_norm": "none"}})


@pytest.mark.parametrize(("raw", "message"), [
    ({"learner": "sac"}, "acts in an env: pass --env"),
    ({"learner": "sac", "env": "builtin/trak"}, "did you mean builtin/track"),
    ({"learner": "sac", "env": "builtin/track", "data": "somewhere"}, "collects its own data; drop --data"),
    ({"learner": "sac", "env": "builtin/track", "policy": "bc"}, "trains the tanh_gaussian policy"),
    ({"learner": "sac", "env": "builtin/track", "learner_config": {"gama": 0.9}}, "did you mean 'gamma'"),
    ({"learner": "sac", "env": "builtin/track", "learner_config": {"tau": 2}}, "tau"),
    ({"learner": "ppo", "env": "builtin/track", "learner_config": {"minibatch_size": 4096}}, "minibatch_size"),
    ({"learner": "sca", "env": "builtin/track"}, "did you mean 'sac'"),
    ({"data": "somewhere", "learner_config": {"gamma": 0.9}}, "takes no learner_config"),
])
def test_bad_online_configs_fail_in_one_line(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:  # ConfigError, or TaskError for a task name
        resolve_config(raw)
    assert "\n" not in str(info.value)


def _buffer(store: Path | None, capacity: int) -> ReplayBuffer:
    return ReplayBuffer({"state": (2,)}, (2,), capacity=capacity, store=store, env="builtin/track")


def _play(buffer: ReplayBuffer, seeds: list[int]) -> None:
    with RolloutEngine("builtin/track", num_envs=2, workers=1) as engine:
        engine.run(UniformActor(-np.ones(2), np.ones(2), seed=0), seeds, [buffer], actor_name="random")


def test_replay_buffer_keeps_whole_episodes_in_memory_and_in_its_store(tmp_path: Path) -> None:
    buffer = _buffer(tmp_path / "replay", capacity=250)  # 100-step episodes: the ring wraps
    _play(buffer, [5, 6, 7])
    buffer.flush()
    assert (buffer.size, buffer.added, buffer.episodes) == (250, 300, 3)
    store = Dataset.open(tmp_path / "replay")
    assert store.n_episodes == 3 and sorted(store.episode_seeds) == [5, 6, 7]
    episode = store.episode(0)
    np.testing.assert_array_equal(episode["next_obs.state"][:-1], episode["obs.state"][1:])  # final obs kept
    assert episode["truncated"][-1] and not episode["truncated"][:-1].any() and not episode["terminated"].any()
    assert store.episode_info[0]["actors"] == {"random": 100}
    np.testing.assert_allclose(store.episode_info[0]["return"], episode["reward"].sum(), rtol=1e-6)
    np.testing.assert_array_equal(buffer.recent(100)["obs.state"], store.episode(2)["obs.state"])

    _play(buffer, [8])  # a fourth episode overwrites the oldest rows
    buffer.close()
    rebuilt = _buffer(tmp_path / "replay", capacity=250)
    rebuilt.load(4)
    a, b = buffer.sample(64, np.random.default_rng(0)), rebuilt.sample(64, np.random.default_rng(0))
    assert all(np.array_equal(a[key], b[key]) for key in a), "the same draws from a rebuilt buffer"
    assert (rebuilt.size, rebuilt.added, rebuilt.episodes) == (buffer.size, buffer.added, buffer.episodes)
    for key in buffer.features:
        np.testing.assert_array_equal(rebuilt.recent(250)[key], buffer.recent(250)[key], err_msg=key)

    rebuilt.load(2)  # resumed after episode 2: replaying seeds 7 and 8 appends nothing twice
    _play(rebuilt, [7])
    _play(rebuilt, [8])
    rebuilt.flush()
    assert Dataset.open(tmp_path / "replay").n_episodes == 4
    rebuilt.load(3)
    with pytest.raises(RuntimeError, match="belongs to another run"):
        _play(rebuilt, [9])
        rebuilt.flush()
    rebuilt.close()


def test_replay_buffer_without_a_store_and_empty() -> None:
    buffer = _buffer(None, capacity=1000)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(4, np.random.default_rng(0))
    _play(buffer, [1, 2])
    assert buffer.size == 200 and buffer.sample(8, np.random.default_rng(0))["action"].shape == (8, 2)
    with pytest.raises(ValueError, match="no store"):
        buffer.load(1)
