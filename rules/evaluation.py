"""LFY402: evaluation passes become ``validation_step`` (every epoch) and ``test_step`` (after)."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Accumulator, Kind, Pass
from lightify.analyze.nodes import (
    assigned_names,
    code,
    dotted_name,
    leading_docstring,
    mode_call,
    names_in,
    only_small,
    operand,
)
from lightify.into_module import bound_names
from lightify.plan import Method
from lightify.rule import Example
from lightify.rules.carried_state import carry
from lightify.rules.checkpoints import is_batch_save, step_counter
from lightify.rules.print_logging import is_bar_statement, is_print, without_bar_displays
from lightify.rules.training_step import unpack_batch

CODE = "LFY402"
SUMMARY = "Evaluation loops become validation_step / test_step with logged metrics"
ORDER = 40  # build order: see lightify.lower
DOC = """\
## What it does
An evaluation pass that runs every epoch becomes `validation_step`; one that runs
once after training becomes `test_step` and `trainer.test(lit, dataloaders=...)`.
Sum-then-divide metrics (`total += loss.item() * n` ... `/ len(loader.dataset)`)
become `self.log(..., batch_size=n, prog_bar=True)`, Lightning's batch-weighted
epoch mean. A value that drives a decision (ReduceLROnPlateau) keeps the
script's own Python-float accumulation and is logged at the end of the epoch.

Evaluation under `if epoch % k == 0:` becomes `Trainer(check_val_every_n_epoch=k)`
when the condition selects exactly the epochs Lightning validates: after epoch
`current_epoch` when `(current_epoch + 1) % k == 0`, and never additionally on the
last epoch (`_should_check_val_epoch` in `loops/training_epoch_loop.py`). With
`for epoch in range(1, n + 1)` that is `epoch % k == 0`; with `range(n)` it is
`(epoch + 1) % k == 0`. After `fit`, the model goes back to eval mode only if the
script's last epoch evaluated (`n % k == 0`).

Declined, with the reason: another condition (`epoch % k == 0` over `range(n)`
evaluates after the first epoch, Lightning after the k-th; `or epoch == n`; a
flag), a range whose start is not a number, other statements under the
condition, a ReduceLROnPlateau that steps every epoch on a value computed every
k epochs, and an evaluation that leaves the model in eval mode when the training
pass never calls `model.train()` (Lightning restores train mode after validating).
An evaluation without `model.eval()` keeps training mode (the mode hooks do nothing)
and gets `num_sanity_val_steps=0`: in training mode the sanity check's batches would
update batch-norm statistics the script never touched.

Evaluation inside the training batch loop, after the optimizer step, under
`if (batch_idx + 1) % n == 0:` becomes `Trainer(val_check_interval=n)`: Lightning
validates after batch `batch_idx` when `(batch_idx + 1) % n == 0`, after its
optimizer step and `on_train_batch_end`, and not additionally at the end of an
epoch (`_should_check_val_fx`). It raises when n exceeds the batches of an epoch
(`fit_loop.py`, `setup_data`), where the script never evaluates, so
`limit_val_batches=1.0 if n <= len(train_loader) else 0` switches validation off
exactly then. A step counter (`global_step = 0` before the loop, `global_step += 1`
in it, `if global_step % n == 0:`) adds `check_val_every_n_epoch=None`, which counts
the batches of every epoch. Declined: the evaluation leaving the model in eval mode
(no `model.train()` after it or at the top of the batch loop), statements after it
in the batch (checkpoint saves aside), other conditions, accumulation, a dry run.

## Why
Every `iter(loader)` draws from the global random generator, so the number and
order of evaluation passes must stay the same; and a decision must see the same
bits the script computed, not a float32 re-computation. Train and eval mode
decide what dropout and batch norm do in the next training epoch.

## Example
```python
@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    total = 0.0
    for x, y in loader:
        total += F.cross_entropy(model(x), y, reduction="sum").item()
    print(total / len(loader.dataset))
```

## Use instead
```python
def validation_step(self, batch, batch_idx):
    x, y = batch
    self.log("val_loss", F.cross_entropy(self.model(x), y, reduction="sum") / len(x),
             batch_size=len(x), prog_bar=True)
```

