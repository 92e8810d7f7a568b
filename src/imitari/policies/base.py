"""The policy contract every policy class implements (docs/architecture.md, "policies").

A policy maps a batch of observation windows `{key: (B, To, ...)}` to a batch of action chunks
`(B, Ta, A)` in real units (`predict_chunk`), trains from sampled windows (`loss`), owns its
`Normalizer` (buffers, so statistics travel in model.safetensors), and acts in environments
step by step (`act`/`reset`).

Action chunking with receding-horizon execution follows Diffusion Policy (Chi et al., RSS 2023)
and ACT (Zhao et al., RSS 2023): the window of To observations ends at the current step t and
the chunk's row 0 is step t - P, so row P is the action for step t. P, `past_horizon`, is
To - 1 by default (the chunk starts at the window's first step, Diffusion Policy's layout) and
may be anything from 0 (only future actions) to To - 1. `act` executes rows P .. P+exec_horizon-1
of a chunk, one per step, then predicts the next chunk.

Past-Token Prediction (Torne et al., "Learning Long-Context Diffusion Policies via Past-Token
Prediction", 2025) is this layout with a long window and P = To - 1: predicting the actions
already taken is an auxiliary target that makes a long-context policy model how its past and
future actions depend on each other. With `ptp_candidates` = N > 1, `act` also uses the past
rows for self-verification at test time: it samples N chunks per env and executes the one whose
past rows lie closest (L2, in normalised units) to the actions that env actually executed.

Adding a policy class is one file plus a registry line: a config dataclass derived from
`PolicyConfig`, and a `Policy` subclass with a keyword-only constructor
`(config, *, shapes, stats)` implementing `loss` and `predict_chunk`. Policies that act
differently (ACT's temporal ensembling, streaming diffusion, recurrent state) override `act`
and reuse `ObsHistory`, `ActionQueue`, `predict_envs` and the per-env noise generators.

Randomness at inference: stochastic policies draw sampling noise only through `sample_noise`
from `torch.Generator`s. In `act`, each env has its own generator, seeded from
(`config.seed`, the episode seed passed to `reset(..., seeds=...)`) or, without one, from
(`config.seed`, the env's index). An env's actions therefore depend only on its own
observations and seed, never on which other envs were batched with it, so evaluation results
do not depend on the number of parallel envs.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, get_args

import numpy as np
import torch
from torch import nn

from imitari.config import ConfigError
from imitari.policies.nn.image_encoders import ImageBackbone, ImageOptions, scale_images
from imitari.policies.nn.obs_encoder import ObsEncoder, make_obs_encoder
from imitari.policies.env_buffers import ActionQueue, ObsHistory, PastActions, TemporalEnsemble
from imitari.policies.normalizer import Normalizer, NormMode
from imitari.policies.phases import Phase
from imitari.policies.relative_points import AUTO as RELATIVE_AUTO
from imitari.policies.relative_points import KEY as RELATIVE_KEY
from imitari.policies.relative_points import RelativePoints

Generators = torch.Generator | Sequence[torch.Generator] | None
"""Noise source of a stochastic prediction: one generator for the batch, one per row, or None
for a fresh generator seeded with `config.seed` (so the call is reproducible)."""


@dataclass(frozen=True)
class Shapes:
    """Per-step shapes of the observation keys and of the action (no batch or time axis)."""

    obs: dict[str, tuple[int, ...]]
    action: tuple[int, ...]

    @property
    def action_dim(self) -> int:
        return math.prod(self.action)


@dataclass
class PolicyConfig:
    """Fields every chunked policy shares. Subclasses add their own, with working defaults."""

    obs_horizon: int = 2
    """To: observations in the window, the current one and To-1 before it."""
    action_horizon: int = 16
    """Ta: actions predicted per chunk (the prediction horizon), from step t - past_horizon."""
    exec_horizon: int = 8
    """Actions executed from each chunk before predicting the next (rows past_horizon ..)."""
    past_horizon: int | None = None
    """P: chunk rows before the current step, 0 .. obs_horizon-1; None means obs_horizon-1 (the
    chunk starts at the window's first step). P = obs_horizon-1 with a long window is Past-Token
    Prediction (Torne et al. 2025); 0 predicts only present and future actions."""
    ptp_candidates: int = 1
    """Chunks sampled per env at each prediction; with more than 1, `act` executes the one whose
    past rows best match the actions the env executed (PTP's test-time self-verification; for
    stochastic policies, needs past_horizon >= 1)."""
    ema: bool = False
    """Whether the trainer keeps an exponential moving average of the weights to evaluate with."""
    seed: int = 0
    """Seed of the sampling noise at inference (stochastic policies; deterministic ones ignore it)."""
    obs_range_floor: float = 0.01
    """Smallest half-width the "limits" normaliser stretches an observation dimension by, so
    near-constant dimensions (physics jitter) are not magnified into full-scale inputs."""
    obs_norm: NormMode = "limits"
    """Normalisation of every `obs.<key>` feature: "limits" ([min, max] -> [-1, 1]), "gaussian"
    (zero mean, unit std) or "none" (`Normalizer`; docs/generalisation.md compares them)."""
    action_norm: NormMode = "limits"
    """Normalisation of the `action` feature (the targets the network regresses or denoises)."""
    obs_noise: float = 0.0
    """Std of Gaussian noise added to the normalised low-dimensional observations in training
    only (augmentation against fitting a few demos' exact states; docs/generalisation.md)."""
    image_encoder: ImageBackbone = "cnn"
    """Backbone of each camera key (H, W, C): "cnn" (small, for a CPU) or "resnet18" (GroupNorm);
    both end in spatial-softmax keypoints (policies/nn/image_encoders.py)."""
    image_crop: float = 0.9
    """Fraction of each image side kept by the random crop in training (centre crop at
    inference); 1.0 disables cropping."""
    image_jitter: float = 0.0
    """Strength of the brightness/contrast jitter of camera frames in training (0: none)."""
    image_keypoints: int = 32
    """Spatial-softmax keypoints per camera."""
    image_features: int = 64
    """Features per camera and step that the keypoints are projected to."""
    temporal_ensemble: bool = False
    """ACT's temporal ensembling: predict a chunk every step and execute, per env, the weighted
    average of every chunk's prediction for the current step (`exec_horizon` is then unused)."""
    relative_points: str = ""
    """Pairwise differences of 3-D points of a low-dim key as extra inputs, "KEY:i,j,..." (first
    index of each point; Meta-World: "state:0,4,11,36"); "auto" for the points the dataset's task
    registers (none if it registers none); "" for none (policies/relative_points.py)."""
    relative_scale: float = 1.0
    """Factor on the `relative_points` differences (10 on metres: a 2 cm gap reads 0.2)."""
    ensemble_m: float = 0.01
    """m of the ensembling weights exp(-m * i), i = 0 the oldest prediction: a larger m trusts
    older predictions more (smoother), m = 0 averages them equally, a negative m trusts the
    newest most (closer to closed-loop)."""

    def __post_init__(self) -> None:
        for name in ("obs_horizon", "action_horizon", "exec_horizon"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1 (got {getattr(self, name)})")
        for name in ("obs_norm", "action_norm"):
            if getattr(self, name) not in get_args(NormMode):
                raise ConfigError(f"{name} must be one of {list(get_args(NormMode))} (got {getattr(self, name)!r})")
        if self.obs_range_floor < 0:
            raise ConfigError(f"obs_range_floor must be >= 0 (got {self.obs_range_floor})")
        if not 0 <= self.obs_noise < math.inf:
            raise ConfigError(f"obs_noise must be a finite number >= 0 (got {self.obs_noise})")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0 (got {self.seed})")
        if not math.isfinite(self.ensemble_m):
            raise ConfigError(f"ensemble_m must be a finite number (got {self.ensemble_m})")
        if self.temporal_ensemble and self.ptp_candidates > 1:
            raise ConfigError("temporal_ensemble averages every chunk's prediction; ptp_candidates > 1 selects one "
                              "chunk by its past rows: use one of the two")
        self.image_options  # noqa: B018 (ImageOptions checks the image_* fields)
        if self.relative_points and self.relative_points != RELATIVE_AUTO:
            RelativePoints(self.relative_points)
        if not 0 < self.relative_scale < math.inf:
            raise ConfigError(f"relative_scale must be a finite number > 0 (got {self.relative_scale})")
        if self.past_horizon is not None and not 0 <= self.past_horizon < self.obs_horizon:
            raise ConfigError(
                f"past_horizon must be in 0..obs_horizon-1 = 0..{self.obs_horizon - 1} (got {self.past_horizon}): "
                "the past rows are the steps of the observation window before the current one"
            )
        if self.ptp_candidates < 1:
            raise ConfigError(f"ptp_candidates must be >= 1 (got {self.ptp_candidates})")
        if self.ptp_candidates > 1 and self.past_rows == 0:
            raise ConfigError(
                f"ptp_candidates={self.ptp_candidates} selects chunks by their past rows, but past_horizon is 0; "
                "set past_horizon >= 1 (e.g. obs_horizon - 1) or ptp_candidates = 1"
            )
        executable = self.action_horizon - self.past_rows
        if self.exec_horizon > executable:
            formula = "action_horizon - " + ("obs_horizon + 1" if self.past_horizon is None else "past_horizon")
            raise ConfigError(
                f"exec_horizon ({self.exec_horizon}) must be <= {formula} = {executable}: "
                f"a chunk's row {self.past_rows} is the current step, so only rows "
                f"{self.past_rows}..{self.action_horizon - 1} lie in the future"
            )

    @property
    def image_options(self) -> ImageOptions:
        """The image fields, as the image encoders take them."""
        return ImageOptions(backbone=self.image_encoder, crop=self.image_crop, jitter=self.image_jitter,
                            keypoints=self.image_keypoints, features=self.image_features)

    @property
    def past_rows(self) -> int:
        """P: the chunk row of the current step (`past_horizon`, or obs_horizon-1 when None)."""
        return self.obs_horizon - 1 if self.past_horizon is None else self.past_horizon


class Policy(nn.Module, ABC):
    """Base class: normaliser, observation encoder, noise generators and the `act`/`reset` loop."""

    train_defaults: ClassVar[Mapping[str, Any]] = {"lr": 1e-4}
    """`TrainConfig` fields this policy trains with where the run config leaves them unset; a
    subclass lists only what differs from its bases (`all_train_defaults` merges them)."""
    takes_relative_points: ClassVar[bool] = True
    """Whether the policy accepts `relative_points` (its inputs go through the `ObsEncoder`)."""
    takes_cameras: ClassVar[bool] = True
    """Whether the policy accepts camera keys (through the image `ObsEncoder`); False for policies
    built around one observation layout, such as procedure cloning's maze maps."""
    variant_fields: ClassVar[frozenset[str]] = frozenset()
    """Config fields that pick another variant of the policy (a configuration of its own, e.g.
    BC's `head`): a task registers settings per variant (`TaskSpec.policy_defaults`, keyed by
    learners/config.py `variant_name`), so the settings of one never reach another."""
    retired_buffers: ClassVar[tuple[str, ...]] = ()
    """Buffers that checkpoints of older versions hold and this version dropped; ignored on load."""

    def __init__(self, config: PolicyConfig, *, shapes: Shapes, stats: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__()
        self.config = config
        self.shapes = shapes
        self.action_dim = shapes.action_dim
        self.image_keys = sorted(key for key, shape in shapes.obs.items() if len(shape) == 3)
        """Camera keys `(H, W, C)`: scaled to [0, 1] by `scale_images`, not by the normaliser."""
        features = {f"obs.{key}": shape for key, shape in sorted(shapes.obs.items()) if key not in self.image_keys}
        features["action"] = shapes.action
        modes: dict[str, NormMode] = {name: config.obs_norm for name in features}
        modes["action"] = config.action_norm
        floors = {name: config.obs_range_floor for name in features if name != "action"}
        self.normalizer = Normalizer(stats, modes=modes, floors=floors)
        for name, shape in features.items():
            stat_shape = tuple(self.normalizer.stat(name, "min").shape)
            try:
                fits = np.broadcast_shapes(stat_shape, shape) == tuple(shape)
            except ValueError:
                fits = False
            if not fits:
                raise ValueError(f"statistics of '{name}' have shape {stat_shape}, the feature has {shape}")
        encoded = dict(shapes.obs)
        self.relative: RelativePoints | None = None
        if config.relative_points == RELATIVE_AUTO:
            raise ConfigError("relative_points 'auto' stands for the points of the dataset's task and is resolved by "
                              "the trainer; to build a policy directly, name them as KEY:i,j,...")
        if config.relative_points:
            if not self.takes_relative_points:
                raise ConfigError(f"{type(self).__name__} does not take relative_points")
            self.relative = RelativePoints(config.relative_points)
            self.relative.check(shapes.obs)
            encoded[RELATIVE_KEY] = self.relative.shape
        self.obs_encoder: ObsEncoder = make_obs_encoder(encoded, obs_horizon=config.obs_horizon,
                                                        images=config.image_options)
        self._history: ObsHistory | None = None
        self._queue: ActionQueue | None = None
        self._past: PastActions | None = None
        self._ensemble: TemporalEnsemble | None = None
        self._generators: dict[int, torch.Generator] = {}
        if self.retired_buffers:
            self._register_load_state_dict_pre_hook(self._drop_retired_buffers)

    @classmethod
    def all_train_defaults(cls) -> dict[str, Any]:
        """`train_defaults` merged along the class hierarchy, the most derived class winning."""
        merged: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            merged.update(vars(klass).get("train_defaults", {}))
        return merged

    # --- what subclasses implement -------------------------------------------------------
    @abstractmethod
    def loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss on a batch of windows, and extra metrics to log.

        `batch`: `obs` `{key: (B, To, ...)}`, `action` `(B, Ta, *action)`, `action_is_pad`
        `(B, Ta)`, torch tensors in real units (the `WindowSampler` layout). Randomness (noise,
        masks) comes from torch's global generator, which the trainer seeds per step.
        """

    def training_phases(self) -> tuple[Phase, ...]:
        """The phases a learner trains this policy through, in order (`imitari.policies.phases`);
        one by default. Policies with several override this and `phase_loss`."""
        return (Phase("train"),)

    def phase_loss(self, batch: Mapping[str, Any], phase: str) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of training phase `phase` (a name from `training_phases`): `loss` by default."""
        names = [p.name for p in self.training_phases()]
        if phase not in names:
            raise ValueError(f"{type(self).__name__} has no training phase '{phase}' (phases: {', '.join(names)})")
        return self.loss(batch)

    def _drop_retired_buffers(self, state: dict[str, Any], prefix: str, *args: Any) -> None:
        """Load-state pre-hook: forget buffers older versions saved (`retired_buffers`), so their
        checkpoints still load."""
        for name in self.retired_buffers:
            state.pop(prefix + name, None)

    @abstractmethod
    def predict_chunk(self, obs: Mapping[str, torch.Tensor], *, generator: Generators = None) -> torch.Tensor:
        """Observation windows `{key: (B, To, ...)}` -> action chunks `(B, Ta, A)`, real units.

        Stochastic policies draw their noise with `sample_noise(..., generator)`; deterministic
        ones ignore `generator`.
        """

    # --- helpers for subclasses ----------------------------------------------------------
    def _reference(self) -> torch.Tensor:
        return next(itertools.chain(self.parameters(), self.buffers()))

    @property
    def device(self) -> torch.device:
        return self._reference().device

    @property
    def dtype(self) -> torch.dtype:
        return self._reference().dtype

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def normalize_obs(self, obs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each observation key in normalised units, in the module's dtype (camera frames scaled
        to [0, 1]); in training mode the low-dim keys plus `obs_noise` (torch's global
        generator, which the trainer seeds per step)."""
        out = {key: self.normalizer.normalize(f"obs.{key}", obs[key].to(self.dtype))
               for key in self.shapes.obs if key not in self.image_keys}
        if self.training and self.config.obs_noise > 0:
            out = {key: value + self.config.obs_noise * torch.randn_like(value) for key, value in out.items()}
        if self.relative is not None:
            out[RELATIVE_KEY] = self.config.relative_scale * self.relative(obs[self.relative.key].to(self.dtype))
        return {**out, **{key: scale_images(obs[key].to(self.dtype)) for key in self.image_keys}}

    def encode_obs(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Normalised, flattened observation window: `(B, obs_encoder.out_dim)`."""
        return self.obs_encoder(self.normalize_obs(obs))

    def normalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """`(B, Ta, *action)` real -> `(B, Ta, A)` normalised."""
        return self.normalizer.normalize("action", actions.to(self.dtype)).flatten(start_dim=2)

    def unnormalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """`(B, Ta, A)` normalised -> `(B, Ta, A)` real."""
        shaped = actions.unflatten(-1, self.shapes.action)
        return self.normalizer.unnormalize("action", shaped).flatten(start_dim=2)

    def noise_generator(self, generator: Generators) -> torch.Generator | list[torch.Generator]:
        """Resolve `predict_chunk`'s `generator`: None -> a fresh one seeded with `config.seed`."""
        if generator is None:
            return torch.Generator().manual_seed(self.config.seed)
        return generator if isinstance(generator, torch.Generator) else list(generator)

    def sample_noise(self, shape: Sequence[int], generator: Generators) -> torch.Tensor:
        """Standard normal noise of `shape` (batch first) on the module's device and dtype.

        With one generator per row, row i comes from generator i alone. Noise is drawn on the
        generators' device (CPU unless you pass others), in float32, so a seed gives the same
        samples on any device and dtype.
        """
        gen = self.noise_generator(generator)
        if isinstance(gen, torch.Generator):
            noise = torch.randn(tuple(shape), generator=gen, device=gen.device)
        else:
            if len(gen) != shape[0]:
                raise ValueError(f"{len(gen)} generators for a batch of {shape[0]}")
            noise = torch.cat([torch.randn((1, *shape[1:]), generator=g, device=g.device) for g in gen])
        return noise.to(self.device, self.dtype)

    # --- acting in environments ----------------------------------------------------------
    def _seeded_generator(self, *entropy: int) -> torch.Generator:
        seed = np.random.SeedSequence([self.config.seed, *entropy]).generate_state(1, np.uint64)[0]
        return torch.Generator().manual_seed(int(seed))

    def env_generator(self, env_id: int) -> torch.Generator:
        """Env `env_id`'s noise generator (seeded from its episode seed when `reset` got one)."""
        if env_id not in self._generators:
            self._generators[env_id] = self._seeded_generator(0, env_id)
        return self._generators[env_id]

    def predict_envs(self, env_ids: np.ndarray) -> np.ndarray:
        """Chunks `(len(env_ids), Ta, A)` float32 from these envs' histories, in one batch."""
        return self.predict_candidates(env_ids, 1)[:, 0]

    def predict_candidates(self, env_ids: np.ndarray, candidates: int) -> np.ndarray:
        """`candidates` chunks per env, `(len(env_ids), candidates, Ta, A)` float32, in one batch;
        each env's generator draws its candidates one after another."""
        assert self._history is not None, "predict_envs needs an observation history (call act)"
        device, dtype = self.device, self.dtype
        windows = self._history.windows(env_ids)
        generators = [self.env_generator(int(i)) for i in env_ids for _ in range(candidates)]
        with torch.inference_mode():
            window = {k: torch.as_tensor(np.repeat(v, candidates, 0)).to(device, dtype) for k, v in windows.items()}
            chunk = self.predict_chunk(window, generator=generators)
        return chunk.to(torch.float32).cpu().numpy().reshape(len(env_ids), candidates, *chunk.shape[1:])

    def select_candidates(self, candidates: np.ndarray, past: np.ndarray, count: np.ndarray) -> np.ndarray:
        """Of each env's candidate chunks `(E, N, Ta, A)`, the one whose past rows are closest
        (squared L2 in normalised units) to the env's executed actions `past` `(E, P, A)`, of
        which the last `count` `(E,)` are real (the others precede the episode); the first
        candidate where nothing was executed yet. Returns `(E, Ta, A)`."""
        rows = past.shape[1]

        def normalised(actions: np.ndarray) -> torch.Tensor:
            shaped = torch.as_tensor(actions).to(self.device, self.dtype).unflatten(-1, self.shapes.action)
            return self.normalizer.normalize("action", shaped).flatten(start_dim=actions.ndim - 1)

        with torch.inference_mode():
            error = ((normalised(candidates[:, :, :rows]) - normalised(past)[:, None]) ** 2).sum(-1)
            first_real = rows - torch.as_tensor(count, device=error.device)[:, None]
            real = torch.arange(rows, device=error.device) >= first_real
            best = (error * real[:, None]).sum(-1).argmin(1).cpu().numpy()
        return candidates[np.arange(len(candidates)), best]

    def _batch_size(self, obs: Mapping[str, np.ndarray]) -> int:
        missing = [key for key in self.shapes.obs if key not in obs]
        if missing:
            raise KeyError(f"observation lacks keys {missing} (the policy uses {sorted(self.shapes.obs)})")
        sizes = set()
        for key, shape in self.shapes.obs.items():
            got = np.shape(obs[key])
            if tuple(got[1:]) != tuple(shape):
                raise ValueError(f"obs['{key}'] has shape {got}; expected (N, {', '.join(map(str, shape))})")
            sizes.add(got[0])
        if len(sizes) != 1:
            raise ValueError(f"observation keys disagree on the number of envs: {sorted(sizes)}")
        return sizes.pop()

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """One step of N envs: `{key: (N, ...)}` numpy -> actions `(N, *action)` float32.

        Appends the observations to each env's history (an env's first observation after a
        reset fills its whole window), predicts chunks, batched, for the envs whose action queue
        is empty, and pops one action per env. If N differs from the previous call, every env's
        history and queue start afresh. Call `eval()` first to disable dropout. With
        `ptp_candidates` > 1 it also records the actions it returns, as each env's executed past
        (cleared by `reset`), and picks among the candidates by it (`select_candidates`). With
        `temporal_ensemble`, every env predicts a chunk every step and executes its ensemble's
        weighted average for the step instead.
        """
        cfg = self.config
        n = self._batch_size(obs)
        if cfg.temporal_ensemble:
            return self._act_ensembled(obs, n)
        if self._history is None or self._queue is None or self._history.n != n:
            self._history = ObsHistory(n, cfg.obs_horizon)
            self._queue = ActionQueue(n, cfg.exec_horizon, self.action_dim)
            self._past = PastActions(n, cfg.past_rows, self.action_dim) if cfg.ptp_candidates > 1 else None
        self._history.push({key: obs[key] for key in self.shapes.obs})
        need = self._queue.empty()
        if need.size:
            if self._past is None:
                chunks = self.predict_envs(need)
            else:
                candidates = self.predict_candidates(need, cfg.ptp_candidates)
                chunks = self.select_candidates(candidates, self._past.actions[need], self._past.count[need])
            self._queue.fill(need, chunks[:, cfg.past_rows : cfg.past_rows + cfg.exec_horizon])
        actions = self._queue.pop()
        if self._past is not None:
            self._past.push(actions)
        return actions.reshape(n, *self.shapes.action)

    def _act_ensembled(self, obs: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        cfg = self.config
        if self._history is None or self._ensemble is None or self._history.n != n:
            self._history = ObsHistory(n, cfg.obs_horizon)
            self._ensemble = TemporalEnsemble(n, cfg.action_horizon - cfg.past_rows, self.action_dim, m=cfg.ensemble_m)
        self._history.push({key: obs[key] for key in self.shapes.obs})
        self._ensemble.push(self.predict_envs(np.arange(n))[:, cfg.past_rows :])
        return self._ensemble.average().astype(np.float32).reshape(n, *self.shapes.action)

    def reset(
        self, env_ids: Sequence[int] | None = None, *, seeds: Sequence[int | None] | None = None, **kwargs: Any
    ) -> None:
        """Forget the history, queued actions and ensembled predictions of these envs (all if None).

        `seeds`, one per env id (or per env 0..len-1 when `env_ids` is None), are the episode
        seeds of `imitari.eval.rollout`'s reset handshake: they re-seed those envs' noise
        generators, so an episode's actions depend on its seed, not on its env slot. A None
        seed keeps the env's generator running. Other keyword arguments are ignored.
        `reset()` also returns every generator to its initial state; an env id beyond the
        current number of envs announces a new set of envs and clears every env's history.
        """
        if env_ids is None:
            self._history = self._queue = self._past = self._ensemble = None
            self._generators.clear()
            ids = list(range(len(seeds))) if seeds is not None else []
        else:
            ids = [int(i) for i in env_ids]
            if any(i < 0 for i in ids):
                raise ValueError(f"env ids must be >= 0 (got {ids})")
            if self._history is not None:
                if max(ids, default=-1) < self._history.n:
                    for buffer in (self._history, self._queue, self._past, self._ensemble):
                        if buffer is not None:
                            buffer.clear(ids)
                else:  # ids beyond the current envs: a new set of envs is starting
                    self._history = self._queue = self._past = self._ensemble = None
        if seeds is not None:
            if len(seeds) != len(ids):
                raise ValueError(f"{len(seeds)} seeds for {len(ids)} envs")
            for env_id, seed in zip(ids, seeds):
                if seed is not None:
                    self._generators[env_id] = self._seeded_generator(1, int(seed))
