"""Vectorised policy rollouts on evaluation seeds.

`evaluate` keeps `num_envs` episodes in flight. Env slot i runs one episode at a time; when it
ends, the slot is reset with the next unused seed, so every seed is played exactly once, and
results come back in seed order. For a policy whose action for a row depends only on that
row's observations since its reset, the result of a seed does not depend on `num_envs`,
`workers` or which slot played it.

The policy is called once per step with the observations of *all* slots stacked on a leading
axis of length `num_envs`, in slot order: a slot whose episode ended keeps its last
observation and its action is ignored. Row i therefore always belongs to slot i, which is how
the policy's per-env history (`policy.reset(env_ids=[i])`) is indexed.

Seed/reset handshake: before the first step of every episode, `evaluate` calls
`policy.reset(env_ids=[...slots...], seeds=[...their new seeds...])` when the policy's `reset`
accepts a `seeds` keyword (or `**kwargs`), and `policy.reset(env_ids=[...])` otherwise, so
learned policies keep the plain `reset(env_ids)` signature of docs/architecture.md while the
expert adapter (`expert_policy`), whose scripted experts need `reset(seed=s)`, gets the seed
of each new episode.

Env stepping runs in this process when `workers == 1`, and otherwise in a small pool of worker
processes (each owning a fixed subset of slots, stepping only the slots still running). A
worker's exception is re-raised here as `EnvWorkerError` carrying its traceback; a worker that
dies is detected within a second, never waited on forever.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import multiprocessing as mp
import os
import signal
import sys
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from imitari.eval.metrics import BEHAVIOUR_KEY, EpisodeResult
from imitari.eval.video import quiet_render_failure
from imitari.workers import die_with_parent

EVAL_SEED_START = 100_000
"""Evaluation seeds start here; demonstrations use 0..N-1 (docs/architecture.md)."""


class TaskLike(Protocol):
    """What `evaluate` needs of a task: `imitari.envs.registry.TaskSpec`, or a stand-in."""

    fps: float

    def make(self, *, render: bool = False) -> Any: ...


class Policy(Protocol):
    """Anything that maps a batch of observations to a batch of actions."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...

    def reset(self, env_ids: Sequence[int] | None = None) -> None: ...


@dataclass
class Video:
    """Frames of one evaluation episode (the reset frame, then one per step)."""

    seed: int
    frames: list[np.ndarray]
    fps: float


class EnvWorkerError(RuntimeError):
    """An env worker process raised or died; the message carries its traceback."""


def eval_seeds(n: int, *, exclude: Iterable[int | None] = (), start: int = EVAL_SEED_START) -> list[int]:
    """The first `n` seeds from `start` up that are not in `exclude` (e.g. the demo seeds)."""
    excluded = set(exclude)
    return list(itertools.islice((s for s in itertools.count(start) if s not in excluded), n))


def resolve_task(task: str | TaskLike) -> TaskLike:
    """A registered task by name, or the given task object unchanged."""
    if isinstance(task, str):
        from imitari.envs.registry import get_task

        return get_task(task)
    return task


