"""Where a file uses an API, by qualified name: what blocker rules look for."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.tree import ModuleIndex


def first_use(index: ModuleIndex, qualified: frozenset[str]) -> cst.CSTNode | None:
    """The first Name/Attribute in the file that resolves to one of ``qualified``."""
    found: list[cst.CSTNode] = []

    class _Uses(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> bool:
            if not found and index.imports.qualify(node) in qualified:
                found.append(node)
            return not found

        def visit_Name(self, node: cst.Name) -> None:
            if not found and index.imports.qualify(node) in qualified:
                found.append(node)

        def visit_Import(self, node: cst.Import) -> bool:
            return False

        def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
            return False

    index.module.visit(_Uses())
    return found[0] if found else None