## Fix safety
Safe for what it converts. Declined when a pass does more than compute, accumulate,
print and return metrics, or runs on epochs Lightning would not validate on.
"""

PREFIXES = (
    "val_",
    "valid_",
    "validation_",
    "test_",
    "eval_",
    "total_",
    "running_",
    "epoch_",
    "sum_",
)
STAGE_WORDS = {"val", "valid", "validation", "test", "eval", "evaluation"}
RENAMES = {"correct": "acc", "n_correct": "acc", "num_correct": "acc", "accuracy": "acc"}


@dataclass(frozen=True)
class Metric:
    accumulator: str
    name: str
    per: str  # "sample", "batch" or "sum"
    denominator: cst.BaseExpression | None


def check(lowering) -> None:
    """``if epoch % k == 0:`` around the validation pass → ``check_val_every_n_epoch=k``."""
    program = lowering.program
    if program.eval_in_batch:
        _check_in_batch(lowering)
        return
    _check_mode_restored(program)
    guard = program.eval_guard
    if guard is None:
        return
    for statement in program.guarded:
        mode_switch = mode_call(statement) is not None
        if not (program.validation.invoked_by(statement) or mode_switch or is_print(statement)):
            raise Decline(
                CODE,
                f"this statement runs only when `{code(guard.test)}`; lightify moves only the "
                "evaluation, mode switches and prints of its results out of such a condition",
                statement,
            )
    every = _cadence(program, guard)
    if not (isinstance(every, cst.Integer) and int(every.value, 0) == 1):
        lowering.plan.trainer_kwargs["check_val_every_n_epoch"] = every


def _check_mode_restored(program) -> None:
    """The script must switch back to train mode after evaluating, as Lightning does.

    Lightning restores the modules' modes after validation (``on_validation_model_train``);
    a script whose training pass never calls ``model.train()`` trains on in eval mode.
    """
    validation = program.validation
    if validation is None or not validation.calls_eval:
        return
    statements = program.passes_in_loop
    trained = next(i for i, s in enumerate(statements) if program.train.invoked_by(s))
    evaluated = [i for i, s in enumerate(statements) if validation.invoked_by(s)]
    if evaluated[-1] < trained:
        between = statements[evaluated[-1] + 1 : trained]
    else:
        between = statements[evaluated[-1] + 1 :] + statements[:trained]
    if not any(mode_call(s) == "train" for s in [*between, *program.train.before]):
        raise Decline(
            CODE,
            "the evaluation leaves the model in eval mode and nothing calls model.train() "
            "before the next training pass; Lightning switches back to train mode after "
            "validation, so dropout and batch norm would train differently",
            statements[evaluated[0]],
        )


def _cadence(program, guard: cst.If) -> cst.BaseExpression:
    """The k of a condition that selects exactly the epochs Lightning validates.

    Lightning validates after epoch ``current_epoch`` when ``(current_epoch + 1) % k == 0``
    and at no other epoch, the last one included (``_should_check_val_epoch`` in
    ``loops/training_epoch_loop.py``). The script's epoch variable is ``start + current_epoch``.
    """
    epoch = program.epoch
    test = code(guard.test)
    parsed = _modulo_test(guard.test, epoch.epoch_var)
    if parsed is None or names_in(parsed[1]) & bound_names(epoch.items):
        raise Decline(
            CODE,
            f"validation runs under `if {test}:`; lightify maps only `epoch % k == 0`-style "
            "conditions with a fixed k to Trainer(check_val_every_n_epoch=k), which validates "
            "after every k-th epoch and never additionally on the last",
            guard,
        )
    offset, every, remainder = parsed
    start = 0 if epoch.start is None else _integer(epoch.start)
    if start is None:
        raise Decline(
            CODE,
            f"the epoch range starts at `{code(epoch.start)}`, so lightify cannot tell whether "
            f"`{test}` selects the epochs Trainer(check_val_every_n_epoch=...) validates",
            guard,
        )
    shift = start + offset - 1  # the script validates when (current_epoch + 1 + shift) % k == b
    if not _same_cadence(shift, every, remainder):
        raise Decline(
            CODE,
            f"`{test}` selects other epochs than Trainer(check_val_every_n_epoch="
            f"{code(every)}), which validates when (current_epoch + 1) % {code(every)} == 0; "
            f"over this epoch range that is `{_suggested(epoch.epoch_var, 1 - start, every)}`",
            guard,
        )
    return every


def _same_cadence(shift: int, every: cst.BaseExpression, remainder: int) -> bool:
    """Whether ``(i + 1 + shift) % k == remainder`` holds exactly when ``(i + 1) % k == 0``."""
    k = _integer(every)
    if k is not None:
        return k > 0 and 0 <= remainder < k and (remainder - shift) % k == 0
    return remainder == 0 and shift == 0


def _check_in_batch(lowering) -> None:
    """``if (batch_idx + 1) % n == 0: evaluate(...)`` in the batch loop → ``val_check_interval=n``.

    Lightning validates after training batch ``batch_idx`` when ``(batch_idx + 1) % n == 0``
    (``_should_check_val_fx`` in ``loops/training_epoch_loop.py``), after that batch's
    optimizer step and ``on_train_batch_end``, and at no other time (not at the end of an
    epoch); with ``check_val_every_n_epoch=None`` it counts the batches of every epoch, as
    a step counter does. ``fit_loop.py`` (``setup_data``) raises when n exceeds the batches
    of an epoch and validation is on: the script then never evaluates, so validation is
    switched off (``limit_val_batches=0``) in that case.
    """
    program = lowering.program
    guard = program.eval_guard
    _check_batch_guarded(lowering)
    train = program.train
    counter = step_counter(lowering)
    test = code(guard.test)
    parsed = _modulo_test(guard.test, train.index)
    start = 0 if train.index_start is None else _integer(train.index_start)
    counted = parsed is None and counter is not None
    if counted:  # the counter holds the number of batches done, batch_idx + 1 over all epochs
        parsed, start = _modulo_test(guard.test, counter), 1
    if parsed is None or start is None or names_in(parsed[1]) & bound_names(program.epoch.items):
        raise Decline(
            CODE,
            f"the training loop evaluates under `if {test}:`; lightify maps `(batch_idx + 1) "
            "% n == 0` (or a step counter counting from 0, `global_step % n == 0`) with a fixed "
            "n to Trainer(val_check_interval=n), which validates after every n-th batch",
            guard,
        )
    offset, every, remainder = parsed
    if not _same_cadence(start + offset - 1, every, remainder):
        raise Decline(
            CODE,
            f"`{test}` selects other batches than Trainer(val_check_interval={code(every)}), "
            f"which validates after batch_idx when (batch_idx + 1) % {code(every)} == 0",
            guard,
        )
    kwargs = lowering.plan.trainer_kwargs
    kwargs["val_check_interval"] = every
    if counted:
        kwargs["check_val_every_n_epoch"] = cst.Name("None")
    else:
        kwargs["limit_val_batches"] = cst.parse_expression(
            f"1.0 if {operand(every)} <= len({train.loader}) else 0"
        )


def _check_batch_guarded(lowering) -> None:
    """Under the batch loop's condition: the evaluation, prints of its results and a
    ``model.train()`` after it that Lightning's restored train mode stands for."""
    program = lowering.program
    validation = program.validation
    results = set(validation.result_names)
    evaluated = restored = False
    for statement in program.guarded:
        if validation.invoked_by(statement):
            evaluated = True
        elif evaluated and mode_call(statement) == "train":
            restored = True
        elif not (is_print(statement) and names_in(statement) & results):
            raise Decline(
                CODE,
                f"this statement runs only when `{code(program.eval_guard.test)}` in the "
                "training loop; lightify moves only the evaluation, prints of its results and "
                "a model.train() after it out of such a condition",
                statement,
            )
    first = program.train.body[0] if program.train.body else None
    if validation.calls_eval and not restored and mode_call(first) != "train":
        raise Decline(
            CODE,
            "the evaluation leaves the model in eval mode for the rest of the epoch; "
            "Lightning switches back to train mode after validation, so dropout and batch "
            "norm would train differently (call model.train() after evaluating)",
            program.eval_guard,
        )


