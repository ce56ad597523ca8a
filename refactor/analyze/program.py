"""Find the one training program in a file: its epoch loop, its passes, and the names they use.

The analysis follows calls: a batch loop inside ``train(model, loader, ...)`` is
read with the caller's names substituted for the parameters, so the rest of the
pipeline only ever sees names of the program's own scope.
"""

from __future__ import annotations

import builtins

import libcst as cst

from lightify.analyze.bindings import collect_bindings, parameter_bindings
from lightify.analyze.declines import Decline
from lightify.analyze.facts import Accumulator, Binding, EpochLoop, Kind, Pass, Program
from lightify.analyze.nodes import (
    assigned_names,
    code,
    dotted_name,
    mode_call,
    names_in,
    only_small,
    operand,
    result_names,
    short,
    statement_call,
    walk,
)
from lightify.analyze.not_convertible import check_not_convertible
from lightify.analyze.substitute import Substitute, bind_arguments
from lightify.analyze.tree import ModuleIndex

GRAD_OFF = {
    "torch.no_grad",
    "torch.inference_mode",
    "torch.autograd.no_grad",
    "torch.autograd.grad_mode.no_grad",
}

PROGRESS_BARS = {"tqdm.tqdm", "tqdm.auto.tqdm", "tqdm.notebook.tqdm", "tqdm.std.tqdm"}

AUTOCAST = frozenset(
    {
        "torch.autocast",
        "torch.amp.autocast",
        "torch.amp.autocast_mode.autocast",
        "torch.cpu.amp.autocast",
        "torch.cuda.amp.autocast",
    }
)

Flat = list[tuple[cst.BaseStatement, bool]]


def find_program(index: ModuleIndex) -> Program | None:
    """The training program, None when the file has no training loop; raises Decline."""
    if not index.backward_loops:
        return None
    check_not_convertible(index)  # the precise reason (LFY007) before the generic declines
    if len(index.backward_loops) > 1:
        raise Decline(
            "LFY003",
            "the file has several training loops; lightify converts one per script",
            index.backward_loops[1],
        )
    return _ProgramFinder(index, index.backward_loops[0]).find()


class _ProgramFinder:
    def __init__(self, index: ModuleIndex, batch_loop: cst.For) -> None:
        self.index = index
        self.batch_loop = batch_loop

    def find(self) -> Program:
        index = self.index
        function = index.enclosing_function(self.batch_loop)
        if function is not None and function not in index.functions.values():
            classes = [a for a in index.ancestors(function) if isinstance(a, cst.ClassDef)]
            name = function.name.value
            where = f"`{classes[0].name.value}.{name}`" if classes else f"nested `{name}`"
            raise Decline(
                "LFY404",
                f"the training loop is in {where} (a hand-written trainer); lightify converts "
                "loops at module level or in module-level functions, not state kept on `self`",
                self.batch_loop,
            )
        epoch_node = self._enclosing_for(self.batch_loop, stop=function)
        train_call: cst.BaseStatement | None = None
        if epoch_node is None:
            if function is None:
                raise Decline(
                    "LFY401",
                    "the training loop is not inside an epoch loop (`for epoch in range(...)`)",
                    self.batch_loop,
                )
            train_call, epoch_node = self._call_site_in_loop(function)
        owner, block = self._owner_block(epoch_node)
        bindings = collect_bindings(index, list(index.module.body))
        if owner is not index.module:
            bindings.update(collect_bindings(index, block))
        if isinstance(owner, cst.FunctionDef):
            bindings.update(parameter_bindings(owner))
        epoch = _epoch_loop(index, epoch_node)
        items = _flatten(index, list(epoch_node.body.body), False)
        passes = _EpochPasses(index, bindings, items, train_call, self.batch_loop, function)
        after = block[block.index(epoch_node) + 1 :]
        test, test_call = passes.test_after(after)
        return Program(
            owner=owner,
            block=block,
            bindings=bindings,
            epoch=epoch,
            train=passes.train,
            validation=passes.validation,
            test=test,
            test_call=test_call,
            passes_in_loop=passes.statements,
            globals=_module_globals(index),
            eval_guard=passes.guard,
            guarded=passes.guarded,
            eval_in_batch=passes.in_batch,
        )

    def _enclosing_for(self, node: cst.CSTNode, stop: cst.CSTNode | None) -> cst.For | None:
        for parent in self.index.ancestors(node):
            if parent is stop or isinstance(parent, cst.FunctionDef | cst.ClassDef):
                return None
            if isinstance(parent, cst.For):
                return parent
        return None

    def _call_site_in_loop(self, function: cst.FunctionDef) -> tuple[cst.BaseStatement, cst.For]:
        """The single statement calling ``function`` from an epoch loop."""
        sites = _call_statements(self.index, function.name.value)
        if len(sites) != 1:
            raise Decline(
                "LFY401",
                f"`{function.name.value}` holds the training loop but is called "
                f"{len(sites)} times; lightify needs one call from an epoch loop",
                function,
            )
        statement = sites[0]
        epoch = self._enclosing_for(statement, stop=None)
        if epoch is None:
            raise Decline(
                "LFY401",
                f"`{function.name.value}` is not called from an epoch loop",
                statement,
            )
        return statement, epoch

    def _owner_block(self, epoch: cst.For) -> tuple[cst.CSTNode, list[cst.BaseStatement]]:
        parent = self.index.parents.get(epoch)
        if isinstance(parent, cst.Module):
            return parent, list(parent.body)
        if isinstance(parent, cst.IndentedBlock):
            owner = self.index.parents.get(parent)
            at_top = isinstance(self.index.parents.get(owner), cst.Module)
            if at_top and (isinstance(owner, cst.FunctionDef) or _is_main_guard(owner)):
                return owner, list(parent.body)
        raise Decline(
            "LFY401",
            "the epoch loop is nested in other code; lightify converts epoch loops at "
            "module level, under `if __name__ == '__main__':` or directly in a function",
            epoch,
        )


