"""Env slots stepped in this process or in worker processes: the engine's stepping half.

`EnvSlots` owns the envs of some slots and steps them where it lives (the caller's process or
a worker's); `WorkerPool` spreads slots over worker processes (slot i in worker i % workers),
stepping only the slots asked for. Replies carry the full transition the engine streams: the
observation (a copy), the reward, terminated and truncated apart, the kept `info` (`success`,
the behaviour label and the score; arbitrary info may not pickle) and a frame on request. A worker's
exception is re-raised here as `EnvWorkerError` carrying its traceback; a worker that dies is
detected within a second, and every worker dies with the process that started it.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import traceback
from collections.abc import Iterable
from multiprocessing.connection import Connection
from typing import Any, Protocol

import numpy as np

from imitari.eval.metrics import BEHAVIOUR_KEY, SCORE_KEY
from imitari.eval.video import quiet_render_failure
from imitari.workers import die_with_parent


class TaskLike(Protocol):
    """What `evaluate` needs of a task: `imitari.envs.registry.TaskSpec`, or a stand-in."""

    fps: float

    def make(self, *, render: bool = False) -> Any: ...


class EnvWorkerError(RuntimeError):
    """An env worker process raised or died; the message carries its traceback."""


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


class EnvSlots:
    """The envs of some slots, stepped in the current process (the caller's or a worker's).

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
        """Step each (slot, action, want_frame); returns (obs, reward, terminated, truncated, info, frame)."""
        replies = []
        for slot, action, want_frame in requests:
            obs, reward, terminated, truncated, info = self.envs[slot].step(action)
            kept = {"success": bool(info.get("success", False))}
            for key in (BEHAVIOUR_KEY, SCORE_KEY):
                if info.get(key) is not None:
                    kept[key] = info[key]
            frame = self._frame(slot, want_frame)
            replies.append(({k: np.array(v) for k, v in obs.items()}, float(reward), bool(terminated), bool(truncated),
                            kept, frame))
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
        envs = EnvSlots(resolve_task(task), slots, render=render)
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


class WorkerPool:
    """`EnvSlots` spread over worker processes: slot i lives in worker i % workers."""

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


def default_workers(num_envs: int) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(num_envs, cpus)
