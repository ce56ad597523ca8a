"""Remembering each script's findings, so ``lightify check`` does not analyze it again.

Analysis needs libcst, whose import alone takes longer than a whole check of a
remembered file. A pre-commit hook or a CI job checks mostly the same files
again and again, so the findings of every analyzed text are stored under a key
made of the text, the target and a fingerprint of lightify's own code (its
version and the size and modification time of each of its modules, so an
upgrade or an edited rule never serves stale findings). The cache is only an
optimization: an unreadable or unwritable cache is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import tempfile
from functools import cache
from pathlib import Path

import lightify
from lightify import __version__
from lightify.diagnostics import Finding

CACHE_ENV = "LIGHTIFY_CACHE_DIR"


def default_folder() -> Path:
    """``$LIGHTIFY_CACHE_DIR``, else ``$XDG_CACHE_HOME/lightify``, else ``~/.cache/lightify``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lightify"


@cache
def code_fingerprint() -> str:
    """What identifies the analysis code: the version and every module's size and mtime."""
    digest = hashlib.sha256(__version__.encode())
    for folder in _analysis_folders():
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(name for name in dirs if name != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    info = os.stat(os.path.join(root, name))
                    digest.update(f"{root}/{name}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _analysis_folders() -> list[str]:
    """lightify's package and its rules (a separate folder in a development install)."""
    spec = importlib.util.find_spec("lightify.rules")
    rules = list(spec.submodule_search_locations or []) if spec else []
    return [os.path.dirname(lightify.__file__), *rules]


class FindingsCache:
    """Findings by text; the path is not part of the key (a moved file stays cached)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def key(self, text: str, target: str) -> str:
        fingerprint = code_fingerprint()
        digest = hashlib.sha256(f"{fingerprint}\0{target}\0".encode())
        digest.update(text.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def get(self, key: str, path: str) -> tuple[Finding, ...] | None:
        """The stored findings, located in ``path``; None when absent or unreadable."""
        try:
            rows = json.loads(self._file(key).read_text())
            return tuple(Finding(path, *row) for row in rows)
        except (OSError, ValueError, TypeError):
            return None

    def put(self, key: str, findings: tuple[Finding, ...]) -> None:
        """Store atomically (parallel workers may write the same key); failures are ignored."""
        rows = [[f.line, f.col, f.code, f.message, f.fixable] for f in findings]
        target = self._file(key)
        with contextlib.suppress(OSError):
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as stream:
                    json.dump(rows, stream)
                os.replace(temp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise

    def _file(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"