class _EpochPasses:
    """Split the epoch loop's body into the training pass, the validation pass and the rest."""

    def __init__(
        self,
        index: ModuleIndex,
        bindings: dict[str, Binding],
        items: Flat,
        train_call: cst.BaseStatement | None,
        batch_loop: cst.For,
        train_function: cst.FunctionDef | None,
    ) -> None:
        self.index = index
        self.bindings = bindings
        self.train_function = train_function
        self.validation: Pass | None = None
        self.statements: list[cst.BaseStatement] = []
        inline_loops = [s for s, _ in items if isinstance(s, cst.For)]
        self.train = self._find_train(items, train_call, batch_loop, inline_loops)
        self.guards: dict[cst.BaseStatement, cst.If] = {}
        items = self._unguard(items)
        for statement, grad_off in items:
            self.statements.append(statement)
            if statement is self.train_statement:
                continue
            found = self._eval_pass(statement, grad_off, items)
            if found is None:
                continue
            if self.validation is not None:
                raise Decline(
                    "LFY402",
                    "the epoch loop evaluates twice; lightify converts one validation pass",
                    statement,
                )
            self.validation = found
        self.guard = self._guard_of(self.validation, items)
        self.guarded = tuple(
            s for s, _ in items if self.guard is not None and self.guards.get(s) is self.guard
        )
        self.in_batch = self.validation is None and self._eval_in_batch()

    def _unguard(self, items: Flat) -> Flat:
        """Splice the body of ``if <cadence>:`` around an evaluation pass into the epoch's body.

        The rules decide whether the condition maps to ``check_val_every_n_epoch``.
        """
        out: Flat = []
        for statement, grad_off in items:
            if isinstance(statement, cst.If) and statement.orelse is None:
                inner = _flatten(self.index, list(statement.body.body), grad_off)
                if any(self._eval_pass(s, g, inner) is not None for s, g in inner):
                    self.guards.update((s, statement) for s, _ in inner)
                    out.extend(inner)
                    continue
            out.append((statement, grad_off))
        return out

    def _eval_in_batch(self) -> bool:
        """``if (batch_idx + 1) % n == 0: evaluate(...)`` in the training batch loop: the
        validation pass under its guard; the rules decide whether it maps to
        ``val_check_interval``."""
        for statement in self.train.body:
            if not isinstance(statement, cst.If) or statement.orelse is not None:
                continue
            inner = _flatten(self.index, list(statement.body.body), False)
            found = [p for s, g in inner if (p := self._eval_pass(s, g, inner)) is not None]
            if found:
                self.validation, self.guard = found[0], statement
                self.guarded = tuple(s for s, _ in inner)
                return True
        return False

    def _guard_of(self, found: Pass | None, items: Flat) -> cst.If | None:
        if found is None:
            return None
        guards = {self.guards.get(s) for s, _ in items if found.invoked_by(s)}
        if len(guards) > 1:
            raise Decline(
                "LFY402",
                "part of the evaluation pass runs under this condition and part outside it; "
                "lightify converts an evaluation that runs as a whole",
                next(g for g in guards if g is not None),
            )
        return guards.pop() if guards else None

    def _find_train(
        self,
        items: Flat,
        train_call: cst.BaseStatement | None,
        batch_loop: cst.For,
        inline_loops: list[cst.For],
    ) -> Pass:
        if train_call is not None:
            if train_call not in [s for s, _ in items]:
                raise Decline(
                    "LFY401",
                    "the training function is called inside a nested block of the epoch loop",
                    train_call,
                )
            self.train_statement = train_call
            return self._function_pass("train", train_call, self.train_function)
        if batch_loop not in inline_loops:
            raise Decline(
                "LFY401",
                "the batch loop is nested in other code inside the epoch loop",
                batch_loop,
            )
        self.train_statement = batch_loop
        return _region_pass(self.index, self.bindings, "train", batch_loop, items, None)

    def _eval_pass(self, statement: cst.BaseStatement, grad_off: bool, items: Flat) -> Pass | None:
        if isinstance(statement, cst.For):
            bars = _progress_bars(self.index, items)
            if _loop_loader(self.index, statement, self.bindings, False, bars) is None:
                return None
            return _region_pass(self.index, self.bindings, "eval", statement, items, None)
        generator = _generator_pass(self.index, self.bindings, statement, grad_off, items)
        if generator is not None:
            return generator
        called = _called_function(self.index, statement)
        if called is None or called is self.train_function or not _has_loader_loop(called):
            return None
        return self._function_pass("eval", statement, called)

    def _function_pass(
        self, role: str, statement: cst.BaseStatement, function: cst.FunctionDef | None
    ) -> Pass:
        assert function is not None
        call = statement_call(statement)
        assert call is not None
        mapping = bind_arguments(function, call)
        body = function.body.visit(Substitute(mapping, self.index.origins))
        assert isinstance(body, cst.IndentedBlock)
        grad_off = any(_is_grad_off(self.index, d.decorator) for d in function.decorators)
        flat = _flatten(self.index, list(body.body), grad_off)
        loops = [s for s, _ in flat if isinstance(s, cst.For)]
        if len(loops) != 1:
            raise Decline(
                "LFY402",
                f"`{function.name.value}` has {len(loops)} loops at its top level; "
                "lightify converts a function with exactly one batch loop",
                function,
            )
        found = _region_pass(self.index, self.bindings, role, loops[0], flat, function)
        found.result_names = tuple(result_names(statement))
        return found

    def test_after(
        self, after: list[cst.BaseStatement]
    ) -> tuple[Pass | None, cst.BaseStatement | None]:
        """A single evaluation after training becomes the test pass."""
        for statement in after:
            called = _called_function(self.index, statement)
            if called is None or called is self.train_function or not _has_loader_loop(called):
                continue
            return self._function_pass("eval", statement, called), statement
        return None, None


