"""Black-style wrapping for long lines lightify writes: one argument per line."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.nodes import code

LINE_LENGTH = 88


def wrap_statement(statement: cst.BaseStatement, indent: int) -> cst.BaseStatement:
    """Explode the outermost call or dict of a too-long one-line statement."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return statement
    if statement.trailing_whitespace.comment is not None:
        return statement  # the user's line, with their comment: left as written
    text = code(statement.with_changes(leading_lines=[])).rstrip("\n")
    if "\n" in text or len(text) + indent <= LINE_LENGTH:
        return statement
    small = statement.body[0]
    value = getattr(small, "value", None)
    exploded = _explode(value) if isinstance(value, cst.Call | cst.Dict) else None
    if exploded is None:
        return statement
    head = code(small.with_changes(value=cst.Name("__VALUE__")))
    new = cst.parse_statement(head.replace("__VALUE__", exploded).rstrip("\n") + "\n")
    assert isinstance(new, cst.SimpleStatementLine)
    return new.with_changes(
        leading_lines=statement.leading_lines, trailing_whitespace=statement.trailing_whitespace
    )


def wrap_call(head: str, args: list[str], tail: str = ")", indent: int = 0) -> str:
    """``head(a, b)`` on one line when it fits, else one argument per line."""
    flat = f"{head}{', '.join(args)}{tail}"
    if len(flat) + indent <= LINE_LENGTH:
        return flat
    inner = "".join(f"    {arg},\n" for arg in args)
    return f"{head}\n{inner}{tail}"


def _explode(value: cst.Call | cst.Dict) -> str:
    if isinstance(value, cst.Call):
        args = [
            code(arg.with_changes(comma=cst.MaybeSentinel.DEFAULT)).strip() for arg in value.args
        ]
        return wrap_call(f"{code(value.func)}(", args, ")", indent=LINE_LENGTH)
    elements = [
        code(element.with_changes(comma=cst.MaybeSentinel.DEFAULT)).strip()
        for element in value.elements
    ]
    return wrap_call("{", elements, "}", indent=LINE_LENGTH)
