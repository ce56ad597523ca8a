"""A one-pass index of the module: parents, functions, classes, loops that call backward()."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from lightify.analyze.imports import ImportTable
from lightify.analyze.nodes import code_children, dotted_name
from lightify.analyze.positions import start_positions


@dataclass
class ModuleIndex:
    """What the rest of the analysis looks up by node or by name."""

    module: cst.Module
    imports: ImportTable
    parents: dict[cst.CSTNode, cst.CSTNode] = field(default_factory=dict)
    functions: dict[str, cst.FunctionDef] = field(default_factory=dict)
    classes: dict[str, cst.ClassDef] = field(default_factory=dict)
    backward_loops: list[cst.For] = field(default_factory=list)
    positions: dict[cst.CSTNode, tuple[int, int]] = field(default_factory=dict)
    origins: dict[cst.CSTNode, cst.CSTNode] = field(default_factory=dict)
    # every Name and Attribute outside import statements, in source order: rules that
    # look for an API by qualified name read this instead of walking the tree again
    references: list[cst.Name | cst.Attribute] = field(default_factory=list)
    _qualified: dict[cst.CSTNode, str | None] = field(default_factory=dict)

    def uses(self, qualified: frozenset[str] | set[str]) -> list[cst.Name | cst.Attribute]:
        """The references that resolve to one of ``qualified``, outermost first."""
        found = []
        for node in self.references:
            if node not in self._qualified:
                self._qualified[node] = self.imports.qualify(node)
            if self._qualified[node] in qualified:
                found.append(node)
        return found

    def position(self, node: cst.CSTNode) -> tuple[int, int]:
        """1-based line and column of a node in the original text."""
        line, column = self.positions[self.origins.get(node, node)]
        return line, column + 1

    def ancestors(self, node: cst.CSTNode):
        while node in self.parents:
            node = self.parents[node]
            yield node

    def enclosing_function(self, node: cst.CSTNode) -> cst.FunctionDef | None:
        for parent in self.ancestors(node):
            if isinstance(parent, cst.FunctionDef):
                return parent
        return None

    def module_classes(self) -> set[str]:
        """Names of classes in this file that are (transitively) nn.Module subclasses."""
        found: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, node in self.classes.items():
                if name in found:
                    continue
                for base in node.bases:
                    qual = self.imports.qualify(base.value)
                    local = dotted_name(base.value)
                    if (
                        qual in {"torch.nn.Module", "torch.nn.modules.module.Module"}
                        or local in found
                    ):
                        found.add(name)
                        changed = True
                        break
        return found

    def dataclasses(self) -> set[str]:
        out = set()
        for name, node in self.classes.items():
            for decorator in node.decorators:
                target = decorator.decorator
                if isinstance(target, cst.Call):
                    target = target.func
                if (self.imports.qualify(target) or "").endswith("dataclass"):
                    out.add(name)
        return out


def index_module(module: cst.Module, like: ModuleIndex | None = None) -> ModuleIndex:
    """Index ``module``; ``like`` is the index of the text it was derived from (copies of
    functions added), whose imports and positions it shares: findings point into the
    text the user wrote, and resolving positions is most of the cost on large files."""
    if like is None:
        imports = ImportTable()  # filled by the indexer's own pass
        positions = start_positions(module)
    else:
        imports, positions = like.imports, like.positions
    index = ModuleIndex(module, imports, positions=positions)
    backward_calls = _index_nodes(index, record_imports=like is None)
    index.backward_loops = _innermost_loops(index, backward_calls)
    return index


def _index_nodes(index: ModuleIndex, record_imports: bool) -> list[cst.Call]:
    """One preorder pass over the code: parents, references, top-level functions and
    classes, imports; returns the ``x.backward(...)`` calls."""
    backward_calls: list[cst.Call] = []
    # (node, its parent, at module level, inside an import statement)
    stack: list[tuple[cst.CSTNode, cst.CSTNode | None, bool, bool]] = [
        (index.module, None, True, False)
    ]
    while stack:
        node, parent, top, in_import = stack.pop()
        if parent is not None:
            index.parents[node] = parent
        kind = type(node)  # exact types: faster than isinstance on libcst's ABCs
        if kind is cst.Import or kind is cst.ImportFrom:
            in_import = True
            if record_imports:
                index.imports.record(node)
        elif kind is cst.Name or kind is cst.Attribute:
            if not in_import:
                index.references.append(node)
        elif kind is cst.FunctionDef or kind is cst.ClassDef:
            if top:
                table = index.functions if kind is cst.FunctionDef else index.classes
                table[node.name.value] = node
            top = False
        elif (
            kind is cst.Call
            and type(node.func) is cst.Attribute
            and node.func.attr.value == "backward"
        ):
            backward_calls.append(node)
        stack.extend((child, node, top, in_import) for child in reversed(code_children(node)))
    return backward_calls


def _innermost_loops(index: ModuleIndex, calls: list[cst.Call]) -> list[cst.For]:
    """For loops that call backward() in their own body (not through an inner loop)."""
    loops: list[cst.For] = []
    for call in calls:
        for parent in index.ancestors(call):
            if isinstance(parent, cst.FunctionDef | cst.ClassDef | cst.Lambda):
                break
            if isinstance(parent, cst.For):
                if parent not in loops:
                    loops.append(parent)
                break
    return loops