def _region_pass(
    index: ModuleIndex,
    bindings: dict[str, Binding],
    role: str,
    loop: cst.For,
    region: Flat,
    function: cst.FunctionDef | None,
) -> Pass:
    """Build a pass from its loop and the statements of its function or epoch body."""
    bars = _progress_bars(index, region)
    loader, index_name, start = _loop_loader(index, loop, bindings, True, bars)
    loops = [i for i, (s, _) in enumerate(region) if isinstance(s, cst.For)]
    position = next(i for i, (s, _) in enumerate(region) if s is loop)
    previous = max((i for i in loops if i < position), default=-1)
    following = min((i for i in loops if i > position), default=len(region))
    grad_off = region[position][1]
    body, autocast = _without_autocast(index, loop)
    accumulators = _accumulators(body)
    before = [s for s, _ in region[previous + 1 : position]]
    after = [s for s, _ in region[position + 1 : following]]
    if function is None:
        before = [s for s in before if _belongs_before(s, {*accumulators, *_carried(body)})]
        after = [s for s in after if _mentions(s, accumulators) or _measures(s, loader)]
    result = None
    results = tuple(n for s in after for n in result_names(s)) if function is None else ()
    if function is not None:
        returns = [s for s in after if isinstance(only_small(s), cst.Return)]
        if returns:
            result = only_small(returns[-1]).value  # type: ignore[union-attr]
    return Pass(
        role=role,
        loop=loop,
        target=loop.target.elements[1].value if index_name else loop.target,  # type: ignore[attr-defined]
        index=index_name,
        index_start=start,
        loader=loader,
        body=body,
        before=before,
        after=after,
        function=function,
        grad_disabled=grad_off,
        calls_eval=any(mode_call(s) == "eval" for s in before),
        result=result,
        result_names=results,
        accumulators=accumulators,
        progress_bar=_bar_name(loop, bars),
        autocast=autocast,
    )


