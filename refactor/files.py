"""Turning the paths a user typed into the Python files to process.

Folders are walked the way ruff and black walk them: virtual environments
(any folder holding ``pyvenv.cfg``), build output, caches, hidden folders and
whatever ``.gitignore`` files ignore are not the user's scripts, so they are
skipped; symlinked folders are followed, once each, so a link loop ends.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from lightify.gitignore import IgnoreTree

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
        "__pypackages__",
        "_build",
        "buck-out",
    }
)


def _raise_missing(display: str) -> None:
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), display)


def _keep_all(_path: str) -> bool:
    return False


def iter_python_files(
    paths: list[str],
    on_missing: Callable[[str], None] = _raise_missing,
    excluded: Callable[[str], bool] = _keep_all,
) -> Iterator[tuple[str, Path]]:
    """Yield ``(display path, Path)`` for every file to process, each file once.

    A file named explicitly is yielded whatever its suffix; a folder yields its
    ``.py`` files in sorted order. The display path keeps the spelling the user
    typed (``./src/a.py`` stays ``./src/a.py``). A path that does not exist is
    passed to ``on_missing`` (by default it raises FileNotFoundError), so a
    command can report it and go on with the others. ``excluded`` (the
    configuration's ``exclude`` globs) applies to named paths too, so a
    pre-commit hook, which names every file, honours it.
    """
    seen: set[str] = set()
    for given in paths:
        if not os.path.lexists(given):
            on_missing(given)
            continue
        if excluded(given):
            continue
        candidates = _walk(given, excluded) if os.path.isdir(given) else [given]
        for display in candidates:
            real = os.path.realpath(display)
            if real not in seen:
                seen.add(real)
                yield display, Path(display)


def _walk(folder: str, excluded: Callable[[str], bool]) -> list[str]:
    """The ``.py`` files under ``folder``, sorted, following each real folder once."""
    found: list[str] = []
    visited: set[str] = set()
    gitignore = IgnoreTree(folder)
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in visited:
            dirs.clear()
            continue
        visited.add(real)
        dirs[:] = [
            name
            for name in dirs
            if not _skipped(root, name)
            and not gitignore.ignored(root, name, is_dir=True)
            and not excluded(os.path.join(root, name))
        ]
        found += [
            os.path.join(root, name)
            for name in files
            if name.endswith(".py")
            and not gitignore.ignored(root, name, is_dir=False)
            and not excluded(os.path.join(root, name))
        ]
    return sorted(found, key=lambda path: Path(path).parts)


def _skipped(root: str, name: str) -> bool:
    """Folders that hold no scripts of the user's: environments, build output, hidden ones."""
    return (
        name in SKIPPED_FOLDERS
        or name.startswith(".")
        or name.endswith(".egg-info")
        or os.path.isfile(os.path.join(root, name, "pyvenv.cfg"))
    )
