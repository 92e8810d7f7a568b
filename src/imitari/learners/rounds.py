"""Interactive learning in rounds: roll out, let the expert label, aggregate, retrain (DAgger's loop).

`train_rounds` runs an interactive learner (`Learner.interactive`: dagger, hg_dagger). The run
directory holds its own growing dataset, so the demonstrations given are never changed:

    <run>/config.json          the resolved config (what `--resume` reads)
    <run>/data/                the demonstrations' training episodes (round 0), then each
                               round's labelled steps, with a per-step `actor` feature (who
                               acted: policy, expert or intervention) and `round` in each
                               episode's info
    <run>/rounds/round_<i>/    round i's training: one whole run of the shared loop (logging,
                               EMA, checkpoints, CPU budget, periodic evaluation, best kept) on
                               the episodes of rounds 0..i (filter key `round_<i>`)
    <run>/rounds.json          per round: episodes and steps added, env steps played (all of
                               them, kept or not: HG-DAgger keeps only the takeovers), expert
                               labels so far
    <run>/rounds/played_<i>.json  round i's env steps by episode seed, written as each ends
    <run>/checkpoints/         the last round's reported checkpoint, for `imitari eval <run>`

Round 0 trains on the demonstrations alone. Round i >= 1 first plays
`learner_config.episodes_per_round` episodes with the learner's actor (the previous round's
reported policy and the expert) through the rollout engine, the dataset writer appending the
steps the learner keeps, labelled with the expert's actions; then it trains, from scratch or
from the previous round's weights. Every stage resumes: a round's episodes already in the
dataset are not played again (an HG-DAgger episode without a takeover left no trace, so it
is replayed, identically), and an interrupted training resumes from its checkpoint.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import load_file

from imitari.config import ConfigError
from imitari.data.files import write_json_atomic
from imitari.data.split import filter_ids
from imitari.data.store import Dataset
from imitari.envs.experts import load_expert
from imitari.learners.checkpoint import reported_checkpoint, save_checkpoint
from imitari.learners.config import TrainConfig, full_config
from imitari.learners.loop import Trainer
from imitari.learners.registry import get_learner
from imitari.policies.base import PolicyConfig
from imitari.policies.loading import load_policy, read_checkpoint_config, read_json
from imitari.rollouts.engine import ACTORS, RolloutEngine, Sink, Transition
from imitari.rollouts.writer import ACTOR_FEATURE, EpisodeWriter

DATA = "data"
ROUNDS = "rounds"


def _aggregate(demos: Dataset, train_filter: str | None, path: Path) -> Dataset:
    """The run's dataset, holding its writer lock: made once (under a temporary name, renamed
    when complete) from the demonstrations' training episodes, each marked round 0."""
    extra = sorted(set(demos.features) - {"action", "reward"} - {n for n in demos.features if n.startswith("obs.")})
    if "action" not in demos.features or "reward" not in demos.features or extra:
        raise ConfigError(f"{demos.path}: interactive learners need obs.*, action and reward features only "
                          f"(it has {sorted(demos.features)})")
    if not path.exists():
        tmp = path.with_name(path.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        features = {**demos.features, ACTOR_FEATURE: ((), "uint8")}
        with Dataset.create(tmp, features=features, env=demos.env, fps=demos.fps, writer=True) as ds:
            for i in filter_ids(demos, train_filter):
                steps = demos.episode(i)
                steps[ACTOR_FEATURE] = np.full(len(steps["action"]), ACTORS.index("expert"), dtype=np.uint8)
                ds.append_episode(steps, info={**demos.episode_info[i], "round": 0})
        tmp.rename(path)
    return Dataset.open(path, writer=True)


class PlayedSteps(Sink):
    """Records each played episode's length by seed in `path` as it ends (an episode replayed
    after an interruption overwrites its own entry, so the count stays exact)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.played: dict[str, int] = json.loads(path.read_text()) if path.is_file() else {}
        self.steps: dict[int, int] = {}

    def on_step(self, t: Transition) -> None:
        self.steps[t.seed] = self.steps.get(t.seed, 0) + 1

    def on_end(self, episode: int, seed: int) -> None:
        self.played[str(seed)] = self.steps.pop(seed, 0)
        write_json_atomic(self.path, self.played)


def _played_path(run_dir: Path, round_: int) -> Path:
    return run_dir / ROUNDS / f"played_{round_}.json"


def _collect(learner_cls: Any, cfg: TrainConfig, ds: Dataset, round_: int, previous: Path, expert: Any,
             played: Path) -> None:
    """Play round `round_`'s episodes not yet in `ds` and append the steps the learner keeps."""
    present = {info.get("seed") for info in ds.episode_info if info.get("round") == round_}
    opts = learner_cls.parse_options(cfg)
    seeds = [s for s in opts.seeds(round_) if s not in present]
    if not seeds:
        return
    policy = load_policy(reported_checkpoint(previous), device="cpu")
    obs_keys = [name[len("obs."):] for name in ds.features if name.startswith("obs.")]
    writer = EpisodeWriter(ds, obs_keys, source=learner_cls.source, labelled=True, keep=learner_cls.keep(),
                           extra={"round": round_})
    num_envs = min(opts.num_envs, len(seeds))
    with RolloutEngine(ds.env, num_envs=num_envs, workers=1) as engine:
        engine.run(learner_cls.actor(policy, expert, round_, cfg), seeds, [PlayedSteps(played), writer])


def _round_record(ds: Dataset, round_: int, played: Path) -> dict[str, Any]:
    """What the dataset holds of round `round_`, the env steps it played, and the expert labels
    of rounds 0..round_."""
    ids = [i for i, info in enumerate(ds.episode_info) if info.get("round") == round_]
    actors = ds.arrays()[ACTOR_FEATURE]
    ends = np.asarray(ds.episode_ends)
    starts = np.concatenate([[0], ends[:-1]])
    rows = np.concatenate([np.arange(starts[i], ends[i]) for i in ids]) if ids else np.zeros(0, dtype=int)
    upto = [i for i, info in enumerate(ds.episode_info) if info.get("round", 0) <= round_]
    return {
        "round": round_,
        "episodes": len({ds.episode_info[i].get("seed") for i in ids}),
        "dataset_episodes": len(ids),
        "steps": int(len(rows)),
        "env_steps": int(sum(json.loads(played.read_text()).values())) if played.is_file() else 0,
        **{f"{name}_steps": int((actors[rows] == k).sum()) for k, name in enumerate(ACTORS)},
        "expert_labels": int(sum(ds.episode_info[i]["length"] for i in upto)),
    }


def _warm_start(trainer: Trainer, previous: Path) -> None:
    """Start `trainer` from the inference weights of the previous round's reported checkpoint
    (its normaliser statistics included: warm rounds keep round 0's)."""
    state = load_file(str(reported_checkpoint(previous) / "model.safetensors"))
    trainer.policy.load_state_dict(state)
    if trainer.ema is not None:
        trainer.reset_ema()


def _export(run_dir: Path, last: Path) -> Path:
    """Copy the last round's reported checkpoint to `<run>/checkpoints/` (for `imitari eval`)."""
    ckpt = reported_checkpoint(last)
    step = int(ckpt.name.rsplit("_", 1)[-1]) if ckpt.name.startswith("step_") else 0
    return save_checkpoint(run_dir, step, config=read_checkpoint_config(ckpt),
                           inference_state=load_file(str(ckpt / "model.safetensors")),
                           normalizer=read_json(ckpt, "normalizer.json"), train_state=None, keep=1)


def train_rounds(train_cfg: TrainConfig, policy_cfg: PolicyConfig, run_dir: Path) -> Path:
    """Run (or continue) the rounds of an interactive learner in `run_dir`; returns the run directory."""
    learner_cls = get_learner(train_cfg.learner)
    icfg = learner_cls.parse_options(train_cfg)
    demos = Dataset.open(train_cfg.data)
    if not demos.env:
        raise ConfigError(f"{train_cfg.data}: the dataset names no task, so there is nothing to roll out in")
    expert = load_expert(demos.env, icfg.expert)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / "config.json", full_config(train_cfg, policy_cfg))
    log_path = run_dir / "rounds.json"
    log: list[dict[str, Any]] = json.loads(log_path.read_text()) if log_path.is_file() else []
    ds = _aggregate(demos, train_cfg.train_filter, run_dir / DATA)
    previous = run_dir / ROUNDS / "round_0"
    try:
        for r in range(icfg.rounds + 1):
            round_dir = run_dir / ROUNDS / f"round_{r}"
            if r < len(log):
                previous = round_dir
                continue
            played = _played_path(run_dir, r)
            if r > 0:
                played.parent.mkdir(parents=True, exist_ok=True)
                _collect(learner_cls, train_cfg, ds, r, previous, expert, played)
            ds.set_filter_key(f"round_{r}", [i for i, info in enumerate(ds.episode_info) if info.get("round", 0) <= r])
            record = _round_record(ds, r, played)
            print(f"{train_cfg.learner} round {r}: {record['steps']} steps added "
                  f"({record['expert_labels']} expert labels in all)")
            ds.close()
            cfg_r = replace(train_cfg, data=str(run_dir / DATA), out=str(round_dir), train_filter=f"round_{r}")
            trainer = Trainer(cfg_r, policy_cfg, run_dir=round_dir)
            resuming = (round_dir / "checkpoints").exists()
            if not resuming and r > 0 and icfg.warm_start:
                _warm_start(trainer, previous)
            trainer.run(resume=resuming)
            ds = Dataset.open(run_dir / DATA, writer=True)
            log.append(record)
            write_json_atomic(log_path, log)
            previous = round_dir
    finally:
        ds.close()
    final = _export(run_dir, previous)
    print(f"{train_cfg.learner}: {icfg.rounds} rounds, {log[-1]['expert_labels']} expert labels; checkpoint {final}")
    return run_dir
