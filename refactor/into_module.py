"""Rewrite names of the program's scope for code that moves into the LightningModule.

``model`` becomes ``self.model`` (a constructor argument), ``args.lr`` becomes
``self.lr`` (a hyperparameter passed as ``lr=args.lr``), ``device`` becomes
``self.device``, the epoch counter becomes ``self.current_epoch``. Names the
moved code binds itself (the batch, locals) are left alone.
"""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Kind, Program
from lightify.analyze.nodes import assigned_names, dotted_name, is_a, names_in, only_small, walk
from lightify.plan import Plan

# Nodes whose ``target`` the code binds: assignments, loops, walrus.
_TARGETED = cst.AssignTarget | cst.AugAssign | cst.AnnAssign | cst.For | cst.NamedExpr


def bound_names(nodes: list[cst.CSTNode], own_scope_only: bool = False) -> set[str]:
    """Names the given code binds itself: assignment, loop and comprehension targets.

    ``own_scope_only`` leaves out what comprehensions, lambdas and nested functions
    bind: the names that outlive the statements.
    """
    found: set[str] = set()
    nested_scopes = cst.Lambda | cst.FunctionDef

    def into(node: cst.CSTNode) -> bool:
        return not (own_scope_only and is_a(type(node), nested_scopes))

    for root in nodes:
        for node in walk(root, into):
            kind = type(node)
            if kind is cst.Param:
                found.add(node.name.value)  # lambda and nested function parameters
            elif kind is cst.AsName:
                found.update(assigned_names(node.name))
            elif kind is cst.CompFor:
                if not own_scope_only:
                    found.update(assigned_names(node.target))
            elif is_a(kind, _TARGETED):
                found.update(assigned_names(node.target))
    return found


def changed_names(statements: list[cst.BaseStatement]) -> set[str]:
    """Names whose value the statements may change: rebound, deleted, an attribute or item
    assigned or deleted (``x.a = …``, ``x[k] += …``, ``setattr(x, …)``), a method called
    (``x.pop(k)``). What a value read later would see differently from one read before."""
    changed = bound_names(statements, own_scope_only=True)
    for statement in statements:
        for node in walk(statement):
            kind = type(node)
            if kind is cst.Del or is_a(kind, _TARGETED):
                changed |= _roots(node.target)
            elif kind is cst.Call and type(node.func) is cst.Attribute:
                changed |= _roots(node.func.value)
            elif kind is cst.Call and dotted_name(node.func) in ("setattr", "delattr"):
                changed |= _roots(node.args[0].value) if node.args else set()
    return changed


def _roots(target: cst.BaseExpression) -> set[str]:
    """The names at the base of ``x``, ``x.a.b``, ``x[k]``, ``(x, y.a)``."""
    while type(target) is cst.Attribute or type(target) is cst.Subscript:
        target = target.value
    if type(target) is cst.Name:
        return {target.value}
    if type(target) is cst.Tuple or type(target) is cst.List:
        return {root for element in target.elements for root in _roots(element.value)}
    return set()


def read_first(statements: list[cst.BaseStatement]) -> set[str]:
    """Names the statements read before binding them themselves: what they take from before.

    A compound statement counts every name in it as read (a binding under a condition
    may not happen), which can only make more names count as taken.
    """
    bound: set[str] = set()
    read: set[str] = set()
    for statement in statements:
        small = only_small(statement)
        if isinstance(small, cst.Assign):
            targets = {n for t in small.targets for n in assigned_names(t.target)}
            read |= ((names_in(small) - targets) | names_in(small.value)) - bound
            bound |= targets
        else:
            read |= names_in(statement) - bound
            bound |= bound_names([statement], own_scope_only=True)
    return read


HOOK_NAMES = frozenset({"self", "batch", "batch_idx", "optimizer", "scheduler", "metric"})


