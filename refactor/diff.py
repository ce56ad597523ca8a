"""Unified diffs of a conversion, in the format ``patch`` and ``git apply`` accept."""

from __future__ import annotations

import difflib
import io
import re

NO_NEWLINE = "\\ No newline at end of file\n"
_HUNK = re.compile(r"@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_RESET = "\x1b[0m"
_STYLES = {"header": "\x1b[1m", "hunk": "\x1b[36m", "-": "\x1b[31m", "+": "\x1b[32m"}


def unified_diff(old: str, new: str, path: str) -> str:
    """The diff turning ``old`` into ``new``, both sides labelled ``path``; "" when equal.

    Lines keep their own endings (CRLF stays CRLF), and a last line without a
    newline is marked the standard way so the patch applies exactly.
    """
    lines = difflib.unified_diff(_lines(old), _lines(new), fromfile=path, tofile=path)
    return "".join(
        line if line.endswith(("\n", "\r")) else line + "\n" + NO_NEWLINE for line in lines
    )


def _lines(text: str) -> list[str]:
    """Split on real line breaks only (str.splitlines also splits on form feeds)."""
    return io.StringIO(text, newline="").readlines()


def colorize(diff: str) -> str:
    """Add ANSI colours for a terminal: bold headers, cyan hunks, red removals, green additions.

    Hunk lengths are tracked so that a removed line reading ``-- x`` is not
    mistaken for a ``---`` file header.
    """
    out: list[str] = []
    old_left = new_left = 0
    for line in io.StringIO(diff, newline="").readlines():
        match = _HUNK.match(line)
        if old_left or new_left:
            kind = line[:1]
            old_left -= kind in " -"
            new_left -= kind in " +"
            out.append(_paint(line, kind) if kind in "-+" else line)
        elif match:
            old_left, new_left = (int(count or 1) for count in match.groups())
            out.append(_paint(line, "hunk"))
        elif line.startswith(("--- ", "+++ ")):
            out.append(_paint(line, "header"))
        else:
            out.append(line)
    return "".join(out)


def _paint(line: str, kind: str) -> str:
    """Wrap the line's text, not its line ending, so terminals do not bleed colour."""
    text = line.rstrip("\r\n")
    return f"{_STYLES[kind]}{text}{_RESET}{line[len(text) :]}"
