"""The one training loop: sample windows, update, EMA, log, checkpoint, evaluate, resume.

Every offline learner runs through `train()`. Randomness at step k comes from generators
seeded by (seed, k) -- the numpy generator that draws the batch and torch's global generator
used inside `policy.loss` -- so the run is a pure function of its config and a resumed run
ends with exactly the weights of an uninterrupted one.

A run can also stop at a budget of process CPU time (`budget_cpu_minutes`) instead of a step
count: `time.process_time()` counts the CPU every thread of this process spent in the loop, so
a run on a busy machine gets the same compute as one on an idle machine, just later. The CPU
seconds spent are saved in every checkpoint, so a resumed run continues on the same budget.
How many updates fit depends on the machine; each update is still a function of its step.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

import imitari
from imitari.config import ConfigError, check_number, check_types, from_dict, to_dict
from imitari.data.info import dataset_summary
from imitari.data.split import filter_ids
from imitari.data.store import Dataset
from imitari.data.windows import WindowSampler
from imitari.learners.checkpoint import (
    BEST,
    resume_states,
    save_checkpoint,
    write_json_atomic,
)
from imitari.learners.logger import MetricsLogger
from imitari.policies.base import Policy, PolicyConfig, Shapes
from imitari.policies.registry import get_policy, make_policy

cpu_clock = time.process_time
"""The clock a CPU budget is measured on (a module attribute so tests can substitute one)."""


@dataclass
class TrainConfig:
    """How to train: which data, which policy, and the optimisation schedule."""

    data: str = ""
    """Dataset directory (made by `imitari collect` or an importer)."""
    policy: str = "bc"
    """Registered policy name (`imitari policies` lists them)."""
    out: str | None = None
    """Run directory; default runs/<dataset>-<policy>-<time>."""
    steps: int = 5000
    """Number of gradient updates (with a CPU budget: the most updates)."""
    budget_cpu_minutes: float | None = None
    """Stop when the process CPU time spent in the training loop reaches this many minutes
    (`time.process_time()`, all threads; 16 CPU-minutes is 8 minutes on 2 idle cores)."""
    batch_size: int = 256
    lr: float | None = None
    """Peak learning rate; None takes the policy's recommended `default_lr`."""
    weight_decay: float = 1e-6
    warmup_steps: int = 200
    """Linear warm-up, then cosine decay to zero at `steps` or, with a CPU budget, at whichever
    of `steps` and the budget runs out first (the decay follows the fraction of the budget
    spent, so it ends at zero without knowing in advance how many updates will fit)."""
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    """After the warm-up: "cosine" decay to zero (as above), or "constant" (robomimic's default)."""
    sampling: Literal["uniform", "epochs"] = "uniform"
    """How a batch's windows are drawn: "uniform" over all steps with replacement, or "epochs":
    every step once per pass in a fresh order (robomimic's and LeRobot's data loaders)."""
    grad_clip: float = 10.0
    """Clip the global gradient norm to this (0 disables)."""
    ema_power: float = 0.75
    """EMA decay schedule 1 - (1 + step)^-power, capped at `ema_max` (as in Diffusion Policy)."""
    ema_max: float = 0.9999
    seed: int = 0
    train_filter: str | None = "train"
    """Filter key of the episodes to train on; falls back to all episodes if the dataset has none."""
    log_every: int = 100
    ckpt_every: int = 1000
    ckpt_every_cpu_seconds: float = 60.0
    """Also checkpoint once this many CPU-seconds passed since the last one (0: only by steps),
    so a killed run loses at most about this much work."""
    eval_every: int = 0
    """Evaluate in the simulator every this many steps (0: never during training), on validation
    seeds (`imitari.eval.seeds`), never on the seeds results are reported on."""
    eval_every_cpu_seconds: float = 0.0
    """Also evaluate once this many CPU-seconds of training passed since the last evaluation
    (0: only by steps); policies that update at very different rates then get evaluated
    equally often under one CPU budget."""
    keep_best: bool = True
    """With periodic evaluation: keep the checkpoint of highest validation success (then mean
    return) in `<run>/best/`, which `imitari eval` and `imitari bench` report (robomimic keeps
    the best by rollout success), so a long run cannot overfit the reported policy."""
    eval_episodes: int = 10
    num_envs: int = 8
    device: str = "auto"
    """'cpu', 'cuda' or 'auto' (cuda when available)."""
    threads: int | None = None
    """torch CPU threads; None leaves torch's default."""
    progress: bool = True

    def __post_init__(self) -> None:
        check_types(self)
        for name in ("steps", "batch_size", "log_every", "ckpt_every", "eval_episodes", "num_envs"):
            check_number(self, name, ge=1)
        for name in ("warmup_steps", "seed", "eval_every", "weight_decay", "grad_clip", "ckpt_every_cpu_seconds",
                     "eval_every_cpu_seconds"):
            check_number(self, name, ge=0)
        check_number(self, "budget_cpu_minutes", gt=0, optional=True)
        check_number(self, "lr", gt=0, le=1, optional=True)  # AdamW above 1 only makes weights blow up
        check_number(self, "threads", ge=1, optional=True)
        check_number(self, "ema_power", gt=0)
        check_number(self, "ema_max", ge=0, lt=1)
        if self.device not in ("cpu", "cuda", "auto"):
            raise ConfigError(f"device must be 'cpu', 'cuda' or 'auto' (got {self.device!r})")


