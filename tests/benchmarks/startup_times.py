"""Start-up times of the everyday commands: ``python tests/benchmarks/startup_times.py [N]``.

Runs each command N times (default 5) in a fresh interpreter and prints the fastest wall
time, the CPU time (user + sys) of that run, and ``python -c pass`` as the floor, with the
load average: on a busy machine compare the CPU column and the gap to the floor.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [["-c", "pass"], ["-m", "dpbench.cli", "--version"], ["-m", "dpbench.cli", "--help"],
            ["-m", "dpbench.cli", "list"], ["-m", "dpbench.cli", "list", "--json"],
            ["-m", "dpbench.cli", "plugins"], ["-m", "dpbench.cli", "data", "describe", "lorenz"]]


def once(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(repeats: int = 5) -> None:
    env = dict(os.environ)
    paths = [str(ROOT), *(str(p) for p in sorted((ROOT / "plugins").glob("*/src")))]
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores, best of {repeats}")
    for args in COMMANDS:
        wall, cpu = min(once(args, env) for _ in range(repeats))
        print(f"{' '.join(args):45s} wall {wall:5.2f} s   cpu {cpu:5.2f} s")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
