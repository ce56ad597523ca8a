"""What a rule module declares, and the example type its tests are collected from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """A whole script before, the exact script after (None: left unchanged), and the codes found."""

    before: str
    after: str | None
    codes: tuple[str, ...] = ()
