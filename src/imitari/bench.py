"""`imitari bench`: train every policy on every task of a suite under one CPU budget, and table it.

For each task of the suite (`imitari.suites`): collect the scripted demonstrations once
into `<out>/data/`, evaluate the expert on the evaluation seeds, then for each policy spec and
each training seed train a run in `<out>/runs/TASK/SPEC/seed<k>/` that stops at the suite's
budget of process CPU time, and evaluate the checkpoint it reports (its best by validation
success when it kept one, else its latest) on the same seeds, disjoint from the demos. Each
measured row is appended to the split's CSV at once (`results.csv` for the test seeds,
`results_validation.csv` for the validation seeds, so numbers used to choose and numbers
reported never share a table); its markdown and chart are redrawn from the whole CSV.

Everything resumes: run the same command again and finished (task, policy, seed) rows are
skipped, collection completes the datasets, and an interrupted training run continues from
its last checkpoint with the CPU seconds it had spent. `<out>/bench.json` pins the protocol
(demos, budget, evaluation seeds, training settings), so rows measured under different
protocols never share a table, and records the seeds of each split evaluated so far.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imitari.config import ConfigError
from imitari.data.files import write_json_atomic
from imitari.data.lock import lock_out
from imitari import bench_table
from imitari.eval.metrics import EvalSummary, format_summary, summarize
from imitari.suites import Suite, check_split, get_suite, select_tasks
from imitari.policies.base import PolicyConfig

STEP_CAP = 1_000_000_000
"""`steps` of a budgeted run: a cap no run reaches, so the CPU budget alone ends training."""

_SPEC_START = re.compile(r",(?=\s*[A-Za-z_]\w*\s*(?::|,|$))")


@dataclass(frozen=True)
class PolicySpec:
    """A policy, its config fields and optionally the learner that trains it, written
    `NAME[:key=value...]` (`learner=dagger` and that learner's options among the keys); the
    label is that string."""

    label: str
    name: str
    fields: dict[str, str]
    config: PolicyConfig
    learner: str = "offline"
    learner_config: dict[str, str] = field(default_factory=dict)
    """The learner's options given in the spec (`rounds=3`), read as `--learner_config.rounds 3`."""


def split_specs(text: str) -> list[str]:
    """Split a comma-separated list of specs; a comma followed by a policy name starts a new one,
    so list values stay whole (`bc,diffusion:down_dims=32,64,128` is two specs)."""
    return [part.strip() for part in _SPEC_START.split(text) if part.strip()]


def parse_spec(spec: str) -> PolicySpec:
    """Parse `NAME:key=value:...`; values read as `--policy.key value` does; `learner=NAME` picks
    the learner, and keys naming one of its options go to its `learner_config`. ConfigError
    (naming the closest valid policy, learner or key) for an unknown one or a bad value."""
    from dataclasses import fields as dataclass_fields

    from imitari.learners.loop import resolve_config
    from imitari.learners.registry import get_learner

    label = spec.strip()
    name, *parts = label.split(":")
    given: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or key == "name":
            raise ConfigError(f"policy spec '{label}': '{part}' is not key=value (e.g. diffusion:denoiser=mlp)")
        if key in given:
            raise ConfigError(f"policy spec '{label}': '{key}' is given twice")
        given[key] = value.strip()
    learner = given.pop("learner", "offline")
    try:
        options = get_learner(learner).Options
        option_names = {f.name for f in dataclass_fields(options)} if options is not None else set()
        learner_config = {k: v for k, v in given.items() if k in option_names}
        fields = {k: v for k, v in given.items() if k not in option_names}
        _, config = resolve_config({"policy": {"name": name.strip(), **fields}, "learner": learner,
                                    "learner_config": learner_config, **({} if learner == "offline" else {"data": "-"})})
    except ConfigError as exc:
        raise ConfigError(f"policy spec '{label}': {exc}") from exc
    return PolicySpec(label=label, name=name.strip(), fields=fields, config=config, learner=learner,
                      learner_config=learner_config)


def parse_seeds(text: str) -> list[int]:
    """Training seeds from `0,1,2` or a range `0-4` (both ends included), or a mix of them."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        first, sep, last = part.partition("-")
        if not (first.isdigit() and (not sep or last.isdigit())):
            raise ConfigError(f"training seeds: cannot read '{part}' in '{text}' (e.g. 0,1,2 or 0-4)")
        seeds += list(range(int(first), int(last) + 1)) if sep else [int(first)]
    return seeds


def resolve_specs(suite: Suite, policies: list[str] | None) -> list[PolicySpec]:
    """The given specs (any error raised), or the suite's defaults minus those unavailable here."""
    if policies is not None:
        specs = [parse_spec(p) for p in policies]
    else:
        specs = []
        for default in suite.policies:
            try:
                specs.append(parse_spec(default))
            except ConfigError as exc:
                print(f"[bench] skipping default policy {default}: {exc}", flush=True)
    labels = [s.label for s in specs]
    if duplicated := sorted({label for label in labels if labels.count(label) > 1}):
        raise ConfigError(f"policy specs given twice: {', '.join(duplicated)}")
    if not specs:
        raise ConfigError("no policies to run")
    return specs


@dataclass
class BenchConfig:
    """One `imitari bench` call: a suite, optionally narrowed or with its parameters changed."""

    suite: str
    policies: list[str] | None = None
    """Policy specs; None: the suite's defaults that are registered."""
    tasks: list[str] | None = None
    """Task names (full or after '/'); None: all the suite's tasks."""
    budget_cpu_minutes: float | None = None
    """None: the suite's budget."""
    demos: int | None = None
    eval_episodes: int | None = None
    out: str | None = None
    """Output folder; default runs/bench-<suite>."""
    device: str = "cpu"
    """Training and evaluation device; the budget is CPU time of the training process either way."""
    threads: int | None = None
    """torch CPU threads for training; None leaves torch's default (all cores)."""
    workers: int | None = None
    """Env processes for collection and evaluation; None: the suite's choice."""
    train_seeds: list[int] | None = None
    """`TrainConfig.seed` of each run; every (task, policy) is trained once per seed. None: [0]."""
    split: str = "test"
    """Evaluation seeds: "test" (the suite's reported seeds, into results.csv) or "validation"
    (the validation range, into results_validation.csv)."""
    progress: bool = True

    def __post_init__(self) -> None:
        check_split(self.split)
        seeds = self.seeds()
        if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
            raise ConfigError(f"training seeds must be integers >= 0 (got {seeds})")
        if len(set(seeds)) < len(seeds):
            raise ConfigError(f"training seeds given twice: {sorted({s for s in seeds if seeds.count(s) > 1})}")

    def seeds(self) -> list[int]:
        """The training seeds, [0] by default."""
        return [0] if self.train_seeds is None else list(self.train_seeds)


def _slug(text: str) -> str:
    return text.replace("/", "-").replace(":", "__").replace(" ", "")


def _protocol(suite: Suite) -> dict[str, Any]:
    return {
        "suite": suite.name, "demos": suite.demos, "demo_seed_start": suite.demo_seed_start,
        "eval_episodes": suite.eval_episodes, "eval_seed_start": suite.eval_seed_start,
        "budget_cpu_minutes": suite.budget_cpu_minutes, "train": suite.train,
    }


def _check_protocol(out: Path, suite: Suite, split: str, seeds: list[int]) -> None:
    """Write `bench.json` on the first call; refuse a later call with another protocol. Its
    `splits` entry records the evaluation seeds of each split evaluated so far (a folder made
    before splits existed holds only test results)."""
    path = out / "bench.json"
    protocol = json.loads(json.dumps(_protocol(suite)))
    saved = json.loads(path.read_text()) if path.exists() else {**protocol, "splits": {}}
    changed = [f"{k}: {saved.get(k)} there, {v} now" for k, v in protocol.items() if saved.get(k) != v]
    if changed:
        raise ConfigError(f"{out} holds a bench with another protocol ({'; '.join(changed)}); pick another --out")
    before = json.dumps(saved) if path.exists() else None
    splits = saved.setdefault("splits", {})
    if "test" not in splits and (out / "results.csv").exists():
        splits["test"] = _seed_range(suite.eval_seeds("test"))
    splits[split] = _seed_range(seeds)
    if json.dumps(saved) != before:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, saved)


