"""Typed dataclass configs: build them from dicts, YAML files and `--key value` overrides.

Every config in imitari is a dataclass with working defaults. This module is the one place that
turns untyped input (YAML, JSON, command-line strings) into those dataclasses, and it refuses
anything it does not know: an unknown key is an error that names the closest valid key, and a
value that does not parse as the field's type is an error that names the field.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import operator
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config key or value that cannot be used; the message says which and why."""


def closest(name: str, options: typing.Iterable[str]) -> str:
    """A ' (did you mean X?)' hint for a misspelt name, or '' when nothing is close."""
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def check_number(
    cfg: Any,
    name: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    optional: bool = False,
) -> None:
    """ConfigError unless `cfg.<name>` is a finite number (never a bool) within the bounds.

    Used by the configs' `__post_init__`, so a config built from Python is checked like one
    built from a YAML file or the command line; NaN and inf fail every bound."""
    value = getattr(cfg, name)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number{' or None' if optional else ''} (got {value!r})")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number (got {value})")
    for bound, holds, word in ((ge, operator.ge, ">="), (gt, operator.gt, ">"), (le, operator.le, "<="), (lt, operator.lt, "<")):
        if bound is not None and not holds(value, bound):
            raise ConfigError(f"{name} must be {word} {bound:g}{' or None' if optional else ''} (got {value:g})")


def check_counts(**values: tuple[int | None, int]) -> None:
    """ConfigError unless each `name=(value, minimum)` is None or an integer >= its minimum
    (for plain function arguments: episode counts, seeds, worker counts)."""
    for name, (value, minimum) in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
            raise ConfigError(f"{name.replace('_', '-')} must be an integer >= {minimum} (got {value!r})")


def check_types(cfg: Any) -> None:
    """ConfigError for a field whose value does not match its annotation (int, float, str,
    bool, optional ones); other annotations are left to the config's own checks."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        tp, optional = _strip_optional(hints[f.name])
        value = getattr(cfg, f.name)
        if value is None:
            if not optional and tp in (int, float, str, bool):
                raise ConfigError(f"{f.name}: None is not allowed (expected {tp.__name__})")
            continue
        wanted = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}.get(tp)
        if wanted and (not isinstance(value, wanted) or (tp is not bool and isinstance(value, bool))):
            raise ConfigError(f"{f.name} must be {tp.__name__} (got {type(value).__name__} {value!r})")


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    """`X | None` -> (X, True); anything else -> (tp, False)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def coerce(value: Any, tp: Any, *, where: str) -> Any:
    """Convert `value` (possibly a command-line string) to the annotated type `tp`."""
    tp, optional = _strip_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null")):
        if optional:
            return None
        raise ConfigError(f"{where}: None is not allowed (expected {getattr(tp, '__name__', tp)})")
    origin = typing.get_origin(tp)
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError(value)
        if tp is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if tp is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if tp is str:
            if not isinstance(value, (str, int, float)):
                raise ValueError(value)
            return str(value)
        if origin is typing.Literal:
            allowed = typing.get_args(tp)
            if value not in allowed:
                raise ConfigError(f"{where}: {value!r} is not one of {list(allowed)}{closest(str(value), map(str, allowed))}")
            return value
        if origin in (tuple, list):
            items = value.split(",") if isinstance(value, str) else list(value)
            items = [i for i in items if not (isinstance(i, str) and i.strip() == "")]
            args = typing.get_args(tp)
            item_tp = args[0] if args else Any
            converted = [coerce(i.strip() if isinstance(i, str) else i, item_tp, where=where) for i in items]
            return tuple(converted) if origin is tuple else converted
        if origin is dict or tp is dict:
            if isinstance(value, str):
                value = json.loads(value)
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        name = getattr(tp, "__name__", str(tp))
        raise ConfigError(f"{where}: cannot read {value!r} as {name}") from exc
    return value


def from_dict(cls: type[T], data: dict[str, Any] | None, *, where: str = "") -> T:
    """Build dataclass `cls` from a plain dict, refusing unknown keys with a suggestion."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = field_names(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"unknown config key '{where}{key}'{closest(key, names)}; valid keys: {', '.join(names)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            kwargs[key] = from_dict(tp, value, where=f"{where}{key}.")
        else:
            kwargs[key] = coerce(value, tp, where=f"{where}{key}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{cls.__name__}: {exc}") from exc


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON config file into a dict (YAML's safe loader: no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML/JSON: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return data


def parse_overrides(args: list[str]) -> dict[str, str]:
    """`['--a.b', '3', '--c=x', '--flag']` -> {'a.b': '3', 'c': 'x', 'flag': 'true'}."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ConfigError(f"unexpected argument '{arg}': options look like --key value or --key=value")
        key = arg[2:]
        if "=" in key:  # --key=value: only the key's dashes become underscores
            key, value = key.split("=", 1)
            i += 1
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            value = args[i + 1]
            i += 2
        else:
            value = "true"
            i += 1
        if not key:
            raise ConfigError(f"unexpected argument '{arg}': options look like --key value or --key=value")
        out[key.replace("-", "_")] = value
    return out


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{'a.b': 1, 'c': 2} -> {'a': {'b': 1}, 'c': 2}."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                child = node[part] = {"name": child}
            node = child
        if isinstance(node.get(parts[-1]), dict):
            node[parts[-1]]["name"] = value
        else:
            node[parts[-1]] = value
    return out


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of two config dicts; values of `update` win."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
