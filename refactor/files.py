"""Turning the paths a user typed into the Python files to process.

Folders are walked the way ruff and black walk them: virtual environments,
build output, caches and hidden folders are not the user's scripts, so they
are skipped; symlinked folders are followed, once each, so a link loop ends.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

SKIPPED_FOLDERS = frozenset(
    {
        ".git",
        ".venv",
        "venv",
        "env",
        "__pycache__",
        "build",
        "dist",
        ".tox",
        ".nox",
        "node_modules",
        "site-packages",
    }
)


def _raise_missing(display: str) -> None:
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), display)


def iter_python_files(
    paths: list[str], on_missing: Callable[[str], None] = _raise_missing
) -> Iterator[tuple[str, Path]]:
    """Yield ``(display path, Path)`` for every file to process, each file once.

    A file named explicitly is yielded whatever its suffix; a folder yields its
    ``.py`` files in sorted order. The display path keeps the spelling the user
    typed (``./src/a.py`` stays ``./src/a.py``). A path that does not exist is
    passed to ``on_missing`` (by default it raises FileNotFoundError), so a
    command can report it and go on with the others.
    """
    seen: set[str] = set()
    for given in paths:
        if not os.path.lexists(given):
            on_missing(given)
            continue
        candidates = _walk(given) if os.path.isdir(given) else [given]
        for display in candidates:
            real = os.path.realpath(display)
            if real not in seen:
                seen.add(real)
                yield display, Path(display)


def _walk(folder: str) -> list[str]:
    """The ``.py`` files under ``folder``, sorted, following each real folder once."""
    found: list[str] = []
    visited: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in visited:
            dirs.clear()
            continue
        visited.add(real)
        dirs[:] = [name for name in dirs if not _skipped(name)]
        found += [os.path.join(root, name) for name in files if name.endswith(".py")]
    return sorted(found, key=lambda path: Path(path).parts)


def _skipped(name: str) -> bool:
    return name in SKIPPED_FOLDERS or name.startswith(".")
