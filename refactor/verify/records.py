"""Compare two capture-harness records and find where their training first diverged.

A record (see ``harness.py``) holds four streams: ``losses``, ``steps``, ``eval``
and ``monitor``. Entries of the loss, eval and monitor streams carry the number
of optimizer steps done when they were recorded (``<stream>_at``); that puts all
four streams on one timeline, so the reported divergence is the earliest one in
training, not merely the first stream checked.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STREAMS = ("losses", "steps", "eval", "monitor")
# At equal step counts: an epoch-end evaluation and its scheduler decision come
# before the next loss, and a loss before the optimizer step that uses it.
_ORDER_AT_STEP = {"eval": 0, "monitor": 1, "losses": 2, "steps": 3}


def load_record(path: Path | str) -> dict[str, Any]:
    """Reads a record written by the harness."""
    record = json.loads(Path(path).read_text())
    if record.get("version") != 1:
        raise ValueError(f"{path}: not a version 1 lightify record")
    return record


@dataclass(frozen=True)
class Divergence:
    """The first entry where the two runs differ."""

    stream: str
    """One of ``STREAMS``."""
    index: int
    """Position in the stream; for a count mismatch, the first entry only one run has."""
    field: str | None
    """The differing field of a ``steps`` entry, or ``"count"`` when one stream is longer."""
    original: Any
    converted: Any
    """The two values (the two lengths for ``"count"``)."""
    steps_done: int
    """Optimizer steps completed before the entry (the earlier of the two runs)."""

    def describe(self) -> str:
        """One line: the stream, the entry and both values."""
        when = f"after {self.steps_done} optimizer steps"
        if self.field == "count":
            noun = "optimizer steps" if self.stream == "steps" else f"{self.stream} entries"
            return (
                f"{self.stream} diverged first ({when}): the original recorded "
                f"{self.original} {noun}, the converted {self.converted}"
            )
        where = f"{self.stream}[{self.index}]"
        if self.field is not None:
            where += f".{self.field}"
        return (
            f"{self.stream} diverged first, at {where} ({when}): "
            f"original {self.original!r}, converted {self.converted!r}"
        )


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing two records."""

    equal: bool
    first_divergence: Divergence | None
    counts: dict[str, tuple[int, int]]
    """Entries per stream: (original, converted)."""
    stopped_early: tuple[bool, bool]
    """Whether each run was stopped by --max-steps."""
    rtol: float
    atol: float

    def describe(self) -> str:
        """A few lines for people: the verdict, the first divergence, the counts."""
        if self.first_divergence is not None:
            verdict = self.first_divergence.describe()
        elif self.rtol == self.atol == 0:
            verdict = "equal exactly"
        else:
            verdict = f"equal within rtol={self.rtol:g}, atol={self.atol:g}"
        counts = ", ".join(f"{name} {a}/{b}" for name, (a, b) in self.counts.items())
        lines = [verdict, f"counts (original/converted): {counts}"]
        stopped = [
            run
            for run, early in zip(("original", "converted"), self.stopped_early, strict=True)
            if early
        ]
        if stopped:
            lines.append(f"stopped by --max-steps: {' and '.join(stopped)}")
        return "\n".join(lines)


def compare(
    original: dict[str, Any], converted: dict[str, Any], rtol: float = 0.0, atol: float = 0.0
) -> Comparison:
    """Compares two records stream by stream; exact when rtol and atol are 0.

    Values match when ``|converted - original| <= atol + rtol * |original|``; two
    NaNs match (both runs broke the same way). A stream that is longer on one side
    is a divergence at the first extra entry.
    """
    found = []
    for stream in STREAMS:
        difference = _first_difference(stream, original[stream], converted[stream], rtol, atol)
        if difference is not None:
            index, field, x, y = difference
            steps_done = min(_steps_done(stream, index, run) for run in (original, converted))
            found.append(Divergence(stream, index, field, x, y, steps_done))
    first = min(found, key=lambda d: (d.steps_done, _ORDER_AT_STEP[d.stream]), default=None)
    return Comparison(
        equal=first is None,
        first_divergence=first,
        counts={name: (len(original[name]), len(converted[name])) for name in STREAMS},
        stopped_early=(bool(original["stopped_early"]), bool(converted["stopped_early"])),
        rtol=rtol,
        atol=atol,
    )


def _first_difference(
    stream: str, a: list[Any], b: list[Any], rtol: float, atol: float
) -> tuple[int, str | None, Any, Any] | None:
    """(index, field, original value, converted value) of a stream's first difference."""
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if stream == "steps":
            field = _differing_step_field(x, y, rtol, atol)
            if field is not None:
                return index, field, x[field], y[field]
        elif not close_enough(x, y, rtol, atol):
            return index, None, x, y
    if len(a) != len(b):
        return min(len(a), len(b)), "count", len(a), len(b)
    return None


def _differing_step_field(
    x: dict[str, Any], y: dict[str, Any], rtol: float, atol: float
) -> str | None:
    """The first field in which two optimizer-step entries differ, or None."""
    if x["optimizer"] != y["optimizer"]:
        return "optimizer"
    if len(x["lrs"]) != len(y["lrs"]) or not all(
        close_enough(p, q, rtol, atol) for p, q in zip(x["lrs"], y["lrs"], strict=True)
    ):
        return "lrs"
    for field in ("param_sum", "param_abs_sum", "buffer_sum"):
        if not close_enough(x[field], y[field], rtol, atol):
            return field
    return None


def close_enough(x: float, y: float, rtol: float, atol: float) -> bool:
    """``|y - x| <= atol + rtol * |x|``; two NaNs (or equal infinities) match."""
    if x == y or (math.isnan(x) and math.isnan(y)):
        return True
    return math.isfinite(x) and math.isfinite(y) and abs(y - x) <= atol + rtol * abs(x)


def _steps_done(stream: str, index: int, record: dict[str, Any]) -> int:
    """How many optimizer steps a run had completed when it recorded entry ``index``."""
    if stream == "steps":
        return index
    # An entry this run lacks (or a record without positions) comes after all it did.
    at = record.get(f"{stream}_at", ())
    return at[index] if index < len(at) else len(record["steps"])
