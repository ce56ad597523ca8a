"""Run the rules over a program's facts to produce a Plan, or a Decline that names the line."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Pass, Program
from lightify.analyze.nodes import only_small, walk
from lightify.analyze.tree import ModuleIndex
from lightify.diagnostics import Finding
from lightify.into_module import IntoModule, bound_names
from lightify.plan import Plan
from lightify.rules import registry


class Lowering:
    """Shared state of one conversion: the facts, the plan, and helpers the rules call."""

    def __init__(self, index: ModuleIndex, program: Program, path: str) -> None:
        self.index = index
        self.program = program
        self.path = path
        self.plan = Plan(class_name=_class_name(program))
        self.plan.modules.extend(trained_modules(program))
        self.claimed: set[cst.CSTNode] = set()  # epoch-loop statements a rule has carried over
        self.decision_metric: str | None = None  # a validation value a scheduler decides on
        self.scheduler_interval: str | None = None
        self.zero_grad_seen = False
        # torch.device(f"cuda:{local_rank}") names: the distributed rule picks their accelerator
        self.rank_devices: set[str] = set()

    def run(self) -> Plan:
        for rule in registry():
            if hasattr(rule, "check"):
                rule.check(self)
        for rule in sorted(registry(), key=lambda rule: getattr(rule, "ORDER", 50)):
            if hasattr(rule, "build"):
                rule.build(self)
        for statement in self.program.passes_in_loop:
            if statement not in self.claimed:
                raise Decline(
                    "LFY403",
                    "this statement in the epoch loop has no Lightning equivalent that "
                    "lightify knows; the loop is left as it is",
                    statement,
                )
        return self.plan

    def note(self, code: str, message: str, node: cst.CSTNode) -> None:
        """A fixable finding: something ``--write`` converts, listed in the summary."""
        line, col = self.index.position(node)
        self.plan.notes.append(Finding(self.path, line, col, code, message, fixable=True))

    def move(
        self,
        statements: list[cst.BaseStatement],
        local: set[str],
        extra: dict[str, cst.BaseExpression] | None = None,
    ) -> list[cst.BaseStatement]:
        """Carry statements into a method: rule transforms, then names into ``self.``."""
        moved = []
        local = local | bound_names(statements)  # what the moved code binds is its own
        mapper = IntoModule(self.program, self.plan, local, extra)
        for statement in statements:
            _check_loop_control(statement)
            for rule in registry():
                if hasattr(rule, "transform"):
                    statement = rule.transform(statement, self)
            if _is_identity(statement):
                moved.extend(carry_comments([statement], None))
                continue
            moved.append(statement.visit(mapper))
        return [s for s in moved if s is not None]

    def locals_of(self, found: Pass) -> set[str]:
        nodes: list[cst.CSTNode] = [found.loop, *found.before, *found.after]
        return bound_names(nodes) | ({found.index} if found.index else set())


class StepBuilder:
    """Walk a training batch loop's body, letting rules claim statements in order.

    ``phase`` is ``forward`` until ``backward()`` is seen, then ``backward``,
    then ``stepped`` after the optimizer step: a rule uses it to tell whether a
    statement runs where Lightning would run it.
    """

    def __init__(self, lowering: Lowering, found: Pass) -> None:
        self.lowering = lowering
        self.found = found
        self.phase = "forward"
        self.loss: cst.BaseExpression | None = None
        self.out: list[cst.BaseStatement] = []
        self.comments: list[cst.EmptyLine] = []
        self.memo: dict[str, object] = {}  # facts of the pass a rule computes once, not per line

    def run(self) -> list[cst.BaseStatement]:
        hooks = [rule for rule in registry() if hasattr(rule, "step")]
        for statement in self.found.body:
            for rule in hooks:
                if rule.step(statement, self):
                    break
            else:
                self.keep(statement)
        return self.out

    def keep(self, statement: cst.BaseStatement) -> None:
        """Move a statement as it is; after backward() only if it cannot see the update
        (under manual optimization every statement keeps its place)."""
        moved_on = self.phase != "forward" and not self.lowering.plan.manual_optimization
        if moved_on and _touches_training_state(statement, self.lowering):
            raise Decline(
                "LFY403",
                "this statement runs after backward()/step() in the loop but would run "
                "before them in training_step; lightify leaves the loop as it is",
                statement,
            )
        self.out.extend(carry_comments([statement], self.comments))
        self.comments = []

    def consume(self, statement: cst.BaseStatement) -> None:
        """Drop a statement whose work Lightning now does; its comments move on."""
        self.comments.extend(statement.leading_lines)
        self.comments.extend(comments_in(statement.with_changes(leading_lines=[])))

    def emit(self, statement: cst.BaseStatement) -> None:
        self.out.extend(carry_comments([statement], self.comments))
        self.comments = []


def comments_in(node: cst.CSTNode) -> list[cst.EmptyLine]:
    """Every comment inside a node, as standalone comment lines."""
    if not any(type(n) is cst.Comment for n in walk(node, layout=True)):
        return []  # most code has none: skip the ordered (slower) visit
    found: list[cst.EmptyLine] = []

    class _Comments(cst.CSTVisitor):
        def visit_Comment(self, comment: cst.Comment) -> None:
            found.append(cst.EmptyLine(comment=comment))

    node.visit(_Comments())
    return found


def carry_comments(
    statements: list[cst.BaseStatement], comments: list[cst.EmptyLine] | None
) -> list[cst.BaseStatement]:
    """Prepend pending comment lines to the first statement (or drop an identity with its own)."""
    if comments is None:
        own = comments_in(statements[0])
        return [cst.SimpleStatementLine([cst.Pass()], leading_lines=own)] if own else []
    if not comments or not statements:
        return statements
    first = statements[0]
    return [first.with_changes(leading_lines=[*comments, *first.leading_lines]), *statements[1:]]


def _check_loop_control(statement: cst.BaseStatement) -> None:
    """``break``/``continue``/``return`` of the batch loop mean nothing inside a hook."""

    nested = cst.For | cst.While | cst.FunctionDef | cst.Lambda
    for node in walk(statement, into=lambda n: not isinstance(n, nested)):
        if isinstance(node, cst.Break | cst.Continue | cst.Return | cst.Yield):
            keyword = type(node).__name__.lower()
            raise Decline(
                "LFY403",
                f"`{keyword}` in the batch loop has no equivalent in a Lightning step; "
                "the loop is left as it is",
                statement,
            )


def _is_identity(statement: cst.BaseStatement) -> bool:
    """``x, y = x, y`` and ``b = {k: v for k, v in b.items()}``: what device moves leave behind."""
    small = only_small(statement)
    if not isinstance(small, cst.Assign) or len(small.targets) != 1:
        return False
    target, value = small.targets[0].target, small.value
    if target.deep_equals(value):
        return True
    if isinstance(target, cst.Tuple) and isinstance(value, cst.Tuple):
        return len(target.elements) == len(value.elements) and all(
            t.value.deep_equals(v.value)
            for t, v in zip(target.elements, value.elements, strict=True)
        )
    if isinstance(value, cst.DictComp):
        comp = value.for_in
        return (
            isinstance(comp.target, cst.Tuple)
            and len(comp.target.elements) == 2
            and comp.target.elements[0].value.deep_equals(value.key)
            and comp.target.elements[1].value.deep_equals(value.value)
            and isinstance(comp.iter, cst.Call)
            and isinstance(comp.iter.func, cst.Attribute)
            and comp.iter.func.attr.value == "items"
            and comp.iter.func.value.deep_equals(target)
            and not comp.ifs
        )
    return False


def _touches_training_state(statement: cst.BaseStatement, lowering: Lowering) -> bool:
    """Whether a statement reads modules, optimizers or gradients (the update changes those)."""
    from lightify.analyze.facts import Kind
    from lightify.analyze.nodes import names_in

    names = names_in(statement)
    for name in names:
        binding = lowering.program.bindings.get(name)
        if binding is not None and binding.kind in (Kind.MODULE, Kind.OPTIMIZER, Kind.SCHEDULER):
            return True

    return any(
        isinstance(node, cst.Attribute)
        and node.attr.value in {"grad", "parameters", "named_parameters"}
        for node in walk(statement)
    )


def trained_modules(program: Program) -> list[str]:
    """Modules whose parameters the optimizer trains, in the order its expression names them."""
    from lightify.analyze.facts import Kind
    from lightify.analyze.nodes import names_in

    optimizers = [b for b in program.bindings.values() if b.kind is Kind.OPTIMIZER]
    if not optimizers:
        return []
    found: list[str] = []
    pending = [optimizers[0].value]
    seen: set[str] = set()
    while pending:
        for name in sorted(names_in(pending.pop()), key=code_order(program)):
            binding = program.bindings.get(name)
            if binding is None or name in seen:
                continue
            seen.add(name)
            if binding.kind is Kind.MODULE:
                found.append(name)
            elif binding.kind is Kind.VALUE:
                pending.append(binding.value)
    return found


def code_order(program: Program):
    """Sort key: where a name is first bound in the program."""
    names = list(program.bindings)
    return lambda name: names.index(name) if name in names else len(names)


def _class_name(program: Program) -> str:
    """``Lit<Model>`` after the class of the first model the optimizer trains."""
    for name in trained_modules(program):
        callee = program.bindings[name].callee
        if callee and "." not in callee:
            return f"Lit{callee}"
    return "LitModel"