def _seed_range(seeds: list[int]) -> str:
    return f"{seeds[0]}-{seeds[-1]}"


def results_csv(out: Path, split: str) -> Path:
    """The CSV of a split's rows: results.csv (test) or results_validation.csv."""
    return out / ("results.csv" if split == "test" else f"results_{split}.csv")


def run_dir(out: Path, task: str, label: str, seed: int, demos: int | None = None) -> Path:
    """`<out>/runs/TASK/SPEC/seed<k>/` (`.../SPEC/n<N>/seed<k>/` on N demos of a learning curve);
    seed 0 of a bench made before training seeds existed keeps its run at `<out>/runs/TASK/SPEC/`
    when a complete checkpoint is there."""
    from imitari.policies.loading import CheckpointError, find_checkpoint

    base = out / "runs" / _slug(task) / _slug(label)
    if demos is not None:
        return base / f"n{demos}" / f"seed{seed}"
    if seed == 0 and (base / "checkpoints").is_dir():
        try:
            find_checkpoint(base)
            return base
        except CheckpointError:
            pass
    return base / f"seed{seed}"


def first_demos(n: int | None) -> str:
    """The filter key of a learning curve's first n demos ("train": all demos, for None)."""
    return "train" if n is None else f"first_{n}"


def _mark_counts(data: Path, suite: Suite) -> None:
    """Give the bench's demonstrations a filter key `first_N` per demo count: the episodes of the
    first N demo seeds (collection appends in completion order, so ids are not seeds)."""
    from imitari.data.store import Dataset

    with Dataset.open(data, writer=True) as ds:
        seeds = [info.get("seed") for info in ds.episode_info]
        keys = {first_demos(n): [i for i, s in enumerate(seeds) if s is not None and s - suite.demo_seed_start < n]
                for n in suite.demo_counts}
        if any(ds.filter_keys.get(k) != v for k, v in keys.items()):
            ds.set_filter_keys({**ds.filter_keys, **keys})


