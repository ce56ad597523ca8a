"""What `lightify verify` costs beyond the two training runs it makes.

Runs a fixture's original and converted script by hand (plain `python`, one
after the other, then both at once as verify does), then `lightify verify` for
the same steps (--steps above the scripts' own count, so every run trains to
its end), and prints the median wall and CPU times (CPU time, summed over
every process, is the steadier number on a shared machine). The overhead is
verify's time minus the two runs side by side by hand: conversion, the capture
harness, scratch folders and the report.

    .venv/bin/python bench/verify_overhead.py [--fixture main_function] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _timed(action: Callable[[], None], repeat: int) -> tuple[float, float]:
    """Median wall time and median CPU time (of every process it started) of ``action``."""
    walls, cpus = [], []
    for _ in range(repeat):
        cpu = _children_cpu()
        start = time.perf_counter()
        action()
        walls.append(time.perf_counter() - start)
        cpus.append(_children_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _children_cpu() -> float:
    """CPU seconds of every finished descendant, grandchildren included."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _start(script: Path, folder: Path) -> subprocess.Popen[bytes]:
    """Runs a script as a user would, in a fresh copy of its folder (outputs stay there)."""
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(script.parent, folder)
    return subprocess.Popen(
        [sys.executable, script.name],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _by_hand(scripts: list[Path], work: Path, together: bool) -> None:
    processes = []
    for index, script in enumerate(scripts):
        process = _start(script, work / f"hand{index}")
        if together:
            processes.append(process)
        elif process.wait():
            raise SystemExit(f"{script} failed")
    if any(process.wait() for process in processes):
        raise SystemExit("a script failed")


def _verify(before: Path, steps: int | None) -> None:
    command = [sys.executable, "-m", "lightify", "verify", str(before)]
    command += [] if steps is None else ["--steps", str(steps)]
    if subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode:
        raise SystemExit(f"lightify verify {before} did not exit 0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixture", default="main_function")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--steps", type=int, default=10_000, help="--steps for verify (above the scripts' own)"
    )
    options = parser.parse_args()
    before = FIXTURES / options.fixture / "before.py"
    scripts = [before, before.with_name("after.py")]
    with tempfile.TemporaryDirectory(prefix="verify-bench-") as temp:
        work = Path(temp)
        rows = [
            ("both scripts by hand, one after the other", _by_hand, (scripts, work, False)),
            ("both scripts by hand, side by side", _by_hand, (scripts, work, True)),
            ("lightify verify, same steps (--steps)", _verify, (before, options.steps)),
            ("lightify verify, default steps (2 epoch boundaries)", _verify, (before, None)),
        ]
        times = {
            label: _timed(lambda run=run, args=args: run(*args), options.repeat)
            for label, run, args in rows
        }
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"fixture {options.fixture}, median of {options.repeat}, {_cpus()} CPUs, load {load:.1f}")
    print(f"  {'':<52} {'wall':>8} {'cpu':>8}")
    for label, (wall, cpu) in times.items():
        print(f"  {label:<52} {wall:6.2f} s {cpu:6.2f} s")
    hand, verify = times[rows[1][0]], times[rows[2][0]]
    print(
        f"  {'verify overhead over the two runs side by side':<52} "
        f"{verify[0] - hand[0]:+6.2f} s {verify[1] - hand[1]:+6.2f} s"
    )


def _cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


if __name__ == "__main__":
    main()
