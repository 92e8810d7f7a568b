"""WindowSampler against a per-sample reference of the documented window semantics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imitari.data.windows import WindowSampler


def reference_window(arrays: dict, ends: list[int], t: int, *, obs_keys, to: int, ta: int) -> dict:
    """One window, straight from docs/architecture.md, one row at a time."""
    episode = next(i for i, end in enumerate(ends) if t < end)
    first, last = (ends[episode - 1] if episode else 0), ends[episode] - 1
    s = t - (to - 1)
    row = lambda k: min(max(s + k, first), last)  # noqa: E731
    return {
        "obs": {key: np.stack([arrays[f"obs.{key}"][row(k)] for k in range(to)]) for key in obs_keys},
        "action": np.stack([arrays["action"][row(k)] for k in range(ta)]),
        "action_is_pad": np.array([s + k > last for k in range(ta)]),
    }


def make_arrays(lengths: list[int], extra_rows: int = 0) -> dict[str, np.ndarray]:
    n = sum(lengths) + extra_rows
    steps = np.arange(n)
    return {
        "obs.state": np.stack([steps, -steps, steps * 10], axis=1).astype(np.float32),
        "obs.pixels": (steps[:, None, None] + np.zeros((1, 2, 3), dtype=np.int64)).astype(np.uint8),
        "action": np.stack([steps, steps + 0.5], axis=1).astype(np.float32),
        "reward": np.zeros(n, dtype=np.float32),
    }


@settings(max_examples=150, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=6),
    to=st.integers(1, 4),
    ta=st.integers(1, 9),
    subset=st.data(),
    seed=st.integers(0, 2**16),
)
def test_windows_match_the_reference(lengths: list[int], to: int, ta: int, subset, seed: int) -> None:
    ids = subset.draw(st.none() | st.lists(st.integers(0, len(lengths) - 1), min_size=1, unique=True))
    ends = np.cumsum(lengths).tolist()
    arrays = make_arrays(lengths, extra_rows=3)  # rows past the last end (uncommitted) are ignored
    keys = ["state", "pixels"]
    sampler = WindowSampler(arrays, ends, obs_keys=keys, obs_horizon=to, action_horizon=ta, episode_ids=ids)
    chosen = range(len(lengths)) if ids is None else ids
    expected_steps = sorted(t for i in chosen for t in range((ends[i - 1] if i else 0), ends[i]))
    assert sorted(sampler.steps.tolist()) == expected_steps and len(sampler) == len(expected_steps)

    rng = np.random.default_rng(seed)
    t = sampler.draw(64, rng)
    assert set(t.tolist()) <= set(expected_steps)
    for steps in (t, sampler.steps):
        batch = sampler.gather(steps)
        assert batch["obs"]["state"].shape == (len(steps), to, 3) and batch["obs"]["pixels"].dtype == np.uint8
        assert batch["action"].shape == (len(steps), ta, 2) and batch["action_is_pad"].dtype == bool
        for b, step in enumerate(steps.tolist()):
            ref = reference_window(arrays, ends, step, obs_keys=keys, to=to, ta=ta)
            for key in keys:
                np.testing.assert_array_equal(batch["obs"][key][b], ref["obs"][key])
            np.testing.assert_array_equal(batch["action"][b], ref["action"])
            np.testing.assert_array_equal(batch["action_is_pad"][b], ref["action_is_pad"])

    again = sampler.sample(64, np.random.default_rng(seed))  # sample = draw + gather, same rng stream
    np.testing.assert_array_equal(again["action"], sampler.gather(t)["action"])


def test_sample_is_uniform_over_steps_of_the_chosen_episodes() -> None:
    lengths = [1, 5, 30]
    sampler = WindowSampler(make_arrays(lengths), np.cumsum(lengths), obs_keys=["state"], obs_horizon=2,
                            action_horizon=4, episode_ids=[0, 2])
    counts = np.bincount(sampler.draw(31_000, np.random.default_rng(0)), minlength=36)
    assert counts[1:6].sum() == 0
    chosen = counts[[0, *range(6, 36)]]
    assert chosen.min() > 800 and chosen.max() < 1200  # ~1000 each


def test_bad_arguments_are_refused() -> None:
    arrays = make_arrays([3, 4])
    common = dict(obs_keys=["state"], obs_horizon=2, action_horizon=4)
    with pytest.raises(ValueError, match="episode ids must lie in 0..1"):
        WindowSampler(arrays, [3, 7], episode_ids=[2], **common)
    with pytest.raises(ValueError, match="duplicates"):
        WindowSampler(arrays, [3, 7], episode_ids=[1, 1], **common)
    with pytest.raises(ValueError, match="episode_ids is empty"):
        WindowSampler(arrays, [3, 7], episode_ids=[], **common)
    with pytest.raises(ValueError, match="no array 'obs.image'"):
        WindowSampler(arrays, [3, 7], **{**common, "obs_keys": ["image"]})
    with pytest.raises(ValueError, match="horizons"):
        WindowSampler(arrays, [3, 7], **{**common, "obs_horizon": 0})
    with pytest.raises(ValueError, match="episodes need 9"):
        WindowSampler(arrays, [3, 9], **common)