def _reported(run: Path, device: str) -> tuple[Any, dict[str, Any]]:
    """The policy of the checkpoint the run reports (`reported_checkpoint`: best, else latest)
    and the CSV columns saying which one it was."""
    from imitari.learners.checkpoint import BEST, reported_checkpoint
    from imitari.policies.loading import load_policy

    ckpt = reported_checkpoint(run)
    source = "best" if ckpt.parent.parent == run / BEST else "latest"
    return load_policy(ckpt, device=device), {
        "reported_step": int(ckpt.name.removeprefix("step_")), "reported_from": source,
    }


def _train(spec: PolicySpec, suite: Suite, data: Path, run: Path, cfg: BenchConfig, seed: int,
           demos: int | None = None) -> tuple[int, float]:
    """Train (or resume) one run to the budget with the suite's training settings, this seed and
    the spec's learner, on the first `demos` demos (all for None); returns (updates, CPU seconds)
    over all calls (of every round, for an interactive learner). A run that already spent its
    budget (trained for the other split) is left as it is."""
    from imitari.learners.loop import resume, train
    from imitari.learners.registry import get_learner
    from imitari.policies.loading import CheckpointError, find_checkpoint

    runtime = {"device": cfg.device, "threads": cfg.threads, "progress": cfg.progress}
    if get_learner(spec.learner).interactive and (run / "config.json").is_file():
        if not (run / "checkpoints").is_dir():  # its rounds resume where they stopped
            print(f"[bench] resuming the rounds of {run}", flush=True)
            resume(run, runtime)
        return spent_in(run)
    try:
        latest = find_checkpoint(run)
    except CheckpointError:
        if run.exists():  # killed before its first checkpoint was complete
            shutil.rmtree(run)
        train({
            **suite.train, **runtime, "data": str(data), "out": str(run), "seed": seed,
            "policy": {"name": spec.name, **spec.fields}, "learner": spec.learner,
            "learner_config": spec.learner_config, "train_filter": first_demos(demos),
            "steps": STEP_CAP, "ckpt_every": STEP_CAP, "budget_cpu_minutes": suite.budget_cpu_minutes,
        })
    else:
        if _spent(latest) < 60 * suite.budget_cpu_minutes:
            print(f"[bench] resuming {run} from its last checkpoint", flush=True)
            resume(run, runtime)
    return spent_in(run)