def resolve_config(raw: dict[str, Any]) -> tuple[TrainConfig, PolicyConfig]:
    """Split a raw config dict (`policy` a name or {name, ...fields}) into typed configs."""
    raw = dict(raw)
    policy_raw = raw.pop("policy", "bc")
    if isinstance(policy_raw, str):
        policy_raw = {"name": policy_raw}
    policy_raw = dict(policy_raw)
    name = str(policy_raw.pop("name", "bc"))
    _, config_cls = get_policy(name)
    train_cfg = from_dict(TrainConfig, {**raw, "policy": name})
    return train_cfg, from_dict(config_cls, policy_raw, where="policy.")


def full_config(train_cfg: TrainConfig, policy_cfg: PolicyConfig) -> dict[str, Any]:
    """The resolved run config as saved in config.json."""
    return {**to_dict(train_cfg), "policy": {"name": train_cfg.policy, **to_dict(policy_cfg)}}


def ema_decay(step: int, *, power: float, max_decay: float) -> float:
    return min(max_decay, max(0.0, 1.0 - (1.0 + step) ** -power))


def lr_factor(step: int, *, warmup: int, total: int, spent: float = 0.0, schedule: str = "cosine") -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to zero (or a constant 1); the
    decay's progress is the further along of the steps after warm-up and `spent`, the fraction
    of a budget used."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = max((step - warmup) / max(1, total - warmup), spent)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


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


