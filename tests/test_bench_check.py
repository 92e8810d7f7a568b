"""`imitari bench --check`: a bench's rows against committed reference intervals of its protocol."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from imitari.bench import BenchConfig, check_reference, run_bench, write_reference
from imitari.bench_check import FIELDS
from imitari.bench_table import read_csv
from imitari.cli import main
from imitari.config import ConfigError
from imitari.suites import get_suite

SMALL = {"tasks": ["builtin/reach"], "optional_tasks": [], "demos": 8, "eval_episodes": 10,
         "budget_cpu_minutes": 0.02, "train": {"batch_size": 16, "log_every": 20}}


def _rewrite(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def test_check_passes_inside_the_reference_and_fails_outside_it(tmp_path: Path, monkeypatch) -> None:
    suite = get_suite("builtin").with_overrides(**SMALL)
    cfg = BenchConfig("builtin", policies=["bc"], out=str(tmp_path / "bench"), progress=False, threads=1)
    run_bench(cfg, suite=suite)
    reference = write_reference(cfg, str(tmp_path / "reference.csv"), suite=suite)
    refs = read_csv(reference)
    assert [r["policy"] for r in refs] == ["expert", "bc"]
    assert all(float(r["low"]) <= float(r["measured"]) <= float(r["high"]) for r in refs)

    lines, failed = check_reference(cfg, str(reference), suite=suite)
    assert failed == 0 and len(lines) == 2 and all(line.startswith("ok") for line in lines)

    measured = float(refs[1]["measured"])  # move bc's interval away from what was measured
    refs[1]["low"], refs[1]["high"] = ("0.0", "0.0") if measured > 0 else ("0.5", "1.0")
    _rewrite(reference, refs)
    lines, failed = check_reference(cfg, str(reference), suite=suite)
    assert failed == 1 and lines[0].startswith("ok") and lines[1].startswith("FAIL") and "outside" in lines[1]

    # Through the CLI: the bench resumes (nothing is retrained) and the check exits 1.
    monkeypatch.setattr("imitari.bench.get_suite", lambda name: suite)
    argv = ["bench", "--suite", "builtin", "--policies", "bc", "--out", cfg.out or "", "--threads", "1",
            "--no-progress", "--check", str(reference)]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 1

    # A reference of another protocol is not applicable, and checking nothing fails too.
    other = suite.with_overrides(budget_cpu_minutes=0.5)
    lines, failed = check_reference(cfg, str(reference), suite=other)
    assert failed == 1 and lines[0].startswith("n/a") and "budget_cpu_minutes 0.02 vs 0.5" in lines[0]
    assert lines[-1].startswith("FAIL") and "no row measured under this bench's protocol" in lines[-1]

    with pytest.raises(ConfigError, match="does not exist"):
        check_reference(cfg, str(tmp_path / "missing.csv"), suite=suite)
