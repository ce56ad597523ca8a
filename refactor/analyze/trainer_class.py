"""Rewrite a hand-written trainer class into the module-level shape the pipeline converts.

``class Trainer:`` whose ``__init__`` stores the model, optimizer and loaders on
``self``, whose ``train_epoch``/``validate`` methods hold the batch loops and whose
``fit(epochs)`` holds the epoch loop, instantiated once as ``trainer =
Trainer(...)``: every ``self.<attr>`` stands for one value of the script's scope,
either what the instantiation passed or an object ``__init__`` builds. So the
instantiation becomes those objects' own assignments (``criterion =
nn.CrossEntropyLoss()``), the methods become module-level functions taking the
attributes they read (``train_epoch(model, train_loader, optimizer, criterion)``),
the method holding the epoch loop is inlined where the script called it, and
``trainer.history`` reads the script's ``history``. The rest of the analysis then
sees the usual ``train(...)``/``validate(...)`` functions called from an epoch loop.
Anything that would make that rewrite differ from the class (an attribute rebound
where the rewrite cannot follow it, a second instance, the instance passed on,
inheritance, properties) declines the file with LFY404, naming what blocks it.
"""

from __future__ import annotations

import builtins
import inspect
from dataclasses import dataclass, field

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.nodes import (
    call_of,
    code,
    dotted_name,
    is_docstring,
    names_in,
    only_small,
    short,
    statement_call,
)
from lightify.analyze.program import GRAD_OFF
from lightify.analyze.substitute import Substitute, bind_arguments
from lightify.analyze.tree import ModuleIndex, index_module
from lightify.into_module import bound_names, changed_names

CODE = "LFY404"
SIMPLE = (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString)
CONSTANTS = ("None", "True", "False")
TARGETS = (cst.Element, cst.StarredElement, cst.Tuple, cst.List)


@dataclass
class _Class:
    """The trainer class and how the script uses it."""

    node: cst.ClassDef
    init: cst.FunctionDef | None
    methods: dict[str, cst.FunctionDef]  # every method but __init__, in class order
    statement: cst.SimpleStatementLine  # trainer = Trainer(...)
    call: cst.Call
    instance: str
    scope: cst.CSTNode  # the Module, main() or the __main__ guard holding the instantiation
    block: list[cst.BaseStatement]


@dataclass
class _SelfUses:
    """How one method uses ``self``: attributes read and set, methods called."""

    reads: list[str] = field(default_factory=list)
    writes: dict[str, cst.Attribute] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)


def unclass(index: ModuleIndex) -> tuple[ModuleIndex, dict[str, str]]:
    """The index of the module with its trainer class rewritten, and each new function's
    name → the method it came from (``Trainer.validate``), for findings.

    Returns the index unchanged (and no names) when no method of a plain class trains.
    """
    node = _trainer_class(index)
    if node is None:
        return index, {}
    found = _instantiation(index, node, *_members(index, node))
    origins: dict[cst.CSTNode, cst.CSTNode] = {}
    module, names = _Rewriter(index, found, origins).module()
    rewritten = index_module(module, like=index)
    rewritten.origins.update(origins)
    return rewritten, names


def _trainer_class(index: ModuleIndex) -> cst.ClassDef | None:
    """The module-level class, not an nn.Module, one of whose methods holds a training loop."""
    models = index.module_classes()
    for loop in index.backward_loops:
        classes = [a for a in index.ancestors(loop) if isinstance(a, cst.ClassDef)]
        name = classes[-1].name.value if classes else None
        if name is not None and index.classes.get(name) is classes[-1] and name not in models:
            return classes[-1]
    return None