def _default_run_dir(cfg: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{Path(cfg.data).name}-{cfg.policy}-{stamp}"


class Trainer:
    """Holds the state of one run; `run()` trains to `cfg.steps`, resuming if state exists."""

    def __init__(self, train_cfg: TrainConfig, policy_cfg: PolicyConfig, *, run_dir: Path) -> None:
        self.cfg = train_cfg
        self.policy_cfg = policy_cfg
        self.run_dir = run_dir
        if train_cfg.threads:
            torch.set_num_threads(train_cfg.threads)
        self.device = _pick_device(train_cfg.device)
        self.dataset = Dataset.open(train_cfg.data)
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
        arrays = self.dataset.arrays()
        sampler_args = dict(
            obs_keys=obs_keys,
            obs_horizon=policy_cfg.obs_horizon,
            action_horizon=policy_cfg.action_horizon,
            past_horizon=policy_cfg.past_rows,
        )
        self.sampler = WindowSampler(arrays, self.dataset.episode_ends, episode_ids=self.train_ids, **sampler_args)
        self.valid_sampler = (
            WindowSampler(arrays, self.dataset.episode_ends, episode_ids=self.valid_ids, **sampler_args)
            if self.valid_ids
            else None
        )
        torch.manual_seed(train_cfg.seed)
        self.policy: Policy = make_policy(
            train_cfg.policy, policy_cfg, shapes=self.shapes, stats=self.dataset.stats()
        ).to(self.device)
        lr = train_cfg.lr if train_cfg.lr is not None else type(self.policy).default_lr
        self.optimizer = torch.optim.AdamW(self.policy.parameters(), lr=lr, weight_decay=train_cfg.weight_decay)
        self.cpu_seconds = 0.0  # process CPU seconds spent in the training loop, over all resumed calls
        self.budget_seconds = None if train_cfg.budget_cpu_minutes is None else 60.0 * train_cfg.budget_cpu_minutes
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: lr_factor(s, warmup=train_cfg.warmup_steps, total=train_cfg.steps, spent=self.budget_spent(),
                              schedule=train_cfg.lr_schedule),
        )
        self.ema: dict[str, torch.Tensor] | None = (
            {k: v.detach().clone() for k, v in self.policy.state_dict().items()} if policy_cfg.ema else None
        )
        self.step = 0

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
            "dataset": {
                "path": str(Path(self.cfg.data).resolve()),
                "env": self.dataset.env,
                "episodes": self.dataset.n_episodes,
                "train_episodes": len(self.train_ids),
                "seeds": [s for s in self.dataset.episode_seeds if s is not None],
            },
            "task": self.dataset.env,
        }

    def inference_state(self) -> dict[str, torch.Tensor]:
        return self.ema if self.ema is not None else self.policy.state_dict()

    def inference_policy(self) -> Policy:
        """The policy with the weights used for evaluation (EMA when kept), in eval mode."""
        if self.ema is None:
            return self.policy.eval()
        copy = make_policy(self.cfg.policy, self.policy_cfg, shapes=self.shapes, stats=self.dataset.stats())
        copy.load_state_dict(self.ema)
        return copy.to(self.device).eval()

    def save(self) -> Path:
        train_state = {
            "step": self.step,
            "model": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema,
            "cpu_seconds": self.cpu_seconds,
        }
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
        self.policy.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.ema = state["ema"]
        self.step = int(state["step"])
        self.cpu_seconds = float(state.get("cpu_seconds", 0.0))

    # --- one update --------------------------------------------------------------------
    def update(self) -> dict[str, float]:
        t0 = time.perf_counter()
        batch = _to_torch(self.sampler.gather(self.batch_steps(self.step)), self.device)
        t1 = time.perf_counter()
        torch.manual_seed(self.cfg.seed * 1_000_003 + self.step)
        self.policy.train()
        loss, metrics = self.policy.loss(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss is {loss.item()} at step {self.step}; the last checkpoint is intact "
                "(lower --lr or check the data with `imitari data info`)"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), clip)
        if not torch.isfinite(grad_norm):  # stepping would make every weight NaN
            raise FloatingPointError(
                f"gradient norm is {float(grad_norm)} at step {self.step}; the last checkpoint is intact "
                "(lower --lr or check the data with `imitari data verify`)"
            )
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self._update_ema(ema_decay(self.step, power=self.cfg.ema_power, max_decay=self.cfg.ema_max))
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        self.step += 1
        return {
            **metrics,
            "loss": float(loss.item()),
            "lr": float(self.scheduler.get_last_lr()[0]),
            "grad_norm": float(grad_norm),
            "data_time": t1 - t0,
            "update_time": t2 - t1,
        }

    def batch_steps(self, step: int) -> np.ndarray:
        """The current steps of update `step`'s windows, a function of (seed, step) alone: drawn
        uniformly, or ("epochs") positions step*B .. step*B+B-1 of a sequence of passes, each a
        permutation of all steps seeded by (seed, pass)."""
        if self.cfg.sampling == "uniform":
            return self.sampler.draw(self.cfg.batch_size, np.random.default_rng([self.cfg.seed, step]))
        steps, size = self.sampler.steps, self.cfg.batch_size
        passes, index = np.divmod(np.arange(step * size, (step + 1) * size), len(steps))
        out = np.empty(size, dtype=np.int64)
        for p in np.unique(passes):
            order = np.random.default_rng([self.cfg.seed, int(p), 11]).permutation(len(steps))
            out[passes == p] = steps[order[index[passes == p]]]
        return out

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
            losses = []
            for i in range(batches):
                batch = self.valid_sampler.sample(self.cfg.batch_size, np.random.default_rng([self.cfg.seed, i, 7]))
                losses.append(float(policy.loss(_to_torch(batch, self.device))[0]))
        return float(np.mean(losses))

    def evaluate(self, episodes: int) -> dict[str, float]:
        """Success and return of the inference weights on `episodes` validation seeds, stepped in
        this process so the CPU it costs counts against a CPU budget like the updates do."""
        from imitari.eval.metrics import summarize
        from imitari.eval.rollout import evaluate
        from imitari.eval.seeds import validation_seeds

        if not self.dataset.env:
            return {}
        results, _ = evaluate(
            self.inference_policy(),
            self.dataset.env,
            seeds=validation_seeds(episodes, exclude=self.dataset.episode_seeds),
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

    # --- the loop ----------------------------------------------------------------------
    def run(self, *, resume: bool = False) -> Path:
        from tqdm.auto import tqdm

        self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self.restore()
        write_json_atomic(self.run_dir / "config.json", self.config_dict())
        write_json_atomic(self.run_dir / "dataset_summary.json", dataset_summary(self.dataset))
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
        bar.close()
        ckpt = self.save()
        logger.close()
        elapsed = time.perf_counter() - start
        done = self.step - start_step
        last = logger.last.get("loss", float("nan"))
        print(
            f"trained {self.cfg.policy} for {self.step} steps ({done} in this call, {elapsed:.1f} s, "
            f"{done / max(elapsed, 1e-9):.1f} updates/s; {self.cpu_seconds / 60:.2f} CPU-minutes in all"
            f"{'; stopped at the CPU budget' if self.budget_spent() >= 1.0 else ''}); final loss {last:.4f}; "
            f"{self.policy.num_parameters():,} parameters; checkpoint {ckpt}"
        )
        return ckpt


def train(raw_config: dict[str, Any]) -> Path:
    """Train from a raw config dict (as read from YAML/CLI); returns the run directory."""
    train_cfg, policy_cfg = resolve_config(raw_config)
    if not train_cfg.data:
        raise ConfigError("no dataset given: pass --data DIR (made by `imitari collect`)")
    run_dir = Path(train_cfg.out) if train_cfg.out else _default_run_dir(train_cfg)
    if (run_dir / "checkpoints").exists():
        raise ConfigError(f"{run_dir} already holds a run; resume it with --resume {run_dir} or pick another --out")
    Trainer(train_cfg, policy_cfg, run_dir=run_dir).run()
    return run_dir


def resume(run_dir: str | Path, overrides: dict[str, Any] | None = None) -> Path:
    """Continue an interrupted run from its latest checkpoint (optionally with more `steps`)."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.json)")
    saved = json.loads(config_path.read_text())
    raw = {k: v for k, v in saved.items() if k not in ("imitari_version", "shapes", "dataset", "task")}
    allowed = {"steps", "budget_cpu_minutes", "progress", "eval_every", "eval_every_cpu_seconds", "eval_episodes", "num_envs", "threads", "device"}
    for key, value in (overrides or {}).items():
        if key not in allowed:
            raise ConfigError(f"cannot change '{key}' when resuming (allowed: {', '.join(sorted(allowed))})")
        raw[key] = value
    train_cfg, policy_cfg = resolve_config(raw)
    trainer = Trainer(train_cfg, policy_cfg, run_dir=run_dir)
    trainer.run(resume=True)
    return run_dir
