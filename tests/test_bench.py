"""`imitari bench`: budgeted training rows, the table files, partial and resumed runs, spec errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imitari.cli import main
from imitari.config import ConfigError
from imitari.bench import BenchConfig, parse_spec, run_bench, split_specs
from imitari.bench_table import read_rows
from imitari.data.lock import lock_out
from imitari.suites import Suite, get_suite
from imitari.learners import loop
from imitari.learners.checkpoint import load_train_state
from imitari.policies.loading import find_checkpoint

REACH, ROUTES = "builtin/reach", "builtin/two_routes"
SMALL = {  # 1.2 CPU-seconds of training per run, a checkpoint every 0.3
    "tasks": [REACH], "optional_tasks": [], "demos": 8, "eval_episodes": 10, "budget_cpu_minutes": 0.02,
    "train": {"batch_size": 16, "log_every": 20, "ckpt_every_cpu_seconds": 0.3},
}


def _suite(**changes) -> Suite:
    return get_suite("builtin").with_overrides(**{**SMALL, **changes})


def _bench(out: Path, policies: list[str], suite: Suite, **extra) -> Path:
    return run_bench(BenchConfig("builtin", policies=policies, out=str(out), progress=False, threads=1, **extra),
                     suite=suite)


def _spy(monkeypatch, name: str) -> list:
    """Record (run_dir, step, cpu_seconds) after each call of Trainer.<name>."""
    calls: list = []
    real = getattr(loop.Trainer, name)

    def spy(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        calls.append((self.run_dir, self.step, self.cpu_seconds))
        return result

    monkeypatch.setattr(loop.Trainer, name, spy)
    return calls


def test_partial_runs_merge_into_one_table(tmp_path: Path, monkeypatch) -> None:
    out, suite = tmp_path / "bench", _suite(tasks=[REACH, ROUTES])
    md = _bench(out, ["bc"], suite)
    rows = read_rows(out / "results.csv")
    assert [(r["task"], r["policy"]) for r in rows] == [(REACH, "expert"), (REACH, "bc"), (ROUTES, "expert"), (ROUTES, "bc")]
    for row in rows:
        assert row["episodes"] == "10" and row["eval_seeds"] == "1000-1009"
        assert float(row["ci_low"]) <= float(row["success_rate"]) <= float(row["ci_high"])
    for row in (rows[1], rows[3]):  # the budget stopped training; updates and CPU time are recorded
        assert int(row["updates"]) > 0 and float(row["cpu_minutes"]) >= 0.02 and int(row["params"]) > 0
    assert float(rows[0]["success_rate"]) == 1.0 and rows[0]["updates"] == ""
    routes = json.loads(rows[2]["behaviour_shares"])
    assert set(routes) == {"0", "1"} and float(rows[2]["behaviour_entropy"]) > 0.5, "the expert takes both routes"
    assert rows[0]["conditional_entropy"] == "", "reach has no behaviour labels, so no repeats"
    assert 0.0 <= float(rows[2]["conditional_entropy"]) <= 1.0, "repeats ran on two_routes"
    # a policy without a successful repeat has no completed route to count: blank, never a number out of range
    assert rows[3]["conditional_entropy"] == "" or 0.0 <= float(rows[3]["conditional_entropy"]) <= 1.0
    text = md.read_text()
    assert "| expert |" in text and "95% CI" in text and "behaviour entropy" in text and "conditional entropy" in text
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"

    trained = _spy(monkeypatch, "run")
    _bench(out, ["bc", "bc:head=gmm"], suite, tasks=["reach"])
    merged = read_rows(out / "results.csv")
    assert merged[:4] == rows and [(r["task"], r["policy"]) for r in merged[4:]] == [(REACH, "bc:head=gmm")]
    assert [run.relative_to(out / "runs") for run, _, _ in trained] == [Path("builtin-reach/bc__head=gmm/seed0")], \
        "finished rows are not redone"
    assert "`bc:head=gmm`" in md.read_text()

    with pytest.raises(ConfigError, match="another protocol"):
        _bench(out, ["bc"], suite.with_overrides(budget_cpu_minutes=0.5))



def test_a_second_bench_into_the_same_out_stops_at_once(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    with lock_out(out, what="bench"):  # another bench holds the folder
        with pytest.raises(ConfigError, match="another writer is using this bench: pid .* or pick another --out"):
            _bench(out, ["bc"], _suite())
        assert [p.name for p in out.iterdir()] == ["writer.lock"], "nothing was written while it was held"
    _bench(out, ["bc"], _suite())  # released: the bench runs
    assert [r["policy"] for r in read_rows(out / "results.csv")] == ["expert", "bc"]

KILLED_RUN = """
import json, os, signal, sys
import torch
from imitari.bench import BenchConfig, run_bench
from imitari.suites import get_suite
from imitari.learners import loop

