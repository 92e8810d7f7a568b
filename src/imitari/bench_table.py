"""The benchmark table of `imitari bench`: rows in a CSV, rendered to markdown and a bar chart.

The CSV is the record: one row per (task, policy, training seed) appended as soon as it is
measured, so partial runs (one task, one policy, one seed at a time) and runs resumed after a
kill add to the same table. The markdown and the PNG are redrawn from the whole CSV and show,
per (task, policy), the mean success over training seeds and its spread: a single training
run is one draw, and two policies can trade places from one seed to the next.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imitari.eval.metrics import MAX_LISTED_BEHAVIOURS, EvalSummary, wilson_interval

EXPERT = "expert"
"""The policy column of the task expert's row."""
RANDOM = "random"
"""The policy column of uniformly random actions (normalised suites): the 0 of normalised return."""

FIELDS = [
    "task", "policy", "train_seed", "episodes", "successes", "success_rate", "ci_low", "ci_high", "mean_return",
    "mean_length", "behaviour_shares", "behaviour_entropy", "updates", "reported_step", "reported_from",
    "cpu_minutes", "budget_cpu_minutes", "params", "device", "eval_seeds", "score", "conditional_entropy",
    "demos", "expert_labels", "env_steps",
]
"""CSV columns. train_seed: `TrainConfig.seed` of the run (blank for the expert; a CSV written
before the column existed reads as seed 0); ci_low/ci_high: the 95% Wilson interval of the
success rate; behaviour_shares: JSON {label: share} over the episodes that report a behaviour
label (blank if none do); updates and cpu_minutes: gradient updates done and process CPU
minutes spent in training; reported_step and reported_from: the step of the checkpoint that
was evaluated, and whether it was the run's best by validation success or its latest; score: the
mean per-episode score of tasks that report one (PushT), blank for the others;
conditional_entropy: D3IL's conditional behaviour entropy over repeated rollouts from the same
starts (`imitari.pipeline.repeated_entropy`), blank on tasks without behaviour labels; demos and
expert_labels: on a learning curve (`Suite.demo_counts`), the demos the run was given and the
expert-labelled steps it learned from (its rounds' labels included), and the env steps it
played while training (an interactive learner's rounds, every step whoever acted; 0 for an
offline one), blank elsewhere."""


def summary_row(task: str, policy: str, summary: EvalSummary, *, seeds: Sequence[int],
                conditional_entropy: float | None = None, **extra: Any) -> dict[str, Any]:
    """A CSV row from an evaluation summary; `extra` fills the training columns."""
    return {
        "task": task, "policy": policy, "episodes": summary.n, "successes": summary.successes,
        "success_rate": summary.success_rate, "ci_low": summary.ci_low, "ci_high": summary.ci_high,
        "mean_return": round(summary.mean_return, 4), "mean_length": summary.mean_length,
        "behaviour_shares": json.dumps(summary.route_shares) if summary.route_shares is not None else "",
        "behaviour_entropy": summary.behaviour_entropy if summary.behaviour_entropy is not None else "",
        "eval_seeds": f"{seeds[0]}-{seeds[-1]}", "score": "" if summary.mean_score is None else round(summary.mean_score, 4),
        "conditional_entropy": "" if conditional_entropy is None else round(conditional_entropy, 4),
        **extra,
    }


def read_csv(csv_path: Path) -> list[dict[str, str]]:
    """Every row of a CSV with a header line; [] when there is no file yet."""
    if not csv_path.exists():
        return []
    with csv_path.open(newline="") as f:
        return list(csv.DictReader(f))


def append_csv(csv_path: Path, row: dict[str, Any], fields: Sequence[str]) -> None:
    """Append one row with these columns (blank where missing), writing the header first for a
    new file: the record a resumable measurement adds to as each result comes in."""
    new = not csv_path.exists()
    with csv_path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        if new:
            writer.writeheader()
        writer.writerow({key: row.get(key, "") for key in fields})


def read_rows(csv_path: Path) -> list[dict[str, str]]:
    """Every row, with the columns of `FIELDS` (those an older CSV lacks read as blank, and a
    missing `train_seed` as 0 for trained rows)."""
    rows = read_csv(csv_path)
    for row in rows:
        if row.get("train_seed") is None:
            row["train_seed"] = "" if row["policy"] in (EXPERT, RANDOM) else "0"
        for key in FIELDS:
            row.setdefault(key, "")
    return rows


