"""LFY402: evaluation passes become ``validation_step`` (every epoch) and ``test_step`` (after)."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Accumulator, Pass
from lightify.analyze.nodes import assigned_names, code, dotted_name, names_in, only_small
from lightify.plan import Method
from lightify.rule import Example
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

## Why
Every `iter(loader)` draws from the global random generator, so the number and
order of evaluation passes must stay the same; and a decision must see the same
bits the script computed, not a float32 re-computation.

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
print and return metrics.
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


def build(lowering) -> None:
    program = lowering.program
    if program.validation is not None:
        _stage(lowering, program.validation, "validation", "val")
        _claim_in_loop(lowering, program.validation)
    if program.test is not None:
        _stage(lowering, program.test, "test", "test")
        lowering.plan.test_loader = program.test.loader
        _drop_result_prints(lowering)


def _drop_result_prints(lowering) -> None:
    """Prints of the test results go (their values are logged); any other use declines."""
    from lightify.rules.print_logging import is_print

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
    local = lowering.locals_of(found)
    if not found.calls_eval:
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
        _exact(lowering, found, stage, prefix, decision, local, extra)
        return
    metrics = {m.accumulator: m for m in _metrics(found, prefix)}
    body = [*unpack_batch(found.target), *_step_body(found, metrics, found.body)]
    if not found.body and found.accumulators:
        acc = next(iter(found.accumulators.values()))
        body.append(_log_line(metrics[acc.name], acc, found))
    _check_after(lowering, found)
    moved = lowering.move(body, local - set(found.accumulators), extra)
    plan.add_method(Method(f"{stage}_step", "self, batch, batch_idx", moved))


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
    return f"{_paren(code(_strip_item(update)))} / {size}", size


def _paren(text: str) -> str:
    node = cst.parse_expression(text)
    return f"({text})" if isinstance(node, cst.BinaryOperation | cst.Comparison) else text


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
    text = code(node)
    return text.startswith("len(") or ".size(0)" in text or ".shape[0]" in text


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
    plan.add_method(Method(f"on_{stage}_epoch_start", "self", lowering.move(inits, set(), as_self)))
    body = [*unpack_batch(found.target), *found.body]
    if not found.body:
        acc = next(iter(found.accumulators.values()))
        body.append(
            cst.SimpleStatementLine(
                [cst.AugAssign(cst.Name(acc.name), cst.AddAssign(), acc.update)]
            )
        )
    moved = lowering.move(body, local - accumulators, {**extra, **as_self})
    plan.add_method(Method(f"{stage}_step", "self, batch, batch_idx", moved))
    _check_after(lowering, found)
    finish = [
        s for s in found.after if not _is_print(s) and not isinstance(only_small(s), cst.Return)
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


def _is_print(line) -> bool:
    small = only_small(line)
    return (
        isinstance(small, cst.Expr)
        and isinstance(small.value, cst.Call)
        and dotted_name(small.value.func) == "print"
    )


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
]
