"""The evaluation JSON format and the self-contained HTML report of a run directory.

`write_eval_json` is the one writer of `run_dir/eval/*.json`; `write_report` reads the run
directory (config.json, dataset_summary.json, metrics.jsonl, eval/*.json, eval/videos/) and
writes `report.html` with every plot and video embedded as base64, so the file can be mailed
or archived on its own: no external URLs, no JavaScript. Each missing or unreadable piece
becomes a short note in the page instead of an error, because a report of a half-finished run
is still useful.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import math
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from imitari.eval.metrics import EpisodeResult, EvalSummary

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
       max-width: 1100px; margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 1.6em; margin-bottom: .1em; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 1.8em; }
.sub, .note { color: #656d76; } .note { font-style: italic; }
table { border-collapse: collapse; margin: .6em 0; font-size: .92em; }
th, td { border: 1px solid #d0d7de; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: flex; gap: 1em; flex-wrap: wrap; margin: 1em 0; }
.card { border: 1px solid #d0d7de; border-radius: 8px; padding: .6em 1em; min-width: 12em; }
.card b { display: block; font-size: 1.5em; }
.ok { color: #1a7f37; } .bad { color: #cf222e; }
img.plot { max-width: 100%; } figure { display: inline-block; margin: .5em 1em .5em 0; }
figcaption { color: #656d76; font-size: .85em; } video, img.video { max-width: 340px; border-radius: 6px; }
details { margin: .5em 0; } summary { cursor: pointer; color: #0969da; }
"""


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to the evaluation JSON")


def write_eval_json(
    path: str | os.PathLike[str],
    summary: EvalSummary,
    results: Sequence[EpisodeResult],
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write `{"summary", "episodes", "meta"}` atomically; returns the path.

    meta holds what the report shows next to the numbers: checkpoint, task, seeds, num_envs,
    and under "expert" the expert's own `EvalSummary` on the same seeds (or None).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "summary": dataclasses.asdict(summary),
        "episodes": [r.to_dict() for r in results],
        "meta": meta or {},
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, default=_json_default) + "\n")
    tmp.replace(path)
    return path


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    head = "<tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return f'<td class="{"ok" if value else "bad"}">{"✓" if value else "✗"}</td>'
    if isinstance(value, (int, float)):
        return f'<td class="num">{_esc(_fmt(value))}</td>'
    return f"<td>{_esc(_fmt(value))}</td>"


def _note(text: str) -> str:
    return f'<p class="note">{_esc(text)}</p>'


def _flatten(config: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in config.items():
        if isinstance(value, dict) and value:
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def _read_json(path: Path) -> tuple[Any, str | None]:
    """(content, None), or (None, a note saying why it could not be read)."""
    if not path.exists():
        return None, f"no {path.name} in the run directory"
    try:
        return json.loads(path.read_text()), None
    except (OSError, ValueError) as exc:
        return None, f"{path.name} could not be read: {exc}"


def _config_section(run_dir: Path) -> str:
    config, note = _read_json(run_dir / "config.json")
    if note:
        return _note(note)
    return _table(_flatten(config), ["key", "value"])


def _dataset_section(run_dir: Path) -> str:
    data, note = _read_json(run_dir / "dataset_summary.json")
    if note:
        return _note(note)
    success = (data.get("success") or {}).get("rate")
    length = data.get("episode_length") or {}
    rows = [
        ("path", data.get("path", "-")),
        ("env", data.get("env") or "-"),
        ("episodes", data.get("episodes", "-")),
        ("steps", data.get("steps", "-")),
        ("episode length (min / mean / max)", f"{length.get('min')} / {length.get('mean', 0):.1f} / {length.get('max')}" if length else "-"),
        ("expert success", f"{success:.1%}" if success is not None else "not recorded"),
    ]
    features = [(name, f.get("dtype", ""), str(tuple(f.get("shape", ())))) for name, f in (data.get("features") or {}).items()]
    return _table(rows) + (_table(features, ["feature", "dtype", "shape"]) if features else "")


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _curves_section(run_dir: Path) -> str:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return _note("no metrics.jsonl yet: training has not logged anything")
    series: dict[str, tuple[list[float], list[float]]] = {}
    skipped = 0
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
            step = float(record["step"])
        except (ValueError, KeyError, TypeError):
            skipped += line.strip() != ""
            continue
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                xs, ys = series.setdefault(key, ([], []))
                xs.append(step)
                ys.append(float(value))
    if not series:
        return _note("metrics.jsonl holds no numeric metrics yet")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(series, key=lambda k: (k.startswith("eval/"), "loss" not in k, "time" in k, k))
    steps = [x for xs, _ in series.values() for x in xs]
    span = (min(steps), max(steps)) if min(steps) < max(steps) else (min(steps) - 1, max(steps) + 1)
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        xs, ys = series[key]
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, linewidth=1.2, color="#0969da")
        if "loss" in key and min(ys) > 0 and max(ys) / min(ys) > 20:
            ax.set_yscale("log")
        if key.endswith("success_rate"):
            ax.set_ylim(-0.03, 1.03)
        ax.set_xlim(*span)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    fig.tight_layout()
    image = _png(fig)
    plt.close(fig)
    extra = _note(f"{skipped} unreadable line(s) in metrics.jsonl were skipped") if skipped else ""
    return f'<img class="plot" alt="training curves" src="data:image/png;base64,{image}">{extra}'