def spent_in(run: Path) -> tuple[int, float]:
    """(updates, CPU seconds) of a finished run: its last checkpoint's, summed over the rounds of
    an interactive learner (`<run>/rounds/round_<i>/`)."""
    from imitari.learners.checkpoint import load_train_state
    from imitari.policies.loading import find_checkpoint

    parts = sorted((run / "rounds").glob("round_*")) or [run]
    states = [load_train_state(find_checkpoint(part)) for part in parts]
    return sum(int(s["step"]) for s in states), sum(float(s.get("cpu_seconds", 0.0)) for s in states)


def _spent(ckpt: Path) -> float:
    """CPU seconds a checkpoint's run had spent; 0 if its training state is unreadable (resuming
    then falls back to the newest intact checkpoint)."""
    from imitari.learners.checkpoint import load_train_state
    from imitari.policies.loading import CheckpointError

    try:
        return float(load_train_state(ckpt).get("cpu_seconds", 0.0))
    except CheckpointError:
        return 0.0


def _workers(suite: Suite, cfg: BenchConfig) -> int | None:
    return cfg.workers if cfg.workers is not None else suite.workers


def _evaluate(policy: Any, task: str, seeds: list[int], suite: Suite, cfg: BenchConfig) -> tuple[EvalSummary, Any]:
    """The summary of `policy` on `seeds`, and D3IL's conditional behaviour entropy on tasks
    with behaviour labels (`repeated_entropy`: REPEATS more rollouts from each of the first
    REPEAT_STARTS seeds; None elsewhere)."""
    from imitari.eval.rollout import evaluate
    from imitari.pipeline import REPEAT_STARTS, REPEATS, repeated_entropy

    num_envs, workers = min(len(seeds), 50), _workers(suite, cfg)
    results, _ = evaluate(policy, task, seeds=seeds, num_envs=num_envs, workers=workers, progress=cfg.progress)
    conditional = repeated_entropy(policy, task, results, seeds=seeds[:REPEAT_STARTS], repeats=REPEATS,
                                   num_envs=min(REPEAT_STARTS, num_envs), workers=workers)
    return summarize(results), conditional


def _device(name: str) -> tuple[str, str]:
    """('cpu' | 'cuda', the name recorded in the table) for a device option."""
    import torch

    if name not in ("cpu", "cuda", "auto"):
        raise ConfigError(f"device must be 'cpu', 'cuda' or 'auto' (got {name!r})")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name
    if device == "cpu":
        return device, device
    if not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but torch sees no GPU")
    return device, torch.cuda.get_device_name()


