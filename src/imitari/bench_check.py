"""Reference-score regression for `imitari bench`: committed intervals, and a check against them.

A reference CSV holds, per (task, policy, training seed) of one suite protocol, the interval a
measured metric (`success_rate` by default; any numeric column of the results CSV, such as a
score) must fall in. `write_reference` derives it from a bench's own rows: the Wilson interval
of the measured success at 99% on half the episodes, widened by one episode (1/n) at each end,
so a second measurement of the same true rate (itself a draw of as many episodes, on a grid of
1/n) falls inside it nearly always, while a real regression (an expert that broke, a policy
change that halves success) falls outside. (Without the widening, 49/50 gave [0.76, 0.999] and
a rerun's 50/50 failed.)

`check` compares a bench's results with the reference rows of the same protocol (suite, demos,
budget, evaluation seeds, training settings: `bench.json`) and of the tasks and policies it ran;
it returns one line per such row (ok, outside, or not measured) and how many failed. Rows of
another protocol are listed as not applicable, never compared; if no row applies, that fails.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imitari.bench_table import append_csv, read_csv, row_key
from imitari.config import ConfigError
from imitari.eval.metrics import wilson_interval

FIELDS = ["task", "policy", "train_seed", "metric", "low", "high", "measured", "protocol", "demos"]
"""Reference columns; `protocol` is the bench's protocol as JSON (`bench._protocol`); `demos`
the demo count of a learning curve's row (blank elsewhere, and optional: older files lack it)."""
CONFIDENCE = 0.99


def reference_rows(rows: Sequence[dict[str, str]], protocol: dict[str, Any]) -> list[dict[str, Any]]:
    """Reference rows (success_rate intervals) for a bench's measured rows."""
    out = []
    for row in rows:
        n, successes = int(row["episodes"]), int(row["successes"])
        low, high = wilson_interval(successes / 2, n / 2, CONFIDENCE)
        low, high = max(0.0, low - 1 / n), min(1.0, high + 1 / n)  # one episode either way: the rate's resolution
        out.append({"task": row["task"], "policy": row["policy"], "train_seed": row.get("train_seed", ""),
                    "metric": "success_rate", "low": round(low, 4), "high": round(high, 4),
                    "measured": row["success_rate"], "protocol": json.dumps(protocol, sort_keys=True),
                    "demos": row.get("demos", "")})
    return out


def write_reference(path: Path, rows: Sequence[dict[str, str]], protocol: dict[str, Any]) -> Path:
    """Write the reference CSV of these rows (replacing `path`, atomically)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    for ref in reference_rows(rows, protocol):
        append_csv(tmp, ref, FIELDS)
    tmp.replace(path)
    return path


def _protocol_of(ref: dict[str, str], where: str) -> dict[str, Any]:
    try:
        return json.loads(ref["protocol"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{where}: unreadable protocol column ({exc})") from None


def check(reference: Path, rows: Sequence[dict[str, str]], protocol: dict[str, Any], *,
          tasks: Sequence[str], policies: Sequence[str]) -> tuple[list[str], int]:
    """(one line per reference row, how many failed): each row of this protocol and of these
    tasks and policies is ok when its measured metric lies in [low, high]; a row not measured
    fails too. ConfigError for a missing or malformed reference file."""
    if not reference.is_file():
        raise ConfigError(f"reference file {reference} does not exist")
    refs = read_csv(reference)
    if not refs or any(col not in refs[0] for col in FIELDS[:-1]):
        raise ConfigError(f"{reference}: needs a header with the columns {', '.join(FIELDS[:-1])} and at least one row")
    measured = {row_key(r): r for r in rows}
    wanted = json.loads(json.dumps(protocol, sort_keys=True))
    lines, failed = [], 0
    for i, ref in enumerate(refs, start=2):
        key = row_key(ref)
        label = f"{ref['task']} / {ref['policy']}" + (f" / seed {ref['train_seed']}" if ref["train_seed"] else "")
        if key[0] not in tasks or key[1] not in policies:
            continue
        theirs = _protocol_of(ref, f"{reference} line {i}")
        if theirs != wanted:
            diff = ", ".join(f"{k} {theirs.get(k)} vs {wanted.get(k)}" for k in sorted(set(theirs) | set(wanted))
                             if theirs.get(k) != wanted.get(k))
            lines.append(f"n/a      {label}: reference measured under another protocol ({diff})")
            continue
        row = measured.get(key)
        metric, low, high = ref["metric"], float(ref["low"]), float(ref["high"])
        if row is None or row.get(metric, "") == "":
            failed += 1
            lines.append(f"FAIL     {label}: {metric} not measured (reference [{low:.3f}, {high:.3f}])")
            continue
        value = float(row[metric])
        ok = low <= value <= high
        failed += not ok
        verdict = "ok      " if ok else "FAIL    "
        where = "inside" if ok else "outside"
        lines.append(f"{verdict} {label}: {metric} {value:.3f} {where} reference [{low:.3f}, {high:.3f}]")
    if not lines:
        raise ConfigError(f"{reference}: no row for the tasks and policies of this bench")
    if all(line.startswith("n/a") for line in lines):  # nothing was compared: that is no pass
        failed += 1
        lines.append(f"FAIL     {reference} has no row measured under this bench's protocol")
    return lines, failed
