"""The verify report: text for people (stdout) and JSON for programs (``--json``).

The text keeps to what a reader needs: the loss table shows its first and last
rows and the rows where the runs differ, not hundreds of equal lines. The JSON
holds everything, the whole harness records included; its shape is
``report.schema.json`` beside this file.
"""

from __future__ import annotations

import math
from typing import Any

from lightify import __version__
from lightify.diagnostics import Finding
from lightify.verify.outcome import DeviceOutcome, RunOutcome, Verification
from lightify.verify.records import close_enough

REPORT_VERSION = 1
"""Bumped when a field changes meaning or goes away; new fields do not bump it."""
_EDGE_ROWS = 3
"""Table rows always shown at the start and at the end."""
_DIVERGING_ROWS = 10
"""Diverging rows shown; the gaps count the rest."""
_FILES_SHOWN = 8
_ERROR_LINES = 15


# -- text ---------------------------------------------------------------------


def render_text(verification: Verification) -> str:
    """The whole report as text, ending with the verdict line."""
    source = verification.converted or "converted in memory by lightify"
    lines = [f"lightify verify {verification.script}  ({source}; seed {verification.seed})"]
    lines += [f"note: {note}" for note in verification.notes]
    for device in verification.devices:
        lines += ["", *_device_text(device)]
    lines += ["", f"verdict: {verification.verdict} (exit {verification.exit_code})"]
    return "\n".join(lines) + "\n"


def _device_text(device: DeviceOutcome) -> list[str]:
    lines = [f"{device.device}: {device.summary}"]
    if device.cause:
        lines.append(f"  likely cause: {device.cause}")
    lines += [f"  note: {note}" for note in device.notes]
    if device.original.record and device.converted.record:
        lines += ["", *_loss_table(device)]
    lines += ["", *_runs_table(device)]
    for run in device.runs:
        if run.failure:
            lines += ["", f"  {run.role} run error:"]
            lines += [f"    {line}" for line in run.failure.strip().splitlines()[-_ERROR_LINES:]]
    return lines


def _loss_table(device: DeviceOutcome) -> list[str]:
    """Step, both losses and their differences: edge rows, diverging rows, gaps counted."""
    original, converted = device.original.record, device.converted.record
    assert original is not None and converted is not None
    a, b = original["losses"], converted["losses"]
    rows = max(len(a), len(b))
    if not rows:
        return ["  (neither run called backward())"]
    steps = original["losses_at"] if len(a) >= len(b) else converted["losses_at"]
    diverging = [i for i in range(rows) if not _row_equal(a, b, i, device)]
    shown = sorted(
        {*range(min(_EDGE_ROWS, rows)), *range(max(0, rows - _EDGE_ROWS), rows)}
        | set(diverging[:_DIVERGING_ROWS])
    )
    header = f"  {'':1} {'step':>6}  {'original loss':<22} {'converted loss':<22} "
    lines = [header + f"{'abs diff':<10} rel diff"]
    previous = -1
    for index in shown:
        if index > previous + 1:
            lines.append(_gap(previous + 1, index, diverging))
        lines.append(_row(a, b, index, steps[index], index in diverging))
        previous = index
    return lines


def _row_equal(a: list[float], b: list[float], index: int, device: DeviceOutcome) -> bool:
    if index >= len(a) or index >= len(b):
        return False
    return close_enough(a[index], b[index], device.rtol, device.atol)


def _gap(start: int, end: int, diverging: list[int]) -> str:
    hidden = sum(start <= index < end for index in diverging)
    equal = end - start - hidden
    parts = [f"{equal} equal"] if equal else []
    if hidden:
        parts.append(f"{hidden} diverging")
    return f"  {'':1} {'...':>6}  ({' and '.join(parts)} rows)"


def _row(a: list[float], b: list[float], index: int, step: int, diverges: bool) -> str:
    x = a[index] if index < len(a) else None
    y = b[index] if index < len(b) else None
    absolute = relative = "-"
    if x is not None and y is not None:
        absolute, relative = _differences(x, y)
    mark = "!" if diverges else ""
    return f"  {mark:1} {step:>6}  {_number(x):<22} {_number(y):<22} {absolute:<10} {relative}"


def _differences(x: float, y: float) -> tuple[str, str]:
    if x == y or (math.isnan(x) and math.isnan(y)):
        return "0", "0"
    difference = abs(y - x)
    if not math.isfinite(difference):
        return "inf", "inf"
    relative = f"{difference / abs(x):.3g}" if x else "inf"
    return f"{difference:.3g}", relative


def _number(value: float | None) -> str:
    return "-" if value is None else repr(value)


