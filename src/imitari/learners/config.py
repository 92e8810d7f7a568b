"""The run config of `imitari train`: which data, policy and learner, and the optimisation schedule.

`resolve_config` splits a raw dict (from YAML or the command line; `policy` a name or
{name, ...fields}) into the typed `TrainConfig` and the policy's own config class, each
validating itself and suggesting the nearest name for a misspelt one. Fields the raw dict leaves
unset take, in order, the settings the dataset's task registers for the policy (`TaskSpec.
policy_defaults`, offline learner only), the policy's `train_defaults`, then the dataclasses'.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass, field
from typing import Any, Literal

from imitari.config import ConfigError, check_number, check_types, coerce, from_dict, to_dict
from imitari.learners.registry import get_learner
from imitari.policies.base import PolicyConfig
from imitari.policies.registry import get_policy


@dataclass
class TrainConfig:
    """How to train: which data, which policy, and the optimisation schedule."""

    data: str = ""
    """Dataset directory (made by `imitari collect` or an importer)."""
    policy: str = "bc"
    """Registered policy name (`imitari policies` lists them)."""
    learner: str = "offline"
    """Registered learner (`imitari.learners.registry`): how the policy is trained."""
    env: str = ""
    """Task an online learner (`sac`, `ppo`) acts in (`imitari tasks`); it needs no dataset."""
    task_defaults: bool = True
    """Take the settings the dataset's task registers for the policy where unset
    (`TaskSpec.policy_defaults`, e.g. `bc` on Meta-World data); false: the policy's own defaults."""
    learner_config: dict[str, Any] = field(default_factory=dict)
    """The learner's own options (e.g. SAC's `gamma`, `learning_starts`; see its `Options`),
    checked by the learner when the config is resolved."""
    out: str | None = None
    """Run directory; default runs/<dataset>-<policy>-<time>."""
    steps: int = 5000
    """Number of gradient updates (with a CPU budget: the most updates)."""
    budget_cpu_minutes: float | None = None
    """Stop when the process CPU time spent in the training loop reaches this many minutes
    (`time.process_time()`, all threads; 16 CPU-minutes is 8 minutes on 2 idle cores)."""
    batch_size: int = 256
    lr: float | None = None
    """Peak learning rate; None takes the policy's (`Policy.train_defaults`)."""
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
    init_encoder: str | None = None
    """A run or checkpoint whose observation encoder starts this run's (the run's reported
    checkpoint: best, else latest): e.g. a BC run's trained CNN for a diffusion policy on the
    same cameras. Only its encoder weights are read (safetensors); they must fit."""
    freeze_encoder: bool = False
    """Keep the observation encoder's weights as they start (with `init_encoder`: a frozen
    pretrained encoder)."""
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
    """Split a raw config dict (`policy` a name or {name, ...fields}; without a name, the
    learner's `default_policy`; fields it leaves unset from the dataset task's settings
    (`task_settings`, printed in one line) and the learner's `policy_defaults`) into typed
    configs, each checked (the learner checks the run's)."""
    raw = dict(raw)
    learner_cls = get_learner(str(raw.get("learner", "offline")))  # an unknown learner fails here, naming the closest
    policy_raw = raw.pop("policy", {})
    if isinstance(policy_raw, str):
        policy_raw = {"name": policy_raw}
    policy_raw = dict(policy_raw)
    name = str(policy_raw.pop("name", learner_cls.default_policy))
    policy_cls, config_cls = get_policy(name)
    task_defaults = task_settings(raw, learner_cls, name, policy_raw)
    task_policy = task_defaults.pop("policy", {})
    defaults = {**policy_cls.all_train_defaults(), **task_defaults}
    given = {key: value for key, value in raw.items() if not (key in defaults and value is None)}
    if taken := {**{k: v for k, v in task_defaults.items() if k not in given},
                 **{f"policy.{k}": v for k, v in task_policy.items() if k not in policy_raw}}:
        print(f"[config] {name} on this dataset's task takes its settings where unset (docs/generalisation.md): "
              + ", ".join(f"{k}={v}" for k, v in taken.items()), flush=True)
    policy_raw = {**task_policy, **policy_raw}
    train_cfg = from_dict(TrainConfig, {**defaults, **given, "policy": name})
    known = {f.name for f in dataclasses.fields(config_cls)}
    policy_raw = {**{k: v for k, v in learner_cls.policy_defaults.items() if k in known}, **policy_raw}
    policy_cfg = from_dict(config_cls, policy_raw, where="policy.")
    learner_cls.check_config(train_cfg)
    return train_cfg, policy_cfg


def variant_name(policy: str, policy_fields: dict[str, Any]) -> str:
    """The name a task registers settings for a policy's variant under: the policy's name, then
    ":field=value" for each of its `variant_fields` set to other than its default, sorted
    ("bc", "bc:head=gmm", "diffusion:denoiser=mlp")."""
    policy_cls, config_cls = get_policy(policy)
    defaults = {f.name: f.default for f in dataclasses.fields(config_cls)}
    return policy + "".join(f":{k}={policy_fields[k]}" for k in sorted(policy_cls.variant_fields)
                            if k in policy_fields and str(policy_fields[k]) != str(defaults[k]))


def task_settings(raw: dict[str, Any], learner_cls: type, policy: str, policy_fields: dict[str, Any]) -> dict[str, Any]:
    """The settings the task of the raw config's dataset registers for `policy`
    (`TaskSpec.policy_defaults`: run fields, and policy fields under "policy"), for the offline
    learner and the variant `policy_fields` pick (`variant_name`); {}
    where there are none or the dataset or its task cannot be read here (opening the dataset
    for training then says why)."""
    from imitari.data.store import Dataset, DatasetError
    from imitari.envs.registry import find_task

    data = raw.get("data")
    if not coerce(raw.get("task_defaults", True), bool, where="task_defaults"):
        return {}
    if learner_cls is not get_learner("offline") or not data:
        return {}
    try:
        spec = find_task(Dataset.open(data).env or "")
    except DatasetError:
        return {}
    found = (spec.policy_defaults or {}).get(variant_name(policy, policy_fields), {}) if spec is not None else {}
    return {**found, "policy": dict(found.get("policy", {}))} if found else {}


def full_config(train_cfg: TrainConfig, policy_cfg: PolicyConfig) -> dict[str, Any]:
    """The resolved run config as saved in config.json."""
    return {**to_dict(train_cfg), "policy": {"name": train_cfg.policy, **to_dict(policy_cfg)}}
