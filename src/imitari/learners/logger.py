"""Training metrics to `metrics.jsonl` (one JSON object per line) and TensorBoard events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class MetricsLogger:
    """Appends `{"step": k, ...}` lines; on resume, drops lines logged after the checkpoint."""

    def __init__(self, run_dir: Path, *, resume_step: int | None = None) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        if resume_step is not None and self.path.exists():
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= resume_step
            ]
            tmp = self.path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(line + "\n" for line in kept))
            tmp.replace(self.path)
        self._file = self.path.open("a")
        self.last: dict[str, float] = {}
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb: Any = SummaryWriter(
                str(Path(run_dir) / "tb"), purge_step=None if resume_step is None else resume_step + 1
            )
        except ImportError:  # tensorboard is a dependency, but logging must never stop training
            self._tb = None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not metrics:
            return
        self.last.update(metrics)
        self._file.write(json.dumps({"step": step, **metrics}) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in metrics.items():
                self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()