def _header(csv_path: Path) -> list[str]:
    with csv_path.open(newline="") as f:
        return next(csv.reader(f), [])


def append_row(csv_path: Path, row: dict[str, Any]) -> None:
    """Append one bench row. A CSV with older columns is first rewritten, atomically, with
    today's header, so that old and new rows line up."""
    if csv_path.exists() and _header(csv_path) != FIELDS:
        tmp = csv_path.with_name(csv_path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        for old in read_rows(csv_path):
            append_csv(tmp, old, FIELDS)
        os.replace(tmp, csv_path)
    append_csv(csv_path, row, FIELDS)


def row_key(row: dict[str, str]) -> tuple[str, str, str, str]:
    """(task, policy, training seed, demo count): what a finished row stands for, to skip it on
    a rerun."""
    return row["task"], row["policy"], row["train_seed"], row.get("demos", "")


@dataclass(frozen=True)
class Group:
    """The rows of one (task, policy, demo count): one per training seed (the expert and the
    random baseline have one row)."""

    task: str
    policy: str
    rows: tuple[dict[str, str], ...]
    demos: str = ""

    @property
    def expert(self) -> bool:
        """An anchor row (the expert, or random actions), not a trained policy."""
        return self.policy in (EXPERT, RANDOM)

    @property
    def rates(self) -> list[float]:
        return [float(r["success_rate"]) for r in self.rows]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.rates)

    @property
    def std(self) -> float | None:
        """Sample standard deviation of the success rate over training seeds; None for one seed."""
        return statistics.stdev(self.rates) if len(self.rows) > 1 else None

    @property
    def pooled(self) -> tuple[int, int]:
        """(successes, episodes) summed over the seeds."""
        return sum(int(r["successes"]) for r in self.rows), sum(int(r["episodes"]) for r in self.rows)

    @property
    def interval(self) -> tuple[float, float]:
        """The error bar: min-max over training seeds, or one run's 95% Wilson interval."""
        if len(self.rows) > 1:
            return min(self.rates), max(self.rates)
        return float(self.rows[0]["ci_low"]), float(self.rows[0]["ci_high"])

    def column_mean(self, key: str, spec: str) -> str:
        """The mean of a numeric column over the seeds, formatted; '-' where a row left it blank."""
        values = [r[key] for r in self.rows]
        return "-" if "" in values else format(statistics.fmean(float(v) for v in values), spec)


def groups(rows: list[dict[str, str]], tasks: Sequence[str] = ()) -> list[Group]:
    """Rows grouped by (task, policy, demo count): tasks in `tasks` order (then any others), the
    expert and random rows first in each, then policies in the order first measured (by demo
    count on a learning curve); seeds in increasing order."""
    order = list(tasks) + sorted({r["task"] for r in rows} - set(tasks))
    position = {task: i for i, task in enumerate(order)}
    first_seen: dict[tuple[str, str, str], int] = {}
    members: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for i, r in enumerate(rows):
        key = (r["task"], r["policy"], r.get("demos", ""))
        first_seen.setdefault(key, i)
        members.setdefault(key, []).append(r)
    policy_seen: dict[tuple[str, str], int] = {}  # each (task, policy)'s first row, over demo counts
    for (task, policy, _), i in sorted(first_seen.items(), key=lambda item: item[1]):
        policy_seen.setdefault((task, policy), i)
    anchors = {EXPERT: 0, RANDOM: 1}
    keys = sorted(members, key=lambda k: (position[k[0]], anchors.get(k[1], 2), int(k[2] or 0),
                                          policy_seen[k[0], k[1]]))
    return [Group(task, policy, tuple(sorted(members[task, policy, demos], key=lambda r: int(r["train_seed"] or 0))),
                  demos) for task, policy, demos in keys]


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _shares(group: Group) -> str:
    """Each behaviour label's share, averaged over the seeds that report labels."""
    labelled = [json.loads(r["behaviour_shares"]) for r in group.rows if r["behaviour_shares"]]
    if not labelled:
        return "-"
    labels = sorted({label for shares in labelled for label in shares})
    if len(labels) > MAX_LISTED_BEHAVIOURS:
        return f"{len(labels)} distinct"
    return ", ".join(f"{label}: {_pct(statistics.fmean(s.get(label, 0.0) for s in labelled))}" for label in labels)



