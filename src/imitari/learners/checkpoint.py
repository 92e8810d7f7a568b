"""Checkpoints: directories that hold a policy and, for resuming, the training state.

Layout (docs/architecture.md):
    config.json        run config, policy name + config, shapes, dataset provenance
    model.safetensors  the weights used for inference (the EMA copy when the run keeps one)
    normalizer.json    the normalisation statistics, readable without torch
    train_state.pt     step, EMA, CPU seconds and the learner's state (raw weights as 'model',
                       optimiser, scheduler), for `--resume`

Nothing here executes code from a file: weights are safetensors, state goes through
`torch.load(weights_only=True)`, the rest is JSON. A checkpoint is written to a temporary
directory and renamed into place, so a killed run never leaves a half-written one behind.
`manifest.json` records each file's CRC-32, checked before a file is parsed, so a damaged or
truncated file is a one-line CheckpointError, and resuming falls back to the newest intact
checkpoint. Weights that are not finite are never saved.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from imitari.data.checksums import file_crc32
from imitari.policies.loading import (
    CHECKPOINTS,
    MANIFEST,
    CheckpointError,
    find_checkpoint,
    nonfinite,
    one_line,
    verify_files,
)


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def save_checkpoint(
    run_dir: Path,
    step: int,
    *,
    config: dict[str, Any],
    inference_state: dict[str, torch.Tensor],
    normalizer: dict[str, Any],
    train_state: dict[str, Any] | None,
    keep: int = 2,
) -> Path:
    """Write `checkpoints/step_<step>` atomically, point `latest` at it, prune old ones.

    FloatingPointError, before anything is written, if a weight is NaN or inf."""
    bad = nonfinite(inference_state) + nonfinite((train_state or {}).get("model") or {})
    if bad:
        raise FloatingPointError(
            f"weights {sorted(set(bad))[:3]} are NaN or inf at step {step}: not saved; the last checkpoint is intact "
            "(lower --lr or check the data with `imitari data verify`)"
        )
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp_step_{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    save_file(_contiguous(inference_state), str(tmp / "model.safetensors"))
    (tmp / "normalizer.json").write_text(json.dumps(normalizer, indent=2))
    if train_state is not None:
        torch.save(train_state, tmp / "train_state.pt")
    files = {p.name: file_crc32(p) for p in sorted(tmp.iterdir())}
    (tmp / MANIFEST).write_text(json.dumps({"files": files}, indent=2))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    latest = root / "latest"
    tmp_link = root / ".latest.tmp"
    tmp_link.write_text(final.name)
    os.replace(tmp_link, latest)
    steps = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in steps[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_train_state(ckpt: Path) -> dict[str, Any]:
    """The training state of `ckpt` (`weights_only`: no code runs); CheckpointError if unusable."""
    if not (ckpt / "train_state.pt").is_file():
        raise CheckpointError(f"{ckpt} has no train_state.pt, so the run cannot be resumed from it")
    verify_files(ckpt, "train_state.pt")
    try:
        state = torch.load(ckpt / "train_state.pt", map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged or hostile file
        raise CheckpointError(f"{ckpt}: train_state.pt cannot be loaded safely ({one_line(exc)})") from exc
    if not isinstance(state, dict) or not {"step", "model"} <= set(state):
        raise CheckpointError(f"{ckpt}: train_state.pt does not hold a training state")
    return state


def _newest_first(run_dir: Path) -> list[Path]:
    """The run's checkpoints, the one `latest` names first, then by step, newest first."""
    root = Path(run_dir) / CHECKPOINTS
    steps = sorted((p for p in root.glob("step_*") if p.is_dir()), reverse=True)
    latest = root / "latest"
    if latest.is_file():
        named = root / latest.read_text().strip()
        if named in steps:
            steps.remove(named)
            steps.insert(0, named)
    return steps


def resume_states(run_dir: Path, *, say: Callable[[str], None] | None = None) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(checkpoint, train state) of each intact checkpoint of the run, newest first; each one
    skipped is reported through `say` (stderr by default) with the reason. CheckpointError if
    none is intact."""
    say = say or (lambda line: print(line, file=sys.stderr))
    reasons = []
    for ckpt in _newest_first(run_dir):
        try:
            state = load_train_state(ckpt)
        except CheckpointError as exc:
            say(f"resume: skipping checkpoint {ckpt.name}: {exc}")
            reasons.append(f"{ckpt.name}: {exc}")
            continue
        yield ckpt, state
    raise CheckpointError(f"{run_dir}: no intact checkpoint to resume from" + (f" ({'; '.join(reasons)})" if reasons else ""))


BEST = "best"
"""A run's subfolder holding its best checkpoint by validation success (`TrainConfig.keep_best`)."""


def reported_checkpoint(path: str | Path) -> Path:
    """The checkpoint a run reports: its best by validation success when it kept one
    (`<run>/best/`), else its latest; a checkpoint directory resolves to itself."""
    path = Path(path)
    if (path / BEST).is_dir():
        try:
            return find_checkpoint(path / BEST)
        except CheckpointError:
            pass
    return find_checkpoint(path)
