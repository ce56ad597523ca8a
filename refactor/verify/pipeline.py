"""The steps of ``lightify verify``: check the request, convert, run per device, report.

Separate from the click command so that the command module stays cheap to
import (``lightify --help`` imports it) and this one stays free of option parsing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from lightify.api import Conversion, convert_source
from lightify.cli import debugging
from lightify.diagnostics import Finding, ParseFailure
from lightify.source import describe_os_error, read_source_file, write_atomic
from lightify.verify import plot
from lightify.verify.outcome import (
    DEFAULT_TOLERANCES,
    DeviceOutcome,
    Verification,
    judge,
    overall,
)
from lightify.verify.report import render_text, to_json
from lightify.verify.session import Progress, Settings, run_on_device

_CUDA_PROBE = """
import sys
try:
    import torch
except ImportError:
    sys.exit(3)
sys.exit(0 if torch.cuda.is_available() else 1)
"""
_NO_TORCH = 3
INTERRUPTED = 130
"""Exit status after Ctrl-C, as a shell reports a command killed by SIGINT."""
_PROBE_TIMEOUT_S = 120


@dataclass(frozen=True)
class Request:
    """The command line of one ``lightify verify``."""

    script: Path
    script_args: tuple[str, ...]
    steps: int | None
    device: str
    converted: Path | None
    tolerance: tuple[float | None, float | None]
    """(rtol, atol) as given; None takes the device's default."""
    timeout: float
    python: str
    seed: int
    json_path: Path | None
    plot_path: Path | None
    keep: bool