def _members(
    index: ModuleIndex, node: cst.ClassDef
) -> tuple[cst.FunctionDef | None, dict[str, cst.FunctionDef]]:
    """``__init__`` and the other methods; declines anything a plain function cannot be."""
    name = node.name.value
    bases = [code(b.value) for b in node.bases if dotted_name(b.value) != "object"]
    if bases or node.keywords or node.decorators:
        what = f"derives from `{bases[0]}`" if bases else "is decorated or has a metaclass"
        raise Decline(CODE, f"{_lead(name)} {what}; {_SHAPE}", node)
    init = None
    methods: dict[str, cst.FunctionDef] = {}
    for position, statement in enumerate(node.body.body):
        if position == 0 and is_docstring(statement):
            continue
        if not isinstance(statement, cst.FunctionDef):
            raise Decline(
                CODE,
                f"{_lead(name)} has a class attribute (`{short(statement, 40)}`); {_SHAPE}",
                statement,
            )
        method = statement.name.value
        _check_signature(name, statement)
        if method == "__init__":
            init = statement
        elif method.startswith("__") and method.endswith("__"):
            raise Decline(CODE, f"{_lead(name)} defines `{method}`; {_SHAPE}", statement)
        else:
            _check_decorators(index, name, statement)
            methods[method] = statement
    return init, methods


_SHAPE = (
    "lightify converts a plain class instantiated once, whose `__init__` stores values on "
    "`self` and whose methods are called through that instance"
)


def _lead(name: str) -> str:
    return f"the training loop is in a method of `{name}` (a hand-written trainer), which"


def _check_signature(name: str, method: cst.FunctionDef) -> None:
    params = method.params
    star = params.star_arg not in (None, cst.MaybeSentinel.DEFAULT) or params.star_kwarg
    if params.posonly_params or star or not params.params:
        raise Decline(
            CODE,
            f"`{name}.{method.name.value}` takes `*args`, `**kwargs`, positional-only "
            "parameters or no `self`; lightify converts methods with plain parameters",
            method,
        )


def _check_decorators(index: ModuleIndex, name: str, method: cst.FunctionDef) -> None:
    """Only ``@torch.no_grad()`` and its kin: they mean the same on a function."""
    for decorator in method.decorators:
        target = decorator.decorator
        target = target.func if isinstance(target, cst.Call) else target
        if index.imports.qualify(target) not in GRAD_OFF:
            raise Decline(
                CODE,
                f"`{name}.{method.name.value}` is decorated with `@{code(decorator.decorator)}`; "
                "lightify converts trainer methods that are plain or under `@torch.no_grad()`",
                decorator,
            )


def _instantiation(
    index: ModuleIndex,
    node: cst.ClassDef,
    init: cst.FunctionDef | None,
    methods: dict[str, cst.FunctionDef],
) -> _Class:
    """The one ``trainer = Trainer(...)`` statement, at the top of the script's scope."""
    name = node.name.value
    uses = _references(index, name, skip=node.name)
    for use in uses:
        subclass = index.parents.get(index.parents[use])
        if isinstance(subclass, cst.ClassDef):
            why = f"is subclassed by `{subclass.name.value}`"
            raise Decline(CODE, f"{_lead(name)} {why}; {_SHAPE}", subclass)
    if len(uses) != 1:
        why = f"is instantiated or named {len(uses)} times" if uses else "is never instantiated"
        raise Decline(CODE, f"{_lead(name)} {why}; {_SHAPE}", (uses[1:] or [node])[0])
    call = index.parents.get(uses[0])
    assign = index.parents.get(call) if isinstance(call, cst.Call) else None
    statement = index.parents.get(assign) if isinstance(assign, cst.Assign) else None
    if (
        not isinstance(statement, cst.SimpleStatementLine)
        or statement_call(statement) is not call
        or call.func is not uses[0]  # type: ignore[union-attr]
        or len(assign.targets) != 1  # type: ignore[union-attr]
        or not isinstance(assign.targets[0].target, cst.Name)  # type: ignore[union-attr]
    ):
        raise Decline(
            CODE,
            f"{_lead(name)} is used here other than as `trainer = {name}(...)`; {_SHAPE}",
            uses[0],
        )
    scope, block = _scope_block(index, statement, name)
    instance = assign.targets[0].target.value  # type: ignore[union-attr]
    assert isinstance(call, cst.Call)
    return _Class(node, init, methods, statement, call, instance, scope, block)


