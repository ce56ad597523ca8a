"""A progress line on stderr for long runs on a terminal, and nothing otherwise.

Short runs, pipes, CI logs and pre-commit output stay clean: the line only
appears once a run has lasted ``DELAY`` seconds with stderr on a terminal, is
redrawn at most ten times a second, and is erased when the run ends.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

DELAY = 1.0
REDRAW = 0.1
WIDTH = 30


class Progress:
    """Counts finished files out of ``total`` and draws ``[#####     ] 120/2285 files``."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = total > 0 and self.stream.isatty()
        self.started = time.monotonic()
        self.drawn_at: float | None = None

    def advance(self) -> None:
        self.done += 1
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.started < DELAY:
            return
        if self.drawn_at is None or now - self.drawn_at >= REDRAW or self.done == self.total:
            filled = WIDTH * self.done // self.total
            bar = "#" * filled + " " * (WIDTH - filled)
            self.stream.write(f"\r[{bar}] {self.done}/{self.total} files")
            self.stream.flush()
            self.drawn_at = now

    def close(self) -> None:
        """Erase the line, so the summary that follows starts at the left edge."""
        if self.drawn_at is not None:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn_at = None
