"""Procedure Cloning's claim as a plot: success on unseen mazes against the number K of training layouts.

Reads the results CSV of `imitari bench --suite gridmaze` (tasks builtin/gridmaze-kK), and
writes `success_vs_k.png` (success per policy against K; error bars: one run's 95% Wilson interval, or the min-max
over training seeds)
and `success_vs_k.md` (the same as a table) beside it:

    python benchmarks/gridmaze_vs_layouts.py results/gridmaze/results.csv
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from imitari.bench_table import groups, read_rows

_K = re.compile(r"gridmaze-k(\d+)$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="results CSV of a gridmaze bench")
    args = parser.parse_args()
    rows = [r for r in read_rows(args.csv) if _K.search(r["task"])]
    if not rows:
        raise SystemExit(f"{args.csv}: no builtin/gridmaze-kK rows")
    by_policy: dict[str, dict[int, tuple[float, float, float, str, str]]] = {}
    for group in groups(rows):
        low, high = group.interval
        successes, n = group.pooled
        k = int(_K.search(group.task).group(1))  # type: ignore[union-attr]
        spread = "CI" if len(group.rows) == 1 else f"{len(group.rows)} seeds, min-max"
        by_policy.setdefault(group.policy, {})[k] = (group.mean, low, high, f"{successes}/{n}", spread)
    ks = sorted({k for points in by_policy.values() for k in points})
    lines = ["| policy | " + " | ".join(f"K = {k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
    for policy, points in by_policy.items():
        cells = [f"{points[k][0]:.0%} ({points[k][3]}, {points[k][4]} {points[k][1]:.0%}-{points[k][2]:.0%})" if k in points
                 else "" for k in ks]
        lines.append(f"| `{policy}` | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    (args.csv.parent / "success_vs_k.md").write_text(table + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for policy, points in by_policy.items():
        xs = sorted(points)
        mean = [points[k][0] for k in xs]
        err = [[points[k][0] - points[k][1] for k in xs], [points[k][2] - points[k][0] for k in xs]]
        ax.errorbar(xs, mean, yerr=err, marker="o", capsize=3, label=policy)
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("training layouts K (100 demos in all)")
    ax.set_ylabel("success on unseen layouts")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("gridmaze: Procedure Cloning vs BC")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.csv.parent / "success_vs_k.png", dpi=120)
    print(table)


if __name__ == "__main__":
    main()
