"""Contract tests over the registries: every registered policy and learner, so a new one cannot skip them.

As Stable-Baselines3 runs its save/load tests over a `MODEL_LIST`, these run over
`policy_names()` and `learner_names()`: shapes, a backward pass in every training phase,
save/load through a real checkpoint, same seed -> same numbers, actions that follow the episode
seed rather than the env slot, and a committed golden file. Offline learners update and resume
exactly on synthetic windows; online learners train on builtin/track, crash, and resume to the
weights and replay store of an uninterrupted run. Policies use their default configs
(what users train), on the synthetic windows of tests/policies.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).with_name("policies")))  # the policy tests' data helpers
from make_golden import CASES, GOLDEN_DIR  # noqa: E402
from policy_testdata import SHAPES, assert_actions_follow_episode_seed, reference_stats, synthetic_windows  # noqa: E402

from imitari.learners.base import Learner  # noqa: E402
from imitari.learners.checkpoint import save_checkpoint  # noqa: E402
from imitari.learners.config import TrainConfig  # noqa: E402
from imitari.learners.registry import get_learner, learner_names  # noqa: E402
from imitari.policies.base import Policy  # noqa: E402
from imitari.policies.loading import load_policy  # noqa: E402
from imitari.policies.phases import phase_at  # noqa: E402
from imitari.policies.registry import get_policy, make_policy, policy_names  # noqa: E402

STATS = reference_stats()


def build(name: str, seed: int = 0) -> Policy:
    torch.manual_seed(seed)
    return make_policy(name, None, shapes=SHAPES, stats=STATS)


def windows(policy: Policy, n: int = 4, seed: int = 0) -> dict[str, Any]:
    config = policy.config
    return synthetic_windows(n, obs_horizon=config.obs_horizon, action_horizon=config.action_horizon, seed=seed)


@pytest.mark.parametrize("name", policy_names())
def test_policy_shapes_and_a_backward_pass_in_every_phase(name: str) -> None:
    policy = build(name)
    batch = windows(policy)
    phases = policy.training_phases()
    assert phases, "a policy trains in at least one phase"
    for phase in dict.fromkeys(p.name for p in phases):
        policy.train().zero_grad(set_to_none=True)
        loss, metrics = policy.phase_loss(batch, phase)
        assert loss.ndim == 0 and torch.isfinite(loss), (name, phase)
        assert all(isinstance(v, float) for v in metrics.values()), (name, phase, metrics)
        loss.backward()
        grads = [p.grad for p in policy.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), (name, phase)
    with pytest.raises(ValueError, match="no training phase"):
        policy.phase_loss(batch, "no-such-phase")
    policy.eval()
    with torch.no_grad():
        chunk = policy.predict_chunk({k: v[:2] for k, v in batch["obs"].items()})
    assert chunk.shape == (2, policy.config.action_horizon, SHAPES.action_dim)
    policy.reset()
    action = policy.act({"state": np.zeros((3, SHAPES.obs["state"][0]), np.float32)})
    assert action.shape == (3, SHAPES.action_dim) and np.isfinite(action).all()


@pytest.mark.parametrize("name", policy_names())
def test_policy_survives_a_checkpoint(name: str, tmp_path: Path) -> None:
    policy = build(name).eval()
    obs = {k: v[:2] for k, v in windows(policy)["obs"].items()}
    config = {"policy": {"name": name, **policy.config.__dict__},
              "shapes": {"obs": {k: list(v) for k, v in SHAPES.obs.items()}, "action": list(SHAPES.action)}}
    ckpt = save_checkpoint(tmp_path, 0, config=config, inference_state=policy.state_dict(),
                           normalizer=policy.normalizer.to_json(), train_state=None)
    loaded = load_policy(ckpt)
    assert type(loaded) is type(policy) and loaded.config == policy.config
    with torch.no_grad():
        torch.testing.assert_close(loaded.predict_chunk(obs, generator=torch.Generator().manual_seed(1)),
                                   policy.predict_chunk(obs, generator=torch.Generator().manual_seed(1)), rtol=0, atol=0)


@pytest.mark.parametrize("name", policy_names())
def test_policy_is_a_function_of_its_seed(name: str) -> None:
    a, b, other = build(name), build(name), build(name, seed=1)
    state_a, state_b = a.state_dict(), b.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), "same seed, same initial weights"
    assert any(not torch.equal(state_a[k], v) for k, v in other.state_dict().items()), "another seed differs"
    losses = []
    for policy in (a, b):
        torch.manual_seed(5)
        losses.append(policy.phase_loss(windows(policy), phase_at(policy.training_phases(), 0))[0].item())
    assert losses[0] == losses[1]
    assert_actions_follow_episode_seed(a.eval())


@pytest.mark.parametrize("name", policy_names())
def test_policy_has_a_golden_file(name: str) -> None:
    cases = [case for case, (policy, _) in CASES.items() if policy == name]
    assert cases, f"policy '{name}' has no golden case: add one to tests/policies/make_golden.py CASES"
    for case in cases:
        assert (GOLDEN_DIR / f"{case}.safetensors").is_file(), f"run tests/policies/make_golden.py {case}"


@pytest.mark.parametrize("name", policy_names())
def test_policy_train_defaults_are_valid_train_config_fields(name: str) -> None:
    from imitari.learners.config import resolve_config

    policy_cls, _ = get_policy(name)
    defaults = policy_cls.all_train_defaults()
    assert "lr" in defaults
    train_cfg, _ = resolve_config({"policy": name, "data": "unused"})
    assert all(getattr(train_cfg, key) == value for key, value in defaults.items())
    assert resolve_config({"policy": name, "lr": 0.5, "data": "unused"})[0].lr == 0.5  # the run config wins


TINY_BC = {"hidden": (16, 16), "action_horizon": 4, "exec_horizon": 2}


def _learner(name: str, seed: int = 0) -> Any:
    from imitari.policies.bc import BCConfig

    torch.manual_seed(seed)
    policy = make_policy("bc", BCConfig(**TINY_BC), shapes=SHAPES, stats=STATS)
    cfg = TrainConfig(data="unused", learner=name, steps=10, warmup_steps=2, seed=seed)
    return get_learner(name)(policy, cfg, budget_spent=lambda: 0.0)


OFFLINE = [name for name in learner_names() if not get_learner(name).online]
ONLINE = [name for name in learner_names() if get_learner(name).online]


@pytest.mark.parametrize("name", OFFLINE)
def test_learner_updates_and_resumes_exactly(name: str, tmp_path: Path) -> None:
    batches = [windows(_learner(name).policy, n=8, seed=s) for s in range(3)]
    straight = _learner(name)
    for step, batch in enumerate(batches):
        metrics = straight.update(batch, step)
        assert np.isfinite(metrics["loss"]) and all(isinstance(v, float) for v in metrics.values())
    first = _learner(name)
    first.update(batches[0], 0)
    torch.save(first.state_dict(), tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)  # what resuming reads
    assert "model" in state
    resumed = _learner(name, seed=0)
    resumed.load_state_dict(state)
    for step, batch in enumerate(batches[1:], start=1):
        resumed.update(batch, step)
    a, b = straight.policy.state_dict(), resumed.policy.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "a resumed learner ends with the same weights"


TINY_ONLINE: dict[str, dict[str, Any]] = {
    "sac": {"learning_starts": 200, "updates_per_step": 0.05, "critic_hidden": [16, 16], "buffer_size": 500},
    "rlif": {"learning_starts": 200, "updates_per_step": 0.05, "critic_hidden": [16, 16], "buffer_size": 500,
             "expert_noise": 0.1},
    "ppo": {"rollout_steps": 200, "minibatch_size": 64, "epochs": 1, "value_hidden": [16, 16], "buffer_size": 500},
}
"""Per online learner: options that make a round of 2 episodes (200 steps) every few updates, and a ring that wraps."""


@pytest.mark.parametrize("name", ONLINE)
def test_online_learner_collects_and_resumes_exactly_after_a_crash(name: str, tmp_path: Path, monkeypatch) -> None:
    from imitari.data.info import dataset_summary
    from imitari.data.store import Dataset
    from imitari.learners.checkpoint import resume_states
    from imitari.learners.loop import Trainer, resume, train
    from imitari.policies.loading import find_checkpoint
    from safetensors.torch import load_file

    assert get_learner(name).collect is not Learner.collect, f"learner '{name}' is online but does not collect"
    assert name in TINY_ONLINE, f"add tiny options for online learner '{name}' to TINY_ONLINE"
    raw = {"learner": name, "env": "builtin/track", "policy": {"hidden": [16, 16]}, "steps": 30, "batch_size": 16,
           "num_envs": 2, "ckpt_every": 10, "log_every": 5, "progress": False, "threads": 1,
           "learner_config": TINY_ONLINE[name]}
    train({**raw, "out": str(tmp_path / "full")})
    real_update = Trainer.update

    def crashing_update(self: Trainer) -> dict:
        if self.step == 17:
            raise RuntimeError("simulated crash")
        return real_update(self)

    monkeypatch.setattr(Trainer, "update", crashing_update)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train({**raw, "out": str(tmp_path / "crashed")})
    monkeypatch.setattr(Trainer, "update", real_update)
    crashed_store = Dataset.open(tmp_path / "crashed" / "replay")
    episodes_at_crash = crashed_store.n_episodes
    _, state = next(resume_states(tmp_path / "crashed"))
    assert 0 < state["replay_episodes"] < episodes_at_crash, "the crash comes after episodes the checkpoint lacks"
    resume(tmp_path / "crashed")

    a, b = (load_file(str(find_checkpoint(tmp_path / run) / "model.safetensors")) for run in ("full", "crashed"))
    assert all(torch.equal(a[k], b[k]) for k in a), "a resumed online learner ends with the same weights"
    full, resumed = Dataset.open(tmp_path / "full" / "replay"), Dataset.open(tmp_path / "crashed" / "replay")
    assert resumed.n_episodes == full.n_episodes >= episodes_at_crash > 0
    assert resumed.episode_seeds == full.episode_seeds and len(set(full.episode_seeds)) == full.n_episodes
    for key, value in full.arrays().items():
        np.testing.assert_array_equal(resumed.arrays()[key], value, err_msg=key)
    summary = dataset_summary(full)  # the replay is a dataset like any other
    assert summary["episodes"] == full.n_episodes and full.env == "builtin/track"
    policy = load_policy(find_checkpoint(tmp_path / "full"))
    assert policy.act({"state": np.zeros((3, 2), np.float32)}).shape == (3, 2)