def _scope_block(
    index: ModuleIndex, statement: cst.BaseStatement, name: str
) -> tuple[cst.CSTNode, list[cst.BaseStatement]]:
    """The block holding the instantiation: the module's, main()'s or the __main__ guard's."""
    parent = index.parents.get(statement)
    if isinstance(parent, cst.Module):
        return parent, list(parent.body)
    owner = index.parents.get(parent) if isinstance(parent, cst.IndentedBlock) else None
    if isinstance(owner, cst.FunctionDef | cst.If) and isinstance(
        index.parents.get(owner), cst.Module
    ):
        return owner, list(parent.body)  # type: ignore[union-attr]
    raise Decline(
        CODE,
        f"`{name}` is instantiated inside a loop or another block, where it may make several "
        "trainers; lightify converts one created at the top of the module, of `main()` or of "
        "`if __name__ == '__main__':`",
        statement,
    )


def _references(index: ModuleIndex, name: str, skip: cst.CSTNode | None = None) -> list[cst.Name]:
    """Every use of the bare name ``name`` (not ``x.name``, not a keyword argument)."""
    found = []
    for node in index.references:
        if not isinstance(node, cst.Name) or node.value != name or node is skip:
            continue
        parent = index.parents.get(node)
        if isinstance(parent, cst.Attribute) and parent.attr is node:
            continue
        if isinstance(parent, cst.Arg) and parent.keyword is node:
            continue
        found.append(node)
    return found


def _is_target(index: ModuleIndex, node: cst.CSTNode) -> bool:
    """Whether ``node`` is assigned to or deleted (also inside a tuple target)."""
    child, parent = node, index.parents.get(node)
    while isinstance(parent, TARGETS):
        child, parent = parent, index.parents.get(parent)
    if isinstance(parent, cst.AssignTarget | cst.Del | cst.AsName):
        return True
    bound = (cst.AugAssign, cst.AnnAssign, cst.For, cst.CompFor, cst.NamedExpr)
    return isinstance(parent, bound) and parent.target is child  # type: ignore[union-attr]


