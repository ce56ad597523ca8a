"""Telling cheaply whether a script can hold a training loop, before libcst parses it.

Parsing with libcst and indexing the tree is by far the most expensive step of a
conversion (thousands of lines a second), and most Python files in a real tree
cannot hold a training loop at all: a training loop calls ``.backward(`` inside
a loop. Two stages, each a fraction of the cost of the next:

1. text: the file mentions ``.backward(`` somewhere (TorchFix's trick: skip what
   cannot match before parsing);
2. syntax: Python's own parser (C, ten times faster than libcst) finds a
   ``.backward(...)`` call lexically inside a ``for``/``while`` loop of the same
   function, which is what ``lightify.analyze`` looks for. Docstrings and
   comments that mention ``.backward()`` stop here.

The stages may say yes wrongly (libcst then finds nothing), never no wrongly:
``tests/test_check.py`` holds them to every fixture and rule example. A file
that fails this test is returned unchanged without being parsed, so a syntax
error in it is not reported; that is the price of checking a large tree fast.
"""

from __future__ import annotations

import ast
import re

_BACKWARD_TEXT = re.compile(r"\.\s*backward\s*\(")
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)


def mentions_backward(text: str) -> bool:
    """Stage 1: ``.backward(`` appears in the text (in code, a string or a comment)."""
    return "backward" in text and _BACKWARD_TEXT.search(text) is not None


def calls_backward_in_a_loop(text: str) -> bool:
    """Stage 2: a ``.backward(...)`` call sits inside a loop; True when Python cannot parse it.

    A syntax error is left to libcst, which reports it with the project's own
    message (and accepts what this interpreter's grammar may not).
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return True
    return _loop_calls_backward(tree)


def might_hold_training_loop(text: str) -> bool:
    """Both stages: False means the converter would find nothing in this text."""
    return mentions_backward(text) and calls_backward_in_a_loop(text)


def _loop_calls_backward(tree: ast.AST) -> bool:
    """Walk with an explicit stack (generated code nests deeper than the recursion limit).

    A nested def, class or lambda starts outside any loop, as it does for the analysis.
    """
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, in_loop = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, _SCOPES):
                stack.append((child, False))
            elif in_loop and _is_backward_call(child):
                return True
            else:
                stack.append((child, in_loop or isinstance(child, _LOOPS)))
    return False


def _is_backward_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "backward"
    )
