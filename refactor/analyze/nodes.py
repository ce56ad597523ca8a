"""Small, pure helpers over libcst nodes shared by the analyzer, the rules and the emitter."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from types import UnionType

import libcst as cst

_EMPTY = cst.Module(body=[])
# Fields that hold only whitespace, comments or punctuation: no code to look at.
_LAYOUT_FIELDS = frozenset(
    {
        *("lpar", "rpar", "lbracket", "rbracket", "lbrace", "rbrace"),
        *("leading_lines", "lines_after_decorators", "header", "footer", "indent", "newline"),
        *("comma", "semicolon", "colon", "dot", "equal", "operator", "star", "asynchronous"),
    }
)
_FIELDS: dict[tuple[type, bool], tuple[str, ...]] = {}
_SUBCLASSES: dict[tuple[type, type | UnionType], bool] = {}


def dotted_name(node: cst.CSTNode) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = dotted_name(node.value)
        return None if head is None else f"{head}.{node.attr.value}"
    return None


def code(node: cst.CSTNode) -> str:
    """Source text of a node, without surrounding indentation."""
    return _EMPTY.code_for_node(node)


def result_names(statement: cst.CSTNode) -> list[str]:
    """The names ``x, y = f(...)`` binds a call's result to (one assignment target only)."""
    small = only_small(statement)
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        return assigned_names(small.targets[0].target)
    return []


def mode_call(statement: cst.CSTNode) -> str | None:
    """``"train"`` or ``"eval"`` for a statement ``x.train()`` / ``x.eval()`` without arguments."""
    found = method_call(statement)
    if found is not None and found[1] in ("train", "eval") and not found[2].args:
        return found[1]
    return None


def operand(node: cst.BaseExpression) -> str:
    """A node's code as the operand of an arithmetic or comparison operator: parenthesised
    unless it binds tighter than any operator (a name, call, subscript, literal)."""
    text = code(node)
    atoms = cst.Name | cst.Attribute | cst.Call | cst.Subscript | cst.Integer | cst.Float
    return text if isinstance(node, atoms) or node.lpar else f"({text})"


def short(node: cst.CSTNode, width: int = 50) -> str:
    """A node's code on one line, cut to ``width`` characters: for findings."""
    text = " ".join(code(node).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def stmt(text: str) -> cst.BaseStatement:
    return cst.parse_statement(text)


def code_children(node: cst.CSTNode, layout: bool = False) -> list[cst.CSTNode]:
    """The children of ``node`` that can hold code; with ``layout``, whitespace and comments too.

    Read straight from the node's fields: a libcst visitor rebuilds every node it passes,
    which made read-only walks most of the cost of converting a file.
    """
    key = (type(node), layout)
    fields = _FIELDS.get(key)
    if fields is None:
        fields = _FIELDS[key] = tuple(
            f.name
            for f in dataclasses.fields(type(node))
            if layout or (f.name not in _LAYOUT_FIELDS and "whitespace" not in f.name)
        )
    children: list[cst.CSTNode] = []
    for name in fields:
        value = getattr(node, name)
        kind = type(value)
        if kind is tuple or kind is list:
            children.extend(value)
        elif is_a(kind, cst.CSTNode):
            children.append(value)
    return children


def is_a(kind: type, base: type | UnionType) -> bool:
    """``issubclass(kind, base)``, remembered: libcst's node classes are ABCs, whose
    isinstance checks were a large share of a walk's time."""
    known = _SUBCLASSES.get((kind, base))
    if known is None:
        known = _SUBCLASSES[kind, base] = issubclass(kind, base)
    return known


def walk(
    node: cst.CSTNode,
    into: Callable[[cst.CSTNode], bool] | None = None,
    layout: bool = False,
) -> Iterator[cst.CSTNode]:
    """``node`` and the code under it, depth first, statements in source order.

    The children of a node for which ``into`` returns False are skipped; ``layout``
    includes whitespace and comments (not in source order).
    """
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if into is None or into(current):
            stack.extend(reversed(code_children(current, layout)))


def names_in(node: cst.CSTNode) -> set[str]:
    """Every bare name read or written anywhere under ``node`` (attribute names aside)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        kind = type(current)  # exact types: faster than isinstance on libcst's ABCs
        if kind is cst.Name:
            found.add(current.value)
        elif kind is cst.Attribute:
            stack.append(current.value)
        else:
            stack.extend(code_children(current))
    return found


def assigned_names(target: cst.BaseExpression) -> list[str]:
    """Names bound by an assignment target (tuples and lists unpacked)."""
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, cst.Tuple | cst.List):
        out: list[str] = []
        for element in target.elements:
            out.extend(assigned_names(element.value))
        return out
    return []


def only_small(line: cst.CSTNode) -> cst.BaseSmallStatement | None:
    """The single small statement of a one-statement line, else None."""
    if isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1:
        return line.body[0]
    return None


def is_docstring(statement: cst.CSTNode) -> bool:
    """A bare string statement: documentation, not code."""
    small = only_small(statement)
    return isinstance(small, cst.Expr) and isinstance(
        small.value, cst.SimpleString | cst.ConcatenatedString
    )


def leading_docstring(statements: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
    """The docstring that opens ``statements`` (a per-epoch function's), as a list of 0 or 1:
    it documents the step method the function's loop becomes."""
    return statements[:1] if statements and is_docstring(statements[0]) else []


def call_of(node: cst.CSTNode) -> cst.Call | None:
    """The call of an expression statement ``f(...)``, else None."""
    small = only_small(node)
    if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
        return small.value
    return None


def statement_call(statement: cst.CSTNode) -> cst.Call | None:
    """The call of ``f(...)`` or ``x = f(...)`` (a pass invoked by its caller)."""
    call = call_of(statement)
    if call is not None:
        return call
    small = only_small(statement)
    if isinstance(small, cst.Assign) and isinstance(small.value, cst.Call):
        return small.value
    return None


def method_call(node: cst.CSTNode) -> tuple[str, str, cst.Call] | None:
    """``(receiver, method, call)`` for a statement ``receiver.method(...)``."""
    call = call_of(node)
    if call is None or not isinstance(call.func, cst.Attribute):
        return None
    receiver = dotted_name(call.func.value)
    if receiver is None:
        return None
    return receiver, call.func.attr.value, call
