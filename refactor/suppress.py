"""Suppression comments: ``# lightify: ignore[LFY401]`` or a bare ``# lightify: ignore``.

A comment on the line a finding points at hides that finding from ``lightify
check`` (codes in brackets, by prefix like ``--ignore``; no brackets hides every
code on the line). Comments are found with the tokenizer, so text that only
looks like one inside a string does not count.
"""

from __future__ import annotations

import io
import re
import tokenize

from lightify.diagnostics import Finding

_DIRECTIVE = re.compile(r"#.*?\blightify:\s*ignore\b(?:\[(?P<codes>[^\]]*)\])?")
ALL = ("",)  # the prefix every code starts with


def unsuppressed(findings: tuple[Finding, ...], text: str) -> tuple[Finding, ...]:
    """The findings no suppression comment hides."""
    if not findings or "lightify:" not in text:
        return findings
    directives = suppressions(text)
    return tuple(
        finding
        for finding in findings
        if not finding.code.startswith(directives.get(finding.line, ()))
    )


def suppressions(text: str) -> dict[int, tuple[str, ...]]:
    """Line number -> the code prefixes its comment suppresses (``ALL`` for a bare one)."""
    found: dict[int, tuple[str, ...]] = {}
    for line, comment in _comments(text):
        match = _DIRECTIVE.search(comment)
        if match is None:
            continue
        codes = match["codes"]
        if codes is None:
            found[line] = ALL
        else:
            found[line] = tuple(code.upper() for code in re.split(r"[\s,]+", codes) if code)
    return found


def _comments(text: str) -> list[tuple[int, str]]:
    try:
        tokens = tokenize.generate_tokens(io.StringIO(text).readline)
        return [(tok.start[0], tok.string) for tok in tokens if tok.type == tokenize.COMMENT]
    except (tokenize.TokenError, SyntaxError):  # not Python after all: read lines as they are
        return [
            (number, line[line.index("#") :])
            for number, line in enumerate(text.splitlines(), start=1)
            if "#" in line
        ]
