"""Worker processes that never outlive the process that started them.

A collector or evaluator killed with SIGKILL cannot shut its workers down, so each worker
asks the kernel to kill it when its direct parent exits (Linux `prctl(PR_SET_PDEATHSIG)`).
Where that is unavailable, or the direct parent is not the starter (a forkserver's child),
a daemon thread polls the starter's pid and exits the worker once it is gone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1


def _kill_with_parent() -> bool:
    """Ask the kernel for SIGKILL when the direct parent exits; False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _watch(starter: int, interval: float) -> None:
    while _alive(starter):
        time.sleep(interval)
    os._exit(1)


def die_with_parent(starter: int, *, interval: float = 0.5) -> None:
    """Call first thing in a worker, with `starter` the pid of the process that started it
    (`os.getpid()` there): the worker dies as soon as that process is gone, even if it was
    gone already."""
    if _kill_with_parent() and os.getppid() == starter:
        return
    threading.Thread(target=_watch, args=(starter, interval), daemon=True, name="imitari-starter-watch").start()
