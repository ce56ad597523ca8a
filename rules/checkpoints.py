"""LFY407: checkpoint saves and early stopping in the epoch loop move into on_train_epoch_end."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Kind
from lightify.analyze.nodes import call_of, code, method_call, names_in, only_small, walk
from lightify.into_module import bound_names, changed_names
from lightify.lower import code_order
from lightify.plan import Method
from lightify.rule import Example
from lightify.rules.manual_lr import contains_lr, group_targets
from lightify.rules.print_logging import is_print
from lightify.rules.training_step import index_alias

CODE = "LFY407"
SUMMARY = "Checkpoint saving and early stopping move into Lightning hooks"
ORDER = 35  # build order: after the scheduler (30) names its metric, before evaluation (40)
HOOK = "on_train_epoch_end"
BATCH_HOOK = "on_train_batch_end"
DOC = """\
## What it does
Moves what the epoch loop does after its training and validation passes to save
weights or stop early into `on_train_epoch_end`, unchanged: periodic saves
(`torch.save(model.state_dict(), f"ckpt_{epoch}.pt")`, also under
`if epoch % k == 0:`), best-metric saves (`if val_loss < best: best = val_loss;
torch.save(...)`), patience counters (`bad += 1; if bad >= patience: break`) and
appends to a list made before the loop (`history.append(val_loss)`: the module appends
to the script's own list, which the script reads after `fit`; the appended value
calls nothing). Values carried from epoch to epoch (`best`, `bad`) become attributes of the
LightningModule, initialised from the script's own values before the loop; the
epoch variable becomes `self.current_epoch` (plus the range's start); `break`
becomes `self.trainer.should_stop = True`; the validation value keeps the
script's exact Python-float accumulation.

Lightning calls `on_train_epoch_end` once per epoch after the epoch's
validation (which runs when the last training batch ends,
`loops/training_epoch_loop.py`, `on_advance_end`) and never during the sanity
check (`loops/fit_loop.py`, `on_advance_end`); `trainer.current_epoch` still
holds the epoch's index there. With `should_stop` set, `FitLoop.done` ends
`fit` before another epoch starts.

Saves inside the training batch loop after the optimizer step (`if global_step %
n == 0: torch.save(model.state_dict(), f"ckpt_{global_step}.pt")`) move into
`on_train_batch_end`, which Lightning calls after the batch's optimizer step:
`training_step` itself runs inside `optimizer.step(closure)`, before the update
(`loops/optimization/automatic.py`). A step counter (`global_step = 0` before the
loop, `global_step += 1` in it, read only by these saves and an evaluation every n
steps) becomes `self.global_step`, the optimizer steps done, equal when every batch
steps once; the batch index becomes the hook's `batch_idx`.

The one optimizer's `state_dict()` may be saved too (`self.optimizers().optimizer`
in the hook), and a resume that loads it before the epoch loop
(`if args.resume: ...; optimizer.load_state_dict(ckpt["optimizer"])`) loads it in
`configure_optimizers` right after building the optimizer, from a constructor
argument `optimizer_state=ckpt["optimizer"] if args.resume else None`: Lightning
calls `configure_optimizers` once, in `strategy.setup`, before any training.
The model's own `load_state_dict` and the start epoch stay where they are.
`Trainer(ckpt_path=...)` is not used: it reads only Lightning's own checkpoints.

