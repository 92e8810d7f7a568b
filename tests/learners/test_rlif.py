"""RLIF: the intervention reward lands on the step that led into a takeover, the rules decide
who acts, demonstrations join the batches, and bad options fail in one line."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from imitari.learners.config import resolve_config
from imitari.learners.rlif import InterventionReward, Intervening, RLIFOptions, demo_buffer
from imitari.rollouts.engine import Sink, Transition


class _Recorder(Sink):
    def __init__(self) -> None:
        self.steps: list[Transition] = []
        self.ended: list[int] = []

    def on_step(self, t: Transition) -> None:
        self.steps.append(t)

    def on_end(self, episode: int, seed: int) -> None:
        self.ended.append(episode)


def _t(step: int, actor: str, reward: float = 0.5) -> Transition:
    obs = {"state": np.zeros(2, np.float32)}
    return Transition(slot=0, episode=0, seed=3, step=step, obs=obs, action=np.zeros(2, np.float32), reward=reward,
                      next_obs=obs, terminated=False, truncated=step == 6, info={}, actor=actor)


def test_the_step_before_each_takeover_gets_minus_one_and_every_other_step_zero() -> None:
    sink = _Recorder()
    relabel = InterventionReward(sink)
    relabel.on_start(0, 3, {"state": np.zeros(2, np.float32)}, None)
    actors = ["policy", "policy", "intervention", "intervention", "policy", "intervention", "policy"]
    for step, actor in enumerate(actors):
        relabel.on_step(_t(step, actor))
    relabel.on_end(0, 3)
    assert [t.step for t in sink.steps] == list(range(7)) and sink.ended == [0]
    assert [t.reward for t in sink.steps] == [0.0, -1.0, 0.0, 0.0, -1.0, 0.0, 0.0]
    assert relabel.pop() == [(3.5, 2)], "the task's return and the number of takeovers"
    # a terminating step (a fall) gets `terminal_reward`; a truncated one does not
    for end in ("terminated", "truncated"):
        sink = _Recorder()
        relabel = InterventionReward(sink, terminal_reward=-100.0)
        relabel.on_start(0, 3, {"state": np.zeros(2, np.float32)}, None)
        relabel.on_step(_t(0, "policy"))
        relabel.on_step(replace(_t(1, "policy"), terminated=end == "terminated", truncated=end == "truncated"))
        relabel.on_end(0, 3)
        assert [t.reward for t in sink.steps] == [0.0, -100.0 if end == "terminated" else 0.0]


class _Const:
    def __init__(self, value: float) -> None:
        self.value = value

    def reset(self, env_ids: Any = None, *, seeds: Any = None) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.full((len(obs["state"]), 2), self.value, np.float32)


def _who_acts(options: RLIFOptions, policy: float, steps: int = 12) -> list[str]:
    mixture = Intervening(_Const(policy), _Const(0.0), seed=0, options=options,
                          bounds=(-np.ones(2, np.float32), np.ones(2, np.float32)))
    mixture.reset([0], seeds=[5])
    sources = []
    for _ in range(steps):
        mixture.act({"state": np.zeros((1, 2), np.float32)})
        sources += mixture.sources
    return sources


def test_the_distance_rule_hands_control_to_the_expert_for_its_steps_then_back() -> None:
    sure = dict(confidence=1.0, intervention_steps=3, learning_starts=1)
    assert set(_who_acts(RLIFOptions(rule="distance", tolerance=0.5, **sure), policy=0.1)) == {"policy"}
    far = _who_acts(RLIFOptions(rule="distance", tolerance=0.5, **sure), policy=0.9)
    assert far[:3] == ["intervention"] * 3, "the policy is off by 1.27 > 0.5: the expert takes over for 3 steps"
    assert far[3:8] == ["policy"] + ["intervention"] * 3 + ["policy"], \
        "then hands back for a step, and takes over again while the policy stays off"
    random = _who_acts(RLIFOptions(rule="random", random_rate=0.5, **sure), policy=0.0, steps=400)
    share = random.count("intervention") / len(random)
    assert 0.5 < share < 0.95, f"random takeovers on half the policy's steps, 3 steps each ({share:.2f})"
    assert _who_acts(RLIFOptions(rule="random", random_rate=0.5, **sure), policy=0.0, steps=400) == random, \
        "keyed draws: the same episode seed replays the same takeovers"


def test_a_noisy_expert_acts_with_noise_within_the_bounds() -> None:
    options = RLIFOptions(rule="random", random_rate=1.0, confidence=1.0, expert_noise=2.0, learning_starts=1)
    mixture = Intervening(_Const(0.0), _Const(0.0), seed=0, options=options,
                          bounds=(-np.ones(2, np.float32), np.ones(2, np.float32)))
    mixture.reset([0, 1], seeds=[5, 6])
    actions = np.concatenate([mixture.act({"state": np.zeros((2, 2), np.float32)}) for _ in range(20)])
    assert mixture.sources == ["intervention", "intervention"]
    assert np.abs(actions).max() <= 1.0 and actions.std() > 0.5


def test_demonstrations_become_transitions_with_reward_zero(tmp_path) -> None:
    from imitari.data.store import Dataset
    from imitari.envs.collect import collect
    from imitari.rollouts.replay import ReplayBuffer

    collect("builtin/reach", tmp_path / "demos", episodes=3, workers=1, progress=False)
    replay = ReplayBuffer({"state": (4,)}, (2,), capacity=10)
    demos = demo_buffer(str(tmp_path / "demos"), replay)
    with Dataset.open(tmp_path / "demos") as data:
        episode = data.episode(0)
        assert demos.size == data.n_steps, "every expert episode succeeded, so its last step is kept, as terminal"
    rows = demos.recent(demos.size)
    n = len(episode["action"])
    assert np.array_equal(rows["next_obs.state"][: n - 1], episode["obs.state"][1:])
    assert rows["terminated"][n - 1] and not rows["terminated"][: n - 1].any() and not rows["reward"].any()


def test_rlif_learns_from_interventions_alone(tmp_path) -> None:
    from imitari.eval.metrics import summarize
    from imitari.eval.rollout import evaluate
    from imitari.eval.seeds import TEST_SEED_START
    from imitari.learners.loop import train
    from imitari.policies.loading import find_checkpoint, load_policy

    run = train({"env": "builtin/reach", "learner": "rlif", "policy": {"hidden": [64, 64]}, "num_envs": 4,
                 "threads": 1, "progress": False, "log_every": 250, "ckpt_every": 100_000, "steps": 5000,
                 "batch_size": 128, "out": str(tmp_path / "rlif"),
                 "learner_config": {"learning_starts": 500, "critic_hidden": [64, 64], "tolerance": 0.5,
                                    "init_temperature": 0.1}})
    results, _ = evaluate(load_policy(find_checkpoint(run)), "builtin/reach",
                          seeds=range(TEST_SEED_START, TEST_SEED_START + 50), num_envs=10, workers=1, progress=False)
    assert summarize(results).success_rate >= 0.5, "the task's reward was never seen; only the -1 of takeovers"


@pytest.mark.parametrize(("learner_config", "message"), [
    ({"rule": "valu"}, "rule must be one of value, distance, random"),
    ({"rule": "value"}, "pass --learner_config.reference RUN_DIR"),
    ({"confidence": 0.3}, "confidence"),
    ({"demo_ratio": 1.0}, "demo_ratio"),
    ({"rule": "value", "reference": "/no/such/run"}, "reference '/no/such/run' does not exist"),
    ({"expert": "/no/such/run"}, "expert '/no/such/run' does not exist"),
])
def test_bad_rlif_options_fail_in_one_line(learner_config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        resolve_config({"learner": "rlif", "env": "builtin/reach", "learner_config": learner_config})
    assert "\n" not in str(info.value)


def test_the_value_rule_judges_with_a_sac_runs_critic(tmp_path) -> None:
    from imitari.data.store import Dataset
    from imitari.learners.loop import train
    from imitari.learners.rlif import ReferenceCritic

    small = {"env": "builtin/track", "policy": {"hidden": [16, 16]}, "num_envs": 2, "threads": 1, "progress": False,
             "batch_size": 32, "ckpt_every": 100_000}
    ref = train({**small, "learner": "sac", "steps": 50, "out": str(tmp_path / "sac"),
                 "learner_config": {"learning_starts": 200, "critic_hidden": [16, 16]}})
    critic = ReferenceCritic(ref)
    obs = {"state": np.array([[0.5, -0.5], [0.5, -0.5]], np.float32)}
    q = critic(obs, np.array([[0.5, -0.5], [-1.0, 1.0]], np.float32))
    assert q.shape == (2,) and np.isfinite(q).all() and q[0] != q[1]
    run = train({**small, "learner": "rlif", "steps": 20, "out": str(tmp_path / "rlif"),
                 "learner_config": {"learning_starts": 200, "critic_hidden": [16, 16], "rule": "value",
                                    "reference": str(ref)}})
    with Dataset.open(run / "replay") as replay:
        actors = [set(info["actors"]) for info in replay.episode_info]
    assert any("intervention" in a for a in actors), "the expert stepped in on some steps"
