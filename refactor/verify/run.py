"""Run scripts under the capture harness, each in a fresh subprocess and scratch folder.

A fresh interpreter per run means nothing (imported modules, RNG state, CUDA
context, hooks) leaks from lightify or from the other run. Each run gets its own
process group so that a timeout can kill the script and every child it started.
`start_run` and `start_pair` return at once, so a caller can show progress and
stop the runs (Ctrl-C); `run_script` and `run_pair` wait for them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

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


@dataclass
class Run:
    """One harness subprocess: poll it, kill it, then collect its record with `result`."""

    script: Path
    out: Path
    cwd: Path
    timeout: float
    process: subprocess.Popen[bytes]
    stderr: IO[bytes]
    progress: Path | None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    timed_out: bool = False
    stderr_tail: str = ""

    def poll(self) -> bool:
        """Whether the run is over; kills it, and its children, once past its timeout."""
        if self.ended is None:
            if self.process.poll() is not None:
                self.kill()
            elif time.monotonic() - self.started > self.timeout:
                self.timed_out = True
                self.kill()
        return self.ended is not None

    def wait(self) -> dict[str, Any]:
        """Waits for the end of the run (at most its timeout) and returns `result`."""
        try:
            self.process.wait(timeout=max(0.0, self.started + self.timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.timed_out = True
        self.kill()
        return self.result()

    def kill(self) -> None:
        """Ends the run now (whatever is left of its process group); harmless once ended."""
        if self.ended is not None:
            return
        _kill_group(self.process)
        self.ended = time.monotonic()
        self.stderr.seek(0)
        self.stderr_tail = self.stderr.read()[-_STDERR_TAIL:].decode(errors="replace")
        self.stderr.close()

    @property
    def wall_s(self) -> float:
        """Seconds the run took (so far, while it runs)."""
        return (self.ended or time.monotonic()) - self.started

    def steps_done(self) -> int | None:
        """Optimizer steps made so far, as the harness last reported them."""
        if self.progress is None:
            return None
        try:
            return int(self.progress.read_text())
        except (OSError, ValueError):  # not written yet, or caught mid-write
            return None

    def result(self) -> dict[str, Any]:
        """The record of an ended run; raises `RunTimeout` or `RunCrashed` if it ended badly."""
        if self.timed_out:
            raise RunTimeout(f"{self.script} did not finish within {self.timeout:g} s")
        returncode = self.process.returncode
        record = load_record(self.out) if self.out.exists() else None
        if returncode != 0 or record is None:
            why = f"exit code {returncode}" if returncode else "exited without a record (os._exit?)"
            raise RunCrashed(f"{self.script} failed: {why}", self.stderr_tail, record)
        return record


def start_run(
    script: Path,
    args: list[str],
    out: Path,
    *,
    cwd: Path,
    seed: int = 0,
    max_steps: int | None = None,
    stop_after_boundaries: int | None = None,
    device: str = "cpu",
    timeout: float = 120,
    python: str = sys.executable,
    progress: Path | None = None,
) -> Run:
    """Starts ``script args`` under the harness in a fresh subprocess; see `Run`."""
    out = out.resolve()  # the harness runs elsewhere (cwd)
    command = [python, str(HARNESS), "--out", str(out), "--seed", str(seed), "--device", device]
    if max_steps is not None:
        command += ["--max-steps", str(max_steps)]
    if stop_after_boundaries is not None:
        command += ["--stop-after-boundaries", str(stop_after_boundaries)]
    if progress is not None:
        progress = progress.resolve()
        progress.unlink(missing_ok=True)
        command += ["--progress", str(progress)]
    command += [str(script.resolve()), *args]
    # str/bytes hashes are salted per process: fix the salt, or set iteration
    # order (a vocabulary built from a set, say) differs between the two runs.
    env = {"OMP_NUM_THREADS": _threads_per_run(), **os.environ}
    env["PYTHONHASHSEED"] = str(seed % 2**32)
    out.unlink(missing_ok=True)
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 (the run outlives this function; kill closes it)
    try:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    except BaseException:
        stderr.close()
        raise
    return Run(script, out, cwd, timeout, process, stderr, progress)


def _threads_per_run() -> str:
    """Half the cores for each of the two runs that train side by side (unless the user set
    OMP_NUM_THREADS): torch's default of every core per process oversubscribes them, which
    made an LSTM fixture train about seven times slower."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return str(max(1, (cores or 1) // 2))


def run_script(script: Path, args: list[str], out: Path, **kw: Any) -> dict[str, Any]:
    """Runs ``script args`` under the harness and returns its record.

    Raises `RunTimeout` after ``timeout`` seconds (the run and its children are
    killed) and `RunCrashed` when the run did not end well. ``kw`` goes to `start_run`.
    """
    return start_run(script, args, out, **kw).wait()


def start_pair(
    original: Path,
    converted: Path,
    args: list[str],
    workdir: Path,
    *,
    inputs: Path | None = None,
    **kw: Any,
) -> tuple[Run, Run]:
    """Starts the original and the converted script side by side.

    Each runs in its own fresh scratch folder (``workdir/original``,
    ``workdir/converted``) that mirrors ``inputs``, by default the original
    script's folder: both read the same inputs (wherever the converted script
    was written) but neither sees the other's outputs. With ``progress=True``
    each run reports its step count in ``workdir/<name>.progress``. ``kw`` goes
    to `start_run`.
    """
    folder = (inputs or original.parent).resolve()
    progress = kw.pop("progress", False)
    runs: list[Run] = []
    try:
        for name, script in (("original", original), ("converted", converted)):
            scratch = _mirror(script, folder, workdir / name)
            out = workdir / f"{name}.record.json"
            report = workdir / f"{name}.progress" if progress else None
            runs.append(
                start_run(scratch / script.name, args, out, cwd=scratch, progress=report, **kw)
            )
    except BaseException:
        for run in runs:
            run.kill()
        raise
    return runs[0], runs[1]


def run_pair(
    original: Path, converted: Path, args: list[str], workdir: Path, **kw: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Runs the original and the converted script side by side; returns both records.

    See `start_pair`; raises as `Run.result` does, for the original first.
    """
    runs = start_pair(original, converted, args, workdir, **kw)
    try:
        return runs[0].wait(), runs[1].wait()
    finally:
        for run in runs:
            run.kill()


def created_files(run: Run) -> list[str]:
    """The files a run created in its scratch folder (relative, sorted); links are inputs."""
    found = []
    for folder, _dirs, files in os.walk(run.cwd):  # does not descend into linked folders
        for name in files:
            path = Path(folder, name)
            if not path.is_symlink() and path != run.script:
                found.append(path.relative_to(run.cwd).as_posix())
    return sorted(found)


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
