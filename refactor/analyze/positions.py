"""Where each node's code starts: what findings point at.

libcst's PositionProvider computes the same starts through its metadata machinery,
with a start and an end object per node; findings only need the start, and on large
files that machinery was a large share of the cost of analysing them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import libcst as cst
from libcst._nodes.internal import CodegenState

_NEWLINE = re.compile(r"\r\n?|\n")


class _StartPositions(CodegenState):
    """Renders nothing: advances a (line, column) cursor over the tokens and records,
    for every node, where its syntactic code starts (leading blank lines and comments
    aside), the way PositionProvider defines it."""

    def __init__(self, module: cst.Module) -> None:
        super().__init__(
            default_indent=module.default_indent, default_newline=module.default_newline
        )
        self.line = 1
        self.column = 0
        self.starts: dict[cst.CSTNode, tuple[int, int]] = {}
        self._stack: list[tuple[int, int]] = []

    def add_indent_tokens(self) -> None:
        for token in self.indent_tokens:
            self.add_token(token)

    def add_token(self, value: str) -> None:
        if "\n" in value or "\r" in value:
            segments = _NEWLINE.split(value)
            self.line += len(segments) - 1
            self.column = len(segments[-1])
        else:
            self.column += len(value)

    def before_codegen(self, node: cst.CSTNode) -> None:
        self._stack.append((self.line, self.column))

    def after_codegen(self, node: cst.CSTNode) -> None:
        start = self._stack.pop()
        self.starts.setdefault(node, start)  # a syntactic start recorded inside wins

    @contextmanager
    def record_syntactic_position(
        self,
        node: cst.CSTNode,
        *,
        start_node: cst.CSTNode | None = None,
        end_node: cst.CSTNode | None = None,
    ) -> Iterator[None]:
        start = (self.line, self.column)
        yield
        self.starts[node] = self.starts[start_node] if start_node is not None else start


def start_positions(module: cst.Module) -> dict[cst.CSTNode, tuple[int, int]]:
    """Line (1-based) and column (0-based) where each node of ``module`` starts."""
    state = _StartPositions(module)
    module._codegen(state)
    return state.starts
