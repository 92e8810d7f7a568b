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
