"""`imitari collect | data | train | eval | bench | report | demo | tasks | policies`.

Subcommands only parse their arguments and call the library; every piece of work lives in
the layer packages, so anything the CLI does can be done from Python too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imitari.config import ConfigError, load_file, merge, nest, parse_overrides
from imitari.pipeline import REPEAT_STARTS, REPEATS
from imitari.suites import SUITES


def _cmd_collect(args: argparse.Namespace) -> None:
    from imitari.envs.collect import collect

    summary = collect(
        args.env, Path(args.out), episodes=args.episodes, seed_start=args.seed_start, workers=args.workers,
        expert=args.expert,
    )
    print(summary)


def _cmd_data_info(args: argparse.Namespace) -> None:
    from imitari.data.info import dataset_summary, format_summary
    from imitari.data.store import Dataset

    print(format_summary(dataset_summary(Dataset.open(args.path), verify=True)))


def _cmd_data_verify(args: argparse.Namespace) -> None:
    from imitari.data.store import Dataset

    report = Dataset.open(args.path).verify()
    sums = "every chunk matches its checksum" if report["checksums"] else "no checksums (written before they existed)"
    print(f"{args.path}: ok: {report['episodes']} episodes, {report['steps']} steps, {report['chunks']} chunks "
          f"read; {sums}; all values finite")


def _cmd_data_show(args: argparse.Namespace) -> None:
    from imitari.data.store import Dataset
    from imitari.eval.video import episode_video

    ds = Dataset.open(args.path)
    if not 0 <= args.episode < ds.n_episodes:
        raise ConfigError(f"--episode {args.episode}: the dataset has episodes 0..{ds.n_episodes - 1}")
    out = episode_video(ds, args.episode, args.out or f"{Path(args.path).name}-episode{args.episode}.mp4")
    print(f"{args.path}: episode {args.episode} ({ds.episode_info[args.episode]['length']} frames) -> {out}")


def _cmd_data_split(args: argparse.Namespace) -> None:
    from imitari.data.split import write_split
    from imitari.data.store import Dataset

    with Dataset.open(args.path, writer=True) as ds:
        write_split(ds, val_fraction=args.val_fraction, seed=args.seed)
        keys = ds.filter_keys
    print(f"{args.path}: filter keys " + ", ".join(f"{k} ({len(v)} episodes)" for k, v in keys.items()))


def _cmd_data_convert(args: argparse.Namespace) -> None:
    from imitari.data.formats import convert

    done = convert(args.src, args.dst, to=args.to, env=args.env)
    for line in done.warnings:
        print(f"imitari data convert: warning: {line}", file=sys.stderr)
    print(f"{args.src} ({done.src_format}) -> {done.path} ({done.dst_format}): {done.episodes} episodes, {done.steps} steps")


def _cmd_train(args: argparse.Namespace, extra: list[str]) -> None:
    from imitari.learners.loop import resume, train

    overrides = nest(parse_overrides(extra))
    if args.resume:
        if args.config:
            raise ConfigError("--resume continues a run with its saved config; do not pass --config")
        run_dir = resume(args.resume, overrides)
    else:
        raw = load_file(args.config) if args.config else {}
        run_dir = train(merge(raw, overrides))
    print(f"run directory: {run_dir}")


def _cmd_eval(args: argparse.Namespace) -> None:
    from imitari.pipeline import evaluate_run

    evaluate_run(
        Path(args.run),
        episodes=args.episodes,
        video=args.video,
        num_envs=args.num_envs,
        workers=args.workers,
        expert=args.expert,
        seed_start=args.seed_start,
        repeats=args.repeats,
    )


def _cmd_bench(args: argparse.Namespace) -> None:
    from imitari.bench import BenchConfig, check_reference, parse_seeds, run_bench, split_specs, write_reference

    cfg = BenchConfig(
        suite=args.suite, policies=split_specs(args.policies) if args.policies else None,
        tasks=args.tasks.split(",") if args.tasks else None, budget_cpu_minutes=args.budget_cpu_minutes,
        demos=args.demos, eval_episodes=args.episodes, out=args.out, device=args.device, threads=args.threads,
        workers=args.workers, train_seeds=parse_seeds(args.seeds) if args.seeds else None, split=args.split,
        progress=not args.no_progress,
    )
    run_bench(cfg)
    if args.write_reference:
        print(f"[bench] reference intervals written to {write_reference(cfg, args.write_reference)}")
    if args.check:
        lines, failed = check_reference(cfg, args.check)
        print("\n".join(lines))
        if failed:
            print(f"[bench] {failed} of {len(lines)} rows left the reference intervals of {args.check}", file=sys.stderr)
            raise SystemExit(1)
        print(f"[bench] every row within the reference intervals of {args.check}")


def _cmd_report(args: argparse.Namespace) -> None:
    from imitari.eval.report import write_report

    print(f"report: {write_report(Path(args.run))}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from imitari.pipeline import DemoConfig, demo

    cfg = DemoConfig(
        task=args.task, policy=args.policy, episodes=args.episodes, steps=args.steps,
        eval_episodes=args.eval_episodes, video=args.video, out=args.out,
    )
    demo(cfg)


def _cmd_tasks(args: argparse.Namespace) -> None:
    from imitari.envs.registry import get_task, list_tasks
    from imitari.envs.trained_experts import expert_card

    for name in list_tasks():
        spec = get_task(name)
        expert = "expert" if spec.make_expert is not None else "no expert"
        card = expert_card(name)
        extra = (f"  (shipped {card['learner']} expert: return {card['expert_return']['mean']:g} on "
                 f"{card['eval_seeds']})" if card else "")
        extra += f"  [needs imitari[{spec.extra}]]" if spec.extra else ""
        extra += f"  (+{name}:pixels, {spec.pixels} px)" if spec.pixels else ""
        print(f"{name:32s} {spec.max_steps:4d} steps  {expert:9s}  {spec.description}{extra}")


def _cmd_policies(args: argparse.Namespace) -> None:
    from imitari.policies.registry import get_policy, policy_names

    for name in policy_names():
        policy_cls, _ = get_policy(name)
        doc = (policy_cls.__doc__ or "").strip().splitlines()
        print(f"{name:24s} {doc[0] if doc else ''}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imitari", description="Learn behaviour from demonstrations.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("collect", help="collect expert demonstrations into a dataset")
    p.add_argument("--env", required=True, help="task name (see `imitari tasks`)")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--out", required=True, help="dataset directory (resumes if it exists)")
    p.add_argument("--seed-start", type=int, default=0, help="first episode seed (default 0)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count)")
    p.add_argument("--expert", default="task",
                   help="'task' (the task's expert, default) or a trained run/checkpoint directory to act instead")
    p.set_defaults(func=_cmd_collect)

    data = sub.add_parser("data", help="inspect and curate datasets").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("info", help="episodes, steps, features, statistics, expert success")
    p.add_argument("path")
    p.set_defaults(func=_cmd_data_info)
    p = data.add_parser("verify", help="read every chunk and check its checksum; exit 2 naming the first damage")
    p.add_argument("path")
    p.set_defaults(func=_cmd_data_verify)
    p = data.add_parser("show", help="write an episode's camera frames as an mp4")
    p.add_argument("path")
    p.add_argument("--episode", type=int, default=0)
    p.add_argument("--out", help="video file (default: <dataset name>-episode<N>.mp4)")
    p.set_defaults(func=_cmd_data_show)
    p = data.add_parser("split", help="write train/valid filter keys")
    p.add_argument("path")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_data_split)
    p = data.add_parser("convert", help="convert between imitari, LeRobot v3.0, robomimic HDF5 and Minari (docs/formats.md)")
    p.add_argument("src", help="dataset to read (format detected)")
    p.add_argument("dst", help="new path to write")
    p.add_argument("--to", required=True, choices=["imitari", "lerobot", "robomimic", "minari"])
    p.add_argument("--env", help="imitari task of the episodes, when the source does not name one")
    p.set_defaults(func=_cmd_data_convert)

    p = sub.add_parser(
        "train",
        help="train a policy on a dataset",
        description="Any TrainConfig field is an option (--steps 2000, --batch-size 64); policy fields "
        "go under --policy.FIELD (e.g. --policy diffusion --policy.down_dims 32,64,128); a learner's options "
        "under --learner_config.FIELD (e.g. --learner dagger --learner_config.rounds 5 "
        "--learner_config.episodes_per_round 10; docs/interactive.md).",
    )
    p.add_argument("--config", help="YAML/JSON file with config keys (command-line options win)")
    p.add_argument("--resume", help="run directory to continue from its latest checkpoint")
    p.set_defaults(func=_cmd_train, takes_extra=True)

    p = sub.add_parser("eval", help="roll a trained policy out on held-out seeds")
    p.add_argument("run", help="run directory or checkpoint directory")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--video", type=int, default=0, help="number of episodes to record")
    p.add_argument("--num-envs", type=int, default=10)
    p.add_argument("--workers", type=int, default=None, help="env worker processes (default: CPU count)")
    p.add_argument("--expert", action="store_true", help="also evaluate the expert on the same seeds")
    p.add_argument("--seed-start", type=int, default=100_000, help="first evaluation seed")
    p.add_argument("--repeats", type=int, default=REPEATS, help="on tasks with behaviour labels: rollouts more from "
                   f"each of the first {REPEAT_STARTS} seeds, for the conditional behaviour entropy (0: none)")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser(
        "bench",
        help="train policies on a suite's tasks under one CPU budget; table and chart (docs/bench.md)",
        description="Run it again to resume: finished rows are skipped, interrupted runs continue.",
    )
    p.add_argument("--suite", required=True, help=f"one of: {', '.join(SUITES)}")
    p.add_argument("--policies", help="policy specs NAME[:key=value...], comma-separated (default: the suite's)")
    p.add_argument("--tasks", help="comma-separated task names, e.g. shelf-place (default: all the suite's)")
    p.add_argument("--budget-cpu-minutes", type=float, help="process CPU minutes per training run (default: the suite's)")
    p.add_argument("--demos", type=int, help="demonstrations per task (default: the suite's)")
    p.add_argument("--episodes", type=int, help="evaluation episodes (default: the suite's)")
    p.add_argument("--out", help="output folder (default runs/bench-SUITE)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    p.add_argument("--threads", type=int, help="torch threads for training (default: torch's)")
    p.add_argument("--workers", type=int, help="env processes for collection and evaluation")
    p.add_argument("--seeds", help="training seeds, e.g. 0,1,2 or 0-4: one run per seed (default 0)")
    p.add_argument("--split", default="test", help="evaluate on the test seeds (default; results.csv) or the "
                   "validation seeds (results_validation.csv)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--check", metavar="REFERENCE.csv", help="then exit 1 if a row's success leaves its reference "
                   "interval of the same protocol (one line per row; results/reference/)")
    p.add_argument("--write-reference", metavar="PATH", help="then write the reference intervals of these rows")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("report", help="write report.html for a run")
    p.add_argument("run")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("demo", help="the whole loop on a default task: collect, train, eval, report")
    p.add_argument("--task", default="metaworld/push")
    p.add_argument("--policy", default="bc")
    p.add_argument("--episodes", type=int, default=50, help="demonstrations to collect")
    p.add_argument("--steps", type=int, default=None, help="training updates (default: per policy)")
    p.add_argument("--eval-episodes", type=int, default=50)
    p.add_argument("--video", type=int, default=2)
    p.add_argument("--out", default="runs/demo")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("tasks", help="list registered tasks")
    p.set_defaults(func=_cmd_tasks)
    p = sub.add_parser("policies", help="list registered policies")
    p.set_defaults(func=_cmd_policies)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by the user's input: printed as one line instead of a traceback."""
    from imitari.data.store import DatasetError
    from imitari.envs.registry import TaskError
    from imitari.learners.checkpoint import CheckpointError

    return (ConfigError, DatasetError, TaskError, CheckpointError, FileNotFoundError, FloatingPointError)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    try:
        if getattr(args, "takes_extra", False):
            args.func(args, extra)
        else:
            if extra:
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            args.func(args)
    except Exception as exc:
        if not isinstance(exc, user_errors()):
            raise
        print(f"imitari {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
