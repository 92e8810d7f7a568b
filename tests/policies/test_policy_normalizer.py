"""Normaliser: exact round trips, constant dimensions, JSON and state-dict persistence."""

from __future__ import annotations

import json

import pytest
import torch

from imitari.policies.normalizer import STD_FLOOR, Normalizer

STATS = {
    "obs.state": {"mean": [1.0, 5.0, 0.0], "std": [2.0, 0.0, 1e-5], "min": [-3.0, 5.0, -1e-5], "max": [5.0, 5.0, 1e-5]},
    "action": {"mean": [0.0, 1.0], "std": [1.0, 0.5], "min": [-2.0, 0.0], "max": [2.0, 4.0]},
}


def test_limits_maps_the_range_to_unit_interval_and_back() -> None:
    norm = Normalizer(STATS, modes={"obs.state": "limits", "action": "limits"})
    x = torch.tensor([[-3.0, 5.0, 0.0], [5.0, 5.0, 1e-5], [1.0, 5.0, -1e-5]])
    y = norm.normalize("obs.state", x)
    assert torch.allclose(y[:, 0], torch.tensor([-1.0, 1.0, 0.0]))
    assert torch.allclose(y[:, 2], torch.tensor([0.0, 1.0, -1.0])), "a tiny but real range still spans [-1, 1]"
    assert torch.equal(y[:, 1], torch.zeros(3)), "constant dims map to 0"
    back = norm.unnormalize("obs.state", y)
    assert torch.allclose(back[:, 0], x[:, 0])
    assert torch.equal(back[:, 1], torch.full((3,), 5.0)), "constant dims come back as their value"
    assert torch.isfinite(norm.normalize("obs.state", torch.full((1, 3), 1e9))).all()
    a = torch.rand(4, 16, 2) * torch.tensor([4.0, 4.0]) + torch.tensor([-2.0, 0.0])
    assert torch.allclose(norm.unnormalize("action", norm.normalize("action", a)), a, atol=1e-6)
    assert norm.normalize("action", a).abs().max() <= 1.0


def test_gaussian_standardises_with_a_std_floor() -> None:
    norm = Normalizer(STATS, modes={"obs.state": "gaussian", "action": "gaussian"})
    assert torch.allclose(norm.normalize("action", torch.tensor([1.0, 2.0])), torch.tensor([1.0, 2.0]))
    x = torch.tensor([3.0, 5.0, 1e-4])
    y = norm.normalize("obs.state", x)
    assert y[0] == pytest.approx(1.0) and y[1] == 0.0
    assert y[2] == pytest.approx(1e-4 / STD_FLOOR), "tiny std is floored"
    assert torch.allclose(norm.unnormalize("obs.state", y), torch.tensor([3.0, 5.0, 1e-4]))


def test_json_and_state_dict_round_trips() -> None:
    norm = Normalizer(STATS, modes={"obs.state": "gaussian", "action": "limits"})
    data = json.loads(json.dumps(norm.to_json()))
    assert data["obs.state"]["mode"] == "gaussian" and data["action"]["max"] == [2.0, 4.0]
    again = Normalizer.from_json(data)
    x = torch.randn(5, 3)
    assert torch.equal(again.normalize("obs.state", x), norm.normalize("obs.state", x))
    # a mode saved in the stats wins over the requested one (checkpoints keep their normalisation)
    assert Normalizer(data, modes={"obs.state": "limits", "action": "limits"}).modes["obs.state"] == "gaussian"
    state = norm.state_dict()
    assert set(state) == {f"_stats.{f}.{k}" for f in ("obs__state", "action") for k in ("mean", "std", "min", "max")}
    zeros = {name: {key: [0.0] * len(values) for key, values in entry.items()} for name, entry in STATS.items()}
    other = Normalizer(zeros, modes=norm.modes)
    other.load_state_dict(state)
    assert other.to_json() == norm.to_json(), "to_json reads the (loaded) buffers"


def test_errors_name_the_feature() -> None:
    with pytest.raises(KeyError, match="no statistics for feature 'obs.image'"):
        Normalizer(STATS, modes={"obs.image": "limits"})
    with pytest.raises(ValueError, match="not one of"):
        Normalizer(STATS, modes={"action": "minmax"})  # type: ignore[dict-item]
    bad = {"action": {**STATS["action"], "std": [float("nan"), 1.0]}}
    with pytest.raises(ValueError, match="'action': statistics contain NaN"):
        Normalizer(bad, modes={"action": "limits"})
    with pytest.raises(ValueError, match="lacks a 'mode'"):
        Normalizer.from_json(STATS)


def test_limits_floor_keeps_jitter_small_and_survives_json() -> None:
    stats = {"obs.state": {"mean": [0.0, 0.0], "std": [1.0, 1e-3], "min": [-1.0, -1e-3], "max": [1.0, 1e-3]}}
    norm = Normalizer(stats, modes={"obs.state": "limits"}, floors={"obs.state": 0.01})
    y = norm.normalize("obs.state", torch.tensor([1.0, 1e-3]))
    assert y[0] == pytest.approx(1.0) and y[1] == pytest.approx(0.1), "a 1e-3 jitter is not stretched to full scale"
    assert torch.allclose(norm.unnormalize("obs.state", y), torch.tensor([1.0, 1e-3]))
    again = Normalizer.from_json(json.loads(json.dumps(norm.to_json())))
    assert again.floors == {"obs.state": 0.01} and torch.equal(again.normalize("obs.state", torch.ones(2)),
                                                                norm.normalize("obs.state", torch.ones(2)))


def test_none_is_the_identity_on_every_dimension() -> None:
    norm = Normalizer(STATS, modes={"obs.state": "none", "action": "none"})
    x = torch.tensor([[7.0, -3.0, 0.25]])
    assert torch.equal(norm.normalize("obs.state", x), x), "constant dims too: 'none' changes nothing"
    assert torch.equal(norm.unnormalize("obs.state", x), x)
    assert norm.to_json()["action"]["mode"] == "none"
    assert Normalizer.from_json(norm.to_json()).modes == {"obs.state": "none", "action": "none"}