def _modulo_test(
    test: cst.BaseExpression, epoch_var: str | None
) -> tuple[int, cst.BaseExpression, int] | None:
    """``(epoch + a) % k == b`` (or ``not (epoch + a) % k``) → (a, k, b)."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        modulo, remainder = test.expression, 0
    elif (
        isinstance(test, cst.Comparison)
        and len(test.comparisons) == 1
        and isinstance(test.comparisons[0].operator, cst.Equal)
    ):
        left, right = test.left, test.comparisons[0].comparator
        if _integer(left) is not None:
            left, right = right, left
        modulo, remainder = left, _integer(right)
        if remainder is None:
            return None
    else:
        return None
    if not (isinstance(modulo, cst.BinaryOperation) and isinstance(modulo.operator, cst.Modulo)):
        return None
    offset = _epoch_offset(modulo.left, epoch_var)
    if offset is None or epoch_var in names_in(modulo.right):
        return None
    return offset, modulo.right, remainder


def _epoch_offset(node: cst.BaseExpression, epoch_var: str | None) -> int | None:
    """``epoch`` → 0, ``epoch + a`` / ``a + epoch`` → a, ``epoch - a`` → -a."""
    if epoch_var is None:
        return None
    if isinstance(node, cst.Name):
        return 0 if node.value == epoch_var else None
    if not isinstance(node, cst.BinaryOperation):
        return None
    sign = {cst.Add: 1, cst.Subtract: -1}.get(type(node.operator))
    for name, amount in ((node.left, node.right), (node.right, node.left)):
        value = _integer(amount)
        if sign is not None and dotted_name(name) == epoch_var and value is not None:
            if sign < 0 and name is node.right:
                return None  # `a - epoch` counts down
            return sign * value
    return None


def _integer(node: cst.BaseExpression | None) -> int | None:
    if isinstance(node, cst.Integer):
        return int(node.value, 0)
    return None


def _suggested(epoch: str, offset: int, every: cst.BaseExpression) -> str:
    """The condition that matches Lightning's epochs, for the decline message."""
    k = code(every)
    k = f"({k})" if isinstance(every, cst.BinaryOperation) else k
    if offset == 0:
        return f"{epoch} % {k} == 0"
    sign = "+" if offset > 0 else "-"
    return f"({epoch} {sign} {abs(offset)}) % {k} == 0"


