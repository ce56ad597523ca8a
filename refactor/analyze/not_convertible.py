"""Training that Lightning cannot express exactly (LFY007), told apart before the generic declines.

Four kinds of program call backward() and step an optimizer in a loop, yet are
not a model fitted on batches: reinforcement learning (the data comes from an
environment), input optimization (the optimizer updates a tensor fed to a
model), local learning rules (each layer has its own loss, backward() and
optimizer in every batch) and Hogwild workers (processes training one model in
shared memory). Each is recognised by facts of the code (what is called, what
is bound, what flows into the loss), never by the names the script uses, and
reported before the generic reasons (not a DataLoader, several optimizers, no
epoch loop) so the user reads the real one.
"""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from lightify.analyze.bindings import collect_bindings, parameter_bindings
from lightify.analyze.declines import Decline
from lightify.analyze.facts import Binding, Kind
from lightify.analyze.nodes import assigned_names, code, dotted_name, names_in, only_small
from lightify.analyze.tree import ModuleIndex
from lightify.analyze.usage import first_use

CODE = "LFY007"
TAIL = "; Lightning has no exact equivalent, so the loop is left as it is"

#: Calls that start a worker process running a function: the keyword or position of the function.
PROCESS_STARTERS: dict[str, str | int] = {
    "torch.multiprocessing.Process": "target",
    "multiprocessing.Process": "target",
    "torch.multiprocessing.spawn": 0,
    "torch.multiprocessing.start_processes": 0,
}
#: Process-group training (DDP and its samplers) is LFY006's: workers there are not Hogwild.
DISTRIBUTED = frozenset(
    {
        "torch.distributed.init_process_group",
        "torch.nn.parallel.DistributedDataParallel",
        "torch.utils.data.distributed.DistributedSampler",
        "torch.utils.data.DistributedSampler",
    }
)
#: Pretrained networks (style transfer, deep dream) are models even when built by a factory.
MODEL_FACTORIES = ("torchvision.models.",)

Scope = dict[str, Binding]
Detector = Callable[["_Tree", cst.For, Scope], str | None]


def check_not_convertible(index: ModuleIndex) -> None:
    """Raise a Decline naming the training loop when the file's training is one of the kinds."""
    tree = _Tree(index)
    hogwild = _hogwild(tree)
    if hogwild is not None:
        message, loop = hogwild
        raise Decline(CODE, message, loop)
    detectors: tuple[Detector, ...] = (_reinforcement, _input_optimization, _local_rule)
    for loop in index.backward_loops:
        scope = _scope(index, loop)
        for detect in detectors:
            message = detect(tree, loop, scope)
            if message is not None:
                raise Decline(CODE, message, loop)


class _Tree:
    """The module's nodes in the index's preorder: what lies under a node is read off it.

    Every check of every file with a training loop runs these detectors, so they
    filter this list instead of walking the tree again with a visitor.
    """

    def __init__(self, index: ModuleIndex) -> None:
        self.index = index
        self.order = list(index.parents)  # filled in preorder: a subtree is a contiguous run
        self.position = {node: i for i, node in enumerate(self.order)}

    def under(self, root: cst.CSTNode) -> list[cst.CSTNode]:
        """``root`` and every node under it."""
        if root is self.index.module:
            return self.order
        if root not in self.position:  # built by the analysis, not in the file
            return _walk(root)
        inside = {root}
        for i in range(self.position[root] + 1, len(self.order)):
            node = self.order[i]
            if self.index.parents[node] not in inside:
                break
            inside.add(node)
        return [root, *self.order[self.position[root] + 1 : self.position[root] + len(inside)]]

    def calls(self, root: cst.CSTNode) -> list[cst.Call]:
        return [node for node in self.under(root) if isinstance(node, cst.Call)]

    def method_calls(
        self, root: cst.CSTNode, method: str
    ) -> list[tuple[cst.BaseExpression, cst.Call]]:
        """``(receiver, call)`` for each ``receiver.method(...)`` under ``root``."""
        return [
            (call.func.value, call)
            for call in self.calls(root)
            if isinstance(call.func, cst.Attribute) and call.func.attr.value == method
        ]


