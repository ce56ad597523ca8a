"""``lightify init-pre-commit``: the ``.pre-commit-config.yaml`` entry, printed or appended.

The hooks themselves are declared in ``.pre-commit-hooks.yaml`` at the
repository root (for ``repo: <lightify's repository>``); ``HOOK`` mirrors the
recommended one, and a test keeps the two equal. Without ``--repo`` the entry
is a ``repo: local`` hook that pre-commit installs from PyPI, pinned to the
version running now, so it works without knowing where lightify is hosted.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from lightify import __version__
from lightify.cli import main

DISTRIBUTION = "lightify-convert"
CONFIG = ".pre-commit-config.yaml"
#: The recommended hook (reports, never modifies), as in .pre-commit-hooks.yaml.
HOOK: dict[str, str | bool | list[str]] = {
    "id": "lightify-check",
    "name": "lightify check",
    "entry": "lightify check",
    "language": "python",
    "types_or": ["python"],
    "require_serial": True,
}


def entry(repo: str | None, rev: str, indent: str = "  ") -> str:
    """The ``repos:`` list item, indented by ``indent``."""
    if repo is not None:
        lines = [f"- repo: {repo}", f"  rev: {rev}", "  hooks:", f"    - id: {HOOK['id']}"]
    else:
        pinned = {"additional_dependencies": [f'"{DISTRIBUTION}=={__version__}"']}
        fields = {**HOOK, **pinned}
        lines = ["- repo: local", "  hooks:", f"    - id: {HOOK['id']}"]
        lines += [f"      {key}: {_yaml(value)}" for key, value in fields.items() if key != "id"]
    return "".join(f"{indent}{line}\n" for line in lines)


def _yaml(value: str | bool | list[str]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    return value


@main.command("init-pre-commit", short_help="Print (or add) the pre-commit configuration entry.")
@click.option("--write", is_flag=True, help=f"Append the entry to {CONFIG} at the repository top.")
@click.option("--repo", metavar="URL", help="lightify's git repository, for a remote-repo entry.")
@click.option("--rev", default=f"v{__version__}", show_default=True, help="The tag, with --repo.")
def init_pre_commit(write: bool, repo: str | None, rev: str) -> None:
    """Print the .pre-commit-config.yaml entry for the lightify-check hook,
    or append it with --write (creating the file if needed).

    lightify-check reports and never modifies files. The `lightify` hook,
    which converts in place, is opt-in: add `- id: lightify` yourself.
    """
    if not write:
        click.echo(f"repos:\n{entry(repo, rev)}", nl=False)
        return
    path = _repository_top(Path.cwd()) / CONFIG
    click.echo(_append(path, repo, rev), err=True)


def _append(path: Path, repo: str | None, rev: str) -> str:
    """Add the entry at the end of the ``repos:`` list; say what was done."""
    if not path.exists():
        path.write_text(f"repos:\n{entry(repo, rev)}", encoding="utf-8")
        return f"created {path} with the lightify-check hook"
    text = path.read_text(encoding="utf-8")
    if "lightify-check" in text:
        return f"{path} already has the lightify-check hook"
    lines = text.splitlines(keepends=True)
    start = next((n for n, line in enumerate(lines) if line.rstrip() == "repos:"), None)
    if start is None:
        raise click.ClickException(
            f"{path} has no block-style `repos:` list to add to; add this under repos:\n"
            + entry(repo, rev)
        )
    end = _block_end(lines, start)
    indent = _item_indent(lines[start + 1 : end])
    if end and not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    lines.insert(end, entry(repo, rev, indent))
    path.write_text("".join(lines), encoding="utf-8")
    return f"added the lightify-check hook to {path}"


def _block_end(lines: list[str], start: int) -> int:
    """The index after the last non-blank line of the ``repos:`` block."""
    end = start + 1
    for number in range(start + 1, len(lines)):
        line = lines[number]
        if line.strip() and not line[0].isspace() and not line.startswith(("-", "#")):
            break
        if line.strip() and not line.lstrip().startswith("#"):
            end = number + 1
    return end


def _item_indent(block: list[str]) -> str:
    """The indentation of the list's items (``  - repo:`` or ``- repo:``)."""
    for line in block:
        if line.lstrip().startswith("- "):
            return line[: len(line) - len(line.lstrip())]
    return "  "


def _repository_top(start: Path) -> Path:
    """Where ``.pre-commit-config.yaml`` belongs: the git repository's top, or ``start``."""
    for folder in (start, *start.parents):
        if os.path.exists(folder / ".git"):
            return folder
    return start