class _Rewriter:
    """Build the module without the class: what each attribute is, the new functions."""

    def __init__(
        self, index: ModuleIndex, found: _Class, origins: dict[cst.CSTNode, cst.CSTNode]
    ) -> None:
        self.index = index
        self.found = found
        self.origins = origins
        self.name = found.node.name.value
        self.uses = {
            m: _self_uses(index, self.name, f, found.methods) for m, f in found.methods.items()
        }
        self.driver = _driver(index, found.methods, self.uses)
        self.script = _script_names(index, found, self.driver)  # what inlined locals must avoid
        self.taken = self.script | set(dir(builtins))  # what new names avoid, growing with them
        for method in found.methods.values():
            self.taken |= names_in(method.body) | names_in(method.params)
        self.values: dict[str, cst.BaseExpression] = {}  # attribute → its value in the scope
        self.made: set[str] = set()  # attributes with a name of their own in the scope
        self.functions: dict[str, str] = {}  # method → the module-level function's name

    def module(self) -> tuple[cst.Module, dict[str, str]]:
        """The rewritten module, and each new function's name → ``Class.method``."""
        found = self.found
        prelude = self._init()
        self._driver_attributes()
        script = self._script_uses()
        for method in found.methods:
            if method != self.driver:
                self.functions[method] = _free(method, self.taken, found.instance)
        reads = _reads(self.uses, self.functions)
        functions = [self._function(m, reads) for m in self.functions]
        replaced: dict[cst.CSTNode, list[cst.BaseStatement]] = {
            found.node: _placed(functions, found.node),
            found.statement: _with_comments(prelude, found.statement),
        }
        rewrite = _Receiver(found.instance, self.values, self.functions, reads, {}, self.origins)
        if self.driver is not None:
            call = script[self.driver][0]
            statement = self.index.parents[self.index.parents[call]]
            replaced[statement] = _with_comments(self._inlined(call, rewrite), statement)
        module = self.index.module.visit(_Module(replaced, rewrite))
        names = {name: f"{self.name}.{method}" for method, name in self.functions.items()}
        return module, names

    def _init(self) -> list[cst.BaseStatement]:
        """What the attributes hold after ``__init__``; the statements building new objects."""
        init, call = self.found.init, self.found.call
        if init is None:
            if call.args:
                raise Decline(CODE, f"`{self.name}` takes no arguments", call)
            return []
        arguments, prelude = self._arguments(init, call)
        rewrite = _Receiver(_self(init), self.values, {}, {}, arguments, self.origins)
        for position, statement in enumerate(init.body.body):
            if position == 0 and is_docstring(statement):
                continue
            target, value = self._stored(init, statement)
            new = value.visit(rewrite)
            if _self(init) in names_in(new):
                raise Decline(
                    CODE,
                    f"`{self.name}.__init__` uses `self` here other than to read an attribute "
                    "it already set; lightify converts an `__init__` that only stores values",
                    statement,
                )
            if dotted_name(value) in (*arguments, *(f"{_self(init)}.{a}" for a in self.values)):
                self.values[target] = new  # another name for what the script passed
                continue
            self._check_globals(init, value, set(arguments))
            name = _free(target, self.taken, self.found.instance)
            self.values[target] = cst.Name(name)
            self.made.add(target)
            line = _assignment(name, new).with_changes(leading_lines=statement.leading_lines)
            self.origins[line] = statement
            prelude.append(line)
        return prelude

    def _arguments(
        self, init: cst.FunctionDef, call: cst.Call
    ) -> tuple[dict[str, cst.BaseExpression], list[cst.BaseStatement]]:
        """What each parameter stands for, and the assignments keeping a computed argument's
        single evaluation (``Trainer(Net(), ...)`` → ``model = Net()``), in the call's order."""
        arguments = _bound(init, call, self.name)
        prelude: list[cst.BaseStatement] = []
        for argument in call.args:
            param = next(p for p, v in arguments.items() if v is argument.value)
            if not _simple(argument.value):
                name = _free(param, self.taken, self.found.instance)
                prelude.append(_assignment(name, argument.value))
                arguments[param] = cst.Name(name)
        self._check_unchanged(arguments)
        return arguments, prelude

    def _check_local(self, name: str, at: cst.CSTNode) -> None:
        """An inlined method's local becomes a variable of the script: it must be new there."""
        if name in self.script:
            raise Decline(
                CODE,
                f"`{name}`, a local of `{self.name}.{self.driver}`, would become a variable of "
                "the script where it calls the method, and the script already uses that name; "
                "lightify leaves the file as it is",
                at,
            )

    def _stored(
        self, init: cst.FunctionDef, statement: cst.BaseStatement
    ) -> tuple[str, cst.BaseExpression]:
        """``self.x = value`` → (x, value): the only statement an ``__init__`` may hold."""
        small = only_small(statement)
        target = small.targets[0].target if isinstance(small, cst.Assign) else None
        if (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and isinstance(target, cst.Attribute)
            and dotted_name(target.value) == _self(init)
            and target.attr.value not in self.values
            and target.attr.value not in self.found.methods
        ):
            return target.attr.value, small.value
        raise Decline(
            CODE,
            f"`{self.name}.__init__` does more than store values on `self` once each "
            f"(`{short(statement, 40)}`); {_SHAPE}",
            statement,
        )

    def _check_unchanged(self, arguments: dict[str, cst.BaseExpression]) -> None:
        """A name passed to the instantiation still means the same after it."""
        block, statement = self.found.block, self.found.statement
        later = block[block.index(statement) + 1 :]
        rebound = bound_names(later, own_scope_only=True)
        changed = changed_names(later)  # ``args.weight = 3.0``: the trainer kept the old value
        for param, value in arguments.items():
            base = dotted_name(value)
            root = None if base is None else base.split(".")[0]
            if root in rebound or ("." in (base or "") and root in changed):
                raise Decline(
                    CODE,
                    f"`{root}` is assigned or changed after `{self.found.instance} = "
                    f"{self.name}(...)`, which keeps the value passed as `{param}`; lightify "
                    "leaves the file as it is",
                    statement,
                )

    def _check_globals(self, method: cst.FunctionDef, node: cst.CSTNode, own: set[str]) -> None:
        """Moved into main(), a module-level name must not be one main() binds itself."""
        scope = self.found.scope
        if not isinstance(scope, cst.FunctionDef):
            return
        local = bound_names(list(scope.body.body), own_scope_only=True) | {
            p.name.value for p in scope.params.params
        }
        clash = sorted((names_in(node) - own - {_self(method)}) & local)
        if clash:
            raise Decline(
                CODE,
                f"`{self.name}.{method.name.value}` reads the module's `{clash[0]}`, and "
                f"`{scope.name.value}` has its own `{clash[0]}` where the trainer is created; "
                "lightify leaves the file as it is",
                method,
            )

    def _driver_attributes(self) -> None:
        """Attributes the epoch-loop method sets: new names of the scope, never the script's.
        No other method sets one: as a function, it would set a local of its own."""
        writes = self.uses[self.driver].writes if self.driver is not None else {}
        for attribute, target in writes.items():
            if attribute in self.values and attribute not in self.made:
                raise Decline(
                    CODE,
                    f"`self.{attribute}` stands for what the script passed to `{self.name}`, "
                    f"and `{self.name}.{self.driver}` assigns it; lightify converts attributes "
                    "set outside `__init__` when `__init__` builds them or does not set them",
                    target,
                )
            if attribute not in self.values:
                name = _free(attribute, self.taken, self.found.instance)
                self.values[attribute] = cst.Name(name)
                self.made.add(attribute)
        for method, uses in self.uses.items():
            if method != self.driver and uses.writes:
                attribute, target = next(iter(uses.writes.items()))
                raise Decline(
                    CODE,
                    f"`{self.name}.{method}` sets `self.{attribute}`; lightify converts trainer "
                    f"methods that only read attributes, except the one holding the epoch loop",
                    target,
                )
        for method, uses in self.uses.items():
            unknown = [a for a in uses.reads if a not in self.values]
            if unknown:
                raise Decline(
                    CODE,
                    f"`{self.name}.{method}` reads `self.{unknown[0]}`, which neither "
                    "`__init__` nor the epoch loop's method sets; lightify leaves the file as is",
                    self.found.methods[method],
                )

    def _script_uses(self) -> dict[str, list[cst.Call]]:
        """Each method's calls from the script; declines any other use of the instance."""
        found, index = self.found, self.index
        calls: dict[str, list[cst.Call]] = {m: [] for m in found.methods}
        start = found.block.index(found.statement)
        function = found.scope if isinstance(found.scope, cst.FunctionDef) else None
        target = found.statement.body[0].targets[0].target  # type: ignore[attr-defined]
        for use in _references(index, found.instance, skip=target):
            top = next((a for a in index.ancestors(use) if a in found.block), None)
            parent = index.parents.get(use)
            if (
                top is None
                or found.block.index(top) <= start
                or (index.enclosing_function(use) is not function)
            ):
                self._misused(use, "outside the code that follows its creation in its scope")
            if isinstance(parent, cst.Arg) and isinstance(index.parents.get(parent), cst.Call):
                callee = index.parents[parent].func  # type: ignore[attr-defined]
                self._misused(use, f"as an argument of `{short(callee, 30)}(...)`")
            if isinstance(parent, cst.Attribute) and _is_target(index, parent):
                self._misused(use, f"to set `{found.instance}.{parent.attr.value}`")
            if not isinstance(parent, cst.Attribute):
                self._misused(use, "other than to call its methods or read its attributes")
            attribute = parent.attr.value  # type: ignore[union-attr]
            if attribute in found.methods:
                call = index.parents.get(parent)
                if not isinstance(call, cst.Call) or call.func is not parent:
                    self._misused(use, f"(`{found.instance}.{attribute}` without a call)")
                calls[attribute].append(call)  # type: ignore[arg-type]
            elif attribute not in self.values:
                self._misused(use, f"to read `{attribute}`, which the class never sets")
        if self.driver is not None:
            self._check_driver_call(calls[self.driver])
        return calls

    def _misused(self, use: cst.CSTNode, how: str) -> None:
        raise Decline(
            CODE,
            f"the `{self.name}` instance `{self.found.instance}` is used here {how}; {_SHAPE}",
            use,
        )

    def _check_driver_call(self, calls: list[cst.Call]) -> None:
        """The epoch-loop method runs once, as a statement of the script: it is inlined there."""
        method = f"{self.name}.{self.driver}"
        called = any(self.driver in uses.calls for uses in self.uses.values())
        statement = self.index.parents.get(self.index.parents.get(calls[0])) if calls else None
        if called or len(calls) != 1 or call_of(statement) is not calls[0]:
            raise Decline(
                CODE,
                f"`{method}` holds the epoch loop; lightify converts it when the script "
                f"calls it once, as a statement (`{self.found.instance}.{self.driver}(...)`)",
                calls[1] if len(calls) > 1 else self.found.methods[self.driver],  # type: ignore[index]
            )

    def _function(self, method: str, reads: dict[str, list[str]]) -> cst.FunctionDef:
        """The method as a module-level function taking the attributes it reads."""
        node = self.found.methods[method]
        taken = names_in(node.body) | names_in(node.params) | set(self.functions.values())
        params = {a: _free(a, taken) for a in reads[method]}
        values = {a: cst.Name(name) for a, name in params.items()}
        rewrite = _Receiver(_self(node), values, self.functions, reads, {}, self.origins)
        body = node.body.visit(rewrite)
        own = list(node.params.params[1:])
        new = node.with_changes(
            name=cst.Name(self.functions[method]),
            params=node.params.with_changes(
                params=[*(cst.Param(cst.Name(p)) for p in params.values()), *own]
            ),
            body=body,
        )
        self.origins[new] = node
        return new

    def _inlined(self, call: cst.Call, rewrite: _Receiver) -> list[cst.BaseStatement]:
        """The epoch-loop method's body where the script called it, its parameters bound."""
        assert self.driver is not None
        node = self.found.methods[self.driver]
        if node.decorators or _exits(node):
            raise Decline(
                CODE,
                f"`{self.name}.{self.driver}` holds the epoch loop and is decorated, returns, "
                "yields or declares a global; lightify inlines it where the script calls it "
                "only when it does none of these",
                node,
            )
        arguments = _bound(node, call, self.name)
        local = bound_names(list(node.body.body), own_scope_only=True)
        self._check_globals(node, node.body, local | set(arguments))
        prelude = []
        for param, value in list(arguments.items()):
            arguments[param] = value.visit(rewrite)  # `trainer.fit(trainer.epochs)`
            if param in local or not _simple(value):
                self._check_local(param, call)
                prelude.append(_assignment(param, arguments.pop(param)))
        for name in sorted(local):
            self._check_local(name, call)
        inline = _Receiver(
            _self(node), self.values, self.functions, rewrite.reads, arguments, self.origins
        )
        body = list(node.body.body)
        docstring = _comment_lines(body[0]) if body and is_docstring(body[0]) else []
        statements = [s.visit(inline) for s in body[len(docstring) > 0 :]]
        if docstring and statements:
            first = statements[0]
            statements[0] = first.with_changes(leading_lines=[*docstring, *first.leading_lines])
        return [*prelude, *statements]


