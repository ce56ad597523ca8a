"""Write the plan into the module: the LightningModule, the Trainer call, removals, imports."""

from __future__ import annotations

from collections import Counter

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Program
from lightify.analyze.nodes import (
    assigned_names,
    code,
    is_a,
    mode_call,
    names_in,
    only_small,
    walk,
)
from lightify.analyze.tree import ModuleIndex
from lightify.lower import comments_in
from lightify.plan import Method, Plan
from lightify.wrap import LINE_LENGTH, wrap_call, wrap_statement

METHOD_ORDER = (
    "on_train_epoch_start",
    "training_step",
    "on_train_batch_end",
    "on_validation_model_eval",
    "on_validation_model_train",
    "on_validation_model_zero_grad",
    "on_validation_epoch_start",
    "validation_step",
    "on_validation_epoch_end",
    "on_train_epoch_end",
    "on_test_model_eval",
    "on_test_model_train",
    "on_test_epoch_start",
    "test_step",
    "configure_optimizers",
    "optimizer_zero_grad",
    "configure_gradient_clipping",
    "lr_scheduler_step",
)  # the order of the generated methods; any other method follows, in the order rules add them
TARGETS = {"lightning": ("lightning", "L"), "pytorch_lightning": ("pytorch_lightning", "pl")}


def emit(index: ModuleIndex, program: Program, plan: Plan, target: str) -> cst.Module:
    package, alias = _import_alias(index, target)
    names = free_names(program, "trainer", "lit_module")
    functions = {
        f
        for f in (program.train.function, _function(program.validation), _function(program.test))
        if f
    }
    carried = Counter(
        c.comment.value for m in plan.methods.values() for s in m.body for c in comments_in(s)
    )
    lit_class = _class(plan, alias)
    if index.module.default_indent.strip(" \t"):  # a form feed: nested blocks would not nest
        lit_class = lit_class.visit(_FourSpaces())
    lit_class = lit_class.with_changes(leading_lines=_uncarried([*functions], carried))
    replacement = _trainer_code(program, plan, alias, names)
    # the loop's own leading comments stay in place (_trainer_code); the rest is carried
    lost = _uncarried([program.epoch.node.with_changes(leading_lines=[])], carried)
    replacement[0] = replacement[0].with_changes(
        leading_lines=[*replacement[0].leading_lines, *lost]
    )
    replaced = dict(plan.replaced)
    replaced[program.epoch.node] = replacement
    if program.test_call is not None:
        replaced[program.test_call] = _test_code(program, plan, names)
    rewrite = _Rewrite(replaced, plan.removed, plan.moved, plan.signatures)
    module = index.module.visit(rewrite)
    module = _drop_unused(module, {*functions, *plan.removable}, placed=functions)
    module = _insert_class(module, lit_class)
    module = _drop_dead_imports(module, _used_names(index.module))
    module = _add_import(module, package, alias, index)
    _check_removed_names(module, program, plan)
    return module


def _uncarried(regions: list[cst.CSTNode], carried: Counter) -> list[cst.EmptyLine]:
    """Comments of replaced code that no moved statement took along: kept, never dropped."""
    lines = []
    for region in regions:
        for line in comments_in(region):
            if carried[line.comment.value] > 0:
                carried[line.comment.value] -= 1
            else:
                lines.append(line)
    return lines


def _function(found):
    return None if found is None else found.function


def _import_alias(index: ModuleIndex, target: str) -> tuple[str, str]:
    package, alias = TARGETS[target]
    existing = index.imports.local_name(package)
    return package, existing or alias


def free_names(program: Program, *wanted: str) -> dict[str, str]:
    """Each wanted name, suffixed with ``_`` until the script's scope does not use it."""
    taken = set(program.bindings) | names_in(program.owner)
    out = {}
    for name in wanted:
        candidate = name
        while candidate in taken:
            candidate += "_"
        out[name] = candidate
    return out


