"""Split a function called both to train and to evaluate into one copy per call site.

``run_epoch(model, loader, optimizer=None)``, called as ``run_epoch(model,
train_loader, optimizer)`` and ``run_epoch(model, val_loader)``, chooses its branch
with ``if optimizer is not None:`` (or ``train = optimizer is not None``,
``torch.set_grad_enabled(train)``, ``model.train(train)``). Each call gets a copy
with what it passes folded into those conditions, so the rest of the analysis sees
the usual pair of a training function and an evaluation function. The copies only
exist during the conversion: emit removes them with the calls they replace, and a
copy still needed afterwards declines the file.
"""

from __future__ import annotations

from collections import Counter

import libcst as cst

from lightify.analyze.bindings import collect_bindings
from lightify.analyze.declines import Decline
from lightify.analyze.facts import Binding, Kind
from lightify.analyze.nodes import (
    assigned_names,
    code,
    names_in,
    only_small,
    statement_call,
    walk,
)
from lightify.analyze.substitute import Substitute, bind_arguments
from lightify.analyze.tree import ModuleIndex, index_module

SET_GRAD_ENABLED = "torch.set_grad_enabled"
# what a parameter holds when the call passes a name bound to one of these: never None
BUILT = frozenset({Kind.MODULE, Kind.OPTIMIZER, Kind.SCHEDULER, Kind.LOADER})
TRUTHY = frozenset({Kind.OPTIMIZER, Kind.SCHEDULER})  # no __len__ or __bool__: always true
UNKNOWN = object()

Facts = dict[str, Kind | None]  # parameter → None (the call passes None) or what it holds


def specialize(index: ModuleIndex) -> tuple[ModuleIndex, dict[str, cst.FunctionDef]]:
    """The index of the module with per-call copies, and each copy's name → its original.

    Returns the index unchanged (and no copies) when no call fixes a branch.
    """
    renamed: dict[cst.Call, str] = {}
    copies: dict[cst.FunctionDef, list[cst.FunctionDef]] = {}
    origins: dict[cst.CSTNode, cst.CSTNode] = {}
    originals: dict[str, cst.FunctionDef] = {}
    if not index.backward_loops:
        return index, {}
    taken: set[str] | None = None  # every name of the module, read once a copy is needed
    for function in index.functions.values():
        chosen = _variants(index, function, origins)
        if chosen is None:
            continue
        if taken is None:
            taken = names_in(index.module)
        named: dict[cst.FunctionDef, cst.FunctionDef] = {}
        # the original's spacing before every copy, its comments before the first only
        blank = [line for line in function.leading_lines if line.comment is None]
        for copy in dict.fromkeys(chosen.values()):  # distinct copies, in call order
            role = "train" if ".backward(" in code(copy.body) else "eval"
            name = _free(f"{function.name.value}_{role}", taken)
            spacing = {"leading_lines": blank} if named else {}
            named[copy] = copy.with_changes(name=cst.Name(name), **spacing)
            origins[named[copy]] = function
            originals[name] = function
        renamed.update((call, named[copy].name.value) for call, copy in chosen.items())
        copies[function] = list(named.values())
    if not copies:
        return index, {}
    module = index.module.visit(_Replace(renamed, copies, origins))
    specialised = index_module(module, like=index)
    specialised.origins.update(origins)
    return specialised, originals


def with_original_names(decline: Decline, originals: dict[str, str]) -> Decline:
    """A finding names the function the user wrote (``run_epoch``, ``Trainer.validate``),
    not the copy or function made from it for the analysis."""
    message = decline.message
    for name, original in originals.items():
        message = message.replace(f"`{name}`", f"`{original}`")
    return Decline(decline.code, message, decline.node)


def check_copies_removed(module: cst.Module, originals: dict[str, cst.FunctionDef]) -> None:
    """A copy the converted module still calls would be code the user never wrote."""
    left = sorted(names_in(module) & set(originals))
    if left:
        function = originals[left[0]]
        raise Decline(
            "LFY404",
            f"`{function.name.value}` is called to train and to evaluate, and a call outside "
            "the epoch loop's passes still needs it after the conversion; lightify converts it "
            "when every call is a training, validation or test pass",
            function,
        )


