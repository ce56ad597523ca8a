"""The ``lightify`` command line (DESIGN.md §1).

``main`` is a click group whose default subcommand is ``convert``, so
``lightify train.py`` means ``lightify convert train.py``. Other modules add
subcommands with ``@main.command()``; see ``LAZY_COMMANDS``. Every subcommand
gets ``--debug``, and without it no traceback reaches the user.
"""

from __future__ import annotations

import importlib
import os
import shlex
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import click

from lightify import __version__
from lightify.api import Conversion, convert_source
from lightify.config import TARGETS, Config, load_config
from lightify.diagnostics import Finding, ParseFailure
from lightify.diff import colorize, unified_diff
from lightify.files import iter_python_files
from lightify.source import (
    ChangedOnDisk,
    SourceFile,
    decode_source,
    describe_os_error,
    read_source_file,
    write_atomic,
)

#: Subcommands defined in other modules: name -> the module that defines it with
#: ``@main.command()``. A module is imported only when its subcommand (or the help
#: listing) is asked for, so ``lightify train.py`` never pays for ``verify``'s imports.
LAZY_COMMANDS: dict[str, str] = {
    "check": "lightify.check",
    "explain": "lightify.explain",
    "init-pre-commit": "lightify.precommit",
    "rules": "lightify.explain",
    "verify": "lightify.verify.command",
}

DEBUG_KEY = "lightify.debug"


def _remember_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[DEBUG_KEY] = True


def debugging() -> bool:
    """Whether ``--debug`` was given: then errors show their traceback instead of a message."""
    return bool(click.get_current_context().meta.get(DEBUG_KEY))