def step(statement: cst.BaseStatement, builder) -> bool:
    """The batch loop's ``if (batch_idx + 1) % n == 0: evaluate(...)`` goes (``check`` mapped
    it to ``val_check_interval``); any other evaluation between batches is declined."""
    program = builder.lowering.program
    if program.eval_in_batch and statement is program.eval_guard:
        _claim_batch_guard(statement, builder)
        return True
    if _iterates_loader(statement, builder.lowering):
        raise Decline(
            CODE,
            "the training loop evaluates between batches outside an `if (batch_idx + 1) % n "
            "== 0:` block; lightify converts evaluation every n batches "
            "(Trainer(val_check_interval=n)) or between epochs",
            statement,
        )
    return False


def _claim_batch_guard(guard: cst.If, builder) -> None:
    """Lightning validates after the batch's optimizer step, its training_step and
    ``on_train_batch_end``: the evaluation must end the batch (checkpoint saves aside)."""
    lowering = builder.lowering
    plan = lowering.plan
    if builder.phase != "stepped" or plan.manual_optimization:
        raise Decline(
            CODE,
            "the training loop evaluates before this batch's optimizer step; Lightning "
            "validates after it",
            guard,
        )
    if "accumulate_grad_batches" in plan.trainer_kwargs:
        raise Decline(
            CODE,
            "the training loop accumulates gradients and evaluates every few batches; "
            "lightify leaves the loop as it is",
            guard,
        )
    body = builder.found.body
    for later in body[body.index(guard) + 1 :]:
        if is_batch_save(later, lowering) and not lowering.program.validation.calls_eval:
            raise Decline(
                CODE,
                "this save follows an evaluation in training mode, which changes batch-norm "
                "statistics; Lightning saves in on_train_batch_end, before it validates, so "
                "the file would hold other statistics",
                later,
            )
        if not is_batch_save(later, lowering):
            raise Decline(
                CODE,
                "this statement runs after the evaluation in the training loop; Lightning "
                "validates after the whole training step, so lightify converts an evaluation "
                "that ends the batch (checkpoint saves aside)",
                later,
            )
    for statement in lowering.program.guarded:
        if is_print(statement):
            lowering.note(
                "LFY410", "print of evaluation metrics is replaced by self.log", statement
            )
    # not consumed: the condition's comments go with the Trainer call and its val_check_interval


def _iterates_loader(statement: cst.BaseStatement, lowering) -> bool:
    """A loop over a DataLoader, or a call of a function of the script given one."""
    bindings = lowering.program.bindings
    functions = lowering.index.functions

    def is_loader(node: cst.CSTNode) -> bool:
        while isinstance(node, cst.Call) and node.args:  # enumerate(...), tqdm(...)
            node = node.args[0].value
        binding = bindings.get(dotted_name(node) or "")
        return binding is not None and binding.kind is Kind.LOADER

    class _Finder(cst.CSTVisitor):
        found = False

        def visit_For(self, node: cst.For) -> None:
            _Finder.found |= is_loader(node.iter)

        def visit_Call(self, node: cst.Call) -> None:
            called = isinstance(node.func, cst.Name) and node.func.value in functions
            _Finder.found |= called and any(is_loader(arg.value) for arg in node.args)

    statement.visit(_Finder())
    return _Finder.found