def _runs_table(device: DeviceOutcome) -> list[str]:
    """The two runs side by side: how far each went, where, with what, leaving what."""
    rows = [
        ("optimizer steps", _steps),
        ("epoch boundaries", _boundaries),
        ("losses / eval / monitor", _counts),
        ("device used", lambda run: _field(run, "device_used")),
        ("wall time", lambda run: f"{run.wall_s:.1f} s"),
        ("python", lambda run: _field(run, "python")),
        ("torch", lambda run: _field(run, "torch")),
        ("lightning", lambda run: _field(run, "lightning")),
    ]
    lines = [f"  {'':<24} {'original':<30} converted"]
    for label, cell in rows:
        lines.append(f"  {label:<24} {cell(device.original):<30} {cell(device.converted)}")
    lines.append("  files created:")
    lines += [f"    {run.role}: {_files(run.files)}" for run in device.runs]
    warnings = [(run.role, text) for run in device.runs for text in _warnings(run)]
    lines.append("  deterministic-algorithm warnings:" + ("" if warnings else " none"))
    lines += [f"    {role}: {text}" for role, text in warnings]
    return lines


def _steps(run: RunOutcome) -> str:
    if run.record is None:
        return "timed out" if run.timed_out else "no record"
    ends = "stopped at the limit" if run.record["stopped_early"] else "ran to the end"
    if run.failure is not None:
        ends = "timed out" if run.timed_out else "crashed"
    per_optimizer = _per_optimizer(run.record)
    return f"{run.steps} ({ends}){per_optimizer}"


def _per_optimizer(record: dict[str, Any]) -> str:
    counts: dict[int, int] = {}
    for step in record["steps"]:
        counts[step["optimizer"]] = counts.get(step["optimizer"], 0) + 1
    if len(counts) < 2:
        return ""
    return " " + ", ".join(f"opt{key}: {value}" for key, value in sorted(counts.items()))


def _boundaries(run: RunOutcome) -> str:
    if run.record is None:
        return "-"
    at = run.boundaries
    return f"{len(at)} (at steps {', '.join(map(str, at))})" if at else "0"


def _counts(run: RunOutcome) -> str:
    if run.record is None:
        return "-"
    return " / ".join(str(len(run.record[name])) for name in ("losses", "eval", "monitor"))


def _field(run: RunOutcome, name: str) -> str:
    value = run.record.get(name) if run.record else None
    return "-" if value is None else str(value)


def _files(files: tuple[str, ...]) -> str:
    if not files:
        return "none"
    more = len(files) - _FILES_SHOWN
    return ", ".join(files[:_FILES_SHOWN]) + (f" (and {more} more)" if more > 0 else "")


def _warnings(run: RunOutcome) -> list[str]:
    texts = run.record.get("warnings", []) if run.record else []
    return [" ".join(text.split())[:300] for text in texts]


# -- JSON ---------------------------------------------------------------------


def to_json(verification: Verification) -> dict[str, Any]:
    """The report as JSON-ready data (non-finite numbers as the strings NaN, Infinity)."""
    return {
        "report_version": REPORT_VERSION,
        "lightify": __version__,
        "script": verification.script,
        "converted": verification.converted,
        "args": list(verification.args),
        "seed": verification.seed,
        "steps_requested": verification.steps,
        "verdict": verification.verdict,
        "exit_code": verification.exit_code,
        "summary": verification.summary,
        "notes": list(verification.notes),
        "findings": [_finding_json(finding) for finding in verification.findings],
        "devices": [_device_json(device) for device in verification.devices],
    }


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "path": finding.path,
        "line": finding.line,
        "col": finding.col,
        "code": finding.code,
        "message": finding.message,
        "fixable": finding.fixable,
    }


def _device_json(device: DeviceOutcome) -> dict[str, Any]:
    comparison = device.comparison
    divergence = comparison.first_divergence if comparison else None
    return {
        "device": device.device,
        "verdict": device.verdict,
        "summary": device.summary,
        "rtol": device.rtol,
        "atol": device.atol,
        "first_divergence": None
        if divergence is None
        else {
            "stream": divergence.stream,
            "index": divergence.index,
            "field": divergence.field,
            "original": _finite(divergence.original),
            "converted": _finite(divergence.converted),
            "steps_done": divergence.steps_done,
            "description": divergence.describe(),
            "cause": device.cause,
        },
        "counts": None
        if comparison is None
        else {name: list(pair) for name, pair in comparison.counts.items()},
        "notes": list(device.notes),
        "original": _run_json(device.original),
        "converted": _run_json(device.converted),
    }


def _run_json(run: RunOutcome) -> dict[str, Any]:
    record = run.record or {}
    if run.failure is not None:
        ended = "timed_out" if run.timed_out else "crashed"
    else:
        ended = "stopped" if record.get("stopped_early") else "finished"
    return {
        "script": run.script,
        "ended": ended,
        "failure": run.failure,
        "wall_s": round(run.wall_s, 3),
        "steps": run.steps,
        "epoch_boundaries_at": run.boundaries,
        "child_processes": run.children,
        "device_used": record.get("device_used"),
        "python": record.get("python"),
        "torch": record.get("torch"),
        "lightning": record.get("lightning"),
        "warnings": list(record.get("warnings", [])),
        "files_created": list(run.files),
        "record": _finite(run.record),
    }


def _finite(value: Any) -> Any:
    """Replaces NaN and infinities, which JSON cannot hold, by the strings JavaScript uses."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
