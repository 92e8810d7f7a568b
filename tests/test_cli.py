"""The command line end to end on a built-in task: collect, info, split, train, eval, report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from imitari.cli import main


def test_cli_end_to_end(tmp_path: Path, capsys) -> None:
    data, run = tmp_path / "reach", tmp_path / "run"
    assert main(["collect", "--env", "builtin/reach", "--episodes", "12", "--out", str(data), "--workers", "2"]) == 0
    assert main(["data", "info", str(data)]) == 0
    info = capsys.readouterr().out
    assert "12" in info and "obs.state" in info and "action" in info
    assert main(["data", "split", str(data), "--val-fraction", "0.25"]) == 0
    assert "valid (3 episodes)" in capsys.readouterr().out
    assert main([
        "train", "--policy", "bc", "--data", str(data), "--out", str(run), "--steps", "300",
        "--batch-size", "64", "--progress", "false", "--policy.hidden", "64,64", "--ckpt-every", "100",
    ]) == 0
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("valid_loss" in m for m in metrics), "the valid filter key gives a validation loss"
    assert main(["eval", str(run), "--episodes", "6", "--num-envs", "3", "--workers", "1", "--video", "1", "--expert"]) == 0
    out = capsys.readouterr().out
    assert "policy: success" in out and "expert: success 6/6" in out
    evals = list((run / "eval").glob("*.json"))
    assert len(evals) == 1 and json.loads(evals[0].read_text())["summary"]["n"] == 6
    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    assert "data:image/png;base64" in html and "<video" in html


def test_cli_errors_are_one_line(tmp_path: Path, capsys) -> None:
    assert main(["data", "info", str(tmp_path / "missing")]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--stpes", "3"]) == 2
    assert "did you mean 'steps'" in capsys.readouterr().err
    assert main(["collect", "--env", "builtin/rech", "--episodes", "1", "--out", str(tmp_path / "x")]) == 2
    assert "builtin/reach" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "nothing")]) == 2


def test_entry_point_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "imitari", "tasks"], capture_output=True, text=True, check=True).stdout
    assert "metaworld/push" in out and "builtin/two_routes" in out