def _success_text(summary: dict[str, Any]) -> str:
    return (
        f"{summary['successes']}/{summary['n']} = {summary['success_rate']:.1%} "
        f"(95% CI {100 * summary['ci_low']:.1f}-{100 * summary['ci_high']:.1f}%)"
    )


def _eval_section(run_dir: Path) -> tuple[str, str]:
    """(summary cards of the latest evaluation, the evaluation section)."""
    files = sorted((run_dir / "eval").glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))
    if not files:
        return "", _note("no evaluation yet: run `imitari eval` on this run directory")
    parts, cards = [], ""
    for path in files:
        document, note = _read_json(path)
        if note or not isinstance(document, dict) or "summary" not in document:
            parts.append(f"<h3>{_esc(path.name)}</h3>" + _note(note or f"{path.name} is not an evaluation file"))
            continue
        summary, meta = document["summary"], document.get("meta") or {}
        expert = meta.get("expert")
        rows: list[tuple[str, Any]] = [
            ("checkpoint", meta.get("checkpoint", "-")),
            ("task", meta.get("task", "-")),
            ("seeds", meta.get("seeds", "-")),
            ("num_envs", meta.get("num_envs", "-")),
            ("success", _success_text(summary)),
            ("return (mean ± std)", f"{summary['mean_return']:.2f} ± {summary['std_return']:.2f}"),
            ("episode length (mean)", f"{summary['mean_length']:.1f}"),
        ]
        if summary.get("route_shares"):
            shares = ", ".join(f"{k} {v:.0%}" for k, v in summary["route_shares"].items())
            rows.append(("routes", f"{shares} (behaviour entropy {summary['behaviour_entropy']:.2f})"))
        if expert:
            rows.append(("expert on the same seeds", _success_text(expert)))
        episodes = document.get("episodes") or []
        columns = list(dict.fromkeys(key for row in episodes for key in row))
        per_episode = (
            f"<details><summary>{len(episodes)} episodes</summary>"
            + _table([[row.get(c, "") for c in columns] for row in episodes], columns) + "</details>"
            if episodes else ""
        )
        parts.append(f"<h3>{_esc(path.stem)}</h3>" + _table(rows) + per_episode)
        cls = "ok" if summary["success_rate"] >= 0.5 else "bad"
        cards = (
            f'<div class="cards"><div class="card">policy success ({_esc(path.stem)})'
            f'<b class="{cls}">{summary["success_rate"]:.1%}</b>'
            f'{summary["successes"]}/{summary["n"]}, 95% CI {100 * summary["ci_low"]:.0f}-{100 * summary["ci_high"]:.0f}%</div>'
            + (f'<div class="card">expert, same seeds<b>{expert["success_rate"]:.1%}</b>'
               f'{expert["successes"]}/{expert["n"]}</div>' if expert else "")
            + "</div>"
        )
    return cards, "".join(parts)


def _videos_section(run_dir: Path) -> str:
    folder = run_dir / "eval" / "videos"
    files = sorted(p for p in folder.glob("*") if p.suffix in (".mp4", ".gif")) if folder.is_dir() else []
    if not files:
        return _note("no videos: evaluate with --video N to record the first N episodes")
    figures = []
    for path in files:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        if path.suffix == ".mp4":
            media = f'<video controls muted loop preload="metadata" src="data:video/mp4;base64,{data}"></video>'
        else:
            media = f'<img class="video" alt="{_esc(path.stem)}" src="data:image/gif;base64,{data}">'
        figures.append(f"<figure>{media}<figcaption>{_esc(path.stem)}</figcaption></figure>")
    return "".join(figures)


def write_report(run_dir: str | os.PathLike[str], *, out: str | os.PathLike[str] | None = None) -> Path:
    """Write the run's self-contained report (default `run_dir/report.html`); returns its path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    config, _ = _read_json(run_dir / "config.json")
    config = config if isinstance(config, dict) else {}
    policy = config.get("policy")
    policy_name = policy.get("name") if isinstance(policy, dict) else policy
    subtitle = " · ".join(
        _esc(part) for part in (config.get("task"), policy_name, f"generated {datetime.now():%Y-%m-%d %H:%M}") if part
    )
    cards, evaluation = _eval_section(run_dir)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>imitari report: {_esc(run_dir.name)}</title>
<style>{_CSS}</style></head><body>
<h1>imitari report: {_esc(run_dir.name)}</h1><p class="sub">{subtitle}</p>
{cards}
<h2>Evaluation</h2>{evaluation}
<h2>Videos</h2>{_videos_section(run_dir)}
<h2>Training curves</h2>{_curves_section(run_dir)}
<h2>Dataset</h2>{_dataset_section(run_dir)}
<h2>Run config</h2>{_config_section(run_dir)}
</body></html>
"""
    path = Path(out) if out is not None else run_dir / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page)
    tmp.replace(path)
    return path
