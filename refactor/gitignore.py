"""A small ``.gitignore`` matcher, so folder walks skip what git ignores without running git.

It covers what projects write in practice: comments, ``!`` negation, trailing
``/`` for folders only, patterns anchored by a slash, ``*``, ``?``, ``[...]``
and ``**``. The last matching line wins, and a deeper ``.gitignore`` comes
after the ones above it. Global excludes (``core.excludesFile``) and
``.git/info/exclude`` are not read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import PurePosixPath


@dataclass(frozen=True)
class Rule:
    """One pattern line of a ``.gitignore`` in folder ``base`` (a posix path, "" for the top)."""

    base: str
    regex: re.Pattern[str]
    negated: bool
    folders_only: bool
    anchored: bool

    def matches(self, path: str, is_dir: bool) -> bool:
        """``path`` is posix and relative to the same top as ``base``."""
        if self.folders_only and not is_dir:
            return False
        if self.base:
            if not path.startswith(self.base + "/"):
                return False
            path = path[len(self.base) + 1 :]
        subject = path if self.anchored else PurePosixPath(path).name
        return self.regex.fullmatch(subject) is not None


def parse_gitignore(text: str, base: str = "") -> list[Rule]:
    """The rules of one ``.gitignore`` file whose folder is ``base``."""
    rules = []
    for line in text.splitlines():
        rule = _parse_line(line, base)
        if rule is not None:
            rules.append(rule)
    return rules


def ignored(rules: list[Rule], path: str, is_dir: bool) -> bool:
    """Whether git would ignore ``path``: the last rule that matches decides."""
    result = False
    for rule in rules:
        if rule.matches(path, is_dir):
            result = not rule.negated
    return result


def _parse_line(line: str, base: str) -> Rule | None:
    line = _strip_trailing_spaces(line)
    if not line or line.startswith("#"):
        return None
    negated = line.startswith("!")
    if negated:
        line = line[1:]
    elif line.startswith("\\"):  # "\#x" and "\!x" are literal
        line = line[1:] if line[1:2] in ("#", "!") else line
    folders_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    pattern = line.lstrip("/")
    return Rule(base, re.compile(_translate(pattern)), negated, folders_only, anchored)


def _strip_trailing_spaces(line: str) -> str:
    """Trailing spaces are dropped unless escaped with a backslash."""
    stripped = line.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(line):
        return stripped[:-1] + " "
    return stripped


def _translate(pattern: str) -> str:
    """A gitignore glob as a regular expression over a posix path."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i) and (i == 0 or pattern[i - 1] == "/"):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i) and i + 2 == len(pattern) and pattern[i - 1 : i] == "/":
            out.append(".*")
            i += 2
        else:
            char = pattern[i]
            i += 1
            if char == "*":
                out.append("[^/]*")
            elif char == "?":
                out.append("[^/]")
            elif char == "[":
                i = _translate_class(pattern, i, out)
            elif char == "\\" and i < len(pattern):
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append(re.escape(char))
    return "".join(out)


def _translate_class(pattern: str, start: int, out: list[str]) -> int:
    """``[abc]``, ``[!a-z]``: copy the class; an unclosed ``[`` is a literal."""
    end = pattern.find("]", start + 1 if pattern[start : start + 1] in ("!", "]") else start)
    if end < 0:
        out.append(re.escape("["))
        return start
    body = pattern[start:end]
    if body.startswith("!"):
        body = "^" + body[1:]
    out.append("[" + body.replace("\\", "\\\\") + "]")
    return end + 1


class IgnoreTree:
    """The ``.gitignore`` rules in force in each folder of one walk, read once per folder.

    Rules are relative to ``top``: the repository's top folder (the nearest one
    above the walk with ``.git``), or the walked folder when it is in no repository.
    """

    def __init__(self, folder: str) -> None:
        start = os.path.abspath(folder)
        self.top = next(
            (path for path in _upwards(start) if os.path.exists(os.path.join(path, ".git"))),
            start,
        )
        self._rules: dict[str, list[Rule]] = {}

    def ignored(self, folder: str, name: str, is_dir: bool) -> bool:
        """Whether ``name`` in ``folder`` (a folder of the walk) is ignored by git."""
        absolute = os.path.abspath(folder)
        relative = os.path.relpath(os.path.join(absolute, name), self.top)
        return ignored(self.rules_in(absolute), relative.replace(os.sep, "/"), is_dir)

    def rules_in(self, folder: str) -> list[Rule]:
        """Every rule that applies inside ``folder``: its ancestors' first, then its own."""
        if folder not in self._rules:
            parent = os.path.dirname(folder)
            inherited = [] if folder == self.top or parent == folder else self.rules_in(parent)
            self._rules[folder] = inherited + self._read(folder)
        return self._rules[folder]

    def _read(self, folder: str) -> list[Rule]:
        base = os.path.relpath(folder, self.top).replace(os.sep, "/")
        try:
            with open(os.path.join(folder, ".gitignore"), encoding="utf-8", errors="replace") as f:
                return parse_gitignore(f.read(), "" if base == "." else base)
        except OSError:
            return []


def _upwards(path: str) -> list[str]:
    found = [path]
    while os.path.dirname(found[-1]) != found[-1]:
        found.append(os.path.dirname(found[-1]))
    return found