def _variants(
    index: ModuleIndex, function: cst.FunctionDef, origins: dict[cst.CSTNode, cst.CSTNode]
) -> dict[cst.Call, cst.FunctionDef] | None:
    """Each call's folded copy (calls that fold alike share one); None when nothing folds."""
    tested = sorted(_tested_for_none(function))
    if not tested:
        return None  # nothing a call can decide
    sites = _call_sites(index, function)
    if isinstance(sites, cst.Name):
        if ".backward(" in code(function.body):
            name = function.name.value
            raise Decline(
                "LFY404",
                f"`{name}` chooses between training and evaluation with `{tested[0]} is None` "
                f"and is used here other than as a call statement; lightify splits it per call "
                f"when every use is `{name}(...)` or `x = {name}(...)`",
                sites,
            )
        return None
    if not sites:
        return None
    by_body: dict[str, cst.FunctionDef] = {}
    chosen: dict[cst.Call, cst.FunctionDef] = {}
    every_facts = [_facts(index, function, statement, call) for statement, call in sites]
    if any(facts is None for facts in every_facts):
        return None
    fixed = {name for facts in every_facts for name in facts or {}} & set(tested)
    for (statement, call), facts in zip(sites, every_facts, strict=True):
        assert facts is not None
        unknown = sorted(fixed - set(facts))
        if unknown and ".backward(" not in code(function.body):
            return None  # not a training function: left to the analysis as it is
        if unknown:
            argument = bind_arguments(function, call)[unknown[0]]
            raise Decline(
                "LFY404",
                f"`{function.name.value}` chooses between training and evaluation with "
                f"`{unknown[0]} is None`, and this call passes `{code(argument)}`; lightify "
                "splits the function per call when each call passes None or a name bound to "
                "an optimizer, model or DataLoader",
                statement,
            )
        folded = _Fold(index, facts, _flags(function, facts), origins).fold(function)
        chosen[call] = by_body.setdefault(code(folded.body), folded)
    return None if list(by_body) == [code(function.body)] else chosen


def _tested_for_none(function: cst.FunctionDef) -> set[str]:
    """Names the function compares with None (``optimizer is not None``)."""
    return {
        node.left.value
        for node in walk(function)
        if type(node) is cst.Comparison
        and isinstance(node.left, cst.Name)
        and len(node.comparisons) == 1
        and isinstance(node.comparisons[0].operator, cst.Is | cst.IsNot)
        and _value(node.comparisons[0].comparator, {}, {}) is None
    }


def _call_sites(
    index: ModuleIndex, function: cst.FunctionDef
) -> list[tuple[cst.BaseStatement, cst.Call]] | cst.Name:
    """Every ``f(...)`` / ``x = f(...)`` statement, or the first use of ``f`` that is neither."""
    name = function.name.value
    sites = []
    for reference in index.references:
        if not isinstance(reference, cst.Name) or reference.value != name:
            continue
        if reference is function.name:
            continue
        call = index.parents.get(reference)
        small = index.parents.get(call) if call is not None else None
        statement = index.parents.get(small) if small is not None else None
        if not isinstance(call, cst.Call) or statement is None:
            return reference
        if statement_call(statement) is not call or call.func is not reference:
            return reference
        sites.append((statement, call))
    return sites


def _facts(
    index: ModuleIndex, function: cst.FunctionDef, statement: cst.CSTNode, call: cst.Call
) -> Facts | None:
    """The parameters this call fixes: passed None, or a name bound to a built object."""
    try:
        arguments = bind_arguments(function, call)
    except Decline:
        return None
    bindings = _caller_bindings(index, statement)
    facts: Facts = {}
    for parameter, value in arguments.items():
        binding = bindings.get(value.value) if isinstance(value, cst.Name) else None
        if isinstance(value, cst.Name) and value.value == "None":
            facts[parameter] = None
        elif binding is not None and binding.kind in BUILT:
            facts[parameter] = binding.kind
    return facts