def run_bench(cfg: BenchConfig, *, suite: Suite | None = None) -> Path:
    """Run (or complete) the bench; returns the markdown table's path. `suite` replaces the
    named suite's definition (the Python API's way to shrink one for a test)."""
    from imitari.envs.collect import collect
    from imitari.envs.experts import expert_policy, random_policy

    suite = (suite or get_suite(cfg.suite)).with_overrides(
        budget_cpu_minutes=cfg.budget_cpu_minutes, demos=cfg.demos, eval_episodes=cfg.eval_episodes
    )
    device, device_name = _device(cfg.device)
    specs = resolve_specs(suite, cfg.policies)
    tasks = select_tasks(suite, cfg.tasks)
    train_seeds = cfg.seeds()
    out = Path(cfg.out or f"runs/bench-{suite.name}")
    with lock_out(out, what="bench"):  # a second bench into this --out would retrain and re-append its runs
        seeds = suite.eval_seeds(cfg.split)
        _check_protocol(out, suite, cfg.split, seeds)
        csv_path = results_csv(out, cfg.split)
        done = {bench_table.row_key(r) for r in bench_table.read_rows(csv_path)}
        print(f"[bench] suite {suite.name}: {len(tasks)} tasks x {len(specs)} policies x {len(train_seeds)} training "
              f"seeds, {suite.demos} demos per task, {suite.budget_cpu_minutes:g} CPU-minutes per run, {len(seeds)} "
              f"{cfg.split} episodes (seeds {_seed_range(seeds)}); output {csv_path}", flush=True)
        for task in tasks:
            data = out / "data" / _slug(task)
            print(f"[bench] {task}: demonstrations -> {data}", flush=True)
            print(collect(task, data, episodes=suite.demos, seed_start=suite.demo_seed_start,
                          workers=_workers(suite, cfg), progress=cfg.progress))
            if suite.demo_counts:
                _mark_counts(data, suite)
            anchors = [(bench_table.EXPERT, expert_policy)] + ([(bench_table.RANDOM, random_policy)] if suite.normalised else [])
            for label, make in anchors:
                if (task, label, "", "") not in done:
                    summary, conditional = _evaluate(make(task), task, seeds, suite, cfg)
                    bench_table.append_row(csv_path, bench_table.summary_row(task, label, summary, seeds=seeds,
                                                                             conditional_entropy=conditional))
                    print(f"[bench] {task} / {label}: {format_summary(summary)}", flush=True)
            for demos in suite.counts():
                for spec in specs:
                    for seed in train_seeds:
                        _bench_run(spec, suite, cfg, task, data, seed, demos, done, csv_path, seeds, device, device_name)
        return write_outputs(out, suite, cfg.split)


def _bench_run(spec: PolicySpec, suite: Suite, cfg: BenchConfig, task: str, data: Path, seed: int,
               demos: int | None, done: set[tuple[str, ...]], csv_path: Path, seeds: list[int], device: str,
               device_name: str) -> None:
    """Train, evaluate and append the row of one (task, spec, training seed, demo count)."""
    on = "" if demos is None else f" / {demos} demos"
    name = f"{task} / {spec.label}{on} / seed {seed}"
    if (task, spec.label, str(seed), "" if demos is None else str(demos)) in done:
        print(f"[bench] {name}: already in {csv_path}, skipped", flush=True)
        return
    out = csv_path.parent
    run = run_dir(out, task, spec.label, seed, demos)
    print(f"[bench] {name}: training for {suite.budget_cpu_minutes:g} CPU-minutes into {run}", flush=True)
    start = time.perf_counter()
    updates, cpu_seconds = _train(spec, suite, data, run, cfg, seed, demos)
    wall = time.perf_counter() - start
    policy, reported = _reported(run, device)
    summary, conditional = _evaluate(policy, task, seeds, suite, cfg)
    curve = {} if demos is None else _curve(run, data, demos)
    bench_table.append_row(csv_path, bench_table.summary_row(
        task, spec.label, summary, seeds=seeds, conditional_entropy=conditional, train_seed=seed, updates=updates,
        cpu_minutes=round(cpu_seconds / 60, 4), budget_cpu_minutes=suite.budget_cpu_minutes,
        params=policy.num_parameters(), device=device_name, **reported, **curve,
    ))
    print(f"[bench] {name}: {updates} updates in {cpu_seconds / 60:.2f} CPU-minutes ({wall / 60:.1f} min "
          f"wall in this call); {reported['reported_from']} checkpoint (step {reported['reported_step']}): "
          f"{format_summary(summary)}", flush=True)


