"""Worker processes die with their parent, however it dies (collect's and eval's env workers)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PARENTS = {
    "collect": """
import multiprocessing, tempfile, threading, time
from imitari.envs.collect import collect
out = tempfile.mkdtemp() + "/data"
threading.Thread(target=collect, args=("builtin/reach", out), kwargs={"episodes": 10_000, "workers": 2, "progress": False},
                 daemon=True).start()
workers = []
while len(workers) < 2:
    time.sleep(0.05)
    workers = [p for p in multiprocessing.active_children() if p.name.startswith("imitari-env")]
print(" ".join(str(p.pid) for p in workers), flush=True)
time.sleep(60)
""",
    "eval": """
import time
from imitari.rollouts.envs import WorkerPool
pool = WorkerPool("builtin/reach", 2, 2, render=False)
print(" ".join(str(p.pid) for p in pool.procs), flush=True)
time.sleep(60)
""",
}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has exited, it only waits to be reaped


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("kind", sorted(PARENTS))
def test_workers_die_when_their_parent_is_killed(kind: str) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENTS[kind]], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 5.0
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if _alive(p)], "workers outlived their SIGKILLed parent"
