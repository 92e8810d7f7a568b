"""Config parsing: types, unknown keys with suggestions, YAML files, CLI overrides."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from imitari.config import ConfigError, from_dict, load_file, merge, nest, parse_overrides


@dataclass
class Inner:
    width: int = 8
    dims: tuple[int, ...] = (1, 2)


@dataclass
class Outer:
    name: str = "x"
    rate: float = 0.1
    flag: bool = False
    limit: int | None = None
    inner: Inner = None  # type: ignore[assignment]


def test_types_are_coerced_from_strings() -> None:
    cfg = from_dict(Outer, {"rate": "0.5", "flag": "true", "limit": "none", "inner": {"dims": "3,4,5"}})
    assert cfg.rate == 0.5 and cfg.flag is True and cfg.limit is None
    assert cfg.inner.dims == (3, 4, 5)


def test_unknown_key_names_the_closest() -> None:
    with pytest.raises(ConfigError, match="did you mean 'rate'"):
        from_dict(Outer, {"rat": 1})
    with pytest.raises(ConfigError, match="inner.widht.*did you mean 'width'"):
        from_dict(Outer, {"inner": {"widht": 3}})


def test_bad_value_names_the_field() -> None:
    with pytest.raises(ConfigError, match="rate"):
        from_dict(Outer, {"rate": "fast"})
    with pytest.raises(ConfigError, match="limit"):
        from_dict(Outer, {"limit": 2.5})


def test_overrides_and_nesting() -> None:
    flat = parse_overrides(["--policy", "diffusion", "--policy.down-dims=32,64", "--steps", "10", "--progress"])
    assert flat == {"policy": "diffusion", "policy.down_dims": "32,64", "steps": "10", "progress": "true"}
    nested = nest(flat)
    assert nested["policy"] == {"name": "diffusion", "down_dims": "32,64"}
    assert merge({"steps": 5, "policy": {"name": "bc", "x": 1}}, nested)["policy"]["x"] == 1
    with pytest.raises(ConfigError, match="unexpected argument"):
        parse_overrides(["stray"])


def test_yaml_file(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("rate: 0.25\ninner: {width: 3}\n")
    assert from_dict(Outer, load_file(path)).inner.width == 3
    (tmp_path / "bad.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_file(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_file(tmp_path / "missing.yaml")


def test_key_equals_value_keeps_the_value_intact() -> None:
    flat = parse_overrides(["--data=/path/my-data", "--out=runs/my-run", "--policy.down-dims=32,64", "--x-y", "a-b"])
    assert flat == {"data": "/path/my-data", "out": "runs/my-run", "policy.down_dims": "32,64", "x_y": "a-b"}
    with pytest.raises(ConfigError, match="unexpected argument '--=3'"):
        parse_overrides(["--=3"])


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("lr", -1.0, "lr must be > 0"), ("lr", float("nan"), "lr must be a finite number"), ("lr", 1e30, "lr must be <= 1"),
        ("threads", -2, "threads must be >= 1"), ("threads", 0, "threads must be >= 1"),
        ("grad_clip", -1.0, "grad_clip must be >= 0"), ("warmup_steps", -3, "warmup_steps must be >= 0"),
        ("num_envs", 0, "num_envs must be >= 1"), ("eval_episodes", 0, "eval_episodes must be >= 1"),
        ("seed", -1, "seed must be >= 0"), ("ema_max", 1.0, "ema_max must be < 1"),
        ("budget_cpu_minutes", float("inf"), "budget_cpu_minutes must be a finite number"),
        ("steps", "3", "steps must be int"), ("batch_size", True, "batch_size must be int"),
    ],
)
def test_train_config_validates_every_field_where_declared(field: str, value: object, message: str) -> None:
    from imitari.learners.loop import TrainConfig

    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{field: value})


def test_numbers_from_the_command_line_are_checked_too() -> None:
    from imitari.learners.loop import TrainConfig

    for value in ("nan", "-1", "inf"):
        with pytest.raises(ConfigError, match="lr must be"):
            from_dict(TrainConfig, {"lr": value})
    assert from_dict(TrainConfig, {"lr": "1e-3", "threads": "2"}).threads == 2