def _generator_pass(
    index: ModuleIndex,
    bindings: dict[str, Binding],
    statement: cst.BaseStatement,
    grad_off: bool,
    items: Flat,
) -> Pass | None:
    """``name = sum(f(x, y).item() for x, y in loader) / len(loader)`` as an eval pass."""
    small = only_small(statement)
    if not isinstance(small, cst.Assign) or not isinstance(small.targets[0].target, cst.Name):
        return None
    value = small.value
    summed = value.left if isinstance(value, cst.BinaryOperation) else value
    if not (
        isinstance(summed, cst.Call)
        and dotted_name(summed.func) == "sum"
        and len(summed.args) == 1
        and isinstance(summed.args[0].value, cst.GeneratorExp | cst.ListComp)
    ):
        return None
    generator = summed.args[0].value
    comp = generator.for_in
    loader = dotted_name(comp.iter)
    if loader is None or bindings.get(loader) is None:
        return None
    if bindings[loader].kind is not Kind.LOADER or comp.ifs or comp.inner_for_in:
        return None
    name = small.targets[0].target.value
    position = [s for s, _ in items].index(statement)
    before = [s for s, _ in items[:position]]
    modes = [s for s in before[-3:] if mode_call(s) == "eval"]
    pseudo_loop = cst.For(target=comp.target, iter=comp.iter, body=cst.IndentedBlock(body=[]))
    finished = small.with_changes(value=value.with_changes(left=cst.Name(name)))
    return Pass(
        role="eval",
        loop=pseudo_loop,
        target=comp.target,
        index=None,
        index_start=None,
        loader=loader,
        body=[],
        before=modes,
        after=[statement.with_changes(body=[finished])]
        if isinstance(value, cst.BinaryOperation)
        else [],
        grad_disabled=grad_off,
        calls_eval=bool(modes),
        accumulators={name: Accumulator(name, generator.elt)},
        result=None,
        result_names=(name,),
    )


def _loop_loader(
    index: ModuleIndex,
    loop: cst.For,
    bindings: dict[str, Binding],
    strict: bool,
    bars: dict[str, cst.BaseExpression],
) -> tuple[str, str | None, cst.BaseExpression | None] | None:
    """(loader name, index variable, enumerate start) for ``for ... in [enumerate(]loader``."""
    iterable = _without_progress_bar(index, loop.iter, bars)  # tqdm(enumerate(loader))
    index_name = None
    start = None
    target = loop.target
    if (
        isinstance(iterable, cst.Call)
        and dotted_name(iterable.func) == "enumerate"
        and isinstance(target, cst.Tuple)
        and len(target.elements) == 2
        and isinstance(target.elements[0].value, cst.Name)
    ):
        index_name = target.elements[0].value.value
        if len(iterable.args) > 1:
            start = iterable.args[1].value
        iterable = iterable.args[0].value
    iterable = _without_progress_bar(index, iterable, bars)
    name = dotted_name(iterable)
    binding = bindings.get(name) if name is not None else None
    if binding is None or binding.kind is not Kind.LOADER:
        if not strict:
            return None
        raise Decline(
            "LFY301",
            f"the loop iterates `{short(iterable, 40)}`, not a DataLoader; "
            "lightify converts loops over a DataLoader",
            loop,
        )
    return name, index_name, start  # type: ignore[return-value]


def _without_progress_bar(
    index: ModuleIndex, iterable: cst.BaseExpression, bars: dict[str, cst.BaseExpression]
) -> cst.BaseExpression:
    """``tqdm(loader, desc=...)`` iterates the loader: Lightning's own bar replaces it."""
    name = dotted_name(iterable)
    if name in bars:
        return bars[name]
    if (
        isinstance(iterable, cst.Call)
        and index.imports.qualify(iterable.func) in PROGRESS_BARS
        and iterable.args
        and iterable.args[0].keyword is None
    ):
        return iterable.args[0].value
    return iterable