def _caller_bindings(index: ModuleIndex, statement: cst.CSTNode) -> dict[str, Binding]:
    """Names bound at module level and in the blocks around the call (inner ones win)."""
    blocks = [a for a in index.ancestors(statement) if isinstance(a, cst.IndentedBlock)]
    bindings = collect_bindings(index, list(index.module.body))
    for block in reversed(blocks):
        bindings.update(collect_bindings(index, list(block.body)))
    return bindings


def _flags(function: cst.FunctionDef, facts: Facts) -> dict[str, bool]:
    """``train = optimizer is not None`` at the function's top, assigned nowhere else."""
    assigned = Counter(_assignments(function))
    flags: dict[str, bool] = {}
    for statement in function.body.body:
        small = only_small(statement)
        if not (isinstance(small, cst.Assign) and len(small.targets) == 1):
            continue
        target = small.targets[0].target
        value = _truth(_value(small.value, facts, flags))
        if isinstance(target, cst.Name) and assigned[target.value] == 1 and value is not UNKNOWN:
            flags[target.value] = bool(value)
    return flags


def _assignments(function: cst.FunctionDef) -> list[str]:
    found: list[str] = []

    class _Targets(cst.CSTVisitor):
        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            found.extend(assigned_names(node.target))

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            found.extend(assigned_names(node.target))

        def visit_For(self, node: cst.For) -> None:
            found.extend(assigned_names(node.target))

        def visit_AsName(self, node: cst.AsName) -> None:
            found.extend(assigned_names(node.name))

    function.visit(_Targets())
    return found


def _value(node: cst.BaseExpression, facts: Facts, flags: dict[str, bool]) -> object:
    """What an expression is known to be: None, True/False, a Kind, or UNKNOWN."""
    if isinstance(node, cst.Name):
        constants = {"None": None, "True": True, "False": False}
        if node.value in constants:
            return constants[node.value]
        if node.value in flags:
            return flags[node.value]
        return facts.get(node.value, UNKNOWN)
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Not):
        truth = _truth(_value(node.expression, facts, flags))
        return UNKNOWN if truth is UNKNOWN else not truth
    if isinstance(node, cst.Comparison) and len(node.comparisons) == 1:
        operator = node.comparisons[0].operator
        right = node.comparisons[0].comparator
        if isinstance(operator, cst.Is | cst.IsNot) and _value(right, {}, {}) is None:
            left = _value(node.left, facts, flags)
            if left is UNKNOWN:
                return UNKNOWN
            return (left is None) == isinstance(operator, cst.Is)
    return UNKNOWN


def _truth(value: object) -> object:
    if value is None or isinstance(value, bool):
        return bool(value)
    return True if value in TRUTHY else UNKNOWN