Declined, with the reason: a save of anything but modules' and the one optimizer's
`state_dict()` (a scheduler's state, a whole pickled module: its train/eval mode
differs after Lightning's validation), an optimizer state loaded with a
scheduler or several optimizers, a per-batch save before the optimizer step, under
accumulation, or reading values the training step computes, a step counter used
elsewhere, a save or check before the validation pass, a comparison with a value
other than what the validation pass returns, a carried value read after the loop
or first set inside it, statements after a `break`.

## Why
`ModelCheckpoint` writes Lightning `.ckpt` files (other names, a dict whose
`state_dict` keys carry the LightningModule's attribute prefix), so
`model.load_state_dict(torch.load("best.pt"))` would break. `ModelCheckpoint`
and `EarlyStopping` also compare Lightning's float32 copy of the logged metric,
and `EarlyStopping` tests `current + min_delta < best` and stops on a non-finite
value (`callbacks/early_stopping.py`, `_evaluate_stopping_criteria`), where the
script tests its float64 `val_loss < best - min_delta`: a different epoch could
count as an improvement. The script's own statements in the hook write the same
files after the same epochs and stop at the same one.

## Example
```python
best = float("inf")
for epoch in range(epochs):
    train(model, train_loader, optimizer)
    val_loss = evaluate(model, val_loader)
    if val_loss < best:
        best = val_loss
        torch.save(model.state_dict(), "best.pt")
```

## Use instead
```python
def on_train_epoch_end(self):
    if self.val_loss < self.best:
        self.best = self.val_loss
        torch.save(self.model.state_dict(), "best.pt")
```

## Fix safety
Safe for what it converts: the same statements run after the same epochs with
the same values.
"""


def build(lowering) -> None:
    program = lowering.program
    _load_optimizer_state(lowering)
    statements = [
        s
        for s in program.passes_in_loop
        if s not in lowering.claimed and _is_checkpointing(s, lowering)  # rates set before training
    ]
    if not statements:
        return
    _check_position(program, statements)
    for statement in statements:
        _check_saves(lowering, statement)
    carried = _carried(program, statements)
    lists = {name for s in statements if (name := _appended(program, s)) is not None}
    extra = {
        name: cst.parse_expression(f"self.{lowering.plan.hparam(name, cst.Name(name), False)}")
        for name in sorted(carried | lists, key=code_order(program))
    }
    extra.update(_optimizer_alias(lowering))
    metric = _metric(lowering, statements, carried)
    if metric is not None:
        extra[metric] = cst.parse_expression(f"self.{metric}")
    if HOOK in lowering.plan.methods:
        raise Decline(CODE, f"another rule already fills {HOOK}", statements[0])
    moved = lowering.move([_stop_instead_of_break(s) for s in statements], set(), extra)
    if moved:  # the loop's blank line before the first statement has no place in the hook
        first = moved[0]
        moved[0] = first.with_changes(leading_lines=[x for x in first.leading_lines if x.comment])
    lowering.plan.add_method(Method(HOOK, "self", moved))
    lowering.claimed.update(statements)
    lowering.note(
        CODE,
        "what the script does after each epoch's validation (saves, early stopping, records) "
        f"moves into {HOOK}",
        statements[0],
    )


def step(statement: cst.BaseStatement, builder) -> bool:
    """``global_step += 1`` goes (Lightning counts the steps); a save after the optimizer step
    moves to ``on_train_batch_end``.

    Lightning runs training_step inside ``optimizer.step(closure)``, before the update
    (``loops/optimization/automatic.py``), and ``on_train_batch_end`` after it
    (``loops/training_epoch_loop.py``, ``advance``): only there are the parameters those
    the script saves.
    """
    lowering = builder.lowering
    counter = step_counter(lowering)
    if counter is not None and _incremented(statement) == counter:
        _check_counter(lowering, counter, statement)
        return True  # its comments go with the Trainer call
    if not is_batch_save(statement, lowering):
        return False
    _check_batch_save(statement, builder, counter)
    extra = {**index_alias(builder.found), **_counter_alias(counter), **_optimizer_alias(lowering)}
    moved = lowering.move([statement], {"batch_idx"}, extra)
    hook = lowering.plan.methods.get(BATCH_HOOK)
    if hook is None:
        hook = Method(BATCH_HOOK, "self, outputs, batch, batch_idx", [])
        lowering.plan.add_method(hook)
        moved[0] = moved[0].with_changes(
            leading_lines=[line for line in moved[0].leading_lines if line.comment]
        )
    hook.body.extend(moved)
    lowering.note(CODE, f"checkpoint saving in the batch loop moves into {BATCH_HOOK}", statement)
    return True


def step_counter(lowering) -> str | None:
    """``global_step`` of ``global_step = 0`` before the epoch loop and ``global_step += 1``
    in an inline training loop, read by a checkpoint save or the evaluation there.

    After the batch's optimizer step it holds the number of batches done, which is
    Lightning's ``self.global_step`` (optimizer steps) when every batch steps.
    """
    program = lowering.program
    train = program.train
    if train.function is not None:
        return None
    for statement in train.body:
        name = _incremented(statement)
        binding = program.bindings.get(name or "")
        if (
            binding is not None
            and _before_loop(program, name)
            and isinstance(binding.value, cst.Integer)
            and int(binding.value.value, 0) == 0
            and any(name in names_in(s) for s in _counter_readers(lowering))
        ):
            return name
    return None


def _counter_readers(lowering) -> list[cst.BaseStatement]:
    """The statements of the batch loop that may read the step counter."""
    program = lowering.program
    guard = [program.eval_guard] if program.eval_in_batch else []
    return [*guard, *(s for s in program.train.body if is_batch_save(s, lowering))]


def _incremented(statement: cst.BaseStatement) -> str | None:
    """``name`` of a statement ``name += 1``."""
    small = only_small(statement)
    if (
        isinstance(small, cst.AugAssign)
        and isinstance(small.operator, cst.AddAssign)
        and isinstance(small.target, cst.Name)
        and isinstance(small.value, cst.Integer)
        and int(small.value.value, 0) == 1
    ):
        return small.target.value
    return None


def _check_counter(lowering, counter: str, increment: cst.BaseStatement) -> None:
    """The counter is Lightning's ``global_step`` only where the batch's saves and evaluation
    read it: after its increment, every batch stepping once, nowhere else."""
    program = lowering.program
    body = program.train.body
    readers = [s for s in _counter_readers(lowering) if body.index(s) > body.index(increment)]
    uses = _reads(program.epoch.node, counter)
    allowed = sum(_reads(s, counter) for s in [increment, *readers])
    after = program.block[program.block.index(program.epoch.node) + 1 :]
    if uses != allowed or any(counter in names_in(s) for s in after):
        raise Decline(
            CODE,
            f"`{counter}` counts the training steps and is used elsewhere than in the batch "
            "loop's checkpoint saves and evaluation after its increment; lightify replaces it "
            "with Lightning's own count (self.global_step) only there",
            increment,
        )
    _check_every_batch_steps(lowering, increment)
    lowering.plan.removable.add(program.bindings[counter].line)  # Lightning counts now


def _reads(node: cst.CSTNode, name: str) -> int:
    """How many times ``name`` appears under ``node`` as a bare name (attributes aside)."""
    nodes = list(walk(node))
    attributes = {id(n.attr) for n in nodes if isinstance(n, cst.Attribute)}
    return sum(
        isinstance(n, cst.Name) and n.value == name and id(n) not in attributes for n in nodes
    )


def _check_every_batch_steps(lowering, statement: cst.BaseStatement) -> None:
    """Per-batch saves and step counts assume one optimizer step per batch, after it."""
    plan = lowering.plan
    if plan.manual_optimization or "accumulate_grad_batches" in plan.trainer_kwargs:
        raise Decline(
            CODE,
            "the training loop does not step the optimizer after every batch; lightify "
            "converts per-step checkpoints and step counters of one step per batch",
            statement,
        )


def _counter_alias(counter: str | None) -> dict[str, cst.BaseExpression]:
    return {} if counter is None else {counter: cst.parse_expression("self.global_step")}


def is_batch_save(statement: cst.BaseStatement, lowering) -> bool:
    """A statement of the batch loop that only saves: ``torch.save(...)``, alone or under an
    ``if`` of its own, with prints."""
    inner = [statement]
    if isinstance(statement, cst.If) and statement.orelse is None:
        inner = list(statement.body.body)
    saves = [s for s in inner if call_of(s) is not None and _saves(s, lowering)]
    return bool(saves) and all(s in saves or is_print(s) for s in inner)


def _check_batch_save(statement: cst.BaseStatement, builder, counter: str | None) -> None:
    """A save in the batch loop: after the optimizer step, of modules' state, of values the
    hook has (the epoch, the batch index, the step count)."""
    lowering = builder.lowering
    if builder.phase != "stepped":
        raise Decline(
            CODE,
            "this save runs before the batch's optimizer step; lightify moves saves after "
            f"it into {BATCH_HOOK}",
            statement,
        )
    _check_every_batch_steps(lowering, statement)
    _check_saves(lowering, statement)
    found = builder.found
    computed = bound_names([found.loop]) - {found.index, counter}
    read = sorted(names_in(statement) & computed)
    if read:
        raise Decline(
            CODE,
            f"this save reads `{read[0]}`, computed in the training loop; {BATCH_HOOK} sees "
            "the epoch, the batch index and the step count only",
            statement,
        )


def _is_checkpointing(statement: cst.BaseStatement, lowering) -> bool:
    """A save, a ``break``, or a statement updating a value kept from epoch to epoch."""
    program = lowering.program
    if _is_pass(program, statement):
        return False
    found = method_call(statement)
    receiver = program.bindings.get(found[0]) if found is not None else None
    if receiver is not None and receiver.kind is Kind.SCHEDULER:
        return False
    if _saves(statement, lowering) or _breaks(statement) or _appended(program, statement):
        return True
    if contains_lr(statement, lowering):
        return True  # learning rates set after validation: a change on a plateau
    return any(
        _before_loop(program, name) for name in bound_names([statement], own_scope_only=True)
    )


def _appended(program, statement: cst.BaseStatement) -> str | None:
    """``history`` of ``history.append(value)`` on a list made before the loop: the module
    appends to the script's own list, which the script still reads after ``fit``. The value
    calls nothing (``history.append(evaluate(...))`` runs a pass of its own)."""
    found = method_call(statement)
    binding = program.bindings.get(found[0]) if found is not None else None
    if binding is None or found[1] != "append" or not isinstance(binding.value, cst.List):
        return None
    calls = [node for node in walk(found[2]) if isinstance(node, cst.Call)]
    return found[0] if len(calls) == 1 and _before_loop(program, found[0]) else None


def _is_pass(program, statement: cst.BaseStatement) -> bool:
    validation = program.validation
    if validation is None:
        return program.train.invoked_by(statement)
    generated = not validation.body and bound_names([statement], own_scope_only=True) & set(
        validation.accumulators
    )
    return program.train.invoked_by(statement) or validation.invoked_by(statement) or generated


def _saves(node: cst.CSTNode, lowering) -> list[cst.Call]:
    """The ``torch.save(...)`` calls under a node."""
    qualify = lowering.index.imports.qualify
    found: list[cst.Call] = []

    class _Saves(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            if qualify(call.func) in {"torch.save", "torch.serialization.save"}:
                found.append(call)

    node.visit(_Saves())
    return found


def _breaks(node: cst.CSTNode) -> bool:
    """Whether a statement of the epoch loop breaks out of it (nested loops aside)."""

    class _Break(cst.CSTVisitor):
        found = False

        def visit_For(self, node: cst.For) -> bool:
            return False

        def visit_While(self, node: cst.While) -> bool:
            return False

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return False

        def visit_Break(self, node: cst.Break) -> None:
            _Break.found = True

    node.visit(_Break())
    return _Break.found


def _stop_instead_of_break(statement: cst.BaseStatement) -> cst.BaseStatement:
    """``break`` → ``self.trainer.should_stop = True``: ``fit`` ends after this epoch."""
    stop = cst.parse_statement("self.trainer.should_stop = True").body[0]  # type: ignore[attr-defined]

    class _Stop(cst.CSTTransformer):
        def visit_For(self, node: cst.For) -> bool:
            return False

        def visit_While(self, node: cst.While) -> bool:
            return False

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return False

        def leave_Break(self, original_node: cst.Break, updated_node: cst.Break):
            return stop.with_changes(semicolon=updated_node.semicolon)

    return statement.visit(_Stop())


def _before_loop(program, name: str) -> bool:
    """Whether ``name`` is set in the program's block before the epoch loop (or a parameter)."""
    binding = program.bindings.get(name)
    if binding is None:
        return False
    if binding.line is program.owner:
        return True
    block = program.block
    return binding.line in block and block.index(binding.line) < block.index(program.epoch.node)


def _check_position(program, statements: list[cst.BaseStatement]) -> None:
    """Lightning runs on_train_epoch_end after training and validation: so must the script."""
    loop = program.passes_in_loop
    passes = [i for i, s in enumerate(loop) if _is_pass(program, s)]
    for statement in statements:
        if loop.index(statement) < max(passes):
            raise Decline(
                CODE,
                "this statement runs before the epoch's training or validation pass ends; "
                f"Lightning's {HOOK} runs after both, so lightify converts checkpointing "
                "and early stopping placed after the passes",
                statement,
            )
    stops = [s for s in statements if _breaks(s)]
    if stops and loop.index(stops[-1]) != len(loop) - 1:
        raise Decline(
            CODE,
            "statements follow this `break` in the epoch loop; lightify converts early "
            "stopping as the epoch's last statement (self.trainer.should_stop = True ends "
            "fit after the epoch, it does not skip the rest of it)",
            stops[-1],
        )


def _check_saves(lowering, statement: cst.BaseStatement) -> None:
    """Only modules' ``state_dict()`` is saved: the rest lives elsewhere under Lightning."""
    bindings = lowering.program.bindings
    for call in _saves(statement, lowering):
        saved = call.args[0].value if call.args else call
        allowed = _state_dict_receivers(saved)
        for name in sorted(names_in(saved)):
            binding = bindings.get(name)
            if binding is None or binding.kind is Kind.VALUE or binding.kind is Kind.CONFIG:
                continue
            if name in allowed and (
                binding.kind is Kind.MODULE or name in _optimizer_alias(lowering)
            ):
                continue
            raise Decline(
                CODE,
                f"`{code(call)}` saves `{name}` itself or its state; lightify carries saves of "
                "modules' and the one optimizer's state_dict() only (a scheduler steps at "
                "another time under Lightning, and a pickled module's train/eval mode differs "
                "after Lightning's validation)",
                statement,
            )


def _optimizer_alias(lowering) -> dict[str, cst.BaseExpression]:
    """The one optimizer of automatic optimization is ``self.optimizers().optimizer`` in a hook:
    after the batch's or the epoch's last optimizer step, as the script saves it."""
    optimizers = lowering.program.optimizers()
    if len(optimizers) != 1 or lowering.plan.manual_optimization:
        return {}
    return {optimizers[0].name: cst.parse_expression("self.optimizers().optimizer")}


def _load_optimizer_state(lowering) -> None:
    """``optimizer.load_state_dict(state)`` before the epoch loop (a resume, under ``if
    args.resume:`` or not) → the same call in configure_optimizers, right after the optimizer
    is built, with ``state`` a constructor argument.

    Lightning calls configure_optimizers once, in ``strategy.setup`` before any training
    (``trainer/trainer.py``, ``_run``); ``Trainer(ckpt_path=...)`` would read only Lightning's
    own checkpoints, so the script's file and format stay as they are.
    """
    program = lowering.program
    loads = [found for s in _before_epoch(program) if (found := _optimizer_load(program, s))]
    if not loads:
        return
    statement, condition, state = loads[0]
    if len(loads) > 1 or not _optimizer_alias(lowering) or _schedulers(program):
        raise Decline(
            CODE,
            "the script loads an optimizer's state more than once, with several optimizers, "
            "under manual optimization or with a scheduler; lightify loads the one optimizer's "
            "state in configure_optimizers only without a scheduler",
            statement,
        )
    value = state if condition is None else cst.IfExp(condition, state, cst.Name("None"))
    changed = sorted(changed_names(_after_load(program, statement)) & names_in(value))
    if changed:
        raise Decline(
            CODE,
            f"`{changed[0]}` may change between the optimizer's load_state_dict and the "
            "training loop; lightify reads the state where the LightningModule is created, so "
            "it leaves the loop as it is (load the state right before the loop)",
            statement,
        )
    name = lowering.plan.hparam("optimizer_state", value, saved=False)
    optimizer = program.optimizers()[0].name
    load = f"{optimizer}.load_state_dict(self.{name})"
    if condition is not None:
        load = f"if self.{name} is not None:\n    {load}\n"
    method = lowering.plan.methods["configure_optimizers"]
    method.body.insert(len(method.body) - 1, cst.parse_statement(load))
    lowering.plan.removed.add(statement)
    lowering.note(CODE, "the optimizer's state is loaded in configure_optimizers", statement)


def _after_load(program, load: cst.BaseStatement) -> list[cst.BaseStatement]:
    """What runs between an optimizer state load before the epoch loop and the loop."""
    block = program.block
    epoch = block.index(program.epoch.node)
    if load in block:
        return block[block.index(load) + 1 : epoch]
    parent = next(s for s in block[:epoch] if isinstance(s, cst.If) and load in s.body.body)
    rest = list(parent.body.body)
    return rest[rest.index(load) + 1 :] + block[block.index(parent) + 1 : epoch]


def _before_epoch(program) -> list[cst.BaseStatement]:
    """The statements of the program's block before the epoch loop, and those of its
    ``if`` blocks (without ``else``)."""
    found = []
    for statement in program.block[: program.block.index(program.epoch.node)]:
        found.append(statement)
        if isinstance(statement, cst.If) and statement.orelse is None:
            found.extend(statement.body.body)
    return found


def _optimizer_load(
    program, statement: cst.BaseStatement
) -> tuple[cst.BaseStatement, cst.BaseExpression | None, cst.BaseExpression] | None:
    """(statement, its ``if`` condition, the state) of ``optimizer.load_state_dict(state)``."""
    found = method_call(statement)
    if found is None or found[1] != "load_state_dict" or len(found[2].args) != 1:
        return None
    binding = program.bindings.get(found[0])
    if binding is None or binding.kind is not Kind.OPTIMIZER:
        return None
    parent = next(
        (s for s in program.block if isinstance(s, cst.If) and statement in s.body.body), None
    )
    return statement, None if parent is None else parent.test, found[2].args[0].value


def _schedulers(program) -> list[str]:
    return [b.name for b in program.bindings.values() if b.kind is Kind.SCHEDULER]


def _state_dict_receivers(node: cst.CSTNode) -> set[str]:
    """Names ``m`` of every ``m.state_dict()`` under a node, and only used that way."""
    receivers: set[str] = set()
    other: set[str] = set()

    class _Uses(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> bool:
            func = call.func
            if (
                isinstance(func, cst.Attribute)
                and func.attr.value == "state_dict"
                and isinstance(func.value, cst.Name)
                and not call.args
            ):
                receivers.add(func.value.value)
                return False
            return True

        def visit_Name(self, name: cst.Name) -> None:
            other.add(name.value)

        def visit_Attribute(self, attribute: cst.Attribute) -> bool:
            attribute.value.visit(self)
            return False

    node.visit(_Uses())
    return receivers - other


def _carried(program, statements: list[cst.BaseStatement]) -> set[str]:
    """Names the statements update from epoch to epoch: set before the loop, unread after it."""
    temporary = group_targets(statements)  # `for group in optimizer.param_groups:`
    assigned = bound_names(list(statements), own_scope_only=True) - temporary
    after = program.block[program.block.index(program.epoch.node) + 1 :]
    read_after = set().union(*(names_in(s) for s in after)) if after else set()
    for statement in statements:
        for name in sorted(bound_names([statement], own_scope_only=True) - temporary):
            if not _before_loop(program, name):
                raise Decline(
                    CODE,
                    f"`{name}` is first set inside the epoch loop; lightify keeps values "
                    "carried from epoch to epoch as attributes initialised from their value "
                    "before the loop",
                    statement,
                )
            if name in read_after:
                raise Decline(
                    CODE,
                    f"`{name}` is read after the epoch loop, but in the converted script it "
                    f"would live on the LightningModule (`lit_module.{name}`) and the script's "
                    "variable would keep its value from before the loop",
                    statement,
                )
    return assigned


def _metric(lowering, statements: list[cst.BaseStatement], carried: set[str]) -> str | None:
    """The one validation value the statements read; it must stay the script's exact float."""
    program = lowering.program
    in_loop = bound_names(program.epoch.items) - carried - {program.epoch.epoch_var}
    in_loop -= group_targets(statements)
    read = sorted(set().union(*(names_in(s) for s in statements)) & in_loop)
    if not read:
        return None
    validation = program.validation
    results = set(validation.result_names) if validation is not None else set()
    others = [name for name in read if name not in results]
    if others or len(read) > 1:
        name = others[0] if others else read[1]
        raise Decline(
            CODE,
            f"this reads `{name}`, computed in the epoch loop; lightify carries one value "
            "the validation pass returns into the hook, with its exact Python-float value",
            statements[0],
        )
    if program.eval_guard is not None:
        raise Decline(
            CODE,
            f"validation runs only when `{code(program.eval_guard.test)}` but this reads "
            f"`{read[0]}` every epoch; lightify leaves the loop as it is",
            statements[0],
        )
    if lowering.decision_metric not in (None, read[0]):
        raise Decline(
            CODE,
            f"the scheduler decides on `{lowering.decision_metric}` and this on `{read[0]}`; "
            "lightify keeps one exact validation value",
            statements[0],
        )
    lowering.decision_metric = read[0]
    return read[0]


EXAMPLES = [
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(4):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    if (epoch + 1) % 2 == 0:
        torch.save(model.state_dict(), f"epoch{epoch}.pt")
""",
        after="""\
import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class LitModel(L.LightningModule):
    def __init__(self, model):
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("train_loss", loss)
        return loss

    def on_train_epoch_end(self):
        if (self.current_epoch + 1) % 2 == 0:
            torch.save(self.model.state_dict(), f"epoch{self.current_epoch}.pt")

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
trainer = L.Trainer(max_epochs=4, accelerator="cpu", devices=1)
trainer.fit(LitModel(model), loader)
""",
        codes=("LFY400", "LFY407"),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
val_loader = DataLoader(data, batch_size=32)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
best = float("inf")
bad = 0
for epoch in range(20):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()
    total = 0.0
    with torch.no_grad():
        for x, y in val_loader:
            total += F.cross_entropy(model(x), y, reduction="sum").item()
    val_loss = total / len(val_loader.dataset)
    if val_loss < best:
        best = val_loss
        bad = 0
        torch.save(model.state_dict(), "best.pt")
    else:
        bad += 1
        if bad >= 3:
            break
""",
        after="""\
import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class LitModel(L.LightningModule):
    def __init__(self, model, best, bad):
        super().__init__()
        self.save_hyperparameters(ignore=["model", "bad", "best"])
        self.model = model
        self.best = best
        self.bad = bad

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("train_loss", loss)
        return loss

    def on_validation_epoch_start(self):
        self.total = 0.0

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.total += F.cross_entropy(self.model(x), y, reduction="sum").item()

    def on_validation_epoch_end(self):
        val_loss = self.total / len(self.trainer.val_dataloaders.dataset)
        self.val_loss = val_loss
        self.log("val_loss", self.val_loss, prog_bar=True)

    def on_train_epoch_end(self):
        if self.val_loss < self.best:
            self.best = self.val_loss
            self.bad = 0
            torch.save(self.model.state_dict(), "best.pt")
        else:
            self.bad += 1
            if self.bad >= 3:
                self.trainer.should_stop = True

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
val_loader = DataLoader(data, batch_size=32)
model = nn.Linear(4, 2)
best = float("inf")
bad = 0
trainer = L.Trainer(max_epochs=20, accelerator="cpu", devices=1)
trainer.fit(LitModel(model, best=best, bad=bad), loader, val_loader)
model.eval()
""",
        codes=("LFY400", "LFY407"),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
val_loader = DataLoader(data, batch_size=32)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
for epoch in range(4):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    scheduler.step()
    torch.save({"model": model.state_dict(), "scheduler": scheduler.state_dict()}, "last.pt")
""",
        after=None,
        codes=("LFY407",),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
val_loader = DataLoader(data, batch_size=32)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
best = float("inf")
for epoch in range(4):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()
    total = 0.0
    with torch.no_grad():
        for x, y in val_loader:
            total += F.cross_entropy(model(x), y, reduction="sum").item()
    val_loss = total / len(val_loader.dataset)
    if val_loss < best:
        best = val_loss
        torch.save(model.state_dict(), "best.pt")
print(f"best validation loss {best:.4f}")
""",
        after=None,
        codes=("LFY407",),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
val_loader = DataLoader(data, batch_size=32)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(4):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    torch.save(model.state_dict(), "last.pt")
    model.eval()
    total = 0.0
    with torch.no_grad():
        for x, y in val_loader:
            total += F.cross_entropy(model(x), y, reduction="sum").item()
    val_loss = total / len(val_loader.dataset)
    print(val_loss)
""",
        after=None,
        codes=("LFY407",),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
resume = ""
if resume:
    ckpt = torch.load(resume)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
step = 0
for epoch in range(4):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        step += 1
        if step % 3 == 0:
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                },
                f"step{step}.pt",
            )
""",
        after="""\
import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class LitModel(L.LightningModule):
    def __init__(self, model, optimizer_state):
        super().__init__()
        self.save_hyperparameters(ignore=["model", "optimizer_state"])
        self.model = model
        self.optimizer_state = optimizer_state

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("train_loss", loss)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self.global_step % 3 == 0:
            torch.save(
                {
                    "model": self.model.state_dict(),
                    "optimizer": self.optimizers().optimizer.state_dict(),
                },
                f"step{self.global_step}.pt",
            )

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9)
        if self.optimizer_state is not None:
            optimizer.load_state_dict(self.optimizer_state)
        return optimizer


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
resume = ""
if resume:
    ckpt = torch.load(resume)
    model.load_state_dict(ckpt["model"])
trainer = L.Trainer(max_epochs=4, accelerator="cpu", devices=1)
lit_module = LitModel(model, optimizer_state=ckpt["optimizer"] if resume else None)
trainer.fit(lit_module, loader)
""",
        codes=("LFY400", "LFY407"),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
resume = ""
if resume:
    ckpt = torch.load(resume)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    del ckpt  # the state is read where the LightningModule is made: it must still be there
for epoch in range(4):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
""",
        after=None,
        codes=("LFY407",),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
step = 0
for epoch in range(4):
    for x, y in loader:
        step += 1
        if step % 3 == 0:
            torch.save(model.state_dict(), f"step{step}.pt")
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
""",
        after=None,
        codes=("LFY407",),
    ),
]
