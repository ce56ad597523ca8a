"""Run scripts under the capture harness, each in a fresh subprocess and scratch folder.

A fresh interpreter per run means nothing (imported modules, RNG state, CUDA
context, hooks) leaks from lightify or from the other run. Each run gets its own
process group so that a timeout can kill the script and every child it started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lightify.verify.records import load_record

HARNESS = Path(__file__).with_name("harness.py")
# Never mirrored into a scratch folder: caches, and Lightning's default output
# folder, which a linked copy would let the run write into the user's folder.
_NOT_MIRRORED = frozenset({"__pycache__", "lightning_logs"})
_STDERR_TAIL = 4000


class RunTimeout(Exception):
    """The run took longer than its timeout; its whole process group was killed."""


class RunCrashed(Exception):
    """The script raised, exited with an error status, or ended without a record."""

    def __init__(self, message: str, stderr_tail: str, record: dict[str, Any] | None) -> None:
        super().__init__(f"{message}\n{stderr_tail}" if stderr_tail else message)
        self.stderr_tail = stderr_tail
        self.record = record
        """The run's record when the harness got to write one (its ``error`` says why)."""


def run_script(
    script: Path,
    args: list[str],
    out: Path,
    *,
    cwd: Path,
    seed: int = 0,
    max_steps: int | None = None,
    device: str = "cpu",
    timeout: float = 120,
    python: str = sys.executable,
) -> dict[str, Any]:
    """Runs ``script args`` under the harness in a fresh subprocess and returns its record.

    Raises `RunTimeout` after ``timeout`` seconds (the run and its children are
    killed) and `RunCrashed` when the run did not end well.
    """
    out = out.resolve()  # the harness runs elsewhere (cwd)
    command = [python, str(HARNESS), "--out", str(out), "--seed", str(seed), "--device", device]
    if max_steps is not None:
        command += ["--max-steps", str(max_steps)]
    command += [str(script.resolve()), *args]
    # str/bytes hashes are salted per process: fix the salt, or set iteration
    # order (a vocabulary built from a set, say) differs between the two runs.
    env = {**os.environ, "PYTHONHASHSEED": str(seed % 2**32)}
    out.unlink(missing_ok=True)
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RunTimeout(f"{script} did not finish within {timeout:g} s") from None
        finally:
            _kill_group(process)
        record = load_record(out) if out.exists() else None
        if returncode != 0 or record is None:
            stderr.seek(0)
            tail = stderr.read()[-_STDERR_TAIL:].decode(errors="replace")
            why = f"exit code {returncode}" if returncode else "exited without a record (os._exit?)"
            raise RunCrashed(f"{script} failed: {why}", tail, record)
    return record


def run_pair(
    original: Path,
    converted: Path,
    args: list[str],
    workdir: Path,
    *,
    inputs: Path | None = None,
    **kw: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Runs the original and the converted script side by side; returns both records.

    Each runs in its own fresh scratch folder (``workdir/original``,
    ``workdir/converted``) that mirrors ``inputs``, by default the original
    script's folder: both read the same inputs (wherever the converted script
    was written) but neither sees the other's outputs. ``kw`` goes to `run_script`.
    """
    folder = (inputs or original.parent).resolve()
    jobs = []
    for name, script in (("original", original), ("converted", converted)):
        scratch = _mirror(script, folder, workdir / name)
        out = workdir / f"{name}.record.json"
        jobs.append((scratch / script.name, out, scratch))
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(run_script, script, args, out, cwd=scratch, **kw)
            for script, out, scratch in jobs
        ]
        records = [future.result() for future in futures]
    return records[0], records[1]


def _mirror(script: Path, folder: Path, scratch: Path) -> Path:
    """Makes ``scratch`` a fresh mirror of ``folder``: the script copied in, the rest linked."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    inside = scratch.resolve()
    for entry in folder.iterdir():
        if entry.name == script.name or entry.name in _NOT_MIRRORED:
            continue
        if inside.is_relative_to(entry.resolve()):  # the scratch area lives in this folder
            continue
        (scratch / entry.name).symlink_to(entry.resolve())
    shutil.copy2(script, scratch / script.name)
    return scratch


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kills whatever is left of the run's process group, then reaps the harness."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # group already gone
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
