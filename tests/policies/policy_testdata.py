"""Synthetic data for the policy tests and golden files: a 3-D state and a 2-D action chunk
that is a smooth deterministic function of the window's last observation."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from imitari.policies.base import Shapes

OBS_DIM, ACT_DIM = 3, 2
SHAPES = Shapes(obs={"state": (OBS_DIM,)}, action=(ACT_DIM,))


def synthetic_windows(n: int, *, obs_horizon: int, action_horizon: int, seed: int) -> dict[str, Any]:
    """A batch in the WindowSampler layout; chunk row k = f(last observation, k)."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (n, obs_horizon, OBS_DIM)).astype(np.float32)
    last, k = obs[:, -1], np.arange(action_horizon) / action_horizon
    actions = np.stack(
        [np.sin(np.pi * last[:, :1] + 2 * k), last[:, 1:2] * np.cos(np.pi * k) + 0.5 * last[:, 2:3]], axis=-1
    ).astype(np.float32)
    return {
        "obs": {"state": torch.from_numpy(obs)},
        "action": torch.from_numpy(actions),
        "action_is_pad": torch.zeros(n, action_horizon, dtype=torch.bool),
    }


def stats_of(batch: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """Dataset-style statistics (`Dataset.stats()` layout) of a batch's observations and actions."""

    def summary(x: torch.Tensor) -> dict[str, list[float]]:
        x = x.reshape(-1, x.shape[-1]).double()
        return {"mean": x.mean(0).tolist(), "std": x.std(0).tolist(), "min": x.min(0).values.tolist(),
                "max": x.max(0).values.tolist()}

    return {"obs.state": summary(batch["obs"]["state"]), "action": summary(batch["action"])}


def reference_stats() -> dict[str, dict[str, list[float]]]:
    return stats_of(synthetic_windows(512, obs_horizon=2, action_horizon=16, seed=1))


def assert_actions_follow_episode_seed(policy: Any) -> None:
    """An episode's sampled actions depend on its seed, not on its env slot or batch neighbours."""
    obs_seq = np.random.default_rng(3).uniform(-1, 1, (6, 3, OBS_DIM)).astype(np.float32)
    policy.reset(env_ids=[0, 1, 2], seeds=[100, 101, 102])
    three = np.stack([policy.act({"state": o}) for o in obs_seq])
    policy.reset(env_ids=[0], seeds=[102])
    policy.act({"state": obs_seq[0, :1]})  # a different number of envs starts every env afresh
    policy.reset(env_ids=[0], seeds=[102])
    one = np.stack([policy.act({"state": o[2:]}) for o in obs_seq])
    np.testing.assert_allclose(one[:, 0], three[:, 2], atol=1e-5)


def assert_reloads_alike(policy: Any, name: str, shapes: Shapes, obs: dict[str, torch.Tensor], folder: Any) -> None:
    """Save `policy` as a checkpoint in `folder`, load it back, and check it predicts the same chunks."""
    from imitari.learners.checkpoint import save_checkpoint
    from imitari.policies.loading import load_policy

    config = {"policy": {"name": name, **policy.config.__dict__},
              "shapes": {"obs": {k: list(v) for k, v in shapes.obs.items()}, "action": list(shapes.action)}}
    ckpt = save_checkpoint(folder, 0, config=config, inference_state=policy.state_dict(),
                           normalizer=policy.normalizer.to_json(), train_state=None)
    loaded = load_policy(ckpt)
    with torch.no_grad():
        torch.testing.assert_close(loaded.predict_chunk(obs, generator=torch.Generator().manual_seed(1)),
                                   policy.predict_chunk(obs, generator=torch.Generator().manual_seed(1)))