def build(lowering) -> None:
    program = lowering.program
    kwargs = lowering.plan.trainer_kwargs
    if "limit_val_batches" in kwargs and "limit_train_batches" in kwargs:  # in-batch evaluation
        raise Decline(
            CODE,
            "the training loop evaluates every few batches and stops early (dry run); "
            "lightify cannot tell whether Trainer(val_check_interval=n) would exceed the "
            "batches Lightning runs, which it rejects",
            program.eval_guard,
        )
    if program.validation is not None:
        _stage(lowering, program.validation, "validation", "val")
        _claim_in_loop(lowering, program.validation)
    if program.test is not None:
        _stage(lowering, program.test, "test", "test")
        lowering.plan.test_loader = program.test.loader
        _drop_result_prints(lowering)


def _drop_result_prints(lowering) -> None:
    """Prints of the test results go (their values are logged); any other use declines."""
    program = lowering.program
    names = set(program.test.result_names)
    for statement in program.block[program.block.index(program.test_call) + 1 :]:
        if not names_in(statement) & names:
            continue
        if not is_print(statement):
            raise Decline(
                "LFY403",
                "the test results are used after the test pass; lightify logs them with "
                "self.log and cannot hand the script's exact values back",
                statement,
            )
        lowering.plan.removed.add(statement)
        lowering.note("LFY410", "print of test metrics is replaced by self.log", statement)


def _claim_in_loop(lowering, found: Pass) -> None:
    program = lowering.program
    for statement in program.passes_in_loop:
        if found.invoked_by(statement) or (
            not found.body and _assigns(statement, set(found.accumulators))
        ):
            lowering.claimed.add(statement)


def _assigns(statement, names: set[str]) -> bool:
    small = only_small(statement)
    return isinstance(small, cst.Assign) and bool(
        {n for t in small.targets for n in assigned_names(t.target)} & names
    )


def _stage(lowering, found: Pass, stage: str, prefix: str) -> None:
    plan = lowering.plan
    loader_attr = "val_dataloaders" if stage == "validation" else "test_dataloaders"
    extra = {found.loader: cst.parse_expression(f"self.trainer.{loader_attr}")}
    extra.update(carry(lowering, found, stage, [*unpack_batch(found.target), *found.body]))
    local = lowering.locals_of(found)
    if not found.calls_eval:
        if stage == "validation":  # batch norm would learn from the sanity check's batches
            plan.trainer_kwargs["num_sanity_val_steps"] = cst.Integer("0")
        for hook in (f"on_{stage}_model_eval", f"on_{stage}_model_train"):
            plan.add_method(
                Method(
                    hook,
                    "self",
                    [cst.parse_statement("pass  # the script evaluates in training mode")],
                )
            )
    decision = lowering.decision_metric
    if stage == "validation" and decision is not None:
        if lowering.program.eval_guard is not None:
            raise Decline(
                CODE,
                f"validation runs only when `{code(lowering.program.eval_guard.test)}` but the "
                f"scheduler steps on `{decision}` every epoch; lightify leaves the loop as it is",
                lowering.program.eval_guard,
            )
        _exact(lowering, found, stage, prefix, decision, local, extra)
        return
    metrics = {m.accumulator: m for m in _metrics(found, prefix)}
    steps = without_bar_displays(lowering, found)
    body = [*unpack_batch(found.target), *_step_body(found, metrics, steps)]
    if not found.body and found.accumulators:
        acc = next(iter(found.accumulators.values()))
        body.append(_log_line(metrics[acc.name], acc, found))
    _check_after(lowering, found)
    moved = lowering.move(body, local - set(found.accumulators), extra)
    docstring = leading_docstring(found.before)
    plan.add_method(Method(f"{stage}_step", "self, batch, batch_idx", [*docstring, *moved]))


def _step_body(found: Pass, metrics: dict[str, Metric], body) -> list[cst.BaseStatement]:
    out = []
    for line in body:
        small = only_small(line)
        if isinstance(small, cst.AugAssign) and isinstance(small.target, cst.Name):
            name = small.target.value
            if name in found.accumulators:
                if name in metrics:
                    out.append(
                        _log_line(metrics[name], found.accumulators[name], found).with_changes(
                            leading_lines=[*line.leading_lines, *_trailing_comment(line)]
                        )
                    )
                continue
        out.append(line)
    return out


