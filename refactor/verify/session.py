"""Run the original and the converted script on one device and collect how each run ended.

The runs go side by side in fresh subprocesses (see `run.start_pair`); this
module watches them, shows progress on a terminal and turns every ending
(record, crash, timeout) into a `RunOutcome`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from lightify.verify.outcome import BOUNDARIES, RunOutcome
from lightify.verify.run import Run, RunCrashed, RunTimeout, created_files, start_pair

_POLL_S = 0.1


@dataclass(frozen=True)
class Settings:
    """How every run is made: the same for the original and the converted script."""

    args: tuple[str, ...]
    seed: int
    steps: int | None
    timeout: float
    python: str


class Progress:
    """One status line on stderr, rewritten in place; silent when stderr is not a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self._shown = ""

    def show(self, text: str) -> None:
        if self.live and text != self._shown:
            self.stream.write(f"\r\033[K{text}")
            self.stream.flush()
            self._shown = text

    def clear(self) -> None:
        self.show("")


def run_on_device(
    scripts: tuple[Path, Path],
    names: tuple[str, str],
    device: str,
    settings: Settings,
    workdir: Path,
    progress: Progress,
) -> tuple[RunOutcome, RunOutcome]:
    """Runs both scripts on ``device`` in scratch folders under ``workdir``; never raises for them.

    The scratch folders mirror the original script's folder. Ctrl-C kills both runs.
    """
    runs = start_pair(
        scripts[0],
        scripts[1],
        list(settings.args),
        workdir,
        seed=settings.seed,
        max_steps=settings.steps,
        stop_after_boundaries=BOUNDARIES if settings.steps is None else None,
        device=device,
        timeout=settings.timeout,
        python=settings.python,
        progress=progress.live,
    )
    try:
        while not all([run.poll() for run in runs]):  # a list: poll every run each time
            progress.show(_status(device, runs))
            time.sleep(_POLL_S)
    finally:
        for run in runs:
            run.kill()
        progress.clear()
    roles = ("original", "converted")
    return _outcome(roles[0], names[0], runs[0]), _outcome(roles[1], names[1], runs[1])


def _status(device: str, runs: tuple[Run, Run]) -> str:
    parts = []
    for role, run in zip(("original", "converted"), runs, strict=True):
        if run.ended is not None:
            parts.append(f"{role} done")
        else:
            steps = run.steps_done()
            parts.append(f"{role} step {steps}" if steps is not None else f"{role} starting")
    return f"verify on {device}: {', '.join(parts)} ({max(run.wall_s for run in runs):.0f} s)"


def _outcome(role: str, name: str, run: Run) -> RunOutcome:
    record, failure = None, None
    try:
        record = run.result()
    except RunTimeout as error:
        failure = str(error)
    except RunCrashed as error:
        record, failure = error.record, str(error)
    files = tuple(created_files(run))
    return RunOutcome(role, name, record, failure, run.timed_out, run.wall_s, files)