class Refusal(Exception):
    """verify cannot go on; the message says why, ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def run_verify(request: Request) -> int:
    """Does the whole verification; returns the exit status (see the command's help)."""
    try:
        return _verify(request)
    except Refusal as refusal:
        click.echo(f"lightify verify: {refusal}", err=True)
        return refusal.code
    except KeyboardInterrupt:  # not 1, which would read as "diverged"
        click.echo("\nlightify verify: interrupted; the runs were stopped", err=True)
        return INTERRUPTED


def _verify(request: Request) -> int:
    if request.plot_path is not None and not plot.available():
        raise Refusal(plot.INSTALL_HINT)
    for option, path in (("--json", request.json_path), ("--plot", request.plot_path)):
        if path is not None and not path.absolute().parent.is_dir():
            raise Refusal(f"{option} {path}: the folder {path.parent} does not exist")
    python = _interpreter(request.python)
    workdir = Path(tempfile.mkdtemp(prefix="lightify-verify-"))
    try:
        converted, names, findings = _converted_script(request, workdir)
        if converted is None:
            return _declined(request, findings)
        devices, notes = _devices(request.device, python)
        if request.keep:
            notes.append(f"the runs' scratch folders are kept in {workdir}")
        settings = Settings(
            request.script_args, request.seed, request.steps, request.timeout, python
        )
        progress = Progress(sys.stderr)
        outcomes: list[DeviceOutcome] = []
        for device in devices:
            runs = run_on_device(
                (request.script, converted), names, device, settings, workdir / device, progress
            )
            outcomes.append(judge(device, *runs, _tolerance(request, device), request.steps))
        verdict, summary = overall(outcomes)
        verification = _verification(request, verdict, summary, findings, outcomes, notes)
        click.echo(render_text(verification), nl=False)
        _write_outputs(request, verification)
        return verification.exit_code
    finally:
        if not request.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _interpreter(python: str) -> str:
    """The interpreter as a path: given as one, or found on PATH."""
    path = Path(python).expanduser()
    if os.sep in python or path.exists():
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        raise Refusal(f"--python {python}: no such interpreter")
    found = shutil.which(python)
    if found is None:
        raise Refusal(f"--python {python}: not found on PATH")
    return found


def _converted_script(
    request: Request, workdir: Path
) -> tuple[Path | None, tuple[str, str], tuple[Finding, ...]]:
    """The converted script to run (None when there is none), both display names, findings.

    An in-memory conversion is written under ``workdir`` with the script's own
    file name, so that both runs see the same ``__file__`` name and ``sys.argv[0]``.
    """
    display = str(request.script)
    if request.converted is not None:
        return request.converted, (display, str(request.converted)), ()
    conversion, encoding = _convert(request.script, display)
    if not conversion.changed:
        return None, (display, display), conversion.findings
    target = workdir / "source" / request.script.name
    target.parent.mkdir()
    target.write_text(conversion.converted, encoding=encoding)
    left = tuple(finding for finding in conversion.findings if not finding.fixable)
    return target, (display, f"{display} (converted)"), left


def _convert(script: Path, display: str) -> tuple[Conversion, str]:
    try:
        source = read_source_file(script)
        return convert_source(source.text, path=display), source.encoding
    except ParseFailure as failure:
        raise Refusal(failure.format(display)) from None
    except OSError as error:
        raise Refusal(f"{display}: cannot read: {describe_os_error(error)}") from None
    except Exception as error:
        if debugging():
            raise
        raise Refusal(
            f"lightify could not convert {display}: internal error: "
            f"{type(error).__name__}: {error} (please report this)"
        ) from None


def _declined(request: Request, findings: tuple[Finding, ...]) -> int:
    """Nothing converted: either the loop was declined (2) or there is no loop (4)."""
    if findings:
        verdict = "not_convertible"
        summary = (
            f"lightify could not convert {request.script}, so there is nothing to verify; "
            "the findings say why (compare against your own conversion with --converted FILE)"
        )
    else:
        verdict = "no_training_loop"
        summary = (
            f"{request.script} has no training loop lightify converts (none, or it already "
            "uses Lightning): nothing to verify; to compare two scripts, use --converted FILE"
        )
    for finding in sorted(findings):
        click.echo(finding.format(), err=True)
    verification = _verification(request, verdict, summary, findings, [], [])
    click.echo(f"lightify verify: {summary}", err=True)
    _write_outputs(request, verification, plot_too=False)
    return verification.exit_code


def _devices(requested: str, python: str) -> tuple[list[str], list[str]]:
    """The devices to run on, and a note when --device all had to skip CUDA."""
    if requested == "cpu":
        return ["cpu"], []
    available, why = _cuda(python)
    if available:
        return (["cpu", "cuda"] if requested == "all" else ["cuda"]), []
    if requested == "cuda":
        raise Refusal(f"--device cuda: {why}; use --device cpu")
    return ["cpu"], [f"{why}: compared on the CPU only"]


def _cuda(python: str) -> tuple[bool, str]:
    """Whether CUDA works in the training interpreter (asked in a subprocess), and if not why."""
    try:
        probe = subprocess.run(
            [python, "-c", _CUDA_PROBE],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return False, f"{python} did not answer whether CUDA is available"
    if probe.returncode == 0:
        return True, ""
    if probe.returncode == _NO_TORCH:
        return False, f"{python} cannot import torch"
    return False, f"CUDA is not available to {python} (torch.cuda.is_available() is False)"


def _tolerance(request: Request, device: str) -> tuple[float, float]:
    rtol, atol = request.tolerance
    default_rtol, default_atol = DEFAULT_TOLERANCES[device]
    return (default_rtol if rtol is None else rtol, default_atol if atol is None else atol)


def _verification(
    request: Request,
    verdict: str,
    summary: str,
    findings: tuple[Finding, ...],
    devices: list[DeviceOutcome],
    notes: list[str],
) -> Verification:
    return Verification(
        script=str(request.script),
        converted=None if request.converted is None else str(request.converted),
        args=request.script_args,
        seed=request.seed,
        steps=request.steps,
        verdict=verdict,
        summary=summary,
        findings=findings,
        devices=tuple(devices),
        notes=tuple(notes),
    )


def _write_outputs(request: Request, verification: Verification, plot_too: bool = True) -> None:
    """--json and --plot; a file that cannot be written is a usage error (exit 2)."""
    if request.json_path is not None:
        text = json.dumps(to_json(verification), indent=2, allow_nan=False) + "\n"
        try:
            write_atomic(request.json_path, text, "utf-8")
        except OSError as error:
            raise Refusal(f"--json {request.json_path}: {describe_os_error(error)}") from None
    if plot_too and request.plot_path is not None:
        try:
            plot.write_plot(verification, request.plot_path)
        except OSError as error:
            raise Refusal(f"--plot {request.plot_path}: {describe_os_error(error)}") from None
        except ValueError as error:  # matplotlib: an unknown file format
            raise Refusal(f"--plot {request.plot_path}: {error}") from None