def _trailing_comment(line: cst.SimpleStatementLine) -> list[cst.EmptyLine]:
    comment = line.trailing_whitespace.comment
    return [cst.EmptyLine(comment=comment)] if comment is not None else []


def _log_line(metric: Metric, acc: Accumulator, found: Pass) -> cst.SimpleStatementLine:
    value, batch_size = _per_batch_value(metric, acc, found)
    args = f'"{metric.name}", {value}'
    if batch_size is not None:
        args += f", batch_size={batch_size}"
    if metric.per == "sum":
        args += ', reduce_fx="sum"'
    return cst.parse_statement(f"self.log({args}, prog_bar=True)")  # type: ignore[return-value]


def _per_batch_value(metric: Metric, acc: Accumulator, found: Pass) -> tuple[str, str | None]:
    update = acc.update
    scaled = _item_times(update)
    if metric.per == "batch":
        return code(_strip_item(update)), "1"
    if metric.per == "sum":
        return code(_strip_item(update)), None
    if scaled is not None:
        value, size = scaled
        return code(_strip_item(value)), code(size)
    size = _batch_size(found)
    return f"{operand(_strip_item(update))} / {size}", size


def _item_times(update: cst.BaseExpression):
    """``E.item() * n`` (either order) → (E, n)."""
    if isinstance(update, cst.BinaryOperation) and isinstance(update.operator, cst.Multiply):
        for value, size in ((update.left, update.right), (update.right, update.left)):
            if _is_item(value) and _is_size(size):
                return value, size
    return None


def _is_item(node) -> bool:
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == "item"
    )


def _strip_item(node: cst.BaseExpression) -> cst.BaseExpression:
    return node.func.value if _is_item(node) else node


def _is_size(node) -> bool:
    """``len(x)``, ``x.size(0)``, ``x.shape[0]`` as a whole (``len(x) * loss.item()`` is none)."""
    if isinstance(node, cst.Call) and dotted_name(node.func) == "len":
        return True
    return code(node).endswith((".size(0)", ".shape[0]"))


def _batch_size(found: Pass) -> str:
    for acc in found.accumulators.values():
        if _is_size(acc.update):
            return code(acc.update)
    target = found.target
    first = target.elements[0].value if isinstance(target, cst.Tuple | cst.List) else None
    if isinstance(first, cst.Name):
        return f"len({first.value})"
    raise Decline(
        CODE,
        "lightify cannot tell the batch size of this evaluation loop's batches",
        found.loop,
    )


def _metrics(found: Pass, prefix: str) -> list[Metric]:
    """Each accumulator's final metric: how the script divides it, and its name."""
    metrics = []
    sizes = {a.name for a in found.accumulators.values() if _is_size(a.update)}
    returned = _returned_names(found)
    for acc in found.accumulators.values():
        if acc.name in sizes:
            continue
        denominator, alias = _denominator(found, acc.name)
        per = "sum" if denominator is None else _per(found, denominator, sizes)
        base = returned.get(alias, returned.get(acc.name, alias))
        if base in STAGE_WORDS:  # `val = evaluate(...)` names the stage, not the metric
            base = alias
        metrics.append(Metric(acc.name, metric_name(base, prefix), per, denominator))
    return metrics


def metric_name(base: str, prefix: str) -> str:
    for known in PREFIXES:
        if base.startswith(known):
            base = base[len(known) :]
            break
    for suffix in ("_sum", "_total"):
        base = base.removesuffix(suffix)
    if base in {"total", "running", "sum", "epoch", "accumulated"}:
        base = "loss"  # `total += criterion(...)`: the sum is the loss
    return f"{prefix}_{RENAMES.get(base, base)}"


def _returned_names(found: Pass) -> dict[str, str]:
    """Local name → the caller's name for what the pass returns."""
    if found.result is None or not found.result_names:
        return {}
    values = (
        [e.value for e in found.result.elements]
        if isinstance(found.result, cst.Tuple)
        else [found.result]
    )
    out = {}
    for value, name in zip(values, found.result_names, strict=False):
        inner = value
        if isinstance(inner, cst.BinaryOperation):
            inner = inner.left
        if isinstance(inner, cst.Name):
            out[inner.value] = name
    return out


