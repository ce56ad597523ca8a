"""LFY203: learning rates set by hand move into on_train_epoch_start or training_step."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Kind
from lightify.analyze.nodes import (
    assigned_names,
    call_of,
    dotted_name,
    names_in,
    only_small,
    walk,
)
from lightify.analyze.program import iterates_param_groups
from lightify.plan import Method
from lightify.rule import Example

CODE = "LFY203"
SUMMARY = "Learning rates set by hand move into the epoch-start, step or epoch-end hooks"
ORDER = 32  # build order: after the optimizer (20) and the scheduler (30)
HOOK = "on_train_epoch_start"
OPTIMIZER = "self.optimizers().optimizer"  # the very object configure_optimizers returned
DOC = """\
## What it does
Moves learning rates the script sets itself, without a scheduler object, to
where Lightning runs them at the same moment:

- at the start of each epoch, before the training pass (`for g in
  optimizer.param_groups: g["lr"] = ...`, or a call such as pytorch/examples'
  `adjust_learning_rate(optimizer, epoch, args)`, with the assignments computing
  the rate) → `on_train_epoch_start`, the same statements; the user's function
  stays in the file and is still called;
- in the batch loop before `optimizer.step()` (a per-step warmup) →
  `training_step`, the same statements; `len(train_loader)` becomes
  `len(self.trainer.train_dataloader)` (the same DataLoader, whatever
  `limit_train_batches` is);
- after the epoch's validation (a change on a plateau: `if val_loss < best:
  best = val_loss` / `else: lr /= 4.0`, then `group["lr"] = lr`, or `lr` read
  by updates written by hand as in pytorch/examples' word_language_model) →
  `on_train_epoch_end` with the epoch's other end-of-epoch statements
  (`rules/checkpoints.py`, LFY407): `lr` and `best` become attributes
  initialised from the script's values, the validation value keeps its exact
  Python-float accumulation. Lightning calls `on_train_epoch_end` after the
  epoch's validation and before the next epoch's first batch
  (`loops/fit_loop.py`, `on_advance_end`), never in the sanity check.

The optimizer becomes `self.optimizers().optimizer`, the `torch.optim`
optimizer `configure_optimizers` returned (`LightningOptimizer.optimizer`,
`core/optimizer.py`); the epoch variable becomes `self.current_epoch` (plus the
range's start).

Lightning calls `on_train_epoch_start` in `FitLoop.on_advance_start`
(`loops/fit_loop.py`), before `FitLoop.advance` runs the epoch's first
training batch, and after the previous epoch's `on_advance_end`, which ran its
validation (`loops/training_epoch_loop.py`, `on_advance_end`); `training_step`
runs before the optimizer step of its batch.

The first epoch's `iter(train_loader)` already happened in `FitLoop.setup_data`
when the hook runs, so only statements that draw no random numbers move: the
param_groups loop, the assignments it reads, and functions holding nothing else.

Declined, with the reason: rates set between the training and the validation
pass (`on_train_epoch_end` runs after both), after `optimizer.step()` in the
batch loop, before training under a condition or among other statements, from
a value carried from epoch to epoch (before training), together with a
scheduler, or with several optimizers.

## Why
A scheduler object would change the rate at other moments (an `"epoch"`
scheduler steps after the training epoch) and needs the rule rewritten as a
lambda; the script's own statements at the same moments set the same rates.

## Example
```python
for epoch in range(args.epochs):
    adjust_learning_rate(optimizer, epoch, args)
    train(train_loader, model, criterion, optimizer, epoch, args)
```

## Use instead
```python
def on_train_epoch_start(self):
    adjust_learning_rate(self.optimizers().optimizer, self.current_epoch, self.args)
