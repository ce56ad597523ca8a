"""Findings: what lightify converted, kept, or needs a human for, with a location and a code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Finding:
    """One diagnostic, located in the user's file.

    ``fixable`` is True when ``lightify --write`` converts the code it points at
    (shown as ``[*]``); False when the code stays as it is and needs a human.
    """

    path: str
    line: int
    col: int
    code: str
    message: str
    fixable: bool = False

    def format(self) -> str:
        """Render as ``path:line:col: LFYnnn [*] message`` (ruff's shape)."""
        mark = " [*]" if self.fixable else ""
        return f"{self.path}:{self.line}:{self.col}: {self.code}{mark} {self.message}"


class ParseFailure(Exception):
    """The input is not valid Python (or not readable text); carries a location."""

    def __init__(self, message: str, line: int = 1, col: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col

    def format(self, path: str) -> str:
        return f"{path}:{self.line}:{self.col}: error: {self.message}"
