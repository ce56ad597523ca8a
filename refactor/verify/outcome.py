"""What a verification found: per run, per device and overall, with the verdict and exit code.

Kept apart from running and from rendering, so that the text report, the JSON
report and the plot all say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lightify.diagnostics import Finding
from lightify.verify.causes import likely_cause
from lightify.verify.records import Comparison, Divergence, compare

#: verdict -> exit status (DESIGN.md §1, the verify row).
EXIT_CODES = {
    "equivalent": 0,
    "diverged": 1,
    "not_convertible": 2,
    "device_mismatch": 2,
    "run_failed": 3,
    "no_training_loop": 4,
    "not_measured": 4,
}
# When devices disagree, the overall verdict is the first of these found: a failed
# run or an unfair comparison outweighs a divergence, which outweighs agreement.
_SEVERITY = ("run_failed", "device_mismatch", "not_measured", "diverged", "equivalent")

_STREAM_NOUNS = {
    "losses": "losses",
    "steps": "optimizer steps",
    "eval": "evaluation outputs",
    "monitor": "monitored values",
}

#: Without --steps each run stops at its first optimizer step after this many epoch
#: boundaries, so that two end-of-epoch validations and scheduler steps are compared.
BOUNDARIES = 2

#: The default tolerances: exact on the CPU; on CUDA, where a few kernels stay
#: nondeterministic even in deterministic mode, a small relative tolerance.
DEFAULT_TOLERANCES = {"cpu": (0.0, 0.0), "cuda": (1e-5, 1e-7)}


@dataclass(frozen=True)
class RunOutcome:
    """How one run (the original or the converted script on one device) ended."""

    role: str
    """``"original"`` or ``"converted"``."""
    script: str
    """The script as the user named it; the in-memory conversion reads ``SCRIPT (converted)``."""
    record: dict[str, Any] | None
    """The harness record; None when the run left none (timed out, killed)."""
    failure: str | None
    """Why the run did not end well (the error and the end of its stderr); None if it did."""
    timed_out: bool
    wall_s: float
    files: tuple[str, ...]
    """Files the run created in its scratch folder."""

    @property
    def steps(self) -> int:
        return len(self.record["steps"]) if self.record else 0

    @property
    def boundaries(self) -> list[int]:
        return list(self.record.get("epoch_boundaries_at", [])) if self.record else []

    @property
    def children(self) -> list[str]:
        return list(self.record.get("children", [])) if self.record else []


@dataclass(frozen=True)
class DeviceOutcome:
    """The comparison of the two runs on one device."""

    device: str
    rtol: float
    atol: float
    original: RunOutcome
    converted: RunOutcome
    comparison: Comparison | None
    """None when a run left no record to compare."""
    verdict: str
    summary: str
    """One line that explains the verdict."""
    cause: str | None
    """The likely cause of the first divergence (see `causes`), when there is one."""
    notes: tuple[str, ...]
    """What the comparison did not cover, or covered differently than asked."""

    @property
    def runs(self) -> tuple[RunOutcome, RunOutcome]:
        return self.original, self.converted


@dataclass(frozen=True)
class Verification:
    """Everything ``lightify verify`` found; `report` renders it."""

    script: str
    converted: str | None
    """The converted script the user gave (--converted), or None: converted in memory."""
    args: tuple[str, ...]
    seed: int
    steps: int | None
    """--steps, or None: each run stops after two epoch boundaries."""
    verdict: str
    summary: str
    findings: tuple[Finding, ...]
    devices: tuple[DeviceOutcome, ...]
    notes: tuple[str, ...]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]


def judge(
    device: str,
    original: RunOutcome,
    converted: RunOutcome,
    tolerances: tuple[float, float],
    steps: int | None,
) -> DeviceOutcome:
    """Compares two runs on one device and decides the verdict for that device."""
    rtol, atol = tolerances
    comparison = None
    if original.record is not None and converted.record is not None:
        comparison = compare(original.record, converted.record, rtol, atol)
    verdict, summary = _verdict(original, converted, comparison)
    cause = None
    if verdict == "diverged" and comparison and comparison.first_divergence:
        cause = likely_cause(comparison.first_divergence, original.record, converted.record)
    notes = _notes(device, original, converted, steps)
    return DeviceOutcome(
        device, rtol, atol, original, converted, comparison, verdict, summary, cause, notes
    )


def overall(devices: list[DeviceOutcome]) -> tuple[str, str]:
    """The verdict of the whole verification and its one-line summary (devices named)."""
    worst = min(devices, key=lambda outcome: _SEVERITY.index(outcome.verdict))
    if len(devices) == 1:
        return worst.verdict, worst.summary
    return worst.verdict, "; ".join(f"{d.device}: {d.summary}" for d in devices)


def _verdict(
    original: RunOutcome, converted: RunOutcome, comparison: Comparison | None
) -> tuple[str, str]:
    failed = [run for run in (original, converted) if run.failure is not None]
    if failed:
        return "run_failed", " and ".join(_failure_line(run) for run in failed)
    used = [run.record["device_used"] for run in (original, converted) if run.record]
    if used[0] != used[1]:
        return "device_mismatch", (
            f"the original trained on {used[0]} and the converted on {used[1]}: "
            "their numbers are not comparable"
        )
    if original.steps == converted.steps == 0:
        return "not_measured", _nothing_measured(original, converted)
    assert comparison is not None  # both records exist once no run failed
    if comparison.first_divergence is not None:
        return "diverged", _divergence_line(comparison.first_divergence)
    how = (
        "identical"
        if comparison.rtol == comparison.atol == 0
        else f"equal within rtol={comparison.rtol:g}, atol={comparison.atol:g}"
    )
    scope = " in the main process" if original.children or converted.children else ""
    return "equivalent", (
        f"equivalent: losses, learning rates, parameters and evaluation outputs {how} "
        f"over {original.steps} optimizer steps{scope}"
    )


def _divergence_line(divergence: Divergence) -> str:
    """``diverged at step 1: steps[1].lrs: original [0.05], converted [0.04]``."""
    where = f"{divergence.stream}[{divergence.index}]"
    if divergence.field == "count":
        what = (
            f"the original recorded {divergence.original} {_STREAM_NOUNS[divergence.stream]}, "
            f"the converted {divergence.converted}"
        )
    else:
        field = f".{divergence.field}" if divergence.field else ""
        what = (
            f"{where}{field}: original {divergence.original!r}, converted {divergence.converted!r}"
        )
    return f"diverged at step {divergence.steps_done}: {what}"


def _failure_line(run: RunOutcome) -> str:
    if run.timed_out:
        return f"the {run.role} run timed out after {run.wall_s:.0f} s"
    last = (run.failure or "").strip().splitlines()[-1:] or ["no error message"]
    return f"the {run.role} run crashed after {run.steps} optimizer steps ({last[0]})"


def _nothing_measured(original: RunOutcome, converted: RunOutcome) -> str:
    if original.children or converted.children:
        return (
            "neither run made an optimizer step in the process lightify measures; the "
            "training ran in child processes it does not follow, so equivalence was not measured"
        )
    return "neither run made an optimizer step: there was no training to compare"


def _ended_early(crossed: int) -> str:
    if not crossed:
        return (
            "finished without restarting a DataLoader (no epoch boundary seen): "
            "compared over its whole run"
        )
    noun = "boundary" if crossed == 1 else "boundaries"
    return (
        f"finished after crossing {crossed} epoch {noun} (verify aims for {BOUNDARIES}): "
        "compared over its whole run"
    )


def _notes(
    device: str, original: RunOutcome, converted: RunOutcome, steps: int | None
) -> tuple[str, ...]:
    """Plain statements of what the comparison did not cover."""
    notes = []
    for run in (original, converted):
        if run.children:
            shown = "; ".join(run.children[:3]) + ("; ..." if len(run.children) > 3 else "")
            notes.append(
                f"the {run.role} script started {len(run.children)} Python process(es) that "
                f"lightify does not follow ({shown}): their training was not compared, and "
                "equivalence was NOT measured for them"
            )
        if run.record is None or run.failure is not None or run.record["stopped_early"]:
            continue
        if steps is not None and run.steps < steps:
            notes.append(
                f"the {run.role} run finished after {run.steps} optimizer steps, fewer than "
                f"--steps {steps}: compared over the steps it made"
            )
        elif steps is None and len(run.boundaries) < BOUNDARIES:
            notes.append(f"the {run.role} run {_ended_early(len(run.boundaries))}")
    used = {run.record["device_used"] for run in (original, converted) if run.record}
    if device == "cuda" and used == {"cpu"}:
        notes.append("CUDA was available but neither run used it: this comparison ran on the CPU")
    return tuple(notes)
