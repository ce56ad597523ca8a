"""The Python API: convert source text or a file in memory, never touching the disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lightify.diagnostics import Finding


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
    """Convert one script's text; raises ParseFailure when it is not valid Python."""
    from lightify.convert import convert_module

    return convert_module(source, path=path, target=target)


def convert_file(path: str | Path, target: str = "lightning") -> Conversion:
    """Read a file (honouring its encoding) and convert it in memory."""
    from lightify.source import read_source

    text = read_source(Path(path))
    return convert_source(text, path=str(path), target=target)
