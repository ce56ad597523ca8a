"""LFY202: the learning-rate scheduler moves into configure_optimizers with the script's cadence."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Binding, Kind
from lightify.analyze.nodes import code, method_call, names_in, stmt
from lightify.plan import Method
from lightify.rule import Example
from lightify.rules.several_optimizers import stepped_schedulers

CODE = "LFY202"
SUMMARY = "The scheduler moves into configure_optimizers with the interval the script stepped it at"
ORDER = 30  # build order: see lightify.lower
DOC = """\
## What it does
Moves `scheduler = torch.optim.lr_scheduler.X(optimizer, ...)` into
`configure_optimizers` and sets its `interval` from where the script called
`scheduler.step()`: once per epoch in the epoch loop → `"epoch"`; after
`optimizer.step()` in the batch loop → `"step"`. `ReduceLROnPlateau` stepped
with a validation value gets `monitor` and is stepped with the script's exact
value (`lr_scheduler_step`), not Lightning's float32 copy of the logged metric.

## Why
The learning rate of every step must match: a scheduler stepped at the wrong
cadence changes every update after the first epoch.

## Example
```python
scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
for epoch in range(epochs):
    train(...)
    scheduler.step()
```

## Use instead
```python
return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
```

## Fix safety
Safe. Declined when the scheduler is stepped conditionally, twice, or somewhere
Lightning cannot step it.
"""


def scheduler_binding(program) -> Binding | None:
    found = [b for b in program.bindings.values() if b.kind is Kind.SCHEDULER]
    if len(found) > 1:
        raise Decline(CODE, "the program creates several schedulers", found[1].line)
    return found[0] if found else None


def _steps_of(program, name: str) -> list[cst.BaseStatement]:
    return [s for s in program.passes_in_loop if _is_step(s, name)]


def _is_step(statement: cst.BaseStatement, name: str) -> bool:
    found = method_call(statement)
    return found is not None and found[0] == name and found[1] == "step"


def step(statement: cst.BaseStatement, builder) -> bool:
    """A scheduler stepped in the batch loop right after the optimizer: interval "step"."""
    scheduler = scheduler_binding(builder.lowering.program)
    if scheduler is None or not _is_step(statement, scheduler.name):
        return False
    if builder.phase != "stepped" or method_call(statement)[2].args:
        raise Decline(
            CODE, "the scheduler is stepped before the optimizer in the batch loop", statement
        )
    builder.lowering.scheduler_interval = "step"
    builder.consume(statement)
    return True


def build(lowering) -> None:
    program = lowering.program
    scheduler = scheduler_binding(program)
    if scheduler is None:
        return
    epoch_steps = _steps_of(program, scheduler.name)
    interval = lowering.scheduler_interval
    manual = lowering.plan.manual_optimization
    if manual:  # training_step steps it where the batch loop did (rules/several_optimizers.py)
        interval = "step" if scheduler.name in stepped_schedulers(lowering) else None
    if (interval and epoch_steps) or len(epoch_steps) > 1:
        raise Decline(CODE, "the scheduler is stepped in more than one place", scheduler.line)
    method = lowering.plan.methods["configure_optimizers"]
    optimizer = code(method.body[-1].body[0].value)
    entry = {"scheduler": scheduler.name, "interval": interval or "epoch"}
    if epoch_steps:
        lowering.claimed.add(epoch_steps[0])
        args = method_call(epoch_steps[0])[2].args
        if args and manual:
            raise Decline(
                CODE,
                f"`{scheduler.name}` is stepped with a metric under manual optimization; "
                "lightify steps such schedulers only under automatic optimization",
                epoch_steps[0],
            )
        if args:
            entry["monitor"] = _plateau(lowering, args[0].value, epoch_steps[0])
    elif interval is None:
        raise Decline(
            CODE,
            (
                "the scheduler is not stepped once per epoch or once per optimizer step "
                "(a conditional step, or none); lightify leaves the loop as it is"
            ),
            scheduler.line,
        )
    from lightify.rules.optimizer import hoist_arguments

    local = {scheduler.name, *names_in(method.body[-1])}  # the optimizers it returns
    moved = lowering.move([hoist_arguments(scheduler.line, lowering, program)], local)
    lowering.plan.moved.add(scheduler.line)
    fields = ", ".join(
        f'"{key}": {value}' if key == "scheduler" else f'"{key}": "{value}"'
        for key, value in entry.items()
    )
    if manual:  # Lightning steps no scheduler under manual optimization: the module does
        ret = cst.parse_statement(f"return [{optimizer}], [{scheduler.name}]")
    else:
        ret = cst.parse_statement(
            f'return {{"optimizer": {optimizer}, "lr_scheduler": {{{fields}}}}}'
        )
    if manual and epoch_steps:  # on_train_epoch_end runs after validation, as in the script
        step = stmt("self.lr_schedulers().step()")
        lowering.plan.add_method(Method("on_train_epoch_end", "self", [step]))
    method.body[-1:] = [*moved, ret]


def _plateau(lowering, value: cst.BaseExpression, statement) -> str:
    """The metric name ReduceLROnPlateau monitors; the evaluation rule logs it exactly."""
    validation = lowering.program.validation
    if (
        validation is None
        or not isinstance(value, cst.Name)
        or value.value not in validation.result_names
    ):
        raise Decline(
            CODE,
            f"the scheduler is stepped with `{code(value)}`, which is not a value the "
            "validation pass returns",
            statement,
        )
    lowering.decision_metric = value.value
    lowering.plan.add_method(
        Method(
            "lr_scheduler_step",
            "self, scheduler, metric",
            [
                cst.parse_statement(
                    "# the script's exact value, not Lightning's float32 copy of the logged one\n"
                    f"scheduler.step(self.{value.value})"
                )
            ],
        )
    )
    return value.value


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
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.5, total_steps=2 * len(loader))
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
""",
        after="""\
import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class LitModel(L.LightningModule):
    def __init__(self, model, total_steps):
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.total_steps = total_steps

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=0.5,
            total_steps=self.total_steps,
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1)
trainer.fit(LitModel(model, total_steps=2 * len(loader)), loader)
""",
        codes=("LFY400",),
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
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    if epoch > 0:
        scheduler.step()
""",
        after=None,
        codes=("LFY202",),
    ),
]