def _entropy(group: Group, key: str = "behaviour_entropy") -> str:
    """The mean of an entropy column over the seeds that report it."""
    values = [float(r[key]) for r in group.rows if r[key]]
    return f"{statistics.fmean(values):.2f}" if values else "-"


def _reported(group: Group) -> str:
    """Which checkpoints were evaluated: 'best @STEP' / 'latest' for one seed, counts for more."""
    kinds = [r["reported_from"] for r in group.rows if r["reported_from"]]
    if not kinds:
        return "-"
    if len(group.rows) == 1:
        return f"best @{group.rows[0]['reported_step']}" if kinds[0] == "best" else kinds[0]
    return ", ".join(f"{kind} x{kinds.count(kind)}" for kind in sorted(set(kinds)))


def anchors(rows: list[dict[str, str]]) -> dict[str, tuple[float, float]]:
    """Per task with both anchor rows: (random return, expert return), normalised return's 0 and 1."""
    by = {(r["task"], r["policy"]): float(r["mean_return"]) for r in rows
          if r["policy"] in (EXPERT, RANDOM) and r.get("mean_return")}
    return {task: (by[task, RANDOM], by[task, EXPERT]) for task, policy in by if policy == RANDOM and (task, EXPERT) in by}


def normalised_returns(group: Group, zero_one: dict[str, tuple[float, float]]) -> list[float] | None:
    """Each seed's (R - R_random) / (R_expert - R_random); None without both anchors."""
    if group.task not in zero_one:
        return None
    zero, one = zero_one[group.task]
    return [(float(r["mean_return"]) - zero) / (one - zero) if one != zero else float("nan") for r in group.rows]