def _self(method: cst.FunctionDef) -> str:
    return method.params.params[0].name.value


def _assignment(name: str, value: cst.BaseExpression) -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))], value)])


def _bound(method: cst.FunctionDef, call: cst.Call, name: str) -> dict[str, cst.BaseExpression]:
    """Parameter → what the call passes, ``self`` aside."""
    unbound = method.with_changes(
        params=method.params.with_changes(params=method.params.params[1:])
    )
    try:
        arguments = bind_arguments(unbound, call)
    except Decline as decline:
        raise Decline(CODE, f"`{name}.{method.name.value}`: {decline.message}", call) from None
    passed = {a.value for a in call.args}
    for param, value in arguments.items():
        if value not in passed and not (isinstance(value, SIMPLE) or code(value) in CONSTANTS):
            raise Decline(
                CODE,
                f"`{name}.{method.name.value}` defaults `{param}` to `{code(value)}`, computed "
                "once where the class is defined; lightify converts literal defaults",
                value,
            )
    return arguments


def _simple(node: cst.BaseExpression) -> bool:
    """A name, ``args.lr`` or a literal: substituting it reads the same value."""
    return isinstance(node, SIMPLE) or dotted_name(node) is not None


def _exits(method: cst.FunctionDef) -> bool:
    """Whether the method returns, yields or declares a global (nested functions aside):
    statements that mean something else where it is inlined."""

    class _Exits(cst.CSTVisitor):
        found = False

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is method

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

        def visit_Return(self, node: cst.Return) -> None:
            _Exits.found = True

        def visit_Yield(self, node: cst.Yield) -> None:
            _Exits.found = True

        def visit_Global(self, node: cst.Global) -> None:
            _Exits.found = True

        def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
            _Exits.found = True

    method.visit(_Exits())
    return _Exits.found