def _reason(exc: BaseException) -> str:
    """An exception as one short line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class _Envs:
    """The envs of some slots, stepped in the current process (the caller's or a worker's).

    Replies carry only what `evaluate` records: a copy of the observation, the reward, whether
    the episode ended, `success` and the behaviour label from `info`, and a frame on request.
    A failing `render` is remembered in `render_error` and never retried.
    """

    def __init__(self, spec: TaskLike, slots: Iterable[int], *, render: bool) -> None:
        self.render_error: str | None = None
        self.envs: dict[int, Any] = {slot: self._make(spec, render) for slot in slots}

    def _make(self, spec: TaskLike, render: bool) -> Any:
        if render and self.render_error is None:
            try:
                return spec.make(render=True)
            except Exception as exc:  # no GL context, missing libosmesa6, ...
                self.render_error = _reason(exc)
        return spec.make(render=False)

    def _frame(self, slot: int, wanted: bool) -> np.ndarray | None:
        if not wanted or self.render_error is not None:
            return None
        with quiet_render_failure():
            try:
                frame = self.envs[slot].render()
                if frame is None:
                    raise RuntimeError("env.render() returned None")
                return np.array(frame, dtype=np.uint8)
            except Exception as exc:
                self.render_error = _reason(exc)
                return None

    def reset(self, requests: list[tuple[int, int, bool]]) -> list[tuple[dict[str, np.ndarray], np.ndarray | None]]:
        """Reset each (slot, seed, want_frame); returns (obs, frame) per request."""
        replies = []
        for slot, seed, want_frame in requests:
            obs, _ = self.envs[slot].reset(seed=seed)
            replies.append(({k: np.array(v) for k, v in obs.items()}, self._frame(slot, want_frame)))
        return replies

    def step(self, requests: list[tuple[int, np.ndarray, bool]]) -> list[tuple[Any, ...]]:
        """Step each (slot, action, want_frame); returns (obs, reward, done, info, frame)."""
        replies = []
        for slot, action, want_frame in requests:
            obs, reward, terminated, truncated, info = self.envs[slot].step(action)
            kept = {"success": bool(info.get("success", False))}
            if info.get(BEHAVIOUR_KEY) is not None:
                kept[BEHAVIOUR_KEY] = info[BEHAVIOUR_KEY]
            frame = self._frame(slot, want_frame)
            replies.append(({k: np.array(v) for k, v in obs.items()}, float(reward), terminated or truncated, kept, frame))
        return replies

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


def _worker_main(conn: Connection, task: str | TaskLike, slots: list[int], render: bool, starter: int) -> None:
    """Serve ("reset" | "step", requests) until "close"; reply ("ok"|"error", payload, render_error).
    Dies with process `starter`, the evaluator, however that ends."""
    die_with_parent(starter)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        envs = _Envs(resolve_task(task), slots, render=render)
    except Exception:
        conn.send(("error", traceback.format_exc(), None))
        return
    conn.send(("ok", None, envs.render_error))
    try:
        while True:
            command, requests = conn.recv()
            if command == "close":
                break
            try:
                conn.send(("ok", getattr(envs, command)(requests), envs.render_error))
            except Exception:
                conn.send(("error", traceback.format_exc(), envs.render_error))
    finally:
        envs.close()


class _WorkerPool:
    """`_Envs` spread over worker processes: slot i lives in worker i % workers."""

    def __init__(self, task: str | TaskLike, num_envs: int, workers: int, *, render: bool) -> None:
        methods = mp.get_all_start_methods()
        ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
        self.workers = workers
        self.render_error: str | None = None
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        try:
            for w in range(workers):
                parent, child = ctx.Pipe()
                slots = list(range(w, num_envs, workers))
                proc = ctx.Process(target=_worker_main, args=(child, task, slots, render, os.getpid()), daemon=True, name=f"imitari-env-{w}")
                proc.start()
                child.close()
                self.conns.append(parent)
                self.procs.append(proc)
            for w in range(workers):
                self._receive(w)
        except Exception:
            self.close()
            raise

    def _receive(self, w: int) -> Any:
        conn, proc = self.conns[w], self.procs[w]
        try:
            while not conn.poll(1.0):
                if not proc.is_alive():
                    raise EOFError  # it died without replying
            status, payload, render_error = conn.recv()
        except EOFError:
            proc.join(timeout=1.0)
            raise EnvWorkerError(f"env worker {w} died (exit code {proc.exitcode})") from None
        self.render_error = self.render_error or render_error
        if status == "error":
            raise EnvWorkerError(f"env worker {w} failed:\n{payload}")
        return payload

    def _call(self, command: str, requests: list[tuple[Any, ...]]) -> list[Any]:
        """Send each worker its share of the requests, then gather replies in request order."""
        shares: list[list[int]] = [[] for _ in range(self.workers)]
        for index, request in enumerate(requests):
            shares[request[0] % self.workers].append(index)
        for w, indices in enumerate(shares):
            if indices:
                self.conns[w].send((command, [requests[i] for i in indices]))
        replies: list[Any] = [None] * len(requests)
        for w, indices in enumerate(shares):
            if indices:
                for index, reply in zip(indices, self._receive(w)):
                    replies[index] = reply
        return replies

    def reset(self, requests: list[tuple[int, int, bool]]) -> list[Any]:
        return self._call("reset", requests)

    def step(self, requests: list[tuple[int, np.ndarray, bool]]) -> list[Any]:
        return self._call("step", requests)

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(("close", None))
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        for conn in self.conns:
            conn.close()


def _default_workers(num_envs: int) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(num_envs, cpus)


def _accepts_seeds(policy: Policy) -> bool:
    """Whether `policy.reset` takes the optional `seeds` keyword of the handshake."""
    try:
        params = inspect.signature(policy.reset).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "seeds" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _no_grad(policy: Policy) -> contextlib.AbstractContextManager[Any]:
    """torch.no_grad() for torch modules, without importing torch for anything else."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(policy, torch.nn.Module):
        return torch.no_grad()
    return contextlib.nullcontext()


