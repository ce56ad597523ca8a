"""The Python API: convert source text or a file in memory, never touching the disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lightify.diagnostics import Finding
from lightify.prefilter import might_hold_training_loop


@dataclass(frozen=True)
class Conversion:
    """The result of converting one script."""

    source: str
    converted: str
    findings: tuple[Finding, ...]

    @property
    def changed(self) -> bool:
        return self.converted != self.source


def convert_source(source: str, path: str = "<string>", target: str = "lightning") -> Conversion:
    """Convert one script's text; raises ParseFailure when it is not valid Python.

    A text that cannot hold a training loop (``lightify.prefilter``) comes back
    unchanged without being parsed, so a syntax error in it goes unreported: the
    command line and pre-commit hooks stay fast on trees of thousands of files.
    """
    if not might_hold_training_loop(source):
        return Conversion(source, source, ())
    from lightify.convert import convert_module

    return convert_module(source, path=path, target=target)


def convert_file(path: str | Path, target: str = "lightning") -> Conversion:
    """Read a file (honouring its encoding) and convert it in memory."""
    from lightify.source import read_source

    text = read_source(Path(path))
    return convert_source(text, path=str(path), target=target)