def _self_uses(
    index: ModuleIndex, name: str, method: cst.FunctionDef, methods: dict[str, cst.FunctionDef]
) -> _SelfUses:
    """Attributes a method reads and sets and the methods it calls; any other use declines."""
    me = _self(method)
    uses = _SelfUses()
    for node in _references(index, me):
        if method not in index.ancestors(node) or node is method.params.params[0].name:
            continue
        parent = index.parents.get(node)
        if not isinstance(parent, cst.Attribute) or _is_target(index, node):
            raise Decline(
                CODE,
                f"`{name}.{method.name.value}` uses `{me}` here other than as `{me}.<attribute>`; "
                f"{_SHAPE}",
                node,
            )
        attribute = parent.attr.value
        if attribute in methods:
            call = index.parents.get(parent)
            if not isinstance(call, cst.Call) or call.func is not parent:
                raise Decline(CODE, f"`{me}.{attribute}` is used without a call; {_SHAPE}", parent)
            uses.calls.append(attribute)
        elif _is_target(index, parent):
            uses.writes.setdefault(attribute, parent)
        elif attribute not in uses.reads:
            uses.reads.append(attribute)
    return uses


def _driver(
    index: ModuleIndex, methods: dict[str, cst.FunctionDef], uses: dict[str, _SelfUses]
) -> str | None:
    """The method holding the epoch loop: a ``for`` around the batch loop or a training call.

    None when the script's own epoch loop calls the methods.
    """
    trains = {
        m
        for m, f in methods.items()
        if any(f in index.ancestors(loop) for loop in index.backward_loops)
    }
    changed = True
    while changed:
        grown = {m for m, u in uses.items() if set(u.calls) & trains}
        changed = not grown <= trains
        trains |= grown
    for method, node in methods.items():
        for loop in index.backward_loops:
            outer = [a for a in index.ancestors(loop) if isinstance(a, cst.For)]
            if any(node in index.ancestors(f) for f in outer):
                return method
        for call in _self_calls(node, _self(node)):
            if call.func.attr.value in trains and any(  # type: ignore[attr-defined]
                isinstance(a, cst.For) for a in _until(index, call, node)
            ):
                return method
    return None


