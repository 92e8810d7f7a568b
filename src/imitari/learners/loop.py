"""The one training loop: draw a batch, let the learner update, EMA, log, checkpoint, evaluate, resume.

Every learner (`imitari.learners.base`) runs through `train()`: the learner owns its optimisers
and phases, this loop everything shared. Randomness at step k comes from generators seeded by
(seed, k) -- the numpy generator that draws the batch and those the learner seeds (torch's
global generator inside `policy.loss`) -- so the run is a pure function of its config and a
resumed run ends with exactly the weights of an uninterrupted one.

A run can also stop at a budget of process CPU time (`budget_cpu_minutes`) instead of a step
count: `time.process_time()` counts the CPU every thread of this process spent in the loop, so
a run on a busy machine gets the same compute as one on an idle machine, just later. The CPU
seconds spent are saved in every checkpoint, so a resumed run continues on the same budget.
How many updates fit depends on the machine; each update is still a function of its step.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

import imitari
from imitari.config import ConfigError
from imitari.data.info import dataset_summary
from imitari.data.lock import LOCK_NAME, lock_out
from imitari.data.files import write_json_atomic
from imitari.data.split import filter_ids
from imitari.data.store import Dataset
from imitari.data.windows import WindowSampler
from imitari.learners.batches import WindowBatches
from imitari.learners.checkpoint import BEST, reported_checkpoint, resume_states, save_checkpoint
from imitari.learners.config import TrainConfig, full_config, resolve_config
from imitari.learners.logger import MetricsLogger
from imitari.learners.registry import get_learner
from imitari.learners.schedule import ema_decay
from imitari.policies.base import Policy, PolicyConfig, Shapes
from imitari.policies.loading import load_encoder_weights
from imitari.policies.phases import phase_at
from imitari.policies.registry import make_policy
from imitari.policies.relative_points import AUTO as RELATIVE_AUTO

cpu_clock = time.process_time
"""The clock a CPU budget is measured on (a module attribute so tests can substitute one)."""


def _to_torch(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, dict):
            out[key] = _to_torch(value, device)
        else:
            out[key] = torch.from_numpy(np.ascontiguousarray(value)).to(device)
    return out


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but torch sees no GPU")
    return torch.device(name)


def task_points(policy_cfg: PolicyConfig, task: str) -> PolicyConfig:
    """`policy_cfg` with `relative_points` "auto" replaced by the points `task` registers ("" for
    a task that registers none or is not registered here), so a checkpoint names what it used."""
    if policy_cfg.relative_points != RELATIVE_AUTO:
        return policy_cfg
    from imitari.envs.registry import find_task

    spec = find_task(task)
    return replace(policy_cfg, relative_points=spec.points if spec is not None else "")


def _default_run_dir(cfg: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    source = Path(cfg.data).name if cfg.data else cfg.env.replace("/", "-") + f"-{cfg.learner}"
    return Path("runs") / f"{source}-{cfg.policy}-{stamp}"


class Trainer:
    """Holds the state of one run; `run()` trains to `cfg.steps`, resuming if state exists."""

    def __init__(self, train_cfg: TrainConfig, policy_cfg: PolicyConfig, *, run_dir: Path) -> None:
        self.cfg = train_cfg
        self.policy_cfg = policy_cfg
        self.run_dir = run_dir
        if train_cfg.threads:
            torch.set_num_threads(train_cfg.threads)
        self.device = _pick_device(train_cfg.device)
        learner_cls = get_learner(train_cfg.learner)
        self.dataset: Dataset | None = None
        self.valid_sampler: WindowSampler | None = None
        self.batches: WindowBatches | None = None
        self.engine: Any = None  # an online learner's rollout engine, opened by run()
        self.train_ids: list[int] = []
        self.valid_ids: list[int] = []
        if learner_cls.online:
            from imitari.learners.online import task_shapes

            self.task = train_cfg.env
            self.shapes, stats = task_shapes(train_cfg.env)
        else:
            stats = self._open_dataset(train_cfg, policy_cfg)
        self.policy_cfg = policy_cfg = task_points(policy_cfg, self.task)
        torch.manual_seed(train_cfg.seed)
        self.policy: Policy = make_policy(train_cfg.policy, policy_cfg, shapes=self.shapes, stats=stats).to(self.device)
        if train_cfg.freeze_encoder:
            self.policy.obs_encoder.requires_grad_(False)
        self.stats = stats
        self.cpu_seconds = 0.0  # process CPU seconds spent in the training loop, over all resumed calls
        self.budget_seconds = None if train_cfg.budget_cpu_minutes is None else 60.0 * train_cfg.budget_cpu_minutes
        online = {"run_dir": run_dir} if learner_cls.online else {}
        self.learner = learner_cls(self.policy, train_cfg, budget_spent=self.budget_spent, **online)
        self.ema: dict[str, torch.Tensor] | None = None
        if policy_cfg.ema:
            self.reset_ema()
        self.step = 0

    def _open_dataset(self, train_cfg: TrainConfig, policy_cfg: PolicyConfig) -> dict[str, Any]:
        """Open the dataset, its shapes and window samplers; returns its statistics."""
        self.dataset = Dataset.open(train_cfg.data)
        self.task = self.dataset.env or ""
        keys = self.dataset.filter_keys
        self.train_ids = filter_ids(self.dataset, train_cfg.train_filter)
        self.valid_ids = list(keys.get("valid", []))
        obs_keys = [name[len("obs."):] for name in self.dataset.features if name.startswith("obs.")]
        if not obs_keys or "action" not in self.dataset.features:
            raise ConfigError(f"{train_cfg.data}: needs obs.* and action features to train a policy")
        self.shapes = Shapes(
            obs={k: tuple(self.dataset.features[f"obs.{k}"][0]) for k in obs_keys},
            action=tuple(self.dataset.features["action"][0]),
        )
        arrays = self.dataset.sampling_arrays()  # camera frames of a dataset over 2 GiB stay on disk
        sampler_args = dict(
            obs_keys=obs_keys,
            obs_horizon=policy_cfg.obs_horizon,
            action_horizon=policy_cfg.action_horizon,
            past_horizon=policy_cfg.past_rows,
            procedure_keys=[name[len("procedure."):] for name in self.dataset.features if name.startswith("procedure.")],
        )
        self.sampler = WindowSampler(arrays, self.dataset.episode_ends, episode_ids=self.train_ids, **sampler_args)
        if self.valid_ids:
            self.valid_sampler = WindowSampler(arrays, self.dataset.episode_ends, episode_ids=self.valid_ids,
                                               **sampler_args)
        self.batches = WindowBatches(self.sampler, batch_size=train_cfg.batch_size, seed=train_cfg.seed,
                                     sampling=train_cfg.sampling)
        return self.dataset.stats()

    # --- state -------------------------------------------------------------------------
    def budget_spent(self) -> float:
        """Fraction of the CPU budget used (0.0 without a budget)."""
        return 0.0 if self.budget_seconds is None else self.cpu_seconds / self.budget_seconds

    def finished(self) -> bool:
        return self.step >= self.cfg.steps or self.budget_spent() >= 1.0

    def config_dict(self) -> dict[str, Any]:
        return {
            **full_config(self.cfg, self.policy_cfg),
            "imitari_version": imitari.__version__,
            "shapes": {"obs": {k: list(v) for k, v in self.shapes.obs.items()}, "action": list(self.shapes.action)},
            "dataset": self._dataset_record(),
            "task": self.task,
        }

    def _dataset_record(self) -> dict[str, Any]:
        if self.dataset is None:  # an online learner's data: its replay store, seeds from 10,000,000 up
            return {"path": str((self.run_dir / "replay").resolve()), "env": self.task, "seeds": []}
        return {
            "path": str(Path(self.cfg.data).resolve()),
            "env": self.dataset.env,
            "episodes": self.dataset.n_episodes,
            "train_episodes": len(self.train_ids),
            "seeds": [s for s in self.dataset.episode_seeds if s is not None],
        }

    def inference_state(self) -> dict[str, torch.Tensor]:
        return self.ema if self.ema is not None else self.policy.state_dict()

    def inference_policy(self) -> Policy:
        """The policy with the weights used for evaluation (EMA when kept), in eval mode."""
        if self.ema is None:
            return self.policy.eval()
        copy = make_policy(self.cfg.policy, self.policy_cfg, shapes=self.shapes, stats=self.stats)
        copy.load_state_dict(self.ema)
        return copy.to(self.device).eval()

    def save(self) -> Path:
        train_state = {"step": self.step, **self.learner.state_dict(), "ema": self.ema, "cpu_seconds": self.cpu_seconds}
        return save_checkpoint(
            self.run_dir,
            self.step,
            config=self.config_dict(),
            inference_state=self.inference_state(),
            normalizer=self.policy.normalizer.to_json(),
            train_state=train_state,
        )

    def restore(self) -> None:
        """Load the newest intact checkpoint's training state (damaged ones are skipped, each
        named with its reason on stderr)."""
        _, state = next(resume_states(self.run_dir))
        self.learner.load_state_dict(state)
        own = self.policy.state_dict()  # an older version's EMA may hold retired buffers
        self.ema = None if state["ema"] is None else {k: v for k, v in state["ema"].items() if k in own}
        self.step = int(state["step"])
        self.cpu_seconds = float(state.get("cpu_seconds", 0.0))

    def reset_ema(self) -> None:
        """Start the EMA at the policy's current weights (after they were set from elsewhere)."""
        self.ema = {k: v.detach().clone() for k, v in self.policy.state_dict().items()}

    def _init_encoder(self, source: Path) -> None:
        """Start the policy's observation encoder from `source`'s (`init_encoder`), EMA included."""
        ckpt = reported_checkpoint(source)
        copied = load_encoder_weights(self.policy, ckpt)
        if self.ema is not None:
            self.reset_ema()
        print(f"observation encoder: {copied} tensors from {ckpt}"
              f"{' (frozen)' if self.cfg.freeze_encoder else ''}", flush=True)

    # --- one step of the loop ------------------------------------------------------------
    def update(self) -> dict[str, float]:
        """Draw update `step`'s batch (an online learner collects instead), let the learner update
        on it, then the EMA."""
        t0 = time.perf_counter()
        if self.batches is None:
            collected, batch = self.learner.collect(self.engine, self.step), None
        else:
            collected, batch = {}, _to_torch(self.batches.batch(self.step), self.device)
        t1 = time.perf_counter()
        metrics = {**collected, **self.learner.update(batch, self.step)}
        if self.ema is not None:
            self._update_ema(ema_decay(self.step, power=self.cfg.ema_power, max_decay=self.cfg.ema_max))
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        self.step += 1
        return {**metrics, "data_time": t1 - t0, "update_time": t2 - t1}

    @torch.no_grad()
    def _update_ema(self, decay: float) -> None:
        """ema = decay * ema + (1 - decay) * weights, in a few fused kernels."""
        assert self.ema is not None
        state = self.policy.state_dict(keep_vars=True)
        floats = [k for k, v in self.ema.items() if v.dtype.is_floating_point]
        ema = [self.ema[k] for k in floats]
        torch._foreach_mul_(ema, decay)
        torch._foreach_add_(ema, [state[k].detach() for k in floats], alpha=1.0 - decay)

    @torch.no_grad()
    def validation_loss(self, batches: int = 4) -> float:
        assert self.valid_sampler is not None
        policy = self.inference_policy()
        fork = torch.random.fork_rng()
        with fork:
            torch.manual_seed(self.cfg.seed)
            phase = phase_at(policy.training_phases(), max(self.step - 1, 0))  # that of the last update
            losses = []
            for i in range(batches):
                batch = self.valid_sampler.sample(self.cfg.batch_size, np.random.default_rng([self.cfg.seed, i, 7]))
                losses.append(float(policy.phase_loss(_to_torch(batch, self.device), phase)[0]))
        return float(np.mean(losses))

    def evaluate(self, episodes: int) -> dict[str, float]:
        """Success and return of the inference weights on `episodes` validation seeds, stepped in
        this process so the CPU it costs counts against a CPU budget like the updates do."""
        from imitari.eval.metrics import summarize
        from imitari.eval.rollout import evaluate
        from imitari.eval.seeds import validation_seeds

        if not self.task:
            return {}
        results, _ = evaluate(
            self.inference_policy(),
            self.task,
            seeds=validation_seeds(episodes, exclude=self.dataset.episode_seeds if self.dataset else ()),
            num_envs=min(self.cfg.num_envs, episodes),
            workers=1,
            progress=False,
        )
        summary = summarize(results)
        return {"eval/success_rate": summary.success_rate, "eval/mean_return": summary.mean_return}

    def _eval_due(self, last_eval: float) -> bool:
        """Whether to evaluate after this update: every `eval_every` steps, every
        `eval_every_cpu_seconds`, and once at the end of a run that evaluates periodically."""
        cfg = self.cfg
        by_steps = cfg.eval_every > 0 and self.step % cfg.eval_every == 0
        by_cpu = 0 < cfg.eval_every_cpu_seconds <= self.cpu_seconds - last_eval
        periodic = cfg.eval_every > 0 or cfg.eval_every_cpu_seconds > 0
        return by_steps or by_cpu or (periodic and self.finished())

    def _selection_path(self) -> Path:
        return self.run_dir / BEST / "selection.json"

    def _evaluate_and_keep(self, logger: MetricsLogger) -> None:
        """Evaluate now, log it, and (with `keep_best`) save the weights to `<run>/best/` when
        they beat every earlier evaluation of the run (success first, then mean return)."""
        metrics = self.evaluate(self.cfg.eval_episodes)
        if not metrics:
            return
        logger.log(self.step, metrics)
        path = self._selection_path()
        record = json.loads(path.read_text()) if path.is_file() else {"best": None, "evaluations": []}
        score = [metrics["eval/success_rate"], metrics["eval/mean_return"]]
        record["evaluations"] = [e for e in record["evaluations"] if e["step"] < self.step]
        record["evaluations"].append({"step": self.step, "score": score, "cpu_seconds": round(self.cpu_seconds, 2)})
        best = record["best"]
        if self.cfg.keep_best and (best is None or score > best["score"]):  # strictly better, as robomimic
            save_checkpoint(self.run_dir / BEST, self.step, config=self.config_dict(),
                            inference_state=self.inference_state(), normalizer=self.policy.normalizer.to_json(),
                            train_state=None, keep=1)
            record["best"] = {"step": self.step, "score": score}
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, record)

    def _close_engine(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        close = getattr(self.learner, "close", None)
        if close is not None:
            close()

    # --- the loop ----------------------------------------------------------------------
    def run(self, *, resume: bool = False) -> Path:
        from tqdm.auto import tqdm

        self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self.restore()
        elif self.cfg.init_encoder:
            self._init_encoder(Path(self.cfg.init_encoder))
        write_json_atomic(self.run_dir / "config.json", self.config_dict())
        if self.dataset is not None:
            write_json_atomic(self.run_dir / "dataset_summary.json", dataset_summary(self.dataset))
        else:
            from imitari.rollouts.engine import RolloutEngine

            self.engine = RolloutEngine(self.task, num_envs=self.cfg.num_envs, workers=1)
        logger = MetricsLogger(self.run_dir, resume_step=self.step if resume else None)
        budget = self.budget_seconds
        bar = tqdm(total=self.cfg.steps if budget is None else int(budget), disable=not self.cfg.progress,
                   initial=self.step if budget is None else int(self.cpu_seconds), desc="train",
                   unit="step" if budget is None else "cpu-s")
        window: list[dict[str, float]] = []
        start, start_step = time.perf_counter(), self.step
        cpu_start, cpu_base, last_save = cpu_clock(), self.cpu_seconds, self.cpu_seconds
        last_eval = self.cpu_seconds
        try:
            while not self.finished():
                window.append(self.update())
                self.cpu_seconds = cpu_base + cpu_clock() - cpu_start
                bar.update(1 if budget is None else int(self.cpu_seconds) - bar.n)
                if self.step % self.cfg.log_every == 0 or self.finished():
                    # a policy may log different metrics in different phases (VQ-BeT): average
                    # each metric over the steps that reported it
                    keys = dict.fromkeys(k for m in window for k in m)
                    means = {k: float(np.mean([m[k] for m in window if k in m])) for k in keys}
                    if self.valid_sampler is not None and self.step % self.cfg.ckpt_every == 0:
                        means["valid_loss"] = self.validation_loss()
                    logger.log(self.step, means)
                    bar.set_postfix(loss=f"{means['loss']:.4f}")
                    window = []
                if self._eval_due(last_eval):
                    self._evaluate_and_keep(logger)
                    self.cpu_seconds = last_eval = cpu_base + cpu_clock() - cpu_start
                timed = 0 < self.cfg.ckpt_every_cpu_seconds <= self.cpu_seconds - last_save
                if (self.step % self.cfg.ckpt_every == 0 or timed) and not self.finished():
                    self.save()
                    last_save = self.cpu_seconds
        except KeyboardInterrupt:
            bar.close()
            self.save()
            logger.close()
            print(f"interrupted at step {self.step}; checkpoint saved. Resume: imitari train --resume {self.run_dir}")
            raise
        finally:
            self._close_engine()  # also on a crash: the replay store's writer lock is released
        bar.close()
        ckpt = self.save()
        logger.close()
        elapsed = time.perf_counter() - start
        done = self.step - start_step
        last = f"final loss {logger.last['loss']:.4f}" if "loss" in logger.last else "no update in this call"
        print(
            f"trained {self.cfg.policy} for {self.step} steps ({done} in this call, {elapsed:.1f} s, "
            f"{done / max(elapsed, 1e-9):.1f} updates/s; {self.cpu_seconds / 60:.2f} CPU-minutes in all"
            f"{'; stopped at the CPU budget' if self.budget_spent() >= 1.0 else ''}); {last}; "
            f"{self.policy.num_parameters():,} parameters; checkpoint {ckpt}"
        )
        return ckpt


def train(raw_config: dict[str, Any]) -> Path:
    """Train from a raw config dict (as read from YAML/CLI); returns the run directory."""
    train_cfg, policy_cfg = resolve_config(raw_config)
    if not train_cfg.data and not get_learner(train_cfg.learner).online:
        raise ConfigError("no dataset given: pass --data DIR (made by `imitari collect`)")
    run_dir = Path(train_cfg.out) if train_cfg.out else _default_run_dir(train_cfg)
    _run(train_cfg, policy_cfg, run_dir, resume=False)
    return run_dir


def _run(train_cfg: TrainConfig, policy_cfg: PolicyConfig, run_dir: Path, *, resume: bool) -> None:
    """One run of the loop, or the rounds of an interactive learner (each a run of the loop),
    holding the run directory's writer lock: a second process training or resuming the same
    directory stops at once, naming the first, instead of interleaving its checkpoints. A fresh
    run that fails before writing anything (a bad dataset) leaves no directory behind."""
    fresh = not run_dir.exists()
    with lock_out(run_dir, what="run"):
        try:
            if not resume and ((run_dir / "checkpoints").exists() or (run_dir / "rounds.json").exists()):
                raise ConfigError(f"{run_dir} already holds a run; resume it with --resume {run_dir} or pick another --out")
            if get_learner(train_cfg.learner).interactive:
                from imitari.learners.rounds import train_rounds

                train_rounds(train_cfg, policy_cfg, run_dir)
            else:
                Trainer(train_cfg, policy_cfg, run_dir=run_dir).run(resume=resume)
        except BaseException:
            if fresh and [p.name for p in run_dir.iterdir()] == [LOCK_NAME]:
                shutil.rmtree(run_dir, ignore_errors=True)  # under the lock, so no other run is in it
            raise


def resume(run_dir: str | Path, overrides: dict[str, Any] | None = None) -> Path:
    """Continue an interrupted run from its latest checkpoint (optionally with more `steps`)."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.json)")
    saved = json.loads(config_path.read_text())
    raw = {k: v for k, v in saved.items() if k not in ("imitari_version", "shapes", "dataset", "task")}
    raw.setdefault("task_defaults", False)  # saved before tasks registered settings: it trained without them
    if "interactive" in raw:  # saved before DAgger's options moved into learner_config: theirs for DAgger runs
        rounds = raw.pop("interactive")
        if get_learner(raw.get("learner", "offline")).interactive:
            raw["learner_config"] = {**rounds, **raw.get("learner_config", {})}
    allowed = {"steps", "budget_cpu_minutes", "progress", "eval_every", "eval_every_cpu_seconds", "eval_episodes", "num_envs", "threads", "device"}
    for key, value in (overrides or {}).items():
        if key not in allowed:
            raise ConfigError(f"cannot change '{key}' when resuming (allowed: {', '.join(sorted(allowed))})")
        raw[key] = value
    train_cfg, policy_cfg = resolve_config(raw)
    _run(train_cfg, policy_cfg, run_dir, resume=True)
    return run_dir
