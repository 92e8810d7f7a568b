"""Training speed with OpenMP's waiting policies, on an idle machine and beside busy processes.

torch's OpenMP threads that spin while they wait stall when other processes hold the cores (a
training beside another job fell to a few updates/s), which is why `import imitari` sets
`OMP_WAIT_POLICY=PASSIVE` unless the user set it. This times BC updates in a fresh process per
case (the policy must be set before torch loads): 2 threads spinning (`ACTIVE`), 2 threads
waiting passively (imitari's default), and 1 thread; first on the machine as it is, then with
`--busy` processes spinning on the CPU. Each figure is a ratio to the passive 2-thread case
measured in the same run, idle and busy each.

    python benchmarks/threads_under_load.py [--busy 2] [--updates 400] [--policy bc] [--big]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {"2 threads, ACTIVE": ("ACTIVE", 2), "2 threads, PASSIVE (default)": ("PASSIVE", 2),
         "1 thread, PASSIVE": ("PASSIVE", 1)}
BASELINE = "2 threads, PASSIVE (default)"


def spin(stop: float) -> None:
    """Keep one core busy until `stop` (time.time())."""
    x = 0
    while time.time() < stop:
        x += 1


def updates_per_second(data: Path, policy: str, updates: int, wait: str, threads: int, big: bool) -> float:
    out = Path(tempfile.mkdtemp()) / "run"
    extra = [] if big else ["--task_defaults", "false"]
    cmd = [sys.executable, "-m", "imitari", "train", "--data", str(data), "--policy", policy, "--steps",
           str(updates), "--threads", str(threads), "--out", str(out), "--progress", "false", *extra]
    env = {**os.environ, "OMP_WAIT_POLICY": wait}
    text = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900).stdout
    match = re.search(r"([0-9.]+) updates/s", text)
    if match is None:
        raise SystemExit(f"no rate in the output of {' '.join(cmd)}:\n{text}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="spinning processes in the busy half")
    parser.add_argument("--updates", type=int, default=400)
    parser.add_argument("--policy", default="bc")
    parser.add_argument("--big", action="store_true", help="Meta-World data's BC settings (1024x1024), not the generic")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "demos"
        subprocess.run([sys.executable, "-m", "imitari", "collect", "--env", "metaworld/reach", "--episodes", "4",
                        "--out", str(data)], check=True, capture_output=True)
        for label, busy in (("idle", 0), (f"{args.busy} busy processes", args.busy)):
            spinners = [multiprocessing.Process(target=spin, args=(time.time() + 3600,)) for _ in range(busy)]
            for p in spinners:
                p.start()
            try:
                rates = {case: updates_per_second(data, args.policy, args.updates, wait, threads, args.big)
                         for case, (wait, threads) in CASES.items()}
            finally:
                for p in spinners:
                    p.terminate()
            for case, rate in rates.items():
                print(f"{label:>18} | {case:<30} {rate:8.1f} updates/s = {rate / rates[BASELINE]:.2f}x the default",
                      flush=True)


if __name__ == "__main__":
    main()