def _class(plan: Plan, alias: str) -> cst.ClassDef:
    params = ", ".join(["self", *plan.modules, *plan.hparams])
    init_lines = ["super().__init__()"]
    if plan.manual_optimization:
        init_lines.append("self.automatic_optimization = False")
    ignored = [*plan.modules, *sorted(plan.unsaved)]
    if plan.hparams or plan.modules:
        listed = ", ".join(f'"{name}"' for name in ignored)
        init_lines.append(
            f"self.save_hyperparameters(ignore=[{listed}])"
            if ignored
            else "self.save_hyperparameters()"
        )
    init_lines += [f"self.{name} = {name}" for name in [*plan.modules, *plan.hparams]]
    methods = [Method("__init__", params, [cst.parse_statement(line) for line in init_lines])]
    methods += sorted(
        plan.methods.values(),
        key=lambda m: METHOD_ORDER.index(m.name) if m.name in METHOD_ORDER else len(METHOD_ORDER),
    )
    body = []
    for position, method in enumerate(methods):
        node = cst.parse_statement(f"{_signature(method)}\n    pass\n")
        assert isinstance(node, cst.FunctionDef)
        statements = [wrap_statement(s, indent=8) for s in method.body]
        node = node.with_changes(
            body=cst.IndentedBlock(body=statements or [cst.parse_statement("pass")])
        )
        if position:
            node = node.with_changes(leading_lines=[cst.EmptyLine(indent=False)])
        body.append(node)
    header = cst.parse_statement(f"class {plan.class_name}({alias}.LightningModule):\n    pass\n")
    assert isinstance(header, cst.ClassDef)
    return header.with_changes(body=cst.IndentedBlock(body=body))


class _FourSpaces(cst.CSTTransformer):
    """Indent generated blocks with four spaces rather than the module's own indentation."""

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        return updated_node.with_changes(indent=updated_node.indent or "    ")


def _trainer_code(program: Program, plan: Plan, alias: str, names: dict[str, str]) -> list:
    kwargs = [f"{key}={code(value)}" for key, value in plan.trainer_kwargs.items()]
    trainer = names["trainer"]
    indent = 0 if isinstance(program.owner, cst.Module) else 4
    lines = [wrap_call(f"{trainer} = {alias}.Trainer(", kwargs, ")", indent=indent)]
    construct = _construct(plan)
    loaders = ", ".join(x for x in (plan.train_loader, plan.val_loader) if x)
    fit = f"{trainer}.fit({construct}, {loaders})"
    if plan.test_loader is not None or len(fit) + indent > LINE_LENGTH:
        args = [*plan.modules, *(f"{k}={code(v)}" for k, v in plan.hparams.items())]
        head = f"{names['lit_module']} = {plan.class_name}("
        lines.append(wrap_call(head, args, ")", indent=indent))
        fit = f"{trainer}.fit({names['lit_module']}, {loaders})"
    lines.append(fit)
    statements = [cst.parse_statement(line) for line in lines]
    statements += [s for s in plan.after_fit if plan.test_loader is None]
    first = statements[0].with_changes(leading_lines=program.epoch.node.leading_lines)
    return [first, *statements[1:]]


def _signature(method: Method) -> str:
    """``def name(params):``, the constructor's one parameter per line when too long: its
    parameters grow with the script's values, Lightning's hooks have fixed ones."""
    if method.name != "__init__":
        return f"def {method.name}({method.params}):"
    return wrap_call("def __init__(", method.params.split(", "), "):", indent=4)


def _construct(plan: Plan) -> str:
    args = [*plan.modules, *(f"{k}={code(v)}" for k, v in plan.hparams.items())]
    return f"{plan.class_name}({', '.join(args)})"


def _test_code(program: Program, plan: Plan, names: dict[str, str]) -> list:
    test = f"{names['trainer']}.test({names['lit_module']}, dataloaders={plan.test_loader})"
    statements = [cst.parse_statement(test)]
    calls = [s for s in program.test.before if mode_call(s) == "eval"]
    statements += [cst.parse_statement(code(s).strip()) for s in calls]
    return [
        statements[0].with_changes(leading_lines=program.test_call.leading_lines),
        *statements[1:],
    ]