def _self_calls(method: cst.FunctionDef, me: str) -> list[cst.Call]:
    found: list[cst.Call] = []

    class _Calls(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            if isinstance(call.func, cst.Attribute) and dotted_name(call.func.value) == me:
                found.append(call)

    method.body.visit(_Calls())
    return found


def _until(index: ModuleIndex, node: cst.CSTNode, stop: cst.CSTNode) -> list[cst.CSTNode]:
    """The ancestors of ``node`` below ``stop``."""
    out = []
    for ancestor in index.ancestors(node):
        if ancestor is stop:
            break
        out.append(ancestor)
    return out


def _reads(uses: dict[str, _SelfUses], functions: dict[str, str]) -> dict[str, list[str]]:
    """Attributes each function needs: its own reads, then those of the methods it calls."""
    reads = {m: list(uses[m].reads) for m in functions}
    changed = True
    while changed:
        changed = False
        for method in functions:
            for callee in uses[method].calls:
                for attribute in reads.get(callee, []):
                    if attribute not in reads[method]:
                        reads[method].append(attribute)
                        changed = True
    return reads


def _script_names(index: ModuleIndex, found: _Class, driver: str | None) -> set[str]:
    """Names of the scope where the epoch-loop method is inlined, and at module level the
    globals the other methods read: none of its locals may be one of them."""
    if isinstance(found.scope, cst.FunctionDef):  # main(): its own names only
        return names_in(found.scope)
    taken: set[str] = set()
    for statement in index.module.body:
        if statement is not found.node:
            taken |= names_in(statement)
    for method, node in found.methods.items():
        if method != driver:
            params = {p.name.value for p in node.params.params}
            local = bound_names(list(node.body.body), own_scope_only=True)
            taken |= names_in(node.body) - local - params
    return taken


def _free(name: str, taken: set[str], instance: str = "") -> str:
    """``name``, else ``<instance>_name`` (with ``_`` added until free); now taken."""
    candidate = name if name not in taken or not instance else f"{instance}_{name}"
    while candidate in taken:
        candidate += "_"
    taken.add(candidate)
    return candidate


def _comment_lines(docstring: cst.BaseStatement) -> list[cst.EmptyLine]:
    """A docstring as comment lines: it documents code that now stands elsewhere."""
    value = only_small(docstring).value.evaluated_value  # type: ignore[union-attr]
    return [
        cst.EmptyLine(comment=cst.Comment(f"# {line}".rstrip()))
        for line in inspect.cleandoc(str(value)).splitlines()
    ]


def _placed(functions: list[cst.FunctionDef], node: cst.ClassDef) -> list[cst.BaseStatement]:
    """The functions where the class stood: its comments and docstring before the first."""
    docstring = node.body.body[0] if is_docstring(node.body.body[0]) else None
    notes = _comment_lines(docstring) if docstring is not None else []
    blank = [line for line in node.leading_lines if line.comment is None]
    placed: list[cst.BaseStatement] = []
    for function in functions:
        comments = [line for line in function.leading_lines if line.comment]
        lines = [*node.leading_lines, *notes, *comments] if not placed else [*blank, *comments]
        placed.append(function.with_changes(leading_lines=lines))
    return placed


def _with_comments(
    statements: list[cst.BaseStatement], replaced: cst.BaseStatement
) -> list[cst.BaseStatement]:
    """The replaced statement's leading lines go before the first of its replacement."""
    if not statements:
        return []
    first = statements[0]
    lines = [*replaced.leading_lines, *first.leading_lines]
    return [first.with_changes(leading_lines=lines), *statements[1:]]


class _Receiver(Substitute):
    """``self.x`` → the attribute's value, ``self.m(...)`` → ``m(<what m reads>, ...)``,
    and the method's parameters → what the call passed."""

    def __init__(
        self,
        receiver: str,
        values: dict[str, cst.BaseExpression],
        functions: dict[str, str],
        reads: dict[str, list[str]],
        arguments: dict[str, cst.BaseExpression],
        origins: dict[cst.CSTNode, cst.CSTNode],
    ) -> None:
        super().__init__(arguments, origins)
        self.receiver = receiver
        self.values = values
        self.functions = functions
        self.reads = reads

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.BaseExpression:
        if dotted_name(original_node.value) == self.receiver:
            value = self.values.get(original_node.attr.value)
            if value is not None:
                return value
        return super().leave_Attribute(original_node, updated_node)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        func = original_node.func
        if isinstance(func, cst.Attribute) and dotted_name(func.value) == self.receiver:
            name = self.functions.get(func.attr.value)
            if name is not None:
                passed = [cst.Arg(self.values[a]) for a in self.reads[func.attr.value]]
                return updated_node.with_changes(
                    func=cst.Name(name), args=[*passed, *updated_node.args]
                )
        return updated_node


class _Module(_Receiver):
    """The module with statements replaced (the comments of one replaced by nothing carried
    to the next) and the script's uses of the instance rewritten."""

    def __init__(
        self, replaced: dict[cst.CSTNode, list[cst.BaseStatement]], script: _Receiver
    ) -> None:
        super().__init__(
            script.receiver, script.values, script.functions, script.reads, {}, script.origins
        )
        self.replaced = replaced

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return node not in self.replaced

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        return updated_node.with_changes(body=self._block(original_node.body, updated_node.body))

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        body = self._block(original_node.body, updated_node.body)
        return updated_node.with_changes(body=body or [cst.parse_statement("pass")])

    def _block(self, originals, updated) -> list[cst.BaseStatement]:
        out: list[cst.BaseStatement] = []
        pending: list[cst.EmptyLine] = []
        for original, new in zip(originals, updated, strict=True):
            items = list(self.replaced.get(original, [new]))
            if not items:
                pending += [line for line in original.leading_lines if line.comment]
                continue
            if pending:
                items[0] = items[0].with_changes(leading_lines=[*pending, *items[0].leading_lines])
                pending = []
            out.extend(items)
        return out
