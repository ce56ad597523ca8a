"""``lightify check``: report what can be converted and what needs a human; never write.

The command for CI and pre-commit: findings on stdout in the format asked for,
one summary line on stderr, exit 1 when anything is found (``--exit-zero``
for a warn-only hook) and 2 when a file could not be processed.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from lightify.cache import FindingsCache, default_folder
from lightify.checking import FileResult, check_files
from lightify.cli import TARGETS, _plural, _rerun, debugging, main
from lightify.config import load_config
from lightify.diagnostics import Finding
from lightify.files import iter_python_files
from lightify.formats import FORMATS, render
from lightify.progress import Progress

CONVERTS_A_LOOP = "LFY400"


def _codes(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple | None:
    """``--select LFY4,LFY5 --select LFY201`` -> ``("LFY4", "LFY5", "LFY201")``; None if absent."""
    codes = tuple(code for value in values for code in value.split(",") if code.strip())
    return codes or None


@main.command(short_help="Report findings only; never writes (for CI and pre-commit).")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--output-format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text: path:line:col: CODE message; json (see check-output.schema.json); "
    "github: workflow annotations; sarif: SARIF 2.1.0 for code scanning.",
)
@click.option(
    "--select",
    multiple=True,
    callback=_codes,
    metavar="CODES",
    help="Only these codes or prefixes (LFY4, LFY401; comma-separated or repeated).",
)
@click.option(
    "--ignore",
    multiple=True,
    callback=_codes,
    metavar="CODES",
    help="Not these codes or prefixes; wins over --select.",
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings remain (warn only).")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Processes to analyze with (default: every core; one for small runs).",
)
@click.option(
    "--target",
    type=click.Choice(TARGETS),
    help="The package conversions would import (default: lightning).",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Analyze every file again instead of reusing the findings of texts analyzed before "
    "(kept in $LIGHTIFY_CACHE_DIR, default ~/.cache/lightify).",
)
@click.pass_context
def check(
    ctx: click.Context,
    paths: tuple[str, ...],
    output_format: str,
    select: tuple[str, ...] | None,
    ignore: tuple[str, ...] | None,
    exit_zero: bool,
    jobs: int | None,
    target: str | None,
    no_cache: bool,
) -> None:
    """Report training loops that can be converted, and what needs a human.

    PATH is a script or a folder (its .py files, skipping virtual environments,
    build output, hidden folders, what .gitignore ignores and the `exclude`
    globs of [tool.lightify] in pyproject.toml). Nothing is written. A
    `# lightify: ignore[LFY401]` comment (or a bare `# lightify: ignore`) on
    the line of a finding hides it.

    \b
    Exit status:
      0  nothing found (or --exit-zero)
      1  findings: a conversion is available or something needs a human
      2  usage or configuration error, or a file could not be processed

    \b
    Examples:
      lightify check src/ scripts/train.py
      lightify check . --output-format json > findings.json
      lightify check . --select LFY4 --ignore LFY401
      lightify check . --output-format github      (in a GitHub workflow)
    """
    config = load_config(paths).merged(select=select, ignore=ignore, jobs=jobs, target=target)
    missing: list[str] = []
    files = list(
        iter_python_files(list(paths), on_missing=missing.append, excluded=config.excluded)
    )
    progress = Progress(len(files))
    try:
        cache = None if no_cache else FindingsCache(default_folder())
        results = check_files(files, config, progress, debug=debugging(), cache=cache)
    finally:
        progress.close()
    findings = [finding for result in results for finding in result.findings]
    click.echo(render(output_format, findings), nl=False)
    errors = [f"{display}: error: no such file or directory" for display in missing]
    errors += [result.error for result in results if result.error]
    for error in errors:
        click.echo(error, err=True)
    line = summary(results, len(errors), config.target)
    if line:
        click.echo(line, err=True)
    if errors:
        ctx.exit(2)
    ctx.exit(1 if findings and not exit_zero else 0)


def summary(results: Sequence[FileResult], errors: int, target: str) -> str:
    """``3 training loops can be converted (2 files), 1 finding needs a human; run …``.

    Empty for a clean run, which prints nothing, like ``lightify PATH``.
    """
    findings = [finding for result in results for finding in result.findings]
    parts = [part for part in (_convertible(findings), _human(findings)) if part]
    if not results and not errors:
        parts.append("no Python files found")
    if errors:
        parts.append(_plural(errors, "error"))
    line = ", ".join(parts)
    convertible = tuple(dict.fromkeys(finding.path for finding in findings if finding.fixable))
    return f"{line}; run {_rerun(convertible, target)}" if convertible else line


def _convertible(findings: list[Finding]) -> str:
    files = {finding.path for finding in findings if finding.fixable}
    if not files:
        return ""
    loops = sum(finding.fixable and finding.code == CONVERTS_A_LOOP for finding in findings)
    if not loops:
        return f"{_plural(len(files), 'file')} can be converted"
    return f"{_plural(loops, 'training loop')} can be converted ({_plural(len(files), 'file')})"


def _human(findings: list[Finding]) -> str:
    left = sum(not finding.fixable for finding in findings)
    if not left:
        return ""
    return f"{_plural(left, 'finding')} {'needs' if left == 1 else 'need'} a human"