```

## Fix safety
Safe for what it converts: the same statements run before the same optimizer
steps, on the same optimizer.
"""


def build(lowering) -> None:
    """Epoch-level rates: the statements before the training pass → on_train_epoch_start;
    those after the epoch's passes go with rules/checkpoints.py into on_train_epoch_end."""
    program = lowering.program
    loop = program.passes_in_loop
    passes = [s for s in loop if program.train.invoked_by(s)]
    train_at = min(loop.index(s) for s in passes)
    later = [s for s in loop[train_at:] if s not in passes and contains_lr(s, lowering)]
    _check_after_passes(lowering, later)
    loop = loop[:train_at]
    setters = [s for s in loop if _sets_lr(s, lowering) is not None]
    nested = [s for s in loop if s not in setters and contains_lr(s, lowering)]
    if not setters and not nested:
        return
    if nested:
        raise Decline(
            CODE,
            "learning rates are set under a condition or among other statements here; "
            'lightify converts `for group in optimizer.param_groups: group["lr"] = ...` '
            "or a call of a function doing only that, each a statement of the epoch loop",
            nested[0],
        )
    statements = _with_helpers(loop, setters)
    _check_optimizer(lowering, statements[0])
    for statement in statements:
        carried = [n for n in _assigned(statement) if n in program.bindings]
        if carried:
            raise Decline(
                CODE,
                f"`{carried[0]}` is carried from epoch to epoch; lightify converts learning "
                "rates computed afresh each epoch",
                statement,
            )
    optimizer = _sets_lr(setters[0], lowering)
    moved = lowering.move(statements, set(), {optimizer: cst.parse_expression(OPTIMIZER)})
    first = moved[0]  # the loop's blank line before it has no place in the hook
    moved[0] = first.with_changes(leading_lines=[x for x in first.leading_lines if x.comment])
    lowering.plan.add_method(Method(HOOK, "self", moved))
    lowering.claimed.update(statements)
    lowering.note(CODE, f"learning rates set by hand move into {HOOK}", setters[0])


def step(statement: cst.BaseStatement, builder) -> bool:
    """Step-level rates (a warmup) stay in training_step, before the optimizer step."""
    lowering = builder.lowering
    optimizer = _sets_lr(statement, lowering)
    if optimizer is None and not _feeds_lr(statement, builder):
        return False
    if builder.phase == "stepped":
        raise Decline(
            CODE,
            "this sets learning rates after optimizer.step() in the batch loop; lightify "
            "converts rates set before the step, in training_step",
            statement,
        )
    _check_optimizer(lowering, statement)
    loader = lowering.program.train.loader
    builder.emit(statement.visit(_InStep(optimizer, loader)))
    if optimizer is not None:
        lowering.note(CODE, "learning rates set by hand stay in training_step", statement)
    return True


class _InStep(cst.CSTTransformer):
    """The optimizer → Lightning's, ``len(train_loader)`` → the trainer's same DataLoader."""

    def __init__(self, optimizer: str | None, loader: str | None) -> None:
        self.optimizer = optimizer
        self.loader = loader

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        if original_node.value == self.optimizer:
            return cst.parse_expression(OPTIMIZER)
        return updated_node

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if (
            self.loader is not None
            and dotted_name(original_node.func) == "len"
            and len(original_node.args) == 1
            and dotted_name(original_node.args[0].value) == self.loader
        ):
            return cst.parse_expression("len(self.trainer.train_dataloader)")
        return updated_node


def _sets_lr(statement: cst.BaseStatement, lowering) -> str | None:
    """The optimizer whose learning rates the statement sets: a param_groups loop or a call."""
    optimizers = {b.name for b in lowering.program.optimizers()}
    if isinstance(statement, cst.For):
        receiver = dotted_name(statement.iter.value) if _sets_group_lr(statement) else None
        return receiver if receiver in optimizers else None
    call = call_of(statement)
    if call is None or not isinstance(call.func, cst.Name):
        return None
    function = lowering.index.functions.get(call.func.value)
    if function is None or not _only_sets_lr(function):
        return None
    passed = [dotted_name(arg.value) for arg in call.args]
    return next((name for name in passed if name in optimizers), None)


def _sets_group_lr(loop: cst.For) -> bool:
    """``for g in X.param_groups: g["lr"] = ...`` and nothing else in the loop."""
    if not iterates_param_groups(loop) or loop.orelse is not None:
        return False
    if not isinstance(loop.target, cst.Name) or not isinstance(loop.body, cst.IndentedBlock):
        return False
    group = loop.target.value
    for line in loop.body.body:
        small = only_small(line)
        if isinstance(small, cst.Assign) and len(small.targets) == 1:
            target = small.targets[0].target
        elif isinstance(small, cst.AugAssign):
            target = small.target
        else:
            return False
        if not (
            isinstance(target, cst.Subscript)
            and dotted_name(target.value) == group
            and len(target.slice) == 1
            and isinstance(target.slice[0].slice, cst.Index)
            and isinstance(target.slice[0].slice.value, cst.SimpleString)
            and target.slice[0].slice.value.evaluated_value == "lr"
        ):
            return False
    return True


def _only_sets_lr(function: cst.FunctionDef) -> bool:
    """A docstring, assignments and param_groups loops setting ``"lr"``, at least one loop.

    Nothing else: on_train_epoch_start runs after the first epoch's ``iter(loader)``
    (``FitLoop.setup_data``), so code drawing random numbers there would reorder them.
    """
    loops = 0
    for line in function.body.body:
        small = only_small(line)
        if isinstance(line, cst.For) and _sets_group_lr(line):
            loops += 1
        elif isinstance(small, cst.Expr) and isinstance(small.value, cst.SimpleString):
            continue
        elif not isinstance(small, cst.Assign | cst.AugAssign):
            return False
    return loops > 0


def contains_lr(statement: cst.BaseStatement, lowering) -> bool:
    """Whether a statement sets learning rates somewhere inside (under an ``if``, say)."""
    return (
        any(isinstance(node, cst.For) and _sets_group_lr(node) for node in walk(statement))
        or _optimizer_set(statement, lowering) is not None
    )


def _optimizer_set(statement: cst.BaseStatement, lowering) -> str | None:
    """The optimizer whose rates a statement sets somewhere inside, if any."""
    for node in walk(statement):
        if isinstance(node, cst.For | cst.SimpleStatementLine):
            optimizer = _sets_lr(node, lowering)
            if optimizer is not None:
                return optimizer
    return None


def group_targets(statements: list[cst.BaseStatement]) -> set[str]:
    """The ``group`` of every ``for group in optimizer.param_groups:`` loop in the statements:
    names that live for the loop only, not values carried from epoch to epoch."""
    return {
        node.target.value
        for statement in statements
        for node in walk(statement)
        if isinstance(node, cst.For) and _sets_group_lr(node)
    }


def transform(statement: cst.BaseStatement, lowering) -> cst.BaseStatement:
    """Rates set in moved code (after validation: rules/checkpoints.py's on_train_epoch_end)
    are set on the optimizer configure_optimizers returned."""
    optimizer = _optimizer_set(statement, lowering)
    if optimizer is None:
        return statement
    _check_optimizer(lowering, statement)
    return statement.visit(_InStep(optimizer, None))


def _check_after_passes(lowering, statements: list[cst.BaseStatement]) -> None:
    """Rates set after the training pass are converted once the epoch's validation is over:
    rules/checkpoints.py carries them into on_train_epoch_end, after validation."""
    program = lowering.program
    loop = program.passes_in_loop
    validation = program.validation
    evaluated = [i for i, s in enumerate(loop) if validation and validation.invoked_by(s)]
    for statement in statements:
        if evaluated and loop.index(statement) < max(evaluated):
            raise Decline(
                CODE,
                "this sets learning rates between the epoch's training and validation passes; "
                "lightify converts rates set before training (on_train_epoch_start) or after "
                "validation (on_train_epoch_end, a change on a validation plateau)",
                statement,
            )
        _check_optimizer(lowering, statement)
        lowering.note(
            CODE, "learning rates set after validation move into on_train_epoch_end", statement
        )


def _assigned(statement: cst.BaseStatement) -> list[str]:
    small = only_small(statement)
    if isinstance(small, cst.Assign):
        return [n for t in small.targets for n in assigned_names(t.target)]
    return []


def _with_helpers(
    loop: list[cst.BaseStatement], setters: list[cst.BaseStatement]
) -> list[cst.BaseStatement]:
    """The setters and the assignments before them that compute only what they read."""
    needed = set().union(*(names_in(s) for s in setters))
    chosen = list(setters)
    for statement in reversed(loop[: loop.index(setters[-1])]):
        names = set(_assigned(statement))
        if statement not in chosen and names and names <= needed:
            chosen.append(statement)
            needed |= names_in(statement)
    return sorted(chosen, key=loop.index)


def _feeds_lr(statement: cst.BaseStatement, builder) -> bool:
    """An assignment in the batch loop whose names a later statement setting rates reads,
    directly or through another such assignment (``lr`` from ``global_step``)."""
    names = set(_assigned(statement))
    body = builder.found.body
    if not names or statement not in body:
        return False
    later = [s for s in body[body.index(statement) + 1 :] if names & names_in(s)]
    return any(_sets_lr(s, builder.lowering) is not None or _feeds_lr(s, builder) for s in later)


def _check_optimizer(lowering, statement: cst.BaseStatement) -> None:
    """One optimizer and no scheduler: ``self.optimizers()`` is that optimizer, and only
    the script's statements change its rates."""
    program = lowering.program
    if len(program.optimizers()) > 1:
        raise Decline(
            CODE,
            "learning rates are set by hand with several optimizers; lightify converts them "
            "with one optimizer",
            statement,
        )
    if any(b.kind is Kind.SCHEDULER for b in program.bindings.values()):
        raise Decline(
            CODE,
            "learning rates are set by hand and by a scheduler; lightify converts one of the two",
            statement,
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
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(4):
    lr = 0.1 * 0.5 ** (epoch // 2)
    for group in optimizer.param_groups:
        group["lr"] = lr
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
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

    def on_train_epoch_start(self):
        lr = 0.1 * 0.5 ** (self.current_epoch // 2)
        for group in self.optimizers().optimizer.param_groups:
            group["lr"] = lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
trainer = L.Trainer(max_epochs=4, accelerator="cpu", devices=1)
trainer.fit(LitModel(model), loader)
""",
        codes=("LFY203", "LFY400"),
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
lr = 0.1
best = float("inf")
for epoch in range(10):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    total = 0.0
    with torch.no_grad():
        for x, y in val_loader:
            total += F.cross_entropy(model(x), y, reduction="sum").item()
    val_loss = total / len(val_loader.dataset)
    if val_loss < best:
        best = val_loss
    else:
        lr /= 4
        for group in optimizer.param_groups:
            group["lr"] = lr
""",
        after="""\
import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class LitModel(L.LightningModule):
    def __init__(self, model, lr, best):
        super().__init__()
        self.save_hyperparameters(ignore=["model", "best", "lr"])
        self.model = model
        self.lr = lr
        self.best = best

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("train_loss", loss)
        return loss

    def on_validation_model_eval(self):
        pass  # the script evaluates in training mode

    def on_validation_model_train(self):
        pass  # the script evaluates in training mode

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
        else:
            self.lr /= 4
            for group in self.optimizers().optimizer.param_groups:
                group["lr"] = self.lr

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
val_loader = DataLoader(data, batch_size=32)
model = nn.Linear(4, 2)
lr = 0.1
best = float("inf")
trainer = L.Trainer(max_epochs=10, num_sanity_val_steps=0, accelerator="cpu", devices=1)
trainer.fit(LitModel(model, lr=lr, best=best), loader, val_loader)
""",
        codes=("LFY203", "LFY400", "LFY407"),
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
for epoch in range(10):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    for group in optimizer.param_groups:
        group["lr"] = 0.1 * 0.9 ** (epoch + 1)
    total = 0.0
    with torch.no_grad():
        for x, y in val_loader:
            total += F.cross_entropy(model(x), y, reduction="sum").item()
    print(total / len(val_loader.dataset))
""",
        after=None,
        codes=("LFY203",),
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
for epoch in range(2):
    for i, (x, y) in enumerate(loader):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        for group in optimizer.param_groups:
            group["lr"] = 0.1 * (i + 1) / len(loader)
""",
        after=None,
        codes=("LFY203",),
    ),
]