def markdown(rows: list[dict[str, str]], tasks: Sequence[str] = (), *, split: str = "test") -> str:
    """The table in markdown, one line per (task, policy, demo count): success pooled over the
    training seeds (k/n = mean rate), its spread over seeds (min-max, std), the 95% Wilson
    interval of the pooled episodes, and the training columns averaged over seeds; behaviour
    columns appear when some row has behaviour labels, the demos and expert labels on a learning
    curve, and the normalised return (mean and min-max over seeds) where a task has its random
    row (without the success columns when nothing ever succeeds, as in locomotion). `split`
    names the evaluation seeds in the header."""
    behaviours = any(r["behaviour_shares"] for r in rows)
    curve = any(r.get("demos") for r in rows)
    zero_one = anchors(rows)
    header = ["task", "policy"] + (["demos", "expert labels", "env steps"] if curve else []) + ["seeds"]
    header += [f"normalised return ({split} seeds)", "mean return"] if zero_one else []
    succeeds = not zero_one or any(int(r["successes"] or 0) for r in rows)  # locomotion: no success column
    header += [f"success ({split} seeds)", "min-max", "std", "95% CI"] if succeeds else []
    header += ["updates", "CPU-min", "params", "reported"]
    header += ["behaviour shares", "behaviour entropy", "conditional entropy"] if behaviours else []
    scored = any(r.get("score") for r in rows)
    header += ["score"] if scored else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for g in groups(rows, tasks):
        successes, episodes = g.pooled
        low, high = wilson_interval(successes, episodes)
        spread = g.std is not None
        name = {EXPERT: "expert", RANDOM: "random actions"}.get(g.policy, f"`{g.policy}`")
        cells = [g.task, name] + ([g.demos or "-", g.column_mean("expert_labels", ".0f"),
                                   g.column_mean("env_steps", ".0f")] if curve else [])
        cells.append("-" if g.expert else str(len(g.rows)))
        if zero_one:
            values = normalised_returns(g, zero_one)
            cells.append("-" if values is None else f"{statistics.fmean(values):.2f}" + (
                f" ({min(values):.2f}-{max(values):.2f})" if len(values) > 1 else ""))
            cells.append(g.column_mean("mean_return", ".0f"))
        cells += [
            f"{successes}/{episodes} = {_pct(g.mean)}",
            f"{_pct(min(g.rates))}-{_pct(max(g.rates))}" if spread else "-",
            f"{100 * g.std:.1f} pts" if g.std is not None else "-", f"{_pct(low)}-{_pct(high)}",
        ] if succeeds else []
        cells += ["-"] * 4 if g.expert else [
            g.column_mean("updates", ".0f"), g.column_mean("cpu_minutes", ".2f"), g.column_mean("params", ",.0f"),
            _reported(g),
        ]
        if behaviours:
            cells += [_shares(g), _entropy(g), _entropy(g, "conditional_entropy")]
        if scored:
            cells.append(g.column_mean("score", ".3f"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curve_chart(rows: list[dict[str, str]], path: Path, tasks: Sequence[str] = (), *, title: str = "") -> Path:
    """A learning curve per task: normalised return (mean over training seeds, band min-max)
    against the demos given, one line per policy spec; the expert at 1 and random at 0."""
    from matplotlib.figure import Figure

    zero_one = anchors(rows)
    by_task: dict[str, dict[str, list[tuple[int, list[float]]]]] = {}
    for g in groups(rows, tasks):
        values = normalised_returns(g, zero_one)
        if g.expert or not g.demos or values is None:
            continue
        by_task.setdefault(g.task, {}).setdefault(g.policy, []).append((int(g.demos), values))
    fig = Figure(figsize=(4.2 * max(1, len(by_task)), 3.4))
    axes = fig.subplots(1, max(1, len(by_task)), squeeze=False)[0]
    for ax, (task, lines) in zip(axes, by_task.items()):
        for policy, points in lines.items():
            xs = [n for n, _ in points]
            ax.plot(xs, [statistics.fmean(v) for _, v in points], marker="o", label=policy)
            ax.fill_between(xs, [min(v) for _, v in points], [max(v) for _, v in points], alpha=0.2)
        ax.axhline(1.0, color="0.5", linestyle="--", linewidth=1)
        ax.axhline(0.0, color="0.7", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        counts = sorted({n for points in lines.values() for n, _ in points})
        ax.set_xticks(counts, [str(n) for n in counts])
        ax.minorticks_off()
        ax.set_xlabel("expert demos", fontsize=8)
        ax.set_title(task, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("normalised return (random 0, expert 1)", fontsize=8)
    axes[0].legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def bar_chart(rows: list[dict[str, str]], path: Path, tasks: Sequence[str] = (), *, title: str = "") -> Path:
    """Mean success rate per policy over its training seeds, one panel per task, expert in grey.
    The error bar spans the seeds' min-max, or for a single run its 95% Wilson interval."""
    from matplotlib.figure import Figure

    by_task: dict[str, list[Group]] = {}
    for g in groups(rows, tasks):
        by_task.setdefault(g.task, []).append(g)
    height = sum(0.32 * len(g) + 0.8 for g in by_task.values()) + 0.5
    fig = Figure(figsize=(7.5, max(2.5, height)))
    axes = fig.subplots(len(by_task), 1, squeeze=False,
                        gridspec_kw={"height_ratios": [len(g) for g in by_task.values()]})
    for ax, (task, group) in zip(axes[:, 0], by_task.items()):
        means = [g.mean for g in group]
        errors = [[max(0.0, m - g.interval[0]) for m, g in zip(means, group)],  # max: rounding of the mean
                  [max(0.0, g.interval[1] - m) for m, g in zip(means, group)]]
        colours = ["0.6" if g.expert else "tab:blue" for g in group]
        y = list(range(len(group)))[::-1]
        ax.barh(y, means, xerr=errors, color=colours, capsize=3, height=0.7)
        labels = [g.policy if g.expert else g.policy + (f" ({len(g.rows)} seeds)" if len(g.rows) > 1 else "")
                  for g in group]
        ax.set_yticks(y, labels, fontsize=8)
        for yi, m, g in zip(y, means, group):
            inside = g.interval[1] > 0.85  # no room right of the error bar: write on the bar
            ax.text(0.01 if inside else g.interval[1] + 0.01, yi, _pct(m), va="center",
                    fontsize=7, color="white" if inside else "black")
        ax.set_xlim(0, 1)
        ax.set_title(task, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("success rate, mean over training seeds\n"
                           "(error bar: min-max over seeds; one seed: 95% Wilson interval)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