def _denominator(found: Pass, name: str) -> tuple[cst.BaseExpression | None, str]:
    """What ``name`` is divided by after the loop, and the name the quotient gets."""
    result = None, name
    for line in found.after:
        small = only_small(line)
        if (
            isinstance(small, cst.AugAssign)
            and isinstance(small.operator, cst.DivideAssign)
            and dotted_name(small.target) == name
        ):
            return small.value, name
        if isinstance(small, cst.Assign) and isinstance(small.value, cst.BinaryOperation):
            value = small.value
            if isinstance(value.operator, cst.Divide) and dotted_name(value.left) == name:
                targets = assigned_names(small.targets[0].target)
                return value.right, targets[0] if len(targets) == 1 else name
        division = _find_division(line, name)
        if division is not None and result[0] is None:
            result = division, name
    return result


def _find_division(node: cst.CSTNode, name: str) -> cst.BaseExpression | None:
    found: list[cst.BaseExpression] = []

    class _Div(cst.CSTVisitor):
        def visit_BinaryOperation(self, op: cst.BinaryOperation) -> None:
            if not isinstance(op.operator, cst.Divide | cst.FloorDivide):
                return
            left = op.left
            if isinstance(left, cst.BinaryOperation) and isinstance(left.operator, cst.Multiply):
                left = left.right if isinstance(left.left, cst.Integer | cst.Float) else left.left
            if dotted_name(left) == name:
                found.append(op.right)

    node.visit(_Div())
    return found[0] if found else None


def _per(found: Pass, denominator: cst.BaseExpression, sizes: set[str]) -> str:
    text = code(denominator)
    if text == f"len({found.loader})":
        return "batch"
    if text == f"len({found.loader}.dataset)" or text in sizes:
        return "sample"
    for line in found.after + found.before:
        small = only_small(line)
        if isinstance(small, cst.Assign) and code(small.targets[0].target) == text:
            return _per(found, small.value, sizes)
    raise Decline(
        CODE,
        f"the metric is divided by `{text}`; lightify knows division by len(loader) "
        "or len(loader.dataset)",
        found.loop,
    )


def _check_after(lowering, found: Pass) -> None:
    """After the loop only finalisation, metric prints and a return may follow."""
    known = set(found.accumulators)
    for line in found.after:
        small = only_small(line)
        if is_bar_statement(line, found):
            continue
        if (
            isinstance(small, cst.Expr)
            and dotted_name(getattr(small.value, "func", None) or small.value) == "print"
        ):
            lowering.note("LFY410", "print of evaluation metrics is replaced by self.log", line)
            continue
        if isinstance(small, cst.Return | cst.AugAssign):
            continue
        if isinstance(small, cst.Assign) and names_in(small.value) & (known | {"len"}):
            known |= set(assigned_names(small.targets[0].target))
            continue
        raise Decline(
            CODE,
            "this statement after the evaluation loop does more than compute, print or "
            "return metrics; lightify leaves the loop as it is",
            line,
        )


def _exact(lowering, found: Pass, stage: str, prefix: str, decision: str, local, extra) -> None:
    """Keep the script's own accumulation for a value that drives a decision."""
    plan = lowering.plan
    accumulators = set(found.accumulators)
    as_self = {name: cst.parse_expression(f"self.{name}") for name in accumulators}
    inits = [s for s in found.before if _assigns(s, accumulators)]
    if not inits:
        inits = [cst.parse_statement(f"{name} = 0") for name in accumulators]
    plan.add_to_hook(f"on_{stage}_epoch_start", lowering.move(inits, set(), as_self))
    body = [*unpack_batch(found.target), *without_bar_displays(lowering, found)]
    if not found.body:
        acc = next(iter(found.accumulators.values()))
        body.append(
            cst.SimpleStatementLine(
                [cst.AugAssign(cst.Name(acc.name), cst.AddAssign(), acc.update)]
            )
        )
    moved = lowering.move(body, local - accumulators, {**extra, **as_self})
    docstring = leading_docstring(found.before)
    plan.add_method(Method(f"{stage}_step", "self, batch, batch_idx", [*docstring, *moved]))
    _check_after(lowering, found)
    finish = [
        s for s in found.after if not is_print(s) and not isinstance(only_small(s), cst.Return)
    ]
    returned = cst.SimpleStatementLine(
        [
            cst.Assign(
                [cst.AssignTarget(cst.parse_expression(f"self.{decision}"))],
                _decided_value(found, decision),
            )
        ]
    )
    logs = [cst.parse_statement(f'self.log("{decision}", self.{decision}, prog_bar=True)')]
    for metric in _metrics(found, prefix):
        if metric.name != decision and metric.denominator is not None:
            value = f"{metric.accumulator} / {code(metric.denominator)}"
            logs.append(cst.parse_statement(f'self.log("{metric.name}", {value}, prog_bar=True)'))
    end = lowering.move([*finish, returned, *logs], set(), {**extra, **as_self})
    plan.add_method(Method(f"on_{stage}_epoch_end", "self", end))