class _Rewrite(cst.CSTTransformer):
    """Apply removals and replacements block by block, carrying removed comments forward."""

    def __init__(
        self,
        replaced: dict,
        removed: set,
        moved: frozenset | set = frozenset(),
        signatures: dict | None = None,
    ) -> None:
        self.replaced = replaced
        self.removed = removed
        self.moved = moved
        self.signatures = signatures or {}

    def on_visit(self, node: cst.CSTNode) -> bool:
        """Statements live in blocks only: expressions and simple lines are not rebuilt."""
        return not is_a(type(node), cst.BaseExpression | cst.SimpleStatementLine)

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        """A function whose parameters a rule changed (a spawned worker loses its rank)."""
        params = self.signatures.get(original_node)
        return updated_node if params is None else updated_node.with_changes(params=params)

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        return updated_node.with_changes(body=self._block(original_node.body, updated_node.body))

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        body = self._block(original_node.body, updated_node.body)
        return updated_node.with_changes(body=body or [cst.parse_statement("pass")])

    def _block(self, originals, updated) -> list:
        out: list = []
        pending: list[cst.EmptyLine] = []
        for original, new in zip(originals, updated, strict=True):
            if original in self.moved:
                continue
            if original in self.removed:
                pending += [line for line in original.leading_lines if line.comment] + _trailing(
                    original
                )
                continue
            replacement = self.replaced.get(original, new)
            items = replacement if isinstance(replacement, list) else [replacement]
            if pending and items:
                items[0] = items[0].with_changes(leading_lines=[*items[0].leading_lines, *pending])
                pending = []
            out.extend(items)
        return out


def _trailing(statement) -> list[cst.EmptyLine]:
    if isinstance(statement, cst.SimpleStatementLine) and statement.trailing_whitespace.comment:
        return [cst.EmptyLine(comment=statement.trailing_whitespace.comment)]
    return []


def _drop_unused(module: cst.Module, candidates: set, placed: set = frozenset()) -> cst.Module:
    """Remove functions and bindings the conversion made dead; the comments of ``placed``
    ones already stand before the LightningModule, the others' go to the next statement."""
    dead = _Candidates(candidates)
    commented = _Candidates(placed)
    for _ in range(3):  # a removed function can make a binding it read dead in turn
        used, found = _scan(module, dead)
        unused = {statement for statement in found if not _bound_by(statement) & used}
        if not unused:
            break
        moved = {statement for statement in unused if statement in commented}
        module = module.visit(_Rewrite({}, unused - moved, moved))
    return module


class _Candidates:
    """Statements of the original recognised in the new module: same names bound, same text."""

    def __init__(self, nodes: set) -> None:
        self.keys = {_key(node) for node in nodes}
        self.texts = {code(node) for node in nodes}

    def __contains__(self, node: cst.CSTNode) -> bool:
        return _key(node) in self.keys and code(node) in self.texts


def _key(node: cst.CSTNode) -> tuple[str, frozenset[str]]:
    return type(node).__name__, frozenset(_bound_by(node))


def _bound_by(statement) -> set[str]:
    if isinstance(statement, cst.FunctionDef):
        return {statement.name.value}
    if isinstance(statement, cst.If):
        from lightify.into_module import bound_names

        return bound_names([statement])
    small = only_small(statement)
    if isinstance(small, cst.Assign):
        return {n for t in small.targets for n in assigned_names(t.target)}
    return set()


def _scan(module: cst.Module, dead: _Candidates) -> tuple[set[str], list[cst.CSTNode]]:
    """Names read anywhere (a candidate's own bound names aside), and the candidates found."""
    used: set[str] = set()
    found: list[cst.CSTNode] = []

    def is_dead(node: cst.CSTNode) -> bool:
        return is_a(type(node), cst.SimpleStatementLine | cst.If | cst.FunctionDef) and (
            node in dead
        )

    for node in walk(module, into=lambda n: not is_dead(n)):
        if is_dead(node):
            found.append(node)
            used.update(names_in(node) - _bound_by(node))
        elif type(node) is cst.Name:
            used.add(node.value)
    return used, found


def _insert_class(module: cst.Module, lit: cst.ClassDef) -> cst.Module:
    """After the module's last class (the models), else after its imports."""
    body = list(module.body)
    position = None
    for i, statement in enumerate(body):
        if isinstance(statement, cst.ClassDef):
            position = i + 1
    if position is None:
        position = _first_code(body)
    lit = lit.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine(), *lit.leading_lines])
    following = body[position] if position < len(body) else None
    if following is not None:
        lines = [line for line in following.leading_lines if line.comment]
        body[position] = following.with_changes(
            leading_lines=[cst.EmptyLine(), cst.EmptyLine(), *lines]
        )
    body.insert(position, lit)
    return module.with_changes(body=body)