def _curve(run: Path, data: Path, demos: int) -> dict[str, Any]:
    """A learning-curve row's columns: the demos given; the expert-labelled steps the run learned
    from (its demos' steps, plus the labels its rounds added, `rounds.json`); and the env steps
    it played while training (its rounds', 0 for an offline learner, blank for rounds logged
    before they were counted)."""
    from imitari.data.split import filter_ids
    from imitari.data.store import Dataset

    log = run / "rounds.json"
    if not log.is_file():
        with Dataset.open(data) as ds:
            labels = int(sum(ds.episode_info[i]["length"] for i in filter_ids(ds, first_demos(demos))))
        return {"demos": demos, "expert_labels": labels, "env_steps": 0}
    rounds = json.loads(log.read_text())
    counted = all("env_steps" in r for r in rounds if r["round"] > 0)
    return {"demos": demos, "expert_labels": int(rounds[-1]["expert_labels"]),
            "env_steps": sum(int(r.get("env_steps", 0)) for r in rounds) if counted else ""}


def write_outputs(out: Path, suite: Suite, split: str = "test") -> Path:
    """Redraw the split's markdown and chart (results.md/.png, or results_SPLIT.md/.png) from
    its CSV; print the table."""
    csv_path = results_csv(out, split)
    rows = bench_table.read_rows(csv_path)
    tasks = suite.registered_tasks()
    table = bench_table.markdown(rows, tasks, split=split)
    seeds = suite.eval_seeds(split)
    md, png = csv_path.with_suffix(".md"), csv_path.with_suffix(".png")
    purpose = ("reported results" if split == "test"
               else "for choosing settings and checkpoints; report the test split, never these")
    md.write_text(
        f"# imitari bench: {suite.name}, {split} seeds\n\n{suite.description}. {suite.demos} demos per task (seeds "
        f"{_seed_range(list(suite.demo_seeds()))}), {suite.budget_cpu_minutes:g} CPU-minutes of training per policy "
        f"and training seed, {len(seeds)} evaluation episodes on the {split} seeds {_seed_range(seeds)} "
        f"({purpose}).\n\n"
        f"{table}\n\n![{'learning curves' if suite.demo_counts else 'success rates'}]({png.name})\n"
    )
    chart = bench_table.curve_chart if suite.demo_counts else bench_table.bar_chart
    if rows:
        chart(rows, png, tasks, title=f"{suite.name} ({split} seeds): {suite.budget_cpu_minutes:g} CPU-minutes per "
                                      f"{'training' if suite.demo_counts else 'policy'}")
    print(table)
    return md


def _measured(cfg: BenchConfig, suite: Suite | None) -> tuple[list[dict[str, str]], dict[str, Any], list[str], list[str]]:
    """(rows of the bench's split, its protocol, its tasks, its policy labels with the expert)."""
    suite = (suite or get_suite(cfg.suite)).with_overrides(
        budget_cpu_minutes=cfg.budget_cpu_minutes, demos=cfg.demos, eval_episodes=cfg.eval_episodes
    )
    out = Path(cfg.out or f"runs/bench-{suite.name}")
    rows = bench_table.read_rows(results_csv(out, cfg.split))
    policies = [s.label for s in resolve_specs(suite, cfg.policies)] + [bench_table.EXPERT]
    protocol = {**_protocol(suite), "eval_seeds": _seed_range(suite.eval_seeds(cfg.split))}
    return rows, protocol, select_tasks(suite, cfg.tasks), policies


def check_reference(cfg: BenchConfig, reference: str, *, suite: Suite | None = None) -> tuple[list[str], int]:
    """`bench_check.check` of this bench's rows against a reference CSV: (lines, failures)."""
    from imitari.bench_check import check

    rows, protocol, tasks, policies = _measured(cfg, suite)
    return check(Path(reference), rows, protocol, tasks=tasks, policies=policies)


def write_reference(cfg: BenchConfig, path: str, *, suite: Suite | None = None) -> Path:
    """Write a reference CSV (`bench_check.write_reference`) from this bench's rows."""
    from imitari import bench_check

    rows, protocol, tasks, policies = _measured(cfg, suite)
    chosen = [r for r in rows if r["task"] in tasks and r["policy"] in policies]
    if not chosen:
        raise ConfigError(f"no measured rows in {cfg.out} to make a reference from")
    return bench_check.write_reference(Path(path), chosen, protocol)