class IntoModule(cst.CSTTransformer):
    """The name rewriting itself; ``extra`` maps further names (a loader → the trainer's)."""

    def __init__(
        self,
        program: Program,
        plan: Plan,
        local: set[str],
        extra: dict[str, cst.BaseExpression] | None = None,
    ) -> None:
        self.program = program
        self.plan = plan
        self.local = local
        self.extra = extra or {}
        self.skip: set[cst.CSTNode] = set()  # holds the nodes, so ids cannot be reused

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self.skip.add(node.attr)
        if isinstance(node.value, cst.Name) and self._is_config(node.value.value):
            self.skip.add(node.value)  # `args.lr` becomes one hyperparameter, not `args`

    def _is_config(self, name: str) -> bool:
        binding = self.program.bindings.get(name)
        return name not in self.local and binding is not None and binding.kind is Kind.CONFIG

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self.skip.add(node.keyword)

    def visit_Param(self, node: cst.Param) -> None:
        self.skip.add(node.name)

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.BaseExpression:
        value = original_node.value
        if isinstance(value, cst.Name) and self._is_config(value.value):
            return _self(self.plan.hparam(original_node.attr.value, original_node))
        return updated_node

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        name = original_node.value
        if original_node in self.skip:
            return updated_node
        if name in self.extra:
            return self.extra[name]
        if name in self.local:
            return updated_node
        if name == self.program.epoch.epoch_var:
            start = self.program.epoch.start
            if start is None or (isinstance(start, cst.Integer) and start.value == "0"):
                return _self("current_epoch")
            start = start.visit(self)  # `args.start_epoch` is a hyperparameter too
            return cst.BinaryOperation(_self("current_epoch"), cst.Add(), start)
        binding = self.program.bindings.get(name)
        if binding is None:
            if name not in self.program.globals and name not in HOOK_NAMES:
                raise Decline(
                    "LFY403",
                    f"the loop uses `{name}`, which is set conditionally or out of lightify's "
                    "sight; the loop is left as it is",
                    original_node,
                )
            return updated_node
        if binding.kind is Kind.MODULE:
            return _self(self.plan.module(name))
        if binding.kind is Kind.DEVICE:
            return _self("device")
        if binding.kind in (Kind.OPTIMIZER, Kind.SCHEDULER, Kind.LOADER):
            raise Decline(
                "LFY403",
                f"code in the loop uses `{name}` in a way lightify cannot carry into the "
                "LightningModule",
                binding.line,
            )
        saved = _is_plain_value(binding.value)
        return _self(self.plan.hparam(name, cst.Name(name), saved=saved))

    def leave_BinaryOperation(
        self, original_node: cst.BinaryOperation, updated_node: cst.BinaryOperation
    ) -> cst.BinaryOperation:
        """``epoch % k`` with ``epoch`` → ``current_epoch + start`` needs parentheses."""
        tight = not isinstance(updated_node.operator, cst.Add | cst.Subtract | BITWISE)
        left, right = updated_node.left, updated_node.right
        if tight or isinstance(updated_node.operator, cst.Subtract):
            right = _parenthesized(right)
        return updated_node.with_changes(left=_parenthesized(left) if tight else left, right=right)

    def leave_UnaryOperation(
        self, original_node: cst.UnaryOperation, updated_node: cst.UnaryOperation
    ) -> cst.UnaryOperation:
        if isinstance(updated_node.operator, cst.Not):
            return updated_node
        return updated_node.with_changes(expression=_parenthesized(updated_node.expression))


BITWISE = cst.LeftShift | cst.RightShift | cst.BitAnd | cst.BitOr | cst.BitXor


def _parenthesized(node: cst.BaseExpression) -> cst.BaseExpression:
    """The shifted epoch counter as an operand: ``(self.current_epoch + start)``."""
    if (
        isinstance(node, cst.BinaryOperation)
        and not node.lpar
        and isinstance(node.operator, cst.Add)
        and node.left.deep_equals(_self("current_epoch"))
    ):
        return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return node


def _self(attribute: str) -> cst.Attribute:
    return cst.Attribute(cst.Name("self"), cst.Name(attribute))


def _is_plain_value(value: cst.BaseExpression) -> bool:
    """Literals and arithmetic on them: safe to save as a hyperparameter."""
    if isinstance(value, cst.Integer | cst.Float | cst.SimpleString | cst.Name):
        return True
    if isinstance(value, cst.UnaryOperation):
        return _is_plain_value(value.expression)
    if isinstance(value, cst.BinaryOperation):
        return _is_plain_value(value.left) and _is_plain_value(value.right)
    return isinstance(value, cst.Attribute)