def _first_code(body: list) -> int:
    for i, statement in enumerate(body):
        if not isinstance(only_small(statement), cst.Import | cst.ImportFrom):
            return i
    return len(body)


def _add_import(module: cst.Module, package: str, alias: str, index: ModuleIndex) -> cst.Module:
    if index.imports.local_name(package):
        return module
    statement = cst.parse_statement(
        f"import {package} as {alias}" if alias != package else f"import {package}"
    )
    body = list(module.body)
    imports = [
        i for i, s in enumerate(body) if isinstance(only_small(s), cst.Import | cst.ImportFrom)
    ]
    position = _import_position(body, imports, package)
    if position < len(body) and position in imports:
        following = body[position]
        statement = statement.with_changes(leading_lines=following.leading_lines)
        body[position] = following.with_changes(leading_lines=[])
    body.insert(position, statement)
    return module.with_changes(body=body)


def _import_position(body: list, imports: list[int], package: str) -> int:
    """In torch's import group, in alphabetical order; else after the last import."""
    torch = [i for i in imports if _module_of(body[i]).split(".")[0] == "torch"]
    if not torch:
        return imports[-1] + 1 if imports else 0
    position = torch[0]
    while (
        position - 1 in imports
        and not any(line.comment is None for line in body[position].leading_lines)
        and _module_of(body[position - 1]) > package
    ):
        position -= 1
    return position


def _used_names(module: cst.Module) -> set[str]:
    """Names the module reads outside its import statements."""
    used: set[str] = set()
    for statement in module.body:
        if not isinstance(only_small(statement), cst.Import | cst.ImportFrom):
            used |= names_in(statement)
    return used


def _drop_dead_imports(module: cst.Module, used_before: set[str]) -> cst.Module:
    """Remove imports the conversion made unused (never ones the script did not use)."""
    used_after = _used_names(module)
    body = []
    for statement in module.body:
        small = only_small(statement)
        if isinstance(small, cst.Import | cst.ImportFrom) and not isinstance(
            small.names, cst.ImportStar
        ):
            kept = [a for a in small.names if not _dead(a, used_before, used_after)]
            if not kept:
                continue
            if len(kept) != len(small.names):
                kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
                statement = statement.with_changes(body=[small.with_changes(names=kept)])
        body.append(statement)
    return module.with_changes(body=body)


def _dead(alias: cst.ImportAlias, used_before: set[str], used_after: set[str]) -> bool:
    name = alias.asname.name if alias.asname is not None else alias.name
    local = code(name).split(".")[0]
    return local in used_before and local not in used_after


def _module_of(statement) -> str:
    small = only_small(statement)
    if isinstance(small, cst.Import):
        return code(small.names[0].name)
    if isinstance(small, cst.ImportFrom) and small.module is not None:
        return code(small.module)
    return ""


def _check_removed_names(module: cst.Module, program: Program, plan: Plan) -> None:
    """An optimizer or scheduler used after the loop would now be undefined: decline."""
    removed_names = set()
    for node in plan.removed | plan.moved:
        removed_names |= _bound_by(node)
    still = _free_names_in(module) & removed_names
    if still:
        name = sorted(still)[0]
        raise Decline(
            "LFY403",
            f"`{name}` is still used outside the training loop after conversion; "
            "lightify leaves the loop as it is",
            program.bindings[name].line if name in program.bindings else program.epoch.node,
        )


def _free_names_in(module: cst.Module) -> set[str]:
    """Names read at module level and by functions that do not bind them themselves."""
    from lightify.into_module import bound_names

    found: set[str] = set()
    for statement in module.body:
        if isinstance(statement, cst.FunctionDef | cst.ClassDef):
            params = {p.name.value for p in _params(statement)}
            found |= names_in(statement.body) - params - bound_names([statement.body])
        else:
            found |= names_in(statement)
    return found


def _params(node) -> list[cst.Param]:
    if not isinstance(node, cst.FunctionDef):
        return []
    p = node.params
    return [*p.posonly_params, *p.params, *p.kwonly_params]
