"""Loading a policy from a checkpoint (LeRobot's `from_pretrained`): the read side of the format.

A checkpoint is a directory (docs/architecture.md): `config.json` (policy name + config,
shapes), `model.safetensors` (the inference weights), `normalizer.json`, a `manifest.json` of
CRC-32s, and `train_state.pt` for resuming (written and read by `imitari.learners.checkpoint`).
Nothing here executes code from a file; every file is checked against the manifest before it
is parsed, so a damaged one is a one-line CheckpointError.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from imitari.config import ConfigError, from_dict, to_dict
from imitari.data.checksums import file_crc32
from imitari.policies.base import Policy, Shapes
from imitari.policies.registry import get_policy

CHECKPOINTS = "checkpoints"
"""A run's folder of checkpoints, `step_<step>/` each, and `latest` naming the newest."""
MANIFEST = "manifest.json"


class CheckpointError(RuntimeError):
    """A checkpoint or run directory that is missing or unreadable."""


def nonfinite(state: dict[str, torch.Tensor]) -> list[str]:
    return [k for k, v in state.items() if v.dtype.is_floating_point and not bool(torch.isfinite(v).all())]


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def verify_files(ckpt: Path, *names: str) -> None:
    """CheckpointError unless each of `names` is in `ckpt` and, when the checkpoint has a
    manifest (every one written since manifests exist), matches its recorded CRC-32."""
    for name in names:
        if not (ckpt / name).is_file():
            raise CheckpointError(f"{ckpt}: {name} is missing")
    if not (ckpt / MANIFEST).exists():
        return  # written before manifests: read unverified
    try:
        recorded = json.loads((ckpt / MANIFEST).read_text())["files"]
        if not isinstance(recorded, dict):
            raise TypeError("'files' is not a mapping")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{ckpt}: {MANIFEST} is damaged ({one_line(exc)})") from exc
    for name in names:
        if name not in recorded:
            raise CheckpointError(f"{ckpt}: {MANIFEST} does not list {name}: one of them was changed")
        if file_crc32(ckpt / name) != recorded[name]:
            raise CheckpointError(f"{ckpt}: {name} does not match its checksum in {MANIFEST} (truncated or damaged)")


def read_json(ckpt: Path, name: str) -> Any:
    """A verified JSON file of the checkpoint; CheckpointError if it cannot be used."""
    verify_files(ckpt, name)
    try:
        return json.loads((ckpt / name).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"cannot read {ckpt / name}: {one_line(exc)}") from exc


def find_checkpoint(path: str | Path) -> Path:
    """Resolve a run directory or checkpoint directory to a checkpoint directory."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no such run or checkpoint: {path}")
    if (path / "model.safetensors").is_file():
        return path
    root = path / CHECKPOINTS
    latest = root / "latest"
    if latest.is_file():
        ckpt = root / latest.read_text().strip()
        if (ckpt / "model.safetensors").is_file():
            return ckpt
    steps = sorted(p for p in root.glob("step_*") if (p / "model.safetensors").is_file())
    if not steps:
        raise CheckpointError(f"{path} holds no checkpoint (expected {root}/step_*/model.safetensors)")
    return steps[-1]


def read_checkpoint_config(ckpt: Path) -> dict[str, Any]:
    config = read_json(ckpt, "config.json")
    if not isinstance(config, dict):
        raise CheckpointError(f"{ckpt / 'config.json'} does not hold a config mapping")
    return config


def read_weights(ckpt: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's verified inference weights (`model.safetensors`); CheckpointError if the
    file is missing, damaged or holds NaN or inf."""
    verify_files(ckpt, "model.safetensors")
    try:
        state = load_file(str(ckpt / "model.safetensors"))
    except Exception as exc:  # safetensors raises several types
        raise CheckpointError(f"{ckpt}: cannot read model.safetensors ({one_line(exc)})") from exc
    bad = nonfinite(state)
    if bad:
        raise CheckpointError(f"{ckpt}: weights {bad[:3]} are NaN or inf; this checkpoint cannot act")
    return state


def load_policy(path: str | Path, *, device: str = "cpu", overrides: dict[str, Any] | None = None) -> Policy:
    """Rebuild the policy stored in a checkpoint (or a run's latest one), ready for `act`.

    `overrides` change inference-time fields of the saved policy config (a sampler, a number of
    denoising steps, `ptp_candidates`), so one checkpoint can be evaluated several ways; a field
    that shapes the weights makes loading fail with the weights' mismatch. Every file is
    checked against the manifest first; anything unusable is a one-line CheckpointError."""
    ckpt = find_checkpoint(path)
    config = read_checkpoint_config(ckpt)
    stats = read_json(ckpt, "normalizer.json")
    state = read_weights(ckpt)
    try:
        policy_raw = dict(config["policy"])
        name = policy_raw.pop("name")
        policy_cls, config_cls = get_policy(name)
        shapes = Shapes(
            obs={k: tuple(v) for k, v in config["shapes"]["obs"].items()},
            action=tuple(config["shapes"]["action"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{ckpt}: config.json does not describe a policy ({one_line(exc)})") from exc
    try:
        policy_cfg = from_dict(config_cls, policy_raw, where="policy.")
    except ConfigError as exc:
        raise CheckpointError(f"{ckpt}: policy config does not match this imitari version: {exc}") from exc
    if overrides:
        policy_cfg = from_dict(config_cls, {**to_dict(policy_cfg), **overrides}, where="policy.")
    try:
        policy = policy_cls(policy_cfg, shapes=shapes, stats=stats)
    except ConfigError:
        raise
    except Exception as exc:  # torch and the normaliser raise several types
        raise CheckpointError(f"{ckpt}: cannot rebuild the policy ({one_line(exc)})") from exc
    try:
        missing, unexpected = policy.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensors of the wrong shape
        lines = str(exc).splitlines()
        raise CheckpointError(f"{ckpt}: weights do not fit the policy: {(lines[1] if len(lines) > 1 else lines[0]).strip()}") from exc
    if missing or unexpected:
        raise CheckpointError(f"{ckpt}: weights do not fit the policy (missing {missing[:5]}, unexpected {unexpected[:5]})")
    return policy.to(device).eval()


ENCODER_PREFIX = "obs_encoder."


def load_encoder_weights(policy: Policy, ckpt: Path) -> int:
    """Copy the observation encoder weights of checkpoint `ckpt` into `policy`'s encoder
    (representation transfer: a BC run's trained CNN starting a diffusion policy on the same
    cameras); returns how many tensors were copied. CheckpointError when the checkpoint has no
    encoder weights or they do not fit (another camera size or encoder config)."""
    weights = {k[len(ENCODER_PREFIX):]: v for k, v in read_weights(ckpt).items() if k.startswith(ENCODER_PREFIX)}
    own = policy.obs_encoder.state_dict()
    if not weights or not own:
        whose = "its" if not weights else "this policy's"
        raise CheckpointError(f"{ckpt}: {whose} observation encoder has no weights to transfer (low-dim "
                              "observations only?)")
    unfit = sorted(k for k in {*own, *weights} if k not in own or k not in weights or weights[k].shape != own[k].shape)
    if unfit:
        raise CheckpointError(f"{ckpt}: its observation encoder does not fit this policy's (differs at "
                              f"{unfit[:3]}): same cameras and image_encoder settings needed")
    policy.obs_encoder.load_state_dict(weights)
    return len(weights)
