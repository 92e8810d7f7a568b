"""`write_eval_json` + `write_report` on a synthetic run directory, and `save_video`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imitari.eval.metrics import EpisodeResult, summarize
from imitari.eval.report import write_eval_json, write_report
from imitari.eval.video import save_video


def _make_run(run: Path) -> None:
    run.mkdir()
    (run / "config.json").write_text(json.dumps(
        {"task": "builtin/reach", "steps": 300, "policy": {"name": "bc", "hidden": [64, 64]}, "dataset": {"episodes": 30}}
    ))
    (run / "dataset_summary.json").write_text(json.dumps({
        "path": "data/reach", "env": "builtin/reach", "fps": 10.0, "episodes": 30, "steps": 612,
        "episode_length": {"min": 12, "mean": 20.4, "max": 31},
        "features": {"obs.state": {"shape": [4], "dtype": "float32"}, "action": {"shape": [2], "dtype": "float32"}},
        "success": {"episodes_with_info": 30, "rate": 1.0},
    }))
    lines = [json.dumps({"step": s, "loss": 1.0 / s, "lr": 1e-3, "grad_norm": 0.5}) for s in range(10, 310, 10)]
    lines.append(json.dumps({"step": 300, "eval/success_rate": 0.9}))
    lines.append('{"step": 310, "loss"')  # a line cut short by a killed run
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    results = [EpisodeResult(seed=100_000 + i, success=i < 47, return_=12.0, length=87, info={"route": "left"})
               for i in range(50)]
    expert = summarize([EpisodeResult(seed=100_000 + i, success=True, return_=15.0, length=40) for i in range(50)])
    write_eval_json(run / "eval" / "step-300.json", summarize(results), results, meta={
        "checkpoint": str(run / "checkpoints" / "step-300"), "task": "builtin/reach", "seeds": [100_000, 100_049],
        "num_envs": 10, "expert": expert, "videos": [],
    })
    frames = [np.full((32, 48, 3), 8 * i, dtype=np.uint8) for i in range(12)]
    save_video(frames, run / "eval" / "videos" / "step-300_seed100000.mp4", fps=10)


def test_report_embeds_everything(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _make_run(run)
    document = json.loads((run / "eval" / "step-300.json").read_text())
    assert document["summary"]["successes"] == 47 and document["meta"]["expert"]["successes"] == 50
    assert document["episodes"][0] == {"seed": 100_000, "success": True, "return": 12.0, "length": 87, "route": "left"}

    page = write_report(run).read_text()
    assert (run / "report.html").exists()
    assert page.count("data:image/png;base64,") == 1
    assert page.count("data:video/mp4;base64,") == 1
    assert "47/50 = 94.0% (95% CI 83.8-97.9%)" in page
    assert "50/50 = 100.0%" in page  # the expert on the same seeds
    assert "policy.hidden" in page and "builtin/reach" in page and "612" in page
    assert "1 unreadable line(s)" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_report_of_an_empty_run_has_notes(tmp_path: Path) -> None:
    out = write_report(tmp_path, out=tmp_path / "elsewhere" / "r.html")
    page = out.read_text()
    assert out == tmp_path / "elsewhere" / "r.html"
    for note in ("no evaluation yet", "no videos", "no metrics.jsonl", "no dataset_summary.json", "no config.json"):
        assert note in page


def test_gif_fallback_when_mp4_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object) -> None:
        raise OSError("no ffmpeg here")

    monkeypatch.setattr("imitari.eval.video._write_mp4", broken)
    frames = [np.full((7, 9, 3), 20 * i, dtype=np.uint8) for i in range(5)]
    path = save_video(frames, tmp_path / "v.mp4", fps=5)
    assert path == tmp_path / "v.gif" and path.read_bytes()[:6] == b"GIF89a"
    assert not (tmp_path / "v.mp4").exists()
    assert "mp4 writing failed (OSError: no ffmpeg here); writing v.gif instead" in capsys.readouterr().out
    page = write_report(tmp_path).read_text()  # a run dir whose only content is a GIF under eval/videos
    assert "no videos" in page
    (tmp_path / "eval" / "videos").mkdir(parents=True)
    path.rename(tmp_path / "eval" / "videos" / "v.gif")
    assert "data:image/gif;base64," in write_report(tmp_path).read_text()


def test_save_video_rejects_bad_frames(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        save_video([], tmp_path / "v.mp4", fps=10)
    with pytest.raises(ValueError, match=r"frame 1: expected an \(H, W, 3\) uint8 image"):
        save_video([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.float32)], tmp_path / "v.mp4", fps=10)