@dataclass
class _Slot:
    """One env slot: the episode it plays (index into the seeds, -1 when idle) and its totals."""

    episode: int = -1
    obs: dict[str, np.ndarray] = field(default_factory=dict)
    return_: float = 0.0
    length: int = 0
    success: bool = False


class _Rollout:
    """The bookkeeping of one `evaluate` call: slots, results by episode, frames of recorded ones."""

    def __init__(self, policy: Policy, pool: _Envs | _WorkerPool, seeds: list[int], *, num_envs: int,
                 max_steps: int | None, video_episodes: int, bar: Any) -> None:
        self.policy, self.pool, self.seeds, self.max_steps, self.bar = policy, pool, seeds, max_steps, bar
        self.pass_seeds = _accepts_seeds(policy)
        self.slots = [_Slot() for _ in range(num_envs)]
        self.next_episode = 0
        self.results: dict[int, EpisodeResult] = {}
        self.frames: dict[int, list[np.ndarray]] = {e: [] for e in range(video_episodes)}

    def _recording(self, i: int) -> bool:
        return self.slots[i].episode in self.frames

    def _keep_frames(self, ids: list[int], frames: list[np.ndarray | None]) -> None:
        if self.frames and self.pool.render_error is not None:
            tqdm.write(f"videos skipped: {self.pool.render_error}")
            self.frames = {}
        for i, frame in zip(ids, frames):
            if frame is not None and self.frames:
                self.frames[self.slots[i].episode].append(frame)

    def start(self, ids: list[int]) -> None:
        """Give each slot the next unused seed (or leave it idle); reset its env and the policy."""
        started, seeds = [], []
        for i in ids:
            episode = self.next_episode if self.next_episode < len(self.seeds) else -1
            self.slots[i] = _Slot(episode=episode, obs=self.slots[i].obs)
            if episode >= 0:
                self.next_episode += 1
                started.append(i)
                seeds.append(self.seeds[episode])
        if not started:
            return
        replies = self.pool.reset([(i, seed, self._recording(i)) for i, seed in zip(started, seeds)])
        for i, (obs, _) in zip(started, replies):
            self.slots[i].obs = obs
        self._keep_frames(started, [frame for _, frame in replies])
        if self.pass_seeds:
            self.policy.reset(env_ids=started, seeds=seeds)  # type: ignore[call-arg]
        else:
            self.policy.reset(env_ids=started)

    def step(self) -> None:
        """One policy call on all slots, one env step on the running ones."""
        n = len(self.slots)
        batch = {key: np.stack([slot.obs[key] for slot in self.slots]) for key in self.slots[0].obs}
        actions = np.asarray(self.policy.act(batch))
        if actions.ndim < 1 or actions.shape[0] != n:
            raise ValueError(f"policy.act returned actions of shape {actions.shape} for {n} observations")
        running = [i for i, slot in enumerate(self.slots) if slot.episode >= 0]
        broken = [i for i in running if not np.isfinite(actions[i]).all()]
        if broken:
            slot = self.slots[broken[0]]
            raise FloatingPointError(
                f"the policy returned NaN or inf actions for {len(broken)} of {len(running)} envs (first: seed "
                f"{self.seeds[slot.episode]}, step {slot.length}); its weights or inputs are not finite"
            )
        replies = self.pool.step([(i, actions[i], self._recording(i)) for i in running])
        finished = []
        for i, (obs, reward, done, info, _) in zip(running, replies):
            slot = self.slots[i]
            slot.obs, slot.return_, slot.length = obs, slot.return_ + reward, slot.length + 1
            slot.success |= info["success"]
            if done or (self.max_steps is not None and slot.length >= self.max_steps):
                finished.append(i)
                self.results[slot.episode] = EpisodeResult(
                    seed=self.seeds[slot.episode], success=slot.success, return_=slot.return_,
                    length=slot.length, info={k: v for k, v in info.items() if k != "success"},
                )
        self._keep_frames(running, [reply[-1] for reply in replies])
        if finished:
            self.bar.update(len(finished))
            self.bar.set_postfix_str(f"success {sum(r.success for r in self.results.values())}/{len(self.results)}")
            self.start(finished)

    def running(self) -> bool:
        return any(slot.episode >= 0 for slot in self.slots)