def _scope(index: ModuleIndex, node: cst.CSTNode) -> Scope:
    """What names mean where ``node`` stands: module bindings, then each enclosing block's."""
    scope = collect_bindings(index, list(index.module.body))
    blocks = [p for p in index.ancestors(node) if isinstance(p, cst.IndentedBlock)]
    for block in reversed(blocks):
        owner = index.parents.get(block)
        if isinstance(owner, cst.FunctionDef):
            scope.update(parameter_bindings(owner))
        scope.update(collect_bindings(index, list(block.body)))
    return scope


def _walk(root: cst.CSTNode) -> list[cst.CSTNode]:
    found: list[cst.CSTNode] = []

    class _All(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            found.append(node)
            return True

    root.visit(_All())
    return found


def _line(index: ModuleIndex, node: cst.CSTNode) -> int:
    return index.position(node)[0]


def _body(loop: cst.For | cst.While) -> list[cst.BaseStatement]:
    return list(loop.body.body) if isinstance(loop.body, cst.IndentedBlock) else []


# --- Hogwild: worker processes train one model in shared memory ---------------------------------


def _hogwild(tree: _Tree) -> tuple[str, cst.For] | None:
    """``model.share_memory()``, or a worker process whose function runs the training loop."""
    index = tree.index
    shared: cst.Call | None = None
    started: tuple[cst.Call, str, cst.For, str] | None = None
    for call in tree.calls(index.module):
        qual = index.imports.qualify(call.func)
        if qual in PROCESS_STARTERS and started is None:
            target = _argument(call, PROCESS_STARTERS[qual])
            name = dotted_name(target) if target is not None else None
            loop = _loop_run_by(tree, name) if name is not None else None
            if name is not None and loop is not None:
                started = call, name, loop, qual
        elif shared is None and _shares_a_model(index, call):
            shared = call
    if (started is None and shared is None) or first_use(index, DISTRIBUTED) is not None:
        return None
    if started is not None:
        call, name, loop, qual = started
        argument = f"target={name}" if PROCESS_STARTERS[qual] == "target" else name
        workers = f"`{code(call.func)}({argument})` (line {_line(index, call)})"
        if shared is None:
            return (
                f"training in worker processes: {workers} runs this loop in every worker{TAIL}",
                loop,
            )
        return (
            f"Hogwild training: worker processes started by {workers} run this loop on a model "
            f"in shared memory ({_shared(index, shared)}){TAIL}",
            loop,
        )
    assert shared is not None
    return (
        f"Hogwild training: the model's parameters are put in shared memory for other "
        f"processes to update ({_shared(index, shared)}){TAIL}",
        index.backward_loops[0],
    )


def _shared(index: ModuleIndex, call: cst.Call) -> str:
    return f"`{code(call.func)}()`, line {_line(index, call)}"


def _shares_a_model(index: ModuleIndex, call: cst.Call) -> bool:
    if not isinstance(call.func, cst.Attribute) or call.func.attr.value != "share_memory":
        return False
    receiver = dotted_name(call.func.value)
    binding = _scope(index, call).get(receiver) if receiver is not None else None
    return binding is not None and binding.kind is Kind.MODULE


def _argument(call: cst.Call, where: str | int) -> cst.BaseExpression | None:
    """The argument passed by keyword ``where``, or at position ``where``."""
    for position, arg in enumerate(call.args):
        keyword = arg.keyword.value if arg.keyword is not None else None
        if keyword == where or (keyword is None and position == where):
            return arg.value
    return None


def _reached(tree: _Tree, roots: list[cst.CSTNode]) -> list[cst.CSTNode]:
    """The roots and the module-level functions they call, directly or not."""
    index = tree.index
    reached: list[cst.CSTNode] = []
    pending = list(roots)
    while pending:
        node = pending.pop()
        if node in reached:
            continue
        reached.append(node)
        for call in tree.calls(node):
            called = dotted_name(call.func)
            if called in index.functions:
                pending.append(index.functions[called])
    return reached


def _loop_run_by(tree: _Tree, name: str) -> cst.For | None:
    """The training loop a module-level function runs, itself or through the functions it calls."""
    index = tree.index
    if name not in index.functions:
        return None
    reached = _reached(tree, [index.functions[name]])
    for loop in index.backward_loops:
        if index.enclosing_function(loop) in reached:
            return loop
    return None


# --- reinforcement learning: the data comes from an environment ----------------------------------


def _reinforcement(tree: _Tree, loop: cst.For, scope: Scope) -> str | None:
    index = tree.index
    env_step = _environment_step(tree, loop, scope)
    if env_step is not None:
        return (
            f"reinforcement learning: the loop's data comes from an environment "
            f"(`{code(env_step.func)}(...)` at line {_line(index, env_step)}), "
            f"not a DataLoader{TAIL}"
        )
    rollout = _rollout(tree, loop, scope)
    if rollout is not None:
        return (
            f"reinforcement learning: the loss is built from values collected by the rollout "
            f"loop at line {_line(index, rollout)}, not from a DataLoader batch{TAIL}"
        )
    return None


def _environment_step(tree: _Tree, loop: cst.For, scope: Scope) -> cst.Call | None:
    """``state, reward, done, ... = env.step(action)`` in the loop or a function it calls.

    An optimizer's or scheduler's ``step()`` returns None or the loss, never a
    tuple the loop unpacks: a tuple-returning ``step`` is an environment's.
    """
    for root in _reached(tree, [loop]):
        for node in tree.under(root):
            if not (isinstance(node, cst.Assign) and len(node.targets) == 1):
                continue
            value = node.value
            if (
                isinstance(value, cst.Call)
                and isinstance(value.func, cst.Attribute)
                and value.func.attr.value == "step"
                and len(assigned_names(node.targets[0].target)) >= 2
            ):
                receiver = scope.get(dotted_name(value.func.value) or "")
                if receiver is None or receiver.kind not in (Kind.OPTIMIZER, Kind.SCHEDULER):
                    return value
    return None


def _rollout(tree: _Tree, loop: cst.For, scope: Scope) -> cst.While | None:
    """An inner ``while`` that collects values (append, +=) which the loss is computed from."""
    loader = scope.get(dotted_name(loop.iter) or "")
    if loader is not None and loader.kind is Kind.LOADER:
        return None
    body = _body(loop)
    if not any(isinstance(statement, cst.While) for statement in body):
        return None
    for position, statement in enumerate(body):
        for loss, _ in tree.method_calls(statement, "backward"):
            reads = _depends(loss, body[:position])
            for earlier in reversed(body[:position]):
                if isinstance(earlier, cst.While) and _collected(tree, earlier) & reads:
                    return earlier
    return None


def _collected(tree: _Tree, loop: cst.While) -> set[str]:
    """Names a loop accumulates into: ``xs.append(...)``, ``total += ...``."""
    names = {dotted_name(receiver) for receiver, _ in tree.method_calls(loop, "append")}
    for node in tree.under(loop):
        if isinstance(node, cst.AugAssign):
            names.update(assigned_names(node.target))
    return {name for name in names if name is not None}


def _depends(
    value: cst.BaseExpression, before: list[cst.BaseStatement], cut_detach: bool = False
) -> set[str]:
    """The names ``value`` is computed from, through the plain assignments that precede it.

    With ``cut_detach``, what reaches it only through ``.detach()`` does not count:
    no gradient flows back along that path.
    """
    names = _reads(value, cut_detach)
    for statement in reversed(before):
        small = only_small(statement)
        if isinstance(small, cst.Assign | cst.AugAssign):
            targets = (
                [n for t in small.targets for n in assigned_names(t.target)]
                if isinstance(small, cst.Assign)
                else assigned_names(small.target)
            )
            if names & set(targets):
                names |= _reads(small.value, cut_detach)
    return names


def _reads(node: cst.CSTNode, cut_detach: bool) -> set[str]:
    """Names read under ``node``, with the dotted callees of its calls (``model.layer1``)."""
    found: set[str] = set()

    class _Reads(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> bool:
            func = call.func
            if cut_detach and isinstance(func, cst.Attribute) and func.attr.value == "detach":
                return False
            callee = dotted_name(func)
            if callee is not None:
                found.add(callee)
            return True

        def visit_Name(self, name: cst.Name) -> None:
            found.add(name.value)

        def visit_Attribute(self, attribute: cst.Attribute) -> bool:
            attribute.value.visit(self)
            return False

    node.visit(_Reads())
    return found


# --- input optimization: the optimizer updates a tensor fed to a model ---------------------------


def _input_optimization(tree: _Tree, loop: cst.For, scope: Scope) -> str | None:
    for optimizer, tensors in _stepped_optimizers(tree, loop, scope):
        if not tensors:
            continue
        for call in tree.calls(loop):
            fed = tensors & _argument_names(call)
            model = _model_of(tree.index, call, scope) if fed else None
            if model is not None:
                return (
                    f"input optimization: `{optimizer}` updates "
                    f"{', '.join(f'`{t}`' for t in sorted(fed))}, an input of `{model}`, "
                    f"instead of a model's parameters{TAIL}"
                )
    return None


def _stepped_optimizers(tree: _Tree, loop: cst.For, scope: Scope) -> list[tuple[str, set[str]]]:
    """Optimizers stepped in the loop, each with the plain tensors it updates (empty if others).

    ``torch.optim.Adam([x])``: a list or tuple of names, none of them a module;
    ``model.parameters()``, parameter groups and ``[*a.parameters(), b]`` are a model's.
    """
    found: list[tuple[str, set[str]]] = []
    for receiver, _ in tree.method_calls(loop, "step"):
        binding = scope.get(dotted_name(receiver) or "")
        if binding is None or binding.kind is not Kind.OPTIMIZER:
            continue
        built = binding.value
        if not isinstance(built, cst.Call):  # chosen by a condition: not told apart
            continue
        params = _argument(built, "params") or _argument(built, 0)
        tensors: set[str] = set()
        if isinstance(params, cst.List | cst.Tuple):
            values = [e.value for e in params.elements if isinstance(e, cst.Element)]
            names = {v.value for v in values if isinstance(v, cst.Name)}
            if len(names) == len(params.elements) and all(
                scope[name].kind is Kind.VALUE for name in names if name in scope
            ):
                tensors = names
        found.append((binding.name, tensors))
    return found


def _argument_names(call: cst.Call) -> set[str]:
    return {name for arg in call.args for name in names_in(arg.value)}


def _model_of(index: ModuleIndex, call: cst.Call, scope: Scope) -> str | None:
    """The model a call runs: ``model(x)``, ``model.features(x)`` or ``features(x, model)``."""
    head = (dotted_name(call.func) or "").split(".")[0]
    for name in [head, *sorted(_argument_names(call))]:
        binding = scope.get(name)
        if binding is not None and _is_model(index, binding):
            return name
    return None


def _is_model(index: ModuleIndex, binding: Binding) -> bool:
    """An nn.Module that is not a criterion, or a network from a model factory."""
    if binding.kind is Kind.MODULE:
        return not (binding.callee or "").endswith("Loss")
    value: cst.BaseExpression = binding.value
    while isinstance(value, cst.Call | cst.Attribute):  # models.vgg19(...).features.eval()
        if isinstance(value, cst.Call):
            qual = index.imports.qualify(value.func)
            if qual is not None:
                return qual.startswith(MODEL_FACTORIES)
            value = value.func
        else:
            value = value.value
    return False


# --- local learning rules: each layer has its own loss, backward() and optimizer -----------------


def _local_rule(tree: _Tree, loop: cst.For, scope: Scope) -> str | None:
    return _per_layer_loop(tree, loop) or _unrolled_layers(tree, loop, scope)


def _per_layer_loop(tree: _Tree, loop: cst.For) -> str | None:
    """Inside the batch loop, a loop over layers runs each and steps its own optimizer.

    ``for layer, opt in zip(layers, opts): ... loss.backward(); opt.step(); h = layer(h).detach()``:
    the layer called and the optimizer stepped come from the loop's own items, and
    a value carried from one iteration to the next chains the layers.
    """
    index = tree.index
    scopes = (p for p in index.ancestors(loop) if isinstance(p, cst.For | cst.FunctionDef))
    if not isinstance(next(scopes, None), cst.For):
        return None
    items = set(assigned_names(loop.target))
    per_item = [r for r, _ in tree.method_calls(loop, "step") if names_in(r) & items]
    runs_item = any(
        isinstance(call.func, cst.Name | cst.Subscript) and names_in(call.func) & items
        for call in tree.calls(loop)
    )
    if not per_item or not runs_item or not _carried(_body(loop)):
        return None
    return (
        f"local learning rule: each layer has its own loss, backward() and optimizer "
        f"(`{code(per_item[0])}`, one per item of `{code(loop.iter)}`) in every batch{TAIL}"
    )


def _carried(body: list[cst.BaseStatement]) -> set[str]:
    """Names a loop body reads and later rebinds: values passed from one iteration to the next."""
    carried: set[str] = set()
    for position, statement in enumerate(body):
        small = only_small(statement)
        if isinstance(small, cst.Assign):
            bound = {n for t in small.targets for n in assigned_names(t.target)}
            carried |= bound & {n for s in body[:position] for n in names_in(s)}
    return carried


def _unrolled_layers(tree: _Tree, loop: cst.For, scope: Scope) -> str | None:
    """Several backward() per batch, each followed by its own optimizer's step, each loss
    reaching (past ``.detach()``) only the modules its own optimizer updates."""
    body = _body(loop)
    updates: list[tuple[set[str], Binding]] = []
    loss: tuple[int, cst.BaseExpression] | None = None
    for position, statement in enumerate(body):
        for receiver, _ in tree.method_calls(statement, "backward"):
            loss = position, receiver
        for receiver, _ in tree.method_calls(statement, "step"):
            binding = scope.get(dotted_name(receiver) or "")
            if loss is not None and binding is not None and binding.kind is Kind.OPTIMIZER:
                updates.append((_depends(loss[1], body[: loss[0]], cut_detach=True), binding))
                loss = None
    optimizers = [binding.name for _, binding in updates]
    if len(updates) < 2 or len(set(optimizers)) != len(optimizers):
        return None
    owned = {binding.name: _trained_modules(tree, binding) for _, binding in updates}
    every = set().union(*owned.values())
    for reads, binding in updates:
        reached = reads & every
        if not reached or not reached <= owned[binding.name]:
            return None
    return (
        f"local learning rule: each layer has its own loss, backward() and optimizer "
        f"({', '.join(f'`{name}`' for name in optimizers)}) in every batch{TAIL}"
    )


def _trained_modules(tree: _Tree, optimizer: Binding) -> set[str]:
    """The modules an optimizer updates: ``layer1`` and ``model.head`` for
    ``SGD([*layer1.parameters(), *model.head.parameters()])``."""
    receivers = tree.method_calls(optimizer.value, "parameters")
    names = {dotted_name(receiver) for receiver, _ in receivers}
    return {name for name in names if name is not None}