def _decided_value(found: Pass, decision: str) -> cst.BaseExpression:
    """What the pass returns for the name the scheduler steps with."""
    result = found.result
    if result is None:
        return cst.Name(decision)
    if isinstance(result, cst.Tuple) and decision in found.result_names:
        return result.elements[found.result_names.index(decision)].value
    return result


EXAMPLES = [
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


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    total, correct = 0.0, 0
    for x, y in loader:
        logits = model(x)
        total += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    print(f"loss {total / len(loader.dataset):.3f} acc {correct / len(loader.dataset):.3f}")


for epoch in range(2):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    evaluate(model, val_loader)
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

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.model(x)
        self.log(
            "val_loss",
            F.cross_entropy(logits, y, reduction="sum") / len(x),
            batch_size=len(x),
            prog_bar=True,
        )
        self.log(
            "val_acc",
            (logits.argmax(1) == y).sum() / len(x),
            batch_size=len(x),
            prog_bar=True,
        )

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
val_loader = DataLoader(data, batch_size=32)
model = nn.Linear(4, 2)


trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1)
trainer.fit(LitModel(model), loader, val_loader)
model.eval()
""",
        codes=("LFY400", "LFY410"),
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
    if (epoch + 1) % 2 == 0:  # validate every other epoch
        model.eval()
        total = 0.0
        with torch.no_grad():
            for x, y in val_loader:
                total += F.cross_entropy(model(x), y, reduction="sum").item()
        print(f"epoch {epoch}: val_loss {total / len(val_loader.dataset):.4f}")
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

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log(
            "val_loss",
            F.cross_entropy(self.model(x), y, reduction="sum") / len(x),
            batch_size=len(x),
            prog_bar=True,
        )

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
val_loader = DataLoader(data, batch_size=32)
model = nn.Linear(4, 2)
# validate every other epoch
trainer = L.Trainer(
    max_epochs=4,
    check_val_every_n_epoch=2,
    accelerator="cpu",
    devices=1,
)
trainer.fit(LitModel(model), loader, val_loader)
model.eval()
""",
        codes=("LFY400", "LFY410"),
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
    if epoch % 2 == 0:
        model.eval()
        total = 0.0
        with torch.no_grad():
            for x, y in val_loader:
                total += F.cross_entropy(model(x), y, reduction="sum").item()
        print(f"epoch {epoch}: val_loss {total / len(val_loader.dataset):.4f}")
""",
        after=None,
        codes=("LFY402",),
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


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    total = 0.0
    for x, y in loader:
        total += F.cross_entropy(model(x), y, reduction="sum").item()
    print(total / len(loader.dataset))


for epoch in range(2):
    for i, (x, y) in enumerate(loader):
        model.train()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if (i + 1) % 2 == 0:
            evaluate(model, val_loader)
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
        self.model.train()
        loss = F.cross_entropy(self.model(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log(
            "val_loss",
            F.cross_entropy(self.model(x), y, reduction="sum") / len(x),
            batch_size=len(x),
            prog_bar=True,
        )

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
val_loader = DataLoader(data, batch_size=32)
model = nn.Linear(4, 2)


trainer = L.Trainer(
    max_epochs=2,
    val_check_interval=2,
    limit_val_batches=1.0 if 2 <= len(loader) else 0,
    accelerator="cpu",
    devices=1,
)
trainer.fit(LitModel(model), loader, val_loader)
""",
        codes=("LFY400", "LFY410"),
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


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    total = 0.0
    for x, y in loader:
        total += F.cross_entropy(model(x), y, reduction="sum").item()
    print(total / len(loader.dataset))


for epoch in range(2):
    for i, (x, y) in enumerate(loader):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if (i + 1) % 2 == 0:
            evaluate(model, val_loader)
""",
        after=None,
        codes=("LFY402",),
    ),
]
