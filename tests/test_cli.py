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
    hopper = next(line for line in out.splitlines() if line.startswith("mujoco/hopper "))
    assert "expert: return" in hopper and "shipped" in hopper, "a shipped RL expert names itself and its measured return"


def _one_error(capsys, *fragments: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("imitari "), err
    for fragment in fragments:
        assert fragment in err[0], (fragment, err[0])


def test_bad_numbers_fail_before_any_work_in_one_line(reach_dataset: Path, tmp_path: Path, capsys) -> None:
    train = ["train", "--data", str(reach_dataset), "--out", str(tmp_path / "run"), "--steps", "1", "--progress", "false"]
    for extra, message in [
        (["--lr", "-1"], "lr must be > 0"), (["--lr", "nan"], "lr must be a finite number"),
        (["--lr", "1e30"], "lr must be <= 1"), (["--threads", "-2"], "threads must be >= 1"),
        (["--threads", "0"], "threads must be >= 1"), (["--grad-clip", "-1"], "grad_clip must be >= 0"),
        (["--warmup-steps", "-3"], "warmup_steps must be >= 0"),
        (["--eval-every", "5", "--num-envs", "0"], "num_envs must be >= 1"),
    ]:
        assert main([*train, *extra]) == 2, extra
        _one_error(capsys, message)
    assert not (tmp_path / "run").exists(), "nothing was started"
    for extra, message in [(["--episodes", "0"], "episodes must be an integer >= 1"),
                           (["--seed-start", "-10"], "seed-start must be an integer >= 0"),
                           (["--num-envs", "0"], "num-envs must be an integer >= 1")]:
        assert main(["eval", str(tmp_path / "nothing"), *extra]) == 2
        _one_error(capsys, message)
    assert main(["collect", "--env", "builtin/reach", "--episodes", "-1", "--out", str(tmp_path / "d")]) == 2
    _one_error(capsys, "episodes must be an integer >= 0")


def test_key_equals_value_reaches_the_run_intact(reach_dataset: Path, tmp_path: Path, capsys) -> None:
    data = tmp_path / "my-data"
    data.symlink_to(reach_dataset)
    run = tmp_path / "my-run"
    assert main(["train", f"--data={data}", f"--out={run}", "--steps=2", "--batch-size=8", "--progress=false",
                 "--policy.hidden=8"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["data"] == str(data) and config["out"] == str(run) and not (tmp_path / "my_run").exists()


def test_a_misspelt_train_filter_lists_the_keys(reach_dataset: Path, tmp_path: Path, capsys) -> None:
    import shutil

    data = tmp_path / "split"
    shutil.copytree(reach_dataset, data)
    assert main(["data", "split", str(data)]) == 0
    capsys.readouterr()
    assert main(["train", "--data", str(data), "--train-filter", "trian", "--steps", "1", "--out", str(tmp_path / "r")]) == 2
    _one_error(capsys, "no filter key 'trian' (did you mean 'train'?)", "its filter keys: train, valid")