class _Fold(Substitute):
    """A function's body with the call's facts folded into its conditions and mode calls."""

    def __init__(
        self,
        index: ModuleIndex,
        facts: Facts,
        flags: dict[str, bool],
        origins: dict[cst.CSTNode, cst.CSTNode],
    ) -> None:
        super().__init__({name: cst.Name(str(value)) for name, value in flags.items()}, origins)
        self.index = index
        self.facts = facts
        self.flags = flags

    def fold(self, function: cst.FunctionDef) -> cst.FunctionDef:
        """The folded copy, without a docstring: a copy only lives until its pass is moved."""
        folded = function.visit(self)
        assert isinstance(folded, cst.FunctionDef) and isinstance(folded.body, cst.IndentedBlock)
        first = only_small(folded.body.body[0])
        if isinstance(first, cst.Expr) and isinstance(first.value, cst.BaseString):
            rest = folded.body.body[1:] or [cst.parse_statement("pass")]
            return folded.with_changes(body=folded.body.with_changes(body=rest))
        return folded

    def known(self, node: cst.BaseExpression) -> object:
        return _truth(_value(node, self.facts, {}))

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        small = only_small(original_node)
        if isinstance(small, cst.Assign) and set(assigned_names(small.targets[0].target)) & set(
            self.flags
        ):
            return cst.RemoveFromParent()  # the flag itself: every use is now a constant
        return updated_node

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        """``model.train(flag)`` → ``model.train()`` / ``model.eval()``; the flag of
        ``torch.set_grad_enabled(flag)`` → ``True`` / ``False``."""
        func = updated_node.func
        args = updated_node.args
        if len(args) != 1 or args[0].keyword is not None:
            return updated_node
        mode = self.known(args[0].value)
        if mode is UNKNOWN:
            return updated_node
        if self.index.imports.qualify(func) == SET_GRAD_ENABLED:
            return updated_node.with_changes(args=[args[0].with_changes(value=cst.Name(str(mode)))])
        if isinstance(func, cst.Attribute) and func.attr.value == "train":
            attr = cst.Name("train" if mode else "eval")
            return updated_node.with_changes(func=func.with_changes(attr=attr), args=[])
        return updated_node

    def leave_IfExp(self, original_node: cst.IfExp, updated_node: cst.IfExp) -> cst.BaseExpression:
        test = self.known(updated_node.test)
        if test is UNKNOWN:
            return updated_node
        return updated_node.body if test else updated_node.orelse

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        body: list[cst.BaseStatement] = []
        for statement in updated_node.body:
            body.extend(self._statement(statement))
        return updated_node.with_changes(body=body or [cst.parse_statement("pass")])

    def _statement(self, statement: cst.BaseStatement) -> list[cst.BaseStatement]:
        """An ``if`` on a known condition, or ``with set_grad_enabled(True):``, spliced."""
        if isinstance(statement, cst.If):
            test = self.known(statement.test)
            if test is True:
                return _spliced(statement, statement.body)
            if test is False:
                if isinstance(statement.orelse, cst.If):
                    return self._statement(statement.orelse.with_changes(leading_lines=[]))
                return (
                    [] if statement.orelse is None else _spliced(statement, statement.orelse.body)
                )
        if (
            isinstance(statement, cst.With)
            and len(statement.items) == 1
            and isinstance(item := statement.items[0].item, cst.Call)
            and self.index.imports.qualify(item.func) == SET_GRAD_ENABLED
            and len(item.args) == 1
            and self.known(item.args[0].value) is True
        ):
            return _spliced(statement, statement.body)
        return [statement]


def _spliced(statement: cst.BaseStatement, block: cst.BaseSuite) -> list[cst.BaseStatement]:
    """A block's statements in place of the statement holding them, its comments kept."""
    assert isinstance(block, cst.IndentedBlock)
    inner = list(block.body)
    comments = [line for line in statement.leading_lines if line.comment]
    if inner and comments:
        inner[0] = inner[0].with_changes(leading_lines=[*comments, *inner[0].leading_lines])
    return inner


def _free(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name


class _Replace(cst.CSTTransformer):
    """The module with each function replaced by its copies and each call renamed."""

    def __init__(
        self,
        renamed: dict[cst.Call, str],
        copies: dict[cst.FunctionDef, list[cst.FunctionDef]],
        origins: dict[cst.CSTNode, cst.CSTNode],
    ) -> None:
        self.renamed = renamed
        self.copies = copies
        self.origins = origins

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode):  # type: ignore[override]
        result = super().on_leave(original_node, updated_node)
        if isinstance(result, cst.CSTNode) and result is not original_node:
            self.origins.setdefault(result, original_node)
        return result

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        name = self.renamed.get(original_node)
        return updated_node if name is None else updated_node.with_changes(func=cst.Name(name))

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef | cst.FlattenSentinel[cst.BaseStatement]:
        copies = self.copies.get(original_node)
        return updated_node if copies is None else cst.FlattenSentinel(copies)
