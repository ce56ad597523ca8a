"""A one-pass index of the module: parents, functions, classes, loops that call backward()."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import PositionProvider

from lightify.analyze.imports import ImportTable
from lightify.analyze.nodes import dotted_name


@dataclass
class ModuleIndex:
    """What the rest of the analysis looks up by node or by name."""

    module: cst.Module
    imports: ImportTable
    parents: dict[cst.CSTNode, cst.CSTNode] = field(default_factory=dict)
    functions: dict[str, cst.FunctionDef] = field(default_factory=dict)
    classes: dict[str, cst.ClassDef] = field(default_factory=dict)
    backward_loops: list[cst.For] = field(default_factory=list)
    positions: object = None
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
        pos = self.positions[self.origins.get(node, node)]  # type: ignore[index]
        return pos.start.line, pos.start.column + 1

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
        positions = cst.MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    else:
        imports, positions = like.imports, like.positions
    index = ModuleIndex(module, imports, positions=positions)
    indexer = _Indexer(index, record_imports=like is None)
    module.visit(indexer)
    index.backward_loops = _innermost_loops(index, indexer.backward_calls)
    return index


class _Indexer(cst.CSTVisitor):
    def __init__(self, index: ModuleIndex, record_imports: bool) -> None:
        self.index = index
        self.record_imports = record_imports
        self.stack: list[cst.CSTNode] = []
        self.backward_calls: list[cst.Call] = []
        self.in_import = 0

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self.stack:
            self.index.parents[node] = self.stack[-1]
        self.stack.append(node)
        if isinstance(node, cst.Import | cst.ImportFrom):
            self.in_import += 1
            if self.record_imports:
                self.index.imports.record(node)
        elif isinstance(node, cst.Name | cst.Attribute) and not self.in_import:
            self.index.references.append(node)
        if isinstance(node, cst.FunctionDef) and self._at_module_level():
            self.index.functions[node.name.value] = node
        elif isinstance(node, cst.ClassDef) and self._at_module_level():
            self.index.classes[node.name.value] = node
        elif (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value == "backward"
        ):
            self.backward_calls.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.stack.pop()
        if isinstance(original_node, cst.Import | cst.ImportFrom):
            self.in_import -= 1

    def _at_module_level(self) -> bool:
        return not any(isinstance(n, cst.FunctionDef | cst.ClassDef) for n in self.stack[:-1])


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