def _progress_bars(index: ModuleIndex, region: Flat) -> dict[str, cst.BaseExpression]:
    """``bar = tqdm(loader, ...)`` in a pass's region: bar name → what it iterates."""
    bars: dict[str, cst.BaseExpression] = {}
    for statement, _ in region:
        small = only_small(statement)
        if (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and isinstance(small.targets[0].target, cst.Name)
        ):
            inner = _without_progress_bar(index, small.value, {})
            if inner is not small.value:
                bars[small.targets[0].target.value] = inner
    return bars


def _without_autocast(
    index: ModuleIndex, loop: cst.For
) -> tuple[list[cst.BaseStatement], dict[cst.BaseStatement, cst.With]]:
    """Splice the bodies of ``with torch.autocast(...):`` blocks into a batch loop's body.

    Lightning's precision flag autocasts a whole step, so the rules read the step's
    statements without the block; the mixed-precision rule decides whether it maps.
    """
    body = list(loop.body.body) if isinstance(loop.body, cst.IndentedBlock) else []
    out: list[cst.BaseStatement] = []
    spliced: dict[cst.BaseStatement, cst.With] = {}
    for statement in body:
        if not _is_autocast_block(index, statement):
            out.append(statement)
            continue
        assert isinstance(statement, cst.With) and isinstance(statement.body, cst.IndentedBlock)
        inner = list(statement.body.body)
        header = statement.body.header.comment
        comments = [line for line in statement.leading_lines if line.comment]
        comments += [cst.EmptyLine(comment=header)] if header else []
        if comments:  # the block's comments stay with its first statement
            first = inner[0].with_changes(leading_lines=[*comments, *inner[0].leading_lines])
            index.origins[first] = index.origins.get(inner[0], inner[0])
            inner[0] = first
        out.extend(inner)
        spliced.update((inside, statement) for inside in inner)
    return out, spliced


def _is_autocast_block(index: ModuleIndex, statement: cst.BaseStatement) -> bool:
    if not isinstance(statement, cst.With) or len(statement.items) != 1:
        return False
    item = statement.items[0]
    return (
        isinstance(statement.body, cst.IndentedBlock)
        and item.asname is None
        and isinstance(item.item, cst.Call)
        and index.imports.qualify(item.item.func) in AUTOCAST
    )


def _bar_name(loop: cst.For, bars: dict[str, cst.BaseExpression]) -> str | None:
    """The progress bar a loop iterates, directly or through ``enumerate(bar)``."""
    iterable = loop.iter
    if isinstance(iterable, cst.Call) and dotted_name(iterable.func) == "enumerate":
        iterable = iterable.args[0].value
    name = dotted_name(iterable)
    return name if name in bars else None


def _accumulators(body: list[cst.BaseStatement]) -> dict[str, Accumulator]:
    found: dict[str, Accumulator] = {}
    for line in body:
        small = only_small(line)
        if (
            isinstance(small, cst.AugAssign)
            and isinstance(small.target, cst.Name)
            and isinstance(small.operator, cst.AddAssign)
        ):
            found[small.target.value] = Accumulator(small.target.value, small.value)
    return found


def _belongs_before(statement: cst.BaseStatement, initialised: set[str]) -> bool:
    """Mode calls and initialisations of what the loop updates (sums, an RNN's hidden state)
    right before an inline loop."""
    small = only_small(statement)
    if mode_call(statement) is not None:
        return True
    if isinstance(small, cst.Assign):
        names = {n for t in small.targets for n in assigned_names(t.target)}
        return bool(names) and names <= initialised
    return False


def _carried(body: list[cst.BaseStatement]) -> set[str]:
    """Names a loop body reads, then rebinds (``hidden = model(x, hidden)``): state it
    carries from batch to batch, initialised before the loop."""
    from lightify.into_module import bound_names, read_first

    return read_first(body) & bound_names(body, own_scope_only=True)


def _mentions(statement: cst.BaseStatement, accumulators: dict[str, Accumulator]) -> bool:
    return bool(names_in(statement) & set(accumulators))


def _measures(statement: cst.BaseStatement, loader: str) -> bool:
    """``n = len(loader.dataset)``: the denominator of an inline pass's metrics."""
    small = only_small(statement)
    return isinstance(small, cst.Assign) and code(small.value).startswith(f"len({loader}")


