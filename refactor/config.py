"""``[tool.lightify]`` in the nearest ``pyproject.toml``, merged with the command line.

The configuration that applies is the one of the project the files belong to:
lightify looks from the folder holding every given path upwards, like ruff,
for the first ``pyproject.toml`` that has a ``[tool.lightify]`` table, and
stops at the top of the git repository. Options given on the command line
replace the file's values. A misspelt key is an error, not silently ignored.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import click

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the backport has the same API
    import tomli as tomllib

TARGETS = ("lightning", "pytorch_lightning")
CODE_PREFIX = re.compile(r"LFY\d{0,3}")
KEYS = ("exclude", "ignore", "jobs", "select", "target")


class ConfigError(click.ClickException):
    """A configuration file or option lightify cannot use: a usage error (exit status 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Config:
    """What a run uses; ``root`` is the folder ``exclude`` globs are relative to."""

    root: Path
    source: Path | None = None  # the pyproject.toml read, if any
    select: tuple[str, ...] = ()  # code prefixes; empty: every code
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    target: str = TARGETS[0]
    jobs: int | None = None  # None: every core

    def merged(self, **options: Any) -> Config:
        """The command line wins: options given (not None) replace the file's values."""
        given = {key: value for key, value in options.items() if value is not None}
        return replace(self, **_validated(given, label=lambda key: f"--{key}"))

    def excluded(self, path: str) -> bool:
        """Whether an ``exclude`` glob matches ``path`` or a folder above it, below ``root``.

        A glob with a slash matches the path relative to ``root`` (``scripts/old_*.py``,
        ``/legacy``); one without matches any single name (``generated``, ``*_pb2.py``).
        ``fnmatch`` rules: ``*`` also crosses ``/``.
        """
        if not self.exclude:
            return False
        try:
            parts = Path(os.path.abspath(path)).relative_to(self.root).parts
        except ValueError:  # outside the project: only names can match
            parts = Path(os.path.abspath(path)).parts[1:]
        for glob in self.exclude:
            pattern = glob.rstrip("/")
            if "/" in pattern:  # anchored at root, like a .gitignore line
                pattern = pattern.lstrip("/")
                prefixes = ("/".join(parts[: end + 1]) for end in range(len(parts)))
                if any(fnmatchcase(prefix, pattern) for prefix in prefixes):
                    return True
            elif any(fnmatchcase(name, pattern) for name in parts):
                return True
        return False

    def wants(self, code: str) -> bool:
        """Selected (by prefix, like ruff; nothing selected means all) and not ignored.

        ``ignore`` wins over ``select``: ``--select LFY4 --ignore LFY401`` is every
        LFY4xx code but LFY401.
        """
        if self.select and not code.startswith(self.select):
            return False
        return not (self.ignore and code.startswith(self.ignore))


def load_config(paths: list[str] | tuple[str, ...], cwd: Path | None = None) -> Config:
    """The configuration for a run over ``paths`` (defaults when no file is found)."""
    start = _common_folder(paths, cwd or Path.cwd())
    found = find_pyproject(start)
    if found is None:
        return Config(root=start)
    return read_pyproject(found)


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` with ``[tool.lightify]``, not above the repository top."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and _has_lightify_table(candidate):
            return candidate
        if (folder / ".git").exists():
            return None
    return None


def read_pyproject(path: Path) -> Config:
    """Read and validate ``[tool.lightify]`` of one file."""
    table = _load(path).get("tool", {}).get("lightify", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.lightify] must be a table")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r} in [tool.lightify] (known: {', '.join(KEYS)})"
        )
    checked = _validated(table, label=lambda key: f"{path}: [tool.lightify] {key}")
    return Config(root=path.parent, source=path, **checked)


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None


def _has_lightify_table(path: Path) -> bool:
    """A cheap look before parsing: most pyproject.toml files are not lightify's."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "lightify" in text and "lightify" in _load(path).get("tool", {})


def _validated(values: dict[str, Any], label: Callable[[str], str]) -> dict[str, Any]:
    """Check types and values (``label(key)`` names the culprit); lists become tuples."""
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key in ("select", "ignore"):
            checked[key] = _codes(value, label(key))
        elif key == "exclude":
            checked[key] = _strings(value, label(key))
        elif key == "target":
            if value not in TARGETS:
                raise ConfigError(f"{label(key)}: must be one of {', '.join(TARGETS)}: {value!r}")
            checked[key] = value
        elif key == "jobs":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{label(key)}: must be a whole number of at least 1: {value!r}")
            checked[key] = value
    return checked


def _strings(value: Any, label: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{label}: must be a list of strings: {value!r}")
    return tuple(value)


def _codes(value: Any, label: str) -> tuple[str, ...]:
    """Code prefixes such as ``LFY4`` or ``LFY401``, upper-cased."""
    codes = tuple(code.strip().upper() for code in _strings(value, label))
    bad = [code for code in codes if not CODE_PREFIX.fullmatch(code)]
    if bad:
        raise ConfigError(f"{label}: {bad[0]!r} is not a code or a prefix like LFY4 or LFY401")
    return codes


def _common_folder(paths: list[str] | tuple[str, ...], cwd: Path) -> Path:
    """The deepest folder holding every path (stdin, ``-``, counts as the current folder)."""
    folders = [str(cwd if given == "-" else _folder_of(cwd / given)) for given in paths or ["."]]
    return Path(os.path.commonpath(folders))


def _folder_of(path: Path) -> Path:
    absolute = Path(os.path.abspath(path))
    return absolute if absolute.is_dir() else absolute.parent
