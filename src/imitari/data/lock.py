"""The writer lock of a dataset, a training run or a bench: one process writes at a time, readers never wait.

Every writer (collect, split, any append or filter-key commit; a training run, which writes
checkpoints and metrics into its run directory; a bench, which trains and tables into its
output folder) holds an advisory `fcntl.flock` on `<directory>/writer.lock` while it writes.
The lock is taken without waiting, so a second writer fails at once with a message naming the
holder (pid, command, since when), recorded in the lock file by whoever holds it. The kernel
drops the lock when its holder exits, however it exits, so a killed writer never leaves a stale
lock behind. Readers do not touch the file.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import IO

from imitari.config import ConfigError

LOCK_NAME = "writer.lock"


class LockHeld(Exception):
    """Another process holds the directory's writer lock; the message names it."""


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"pid {info['pid']} ({info['command']}) since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return "another process (it has not recorded who it is yet)"


class WriterLock:
    """An acquired writer lock; `release()` (or the process ending) gives it up."""

    def __init__(self, root: Path, *, what: str = "dataset") -> None:
        """Take the lock of the directory `root` (a `what`: dataset, run, bench) now, or raise LockHeld."""
        self.path = Path(root) / LOCK_NAME
        self._file: IO[str] | None = open(self.path, "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = _holder(self._file.read())
            self._file.close()
            self._file = None
            raise LockHeld(f"{root}: another writer is using this {what}: {holder}; wait for it to finish") from None
        except BaseException:
            self._file.close()
            raise
        self._file.seek(0)
        self._file.truncate()
        command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"
        since = datetime.now().astimezone().isoformat(timespec="seconds")
        self._file.write(json.dumps({"pid": os.getpid(), "command": command, "since": since}))
        self._file.flush()

    @property
    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_out(root: Path, *, what: str) -> WriterLock:
    """The writer lock of an output folder the user named with --out (a run, a bench), made if
    missing; a ConfigError (the CLI's one-line error) naming the holder if another process has it."""
    Path(root).mkdir(parents=True, exist_ok=True)
    try:
        return WriterLock(root, what=what)
    except LockHeld as e:
        raise ConfigError(f"{e}, or pick another --out") from None