def _flatten(index: ModuleIndex, statements: list[cst.BaseStatement], grad_off: bool) -> Flat:
    """Splice the bodies of ``with torch.no_grad():`` blocks into the statement list."""
    flat: Flat = []
    for statement in statements:
        if isinstance(statement, cst.With) and all(
            _is_grad_off(index, item.item) for item in statement.items
        ):
            flat.extend(_flatten(index, list(statement.body.body), True))
        else:
            flat.append((statement, grad_off))
    return flat


def _is_grad_off(index: ModuleIndex, node: cst.BaseExpression) -> bool:
    if not isinstance(node, cst.Call):
        return index.imports.qualify(node) in GRAD_OFF
    qual = index.imports.qualify(node.func)
    if qual in GRAD_OFF:
        return True
    return (
        qual == "torch.set_grad_enabled"
        and len(node.args) == 1
        and dotted_name(node.args[0].value) == "False"
    )


def _called_function(index: ModuleIndex, statement: cst.BaseStatement) -> cst.FunctionDef | None:
    call = statement_call(statement)
    if call is None or not isinstance(call.func, cst.Name):
        return None
    return index.functions.get(call.func.value)


def _has_loader_loop(function: cst.FunctionDef) -> bool:
    return any(
        isinstance(s, cst.With) or (isinstance(s, cst.For) and not iterates_param_groups(s))
        for s in function.body.body
    )


def iterates_param_groups(loop: cst.For) -> bool:
    """``for group in optimizer.param_groups``: sets learning rates, it is not a pass over data."""
    return isinstance(loop.iter, cst.Attribute) and loop.iter.attr.value == "param_groups"


def _call_statements(index: ModuleIndex, name: str) -> list[cst.BaseStatement]:
    return [
        node
        for node in walk(index.module)
        if isinstance(node, cst.SimpleStatementLine)
        and (call := statement_call(node)) is not None
        and dotted_name(call.func) == name
    ]


def _epoch_loop(index: ModuleIndex, node: cst.For) -> EpochLoop:
    iterable = node.iter
    if not (isinstance(iterable, cst.Call) and dotted_name(iterable.func) == "range"):
        raise Decline(
            "LFY401",
            f"the epoch loop iterates `{short(iterable, 40)}`; "
            "lightify converts `for epoch in range(...)`",
            node,
        )
    args = [a.value for a in iterable.args]
    if any(a.keyword or a.star for a in iterable.args) or not 1 <= len(args) <= 2:
        raise Decline("LFY401", "the epoch loop's range has a step or unusual arguments", node)
    if node.orelse is not None:
        raise Decline("LFY401", "the epoch loop has an `else:` block", node)
    epoch_var = node.target.value if isinstance(node.target, cst.Name) else None
    if len(args) == 1:
        return EpochLoop(node, epoch_var, args[0], None, list(node.body.body))
    start, stop = args
    return EpochLoop(node, epoch_var, _count(start, stop), start, list(node.body.body))


def _count(start: cst.BaseExpression, stop: cst.BaseExpression) -> cst.BaseExpression:
    """Number of epochs of ``range(start, stop)``, simplified for ``range(1, n + 1)``.

    Never negative: a resumed run whose start is past its stop trains no epoch, where
    ``max_epochs=-1`` would train forever."""
    if (
        isinstance(start, cst.Integer)
        and isinstance(stop, cst.BinaryOperation)
        and isinstance(stop.operator, cst.Add)
        and isinstance(stop.right, cst.Integer)
        and stop.right.value == start.value
    ):
        return stop.left
    if isinstance(start, cst.Integer) and start.value == "0":
        return stop
    if isinstance(start, cst.Integer) and isinstance(stop, cst.Integer):
        return cst.Integer(str(max(int(stop.value, 0) - int(start.value, 0), 0)))
    return cst.parse_expression(f"max({code(stop)} - {operand(start)}, 0)")


def _module_globals(index: ModuleIndex) -> frozenset[str]:
    """What a method of a class in this module can read: module-level names and builtins."""
    from lightify.into_module import bound_names

    top = [s for s in index.module.body if not isinstance(s, cst.FunctionDef | cst.ClassDef)]
    names = bound_names(top) | set(index.functions) | set(index.classes)
    names |= set(index.imports.aliases) | {"__name__", "__file__"}
    return frozenset(names | set(dir(builtins)))


def _is_main_guard(node: cst.CSTNode) -> bool:
    if not isinstance(node, cst.If) or not isinstance(node.test, cst.Comparison):
        return False
    test = node.test
    return dotted_name(test.left) == "__name__" and len(test.comparisons) == 1