class LightifyGroup(click.Group):
    """A group that runs ``convert`` when the first argument is not one of its own."""

    default_command = "convert"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not self._is_own(ctx, args[0]):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def _is_own(self, ctx: click.Context, arg: str) -> bool:
        """A subcommand name or a group option (``--help``, ``--version``), not a path."""
        if arg in self.commands or arg in LAZY_COMMANDS:
            return True
        return any(arg in param.opts + param.secondary_opts for param in self.get_params(ctx))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            importlib.import_module(LAZY_COMMANDS[cmd_name])
        return self.commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Register a subcommand with ``--debug``, so every subcommand keeps tracebacks hidden."""
        cmd.params.append(
            click.Option(
                ["--debug"],
                is_flag=True,
                is_eager=True,
                expose_value=False,
                callback=_remember_debug,
                help="Show tracebacks (for bug reports) instead of one-line errors.",
            )
        )
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        """Turn a bug into a one-line error with exit status 2, unless ``--debug``.

        SIGTERM unwinds like Ctrl-C, so a write in progress removes its temporary
        file and ``verify`` stops its child processes; both exit with status 130.
        """
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("lightify: interrupted", err=True)
            ctx.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise
        except Exception as error:
            if ctx.meta.get(DEBUG_KEY):
                raise
            click.echo(f"lightify: error: {_internal(error)}", err=True)
            ctx.exit(2)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _internal(error: Exception) -> str:
    return f"internal error: {type(error).__name__}: {error} (please report this)"


@click.group(cls=LightifyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lightify")
def main() -> None:
    """Convert hand-written PyTorch training scripts into PyTorch Lightning.

    Without a subcommand lightify runs convert: `lightify train.py` is
    `lightify convert train.py`. A path named like a subcommand is given
    as ./NAME or after `convert`.

    \b
    Examples:
      lightify train.py             show the conversion as a diff
      lightify --write src/         convert every script under src/ in place
      lightify convert --help       every option of convert
    """


@dataclass
class Tally:
    """What happened to the files of one run: the summary and the exit status come from it."""

    files: int = 0  # processed (changed or not) without an error
    converted: int = 0  # files written, or that --write would change
    fixable: int = 0
    left: int = 0
    errors: int = 0

    def fail(self, message: str) -> None:
        """Report a file (or path) that could not be processed; the run goes on."""
        self.errors += 1
        click.echo(message, err=True)

    def count(self, conversion: Conversion) -> None:
        """Count a file whose conversion was shown or written, and its findings."""
        self.files += 1
        self.converted += conversion.changed
        self.fixable += sum(finding.fixable for finding in conversion.findings)
        self.left += sum(not finding.fixable for finding in conversion.findings)

    def exit_code(self, writing: bool) -> int:
        """2: something failed; 1: work remains (a conversion or, once written, findings)."""
        if self.errors:
            return 2
        remaining = self.left if writing else self.converted + self.fixable + self.left
        return 1 if remaining else 0


@main.command(short_help="Convert to Lightning (the default command).")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--write",
    is_flag=True,
    help="Rewrite the files in place, atomically; files needing no change are not touched.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="OUT",
    help="Write the converted script to OUT (one input only; written even when unchanged).",
)
@click.option(
    "--target",
    type=click.Choice(TARGETS),
    help="The package the converted script imports; pytorch_lightning for projects on it "
    "(default: lightning, or `target` in [tool.lightify]).",
)
@click.pass_context
def convert(
    ctx: click.Context, paths: tuple[str, ...], write: bool, output: Path | None, target: str | None
) -> None:
    """Convert training scripts to Lightning: show a diff, or write the result.

    PATH is a script, a folder (its .py files, skipping virtual environments,
    build output and hidden folders) or - to read stdin and print the result.
    The diff goes to stdout; findings (`path:line:col: LFYnnn message`, [*]
    when --write converts it) and a summary go to stderr.

    \b
    Exit status:
      0  nothing to convert and nothing to report (with --write, -o, -:
         everything converted, nothing left to report)
      1  a conversion is available or findings remain (with --write, -o, -:
         findings remain that need a human)
      2  usage error, or a file could not be processed (the others still are)

    \b
    Examples:
      lightify train.py                       diff on stdout, findings on stderr
      lightify train.py > lightning.patch     save the diff
      lightify --write train.py src/          convert in place
      lightify train.py -o train_lit.py       write the result to another file
      lightify - < train.py > train_lit.py    filter stdin to stdout
      lightify --target pytorch_lightning train.py
      lightify --debug train.py               show the traceback of a crash
    """
    _check_usage(paths, write, output)
    config = load_config(paths).merged(target=target)
    tally = Tally()
    if output is not None:
        _convert_to_output(paths[0], output, config.target, tally)
    elif paths == ("-",):
        _convert_stdin(config.target, tally)
    else:
        _convert_paths(list(paths), write, config, tally)
        summary = _summary(tally, write, _rerun(paths, config.target))
        if summary:  # a clean run prints nothing, like a script with no training loop
            click.echo(summary, err=True)
    ctx.exit(tally.exit_code(writing=write or output is not None or paths == ("-",)))


def _check_usage(paths: tuple[str, ...], write: bool, output: Path | None) -> None:
    """Refuse combinations that have no meaning, before any file is read."""
    if "-" in paths and len(paths) > 1:
        raise click.UsageError("- (stdin) cannot be combined with other paths")
    if write and (output is not None or paths == ("-",)):
        raise click.UsageError("--write rewrites files in place; it cannot go with -o or -")
    if output is not None and len(paths) > 1:
        raise click.UsageError(f"-o takes exactly one input, got {len(paths)}")


def _convert(
    display: str, read: Callable[[], SourceFile], target: str, tally: Tally
) -> tuple[SourceFile, Conversion] | None:
    """Read and convert one script; report why and return None when that is impossible."""
    try:
        source = read()
        conversion = convert_source(source.text, path=display, target=target)
    except ParseFailure as failure:
        tally.fail(failure.format(display))
        return None
    except Exception as error:  # a bug must not stop the other files
        if debugging():
            raise
        tally.fail(f"{display}: error: {_internal(error)}")
        return None
    return source, conversion


def _convert_paths(paths: list[str], write: bool, config: Config, tally: Tally) -> None:
    """``lightify PATH...`` (a diff per file) and ``lightify --write PATH...``."""
    missing = partial(_report_missing, tally)
    for display, path in iter_python_files(paths, on_missing=missing, excluded=config.excluded):
        result = _convert(display, partial(read_source_file, path), config.target, tally)
        if result is None:
            continue
        source, conversion = result
        if not write:
            _show_diff(unified_diff(conversion.source, conversion.converted, display))
        elif conversion.changed:
            if not _write(display, path, conversion.converted, source, tally, in_place=True):
                continue
            click.echo(f"converted {display}", err=True)
        tally.count(conversion)
        _report(conversion.findings, only_left=write)


def _convert_to_output(given: str, output: Path, target: str, tally: Tally) -> None:
    """``lightify FILE -o OUT``: OUT is always written, even when nothing converts."""
    read = _output_input(given, output, tally)
    result = None if read is None else _convert(given, read, target, tally)
    if result is None:
        return
    source, conversion = result
    _report(conversion.findings, only_left=True)
    if _write(str(output), output, conversion.converted, source, tally, in_place=False):
        tally.count(conversion)
        state = "converted" if conversion.changed else "unchanged: nothing to convert"
        click.echo(_summary_line([f"wrote {output} ({state})"], tally), err=True)


def _output_input(given: str, output: Path, tally: Tally) -> Callable[[], SourceFile] | None:
    """How to read the input of ``-o``; refuse a folder, or OUT being the input itself."""
    if given == "-":
        return partial(decode_source, _stdin_bytes(), Path("-"))
    if not os.path.lexists(given):
        _report_missing(tally, given)
        return None
    if os.path.isdir(given):
        raise click.UsageError(f"-o needs one file, and {given} is a folder")
    if _same_file(given, output):
        raise click.UsageError(f"-o {output} is the input itself; use --write to convert in place")
    return partial(read_source_file, Path(given))


def _same_file(first: str, second: Path) -> bool:
    """Also true through symlinks, hard links and other spellings of the same path."""
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist (yet)
        return False


def _convert_stdin(target: str, tally: Tally) -> None:
    """``lightify -``: the converted script on stdout; the input itself if it cannot be."""
    data = _stdin_bytes()
    result = _convert("-", partial(decode_source, data, Path("-")), target, tally)
    if result is not None:
        source, conversion = result
        tally.count(conversion)
        _report(conversion.findings, only_left=True)
        try:
            data = conversion.converted.encode(source.encoding)
        except UnicodeEncodeError as error:
            tally.fail(f"-: error: cannot write: {_write_reason(error, source)}")
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _stdin_bytes() -> bytes:
    return sys.stdin.buffer.read()


def _write(
    display: str, path: Path, text: str, source: SourceFile, tally: Tally, in_place: bool
) -> bool:
    """Write in the encoding the script was read in (BOM included); report a failure.

    In place, a script edited since it was read keeps the edit: it is not overwritten.
    """
    try:
        write_atomic(path, text, source.encoding, expected=source.data if in_place else None)
    except ChangedOnDisk:
        tally.fail(f"{display}: error: changed on disk while converting; not overwritten")
        return False
    except (OSError, UnicodeEncodeError) as error:
        tally.fail(f"{display}: error: cannot write: {_write_reason(error, source)}")
        return False
    return True


def _write_reason(error: OSError | UnicodeEncodeError, source: SourceFile) -> str:
    if isinstance(error, UnicodeEncodeError):
        return f"the converted script has characters {source.encoding} cannot encode"
    return describe_os_error(error)


def _report_missing(tally: Tally, display: str) -> None:
    tally.fail(f"{display}: error: no such file or directory")


def _report(findings: tuple[Finding, ...], only_left: bool) -> None:
    """Print findings; once written, the fixable ones are done and only the rest matter."""
    for finding in sorted(findings):
        if not (only_left and finding.fixable):
            click.echo(finding.format(), err=True)


def _show_diff(diff: str) -> None:
    if diff:
        color = _stdout_is_terminal() and "NO_COLOR" not in os.environ
        click.echo(colorize(diff) if color else diff, nl=False, color=color)


def _stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def _rerun(paths: tuple[str, ...], target: str) -> str:
    """The command that applies what the diff shows (short: long path lists become PATH...)."""
    options = ["--write"] + (["--target", target] if target != TARGETS[0] else [])
    shown = list(paths) if len(paths) <= 3 else ["PATH..."]
    return shlex.join(["lightify", *options, *shown])


def _summary(tally: Tally, write: bool, rerun: str) -> str:
    """One line: what was (or can be) converted, what is left, what failed."""
    if tally.converted:
        done = "converted" if write else "can be converted"
        fixable = (
            f" ({_plural(tally.fixable, 'fixable finding')})" if tally.fixable and not write else ""
        )
        headline = f"{_plural(tally.converted, 'file')} {done}{fixable}"
    elif tally.files and (tally.left or tally.errors):
        headline = f"nothing to convert in {_plural(tally.files, 'file')}"
    else:
        headline = "" if tally.errors or tally.files else "no Python files found"
    summary = _summary_line([headline] if headline else [], tally)
    return f"{summary}; run {rerun}" if tally.converted and not write else summary


def _summary_line(parts: list[str], tally: Tally) -> str:
    """Append what is left for a human and how many errors there were."""
    if tally.left:
        parts.append(f"{_plural(tally.left, 'finding')} left")
    if tally.errors:
        parts.append(_plural(tally.errors, "error"))
    return ", ".join(parts)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