real_save = loop.Trainer.save

def save_then_die(self):
    path = real_save(self)
    if self.run_dir.parent.name == "bc__head=gmm" and not self.finished():
        os.kill(os.getpid(), signal.SIGKILL)
    return path

if __name__ == "__main__":
    torch.set_num_threads(1)
    loop.Trainer.save = save_then_die
    suite = get_suite("builtin").with_overrides(**json.loads(sys.argv[2]))
    run_bench(BenchConfig("builtin", policies=["bc", "bc:head=gmm"], out=sys.argv[1], progress=False, threads=1),
              suite=suite)
"""


def test_killed_run_resumes_from_its_checkpoint(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "bench"
    script = tmp_path / "killed.py"
    script.write_text(KILLED_RUN)
    proc = subprocess.run([sys.executable, str(script), str(out), json.dumps(SMALL)], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    before = read_rows(out / "results.csv")
    assert [r["policy"] for r in before] == ["expert", "bc"]
    run = out / "runs" / "builtin-reach" / "bc__head=gmm" / "seed0"
    saved = load_train_state(find_checkpoint(run))
    assert saved["step"] > 0 and 0 < saved["cpu_seconds"] < 1.2

    restored, trained = _spy(monkeypatch, "restore"), _spy(monkeypatch, "run")
    _bench(out, ["bc", "bc:head=gmm"], _suite())
    assert restored == [(run, saved["step"], saved["cpu_seconds"])], "training continued from the checkpoint"
    assert [r for r, _, _ in trained] == [run]
    after = read_rows(out / "results.csv")
    assert after[:2] == before and [r["policy"] for r in after] == ["expert", "bc", "bc:head=gmm"]
    assert int(after[2]["updates"]) > saved["step"] and float(after[2]["cpu_minutes"]) >= 0.02


def test_specs_parse_like_policy_options() -> None:
    assert split_specs("bc, diffusion:down_dims=8,16,32,bc:head=gmm") == ["bc", "diffusion:down_dims=8,16,32", "bc:head=gmm"]
    spec = parse_spec("diffusion:down_dims=8,16:objective=flow")
    assert spec.label == "diffusion:down_dims=8,16:objective=flow" and spec.name == "diffusion"
    assert spec.config.down_dims == (8, 16) and spec.config.objective == "flow"


@pytest.mark.parametrize("spec, message", [
    ("bc:haed=gmm", "did you mean 'head'"),
    ("bcc", "did you mean 'bc'"),
    ("bc:head", "not key=value"),
    ("bc:head=gmm:head=mse", "given twice"),
    ("bc:hidden=wide", "cannot read 'wide'"),
])
def test_bad_specs_fail_before_any_work(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        _bench(tmp_path / "bench", ["bc", spec], _suite())
    assert spec in str(error.value) and not (tmp_path / "bench").exists()


def test_cli_reports_bad_input_in_one_line(tmp_path: Path, capsys) -> None:
    assert main(["bench", "--suite", "builtin", "--policies", "bc,bc:haed=gmm", "--out", str(tmp_path / "b")]) == 2
    assert "did you mean 'head'" in capsys.readouterr().err
    assert main(["bench", "--suite", "buitin", "--out", str(tmp_path / "b")]) == 2
    assert "did you mean 'builtin'" in capsys.readouterr().err
    assert main(["bench", "--suite", "metaworld-core", "--tasks", "shelf", "--out", str(tmp_path / "b")]) == 2
    assert "did you mean 'shelf-place'" in capsys.readouterr().err
    assert main(["bench", "--suite", "builtin", "--seeds", "0,1-x", "--out", str(tmp_path / "b")]) == 2
    assert "cannot read '1-x'" in capsys.readouterr().err
    assert main(["bench", "--suite", "builtin", "--seeds", "0,0-1", "--out", str(tmp_path / "b")]) == 2
    assert "seeds given twice: [0]" in capsys.readouterr().err
    assert main(["bench", "--suite", "builtin", "--split", "valid", "--out", str(tmp_path / "b")]) == 2
    assert "did you mean 'validation'" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


@pytest.mark.metaworld
def test_metaworld_core_experts_solve_seed_0() -> None:
    pytest.importorskip("metaworld")
    from imitari.envs.experts import expert_policy
    from imitari.eval.rollout import evaluate

    for task in get_suite("metaworld-core").tasks:
        results, _ = evaluate(expert_policy(task), task, seeds=[0], num_envs=1, workers=1, progress=False)
        assert results[0].success, task


TINY = {"budget_cpu_minutes": 0.01, "train": {**SMALL["train"], "ckpt_every_cpu_seconds": 0.2}}
"""0.6 CPU-seconds of training per run: these tests count runs and files, not success."""


def test_training_seeds_each_train_a_run_and_the_table_shows_their_spread(tmp_path: Path, monkeypatch) -> None:
    out, suite = tmp_path / "bench", _suite(**TINY)
    md = _bench(out, ["bc"], suite, train_seeds=[0, 1])
    rows = read_rows(out / "results.csv")
    assert [(r["policy"], r["train_seed"]) for r in rows] == [("expert", ""), ("bc", "0"), ("bc", "1")]
    for seed, row in zip((0, 1), rows[1:]):
        run = out / "runs" / "builtin-reach" / "bc" / f"seed{seed}"
        assert json.loads((run / "config.json").read_text())["seed"] == seed
        assert row["reported_from"] == "latest" and row["reported_step"] == row["updates"], "no periodic eval: latest"
    rates = [float(r["success_rate"]) for r in rows[1:]]
    successes = sum(int(r["successes"]) for r in rows[1:])
    line = next(line for line in md.read_text().splitlines() if "`bc`" in line)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[2:6] == ["2", f"{successes}/20 = {100 * sum(rates) / 2:.0f}%",
                          f"{100 * min(rates):.0f}%-{100 * max(rates):.0f}%",
                          f"{100 * abs(rates[0] - rates[1]) / 2 ** 0.5:.1f} pts"]

    trained = _spy(monkeypatch, "run")
    _bench(out, ["bc"], suite, train_seeds=[0, 1, 2])
    assert [run.name for run, _, _ in trained] == ["seed2"], "finished (task, policy, seed) rows are not redone"
    assert [r["train_seed"] for r in read_rows(out / "results.csv")] == ["", "0", "1", "2"]


def test_old_tables_and_run_folders_read_as_seed_0(tmp_path: Path) -> None:
    import csv

    from imitari.bench import run_dir
    from imitari.bench_table import FIELDS, append_row, bar_chart, markdown

    old = [f for f in FIELDS if f not in ("train_seed", "reported_step", "reported_from")]
    path = tmp_path / "results.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=old)
        writer.writeheader()
        for policy in ("expert", "bc"):
            writer.writerow({**dict.fromkeys(old, ""), "task": REACH, "policy": policy, "episodes": 10,
                             "successes": 7, "success_rate": 0.7, "ci_low": 0.4, "ci_high": 0.9, "updates": 5,
                             "cpu_minutes": 0.1, "params": 100})
    assert [r["train_seed"] for r in read_rows(path)] == ["", "0"]
    assert "| builtin/reach | `bc` | 1 | 7/10 = 70% | - | - |" in markdown(read_rows(path))
    append_row(path, {**read_rows(path)[1], "train_seed": 1, "successes": 9, "success_rate": 0.9})
    with path.open(newline="") as f:
        assert next(csv.reader(f)) == FIELDS, "the old CSV was rewritten with today's columns"
    assert [r["train_seed"] for r in read_rows(path)] == ["", "0", "1"]
    assert "| builtin/reach | `bc` | 2 | 16/20 = 80% | 70%-90% | 14.1 pts |" in markdown(read_rows(path))
    equal = [{**r, "successes": "1", "success_rate": "0.1", "train_seed": str(k)}  # float mean > their max
             for k, r in enumerate(read_rows(path)[1:] * 2)][:3]
    assert bar_chart(read_rows(path)[:1] + equal, tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"

    legacy = tmp_path / "runs" / "builtin-reach" / "bc"
    assert run_dir(tmp_path, REACH, "bc", 0) == legacy / "seed0"
    (legacy / "checkpoints" / "step_00000005").mkdir(parents=True)
    (legacy / "checkpoints" / "step_00000005" / "model.safetensors").write_bytes(b"")
    assert run_dir(tmp_path, REACH, "bc", 0) == legacy, "a bench made before seeds keeps seed 0's run"
    assert run_dir(tmp_path, REACH, "bc", 1) == legacy / "seed1"


def test_validation_split_has_its_own_table(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ConfigError, match="are validation seeds"):
        _suite(eval_seed_start=1995)
    out, suite = tmp_path / "bench", _suite(**TINY)
    md = _bench(out, ["bc"], suite, split="validation")
    assert md.name == "results_validation.md" and not (out / "results.csv").exists()
    rows = read_rows(out / "results_validation.csv")
    assert [r["eval_seeds"] for r in rows] == ["2000-2009"] * 2
    assert "validation seeds" in md.read_text().splitlines()[0] and "success (validation seeds)" in md.read_text()
    assert json.loads((out / "bench.json").read_text())["splits"] == {"validation": "2000-2009"}

    trained = _spy(monkeypatch, "run")
    md = _bench(out, ["bc"], suite)  # the test split reuses the trained run, into its own table
    assert trained == [], "a run that spent its budget is evaluated, not trained again"
    assert md.name == "results.md" and [r["eval_seeds"] for r in read_rows(out / "results.csv")] == ["1000-1009"] * 2
    assert read_rows(out / "results_validation.csv") == rows
    assert json.loads((out / "bench.json").read_text())["splits"] == {"validation": "2000-2009", "test": "1000-1009"}
    assert "success (test seeds)" in md.read_text()
    with pytest.raises(ConfigError, match="did you mean 'validation'"):
        BenchConfig("builtin", split="valdation")


def test_bench_reports_the_best_checkpoint(tmp_path: Path, monkeypatch) -> None:
    from imitari.policies import loading

    loaded: list[Path] = []
    real = loading.load_policy
    monkeypatch.setattr(loading, "load_policy", lambda path, **kw: loaded.append(Path(path)) or real(path, **kw))
    periodic = {**SMALL["train"], "eval_every_cpu_seconds": 0.3, "eval_episodes": 4}
    out = tmp_path / "bench"
    _bench(out, ["bc"], _suite(train=periodic))
    run = out / "runs" / "builtin-reach" / "bc" / "seed0"
    assert json.loads((run / "config.json").read_text())["eval_every_cpu_seconds"] == 0.3, "suite.train used"
    selection = json.loads((run / "best" / "selection.json").read_text())
    assert len(selection["evaluations"]) >= 2
    best = selection["best"]["step"]
    assert loaded == [run / "best" / "checkpoints" / f"step_{best:08d}"]
    row = read_rows(out / "results.csv")[1]
    assert (row["reported_from"], int(row["reported_step"])) == ("best", best) and int(row["updates"]) >= best


def test_a_learning_curve_suite_trains_each_count_and_learner_and_normalises_returns(tmp_path: Path,
                                                                                     monkeypatch) -> None:
    from imitari.data.store import Dataset

    out = tmp_path / "curve"
    suite = _suite(demos=4, demo_counts=(2, 4), normalised=True, eval_episodes=6)
    specs = ["bc", "bc:learner=dagger:rounds=1:episodes_per_round=2"]
    md = _bench(out, specs, suite)
    rows = read_rows(out / "results.csv")
    assert [(r["policy"], r["demos"]) for r in rows] == [("expert", ""), ("random", ""), ("bc", "2"), (specs[1], "2"),
                                                         ("bc", "4"), (specs[1], "4")]
    ds = Dataset.open(out / "data" / "builtin-reach")
    assert sorted(ds.episode_info[i]["seed"] for i in ds.filter_keys["first_2"]) == [0, 1]
    labels = {(r["policy"], r["demos"]): int(r["expert_labels"]) for r in rows[2:]}
    demo_steps = sum(ds.episode_info[i]["length"] for i in ds.filter_keys["first_2"])
    assert labels["bc", "2"] == demo_steps < labels[specs[1], "2"], "DAgger's rounds add labels to the demos'"
    assert labels["bc", "2"] < labels["bc", "4"]
    played = {(r["policy"], r["demos"]): int(r["env_steps"]) for r in rows[2:]}
    assert played["bc", "2"] == 0 and played[specs[1], "2"] == labels[specs[1], "2"] - demo_steps > 0
    assert (out / "runs" / "builtin-reach" / "bc" / "n2" / "seed0" / "rounds.json").exists() is False
    assert (out / "runs" / "builtin-reach" / "bc__learner=dagger__rounds=1__episodes_per_round=2" / "n4" / "seed0"
            / "rounds.json").is_file()
    text = md.read_text()
    assert "normalised return (test seeds)" in text and "expert labels" in text
    expert_line = next(line for line in text.splitlines() if "| expert |" in line)
    random_line = next(line for line in text.splitlines() if "| random actions |" in line)
    assert "| 1.00 |" in expert_line and "| 0.00 |" in random_line
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"
    trained = _spy(monkeypatch, "run")
    _bench(out, specs, suite)
    assert trained == [] and read_rows(out / "results.csv") == rows, "finished rows are not redone"


def test_learning_curve_counts_must_rise_to_the_demos() -> None:
    with pytest.raises(ConfigError, match="demo_counts must increase"):
        _suite(demos=4, demo_counts=(2, 3))
    assert _suite(demos=4, demo_counts=(2, 4)).with_overrides(demos=3).demo_counts == (2, 3)