def evaluate(
    policy: Policy,
    task: str | TaskLike,
    *,
    seeds: Sequence[int],
    num_envs: int = 8,
    workers: int | None = None,
    video_episodes: int = 0,
    progress: bool = True,
) -> tuple[list[EpisodeResult], list[Video]]:
    """Roll `policy` out once on each seed; returns per-seed results (in seed order) and videos.

    task: a registered task name, or a task object with `make(render=...)` and `fps` (and
        optionally `max_steps`, enforced as a step cap); with workers it must be picklable.
    num_envs: episodes in flight (capped at the number of seeds); the policy sees this batch.
    workers: env processes; None uses one per CPU (at most num_envs); 1 stays in-process.
    video_episodes: render the first this many episodes (in seed order) at every step; if
        rendering fails, one line `videos skipped: <reason>` is printed and no videos return.
    """
    seeds = [int(s) for s in seeds]
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1 (got {num_envs})")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1 or None (got {workers})")
    if not seeds:
        return [], []
    spec = resolve_task(task)
    num_envs = min(num_envs, len(seeds))
    workers = min(num_envs, _default_workers(num_envs) if workers is None else workers)
    video_episodes = min(max(video_episodes, 0), len(seeds))
    render = video_episodes > 0
    name = task if isinstance(task, str) else type(task).__name__
    pool = _Envs(spec, range(num_envs), render=render) if workers == 1 else _WorkerPool(task, num_envs, workers, render=render)
    bar = tqdm(total=len(seeds), desc=f"eval {name}", unit="ep", disable=not progress, leave=False)
    try:
        rollout = _Rollout(policy, pool, seeds, num_envs=num_envs, max_steps=getattr(spec, "max_steps", None),
                           video_episodes=video_episodes, bar=bar)
        with _no_grad(policy):
            rollout.start(list(range(num_envs)))
            while rollout.running():
                rollout.step()
    finally:
        bar.close()
        pool.close()
    results = [rollout.results[e] for e in range(len(seeds))]
    videos = [Video(seed=seeds[e], frames=f, fps=float(spec.fps)) for e, f in sorted(rollout.frames.items())]
    return results, videos


class ExpertPolicy:
    """A task's scripted expert behind the policy interface, one expert per env slot.

    Experts map an observation to an action, so they run in the calling process on the
    observations `evaluate` passes, wherever the envs are stepped. Each is built by
    `spec.make_expert(env)` on a local env copy that is never stepped, and is reset with the
    seed of each new episode through the `seeds` keyword of the reset handshake.
    """

    def __init__(self, task: str | TaskLike) -> None:
        self.spec = resolve_task(task)
        if getattr(self.spec, "make_expert", None) is None:
            raise ValueError(f"task {task!r} has no expert to evaluate")
        self._experts: list[Any] = []

    def _expert(self, slot: int) -> Any:
        while len(self._experts) <= slot:
            self._experts.append(self.spec.make_expert(self.spec.make(render=False)))  # type: ignore[attr-defined]
        return self._experts[slot]

    def reset(self, env_ids: Sequence[int] | None = None, *, seeds: Sequence[int | None] | None = None) -> None:
        """Reset the experts of these slots (all if None) for episodes with these seeds."""
        ids = list(range(len(self._experts)) if env_ids is None else env_ids)
        episode_seeds = list(seeds) if seeds is not None else [None] * len(ids)
        if len(episode_seeds) != len(ids):
            raise ValueError(f"{len(ids)} env ids but {len(episode_seeds)} seeds")
        for slot, seed in zip(ids, episode_seeds):
            self._expert(slot).reset(seed=seed)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """One action per row of the observation batch, from that slot's expert."""
        n = len(next(iter(obs.values())))
        return np.stack([np.asarray(self._expert(i)({k: v[i] for k, v in obs.items()})) for i in range(n)])


def expert_policy(task: str | TaskLike) -> ExpertPolicy:
    """The task's expert as a policy, to evaluate it on the same seeds as a learned policy."""
    return ExpertPolicy(task)
