"""LFY400: the training batch loop becomes ``training_step``."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Kind
from lightify.analyze.nodes import leading_docstring, method_call, stmt
from lightify.plan import Method
from lightify.rule import Example
from lightify.rules.carried_state import carry

CODE = "LFY400"
SUMMARY = "Training loop can be converted to a LightningModule and a Trainer"
ORDER = 10  # build order: see lightify.lower
DOC = """\
## What it does
Finds a hand-written `for epoch ...: for batch in loader: ... loss.backward();
optimizer.step()` loop and rewrites it into a `LightningModule` whose
`training_step` holds the loop body, plus `Trainer(...).fit(...)` where the loop was.

## Why
Lightning then runs the loop, the device placement, logging and checkpoints; the
per-step losses stay bit-identical on CPU because the order of everything that
draws random numbers or changes state is kept.

## Example
```python
for epoch in range(3):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
```

## Use instead
```python
class LitNet(L.LightningModule):
    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("train_loss", loss)
        return loss
```

## Fix safety
Safe: applied only when every statement of the loop has an exact Lightning equivalent.
"""


def step(statement: cst.BaseStatement, builder) -> bool:
    """Claim ``loss.backward()`` and ``optimizer.step()``."""
    found = method_call(statement)
    if found is None:
        return False
    receiver, method, call = found
    bindings = builder.lowering.program.bindings
    if method == "backward" and not call.args:
        if builder.phase != "forward":
            raise Decline("LFY005", "backward() is called twice per batch", statement)
        builder.loss = call.func.value
        builder.phase = "backward"
        builder.consume(statement)
        return True
    binding = bindings.get(receiver)
    if method == "step" and binding is not None and binding.kind is Kind.OPTIMIZER:
        if builder.phase != "backward" or call.args:
            raise Decline(
                "LFY005",
                "optimizer.step() is not called right after backward() on every batch",
                statement,
            )
        builder.phase = "stepped"
        builder.consume(statement)
        return True
    return False


def build(lowering) -> None:
    from lightify.lower import StepBuilder

    if lowering.plan.manual_optimization:
        return  # several optimizers: rules/several_optimizers.py writes training_step
    found = lowering.program.train
    builder = StepBuilder(lowering, found)
    body = builder.run()
    if builder.phase != "stepped" or builder.loss is None:
        raise Decline(
            "LFY005", "the loop does not call optimizer.step() after backward()", found.loop
        )
    loss = builder.loss
    local = lowering.locals_of(found)
    if not isinstance(loss, cst.Name):
        body.append(
            cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name("loss"))], loss)])
        )
        loss = cst.Name("loss")
        local.add("loss")
    logged = [] if _logs_loss(body) else [stmt(f'self.log("train_loss", {loss.value})')]
    ret = cst.SimpleStatementLine([cst.Return(loss)])
    tail = [*logged, ret]
    tail[0] = tail[0].with_changes(leading_lines=builder.comments)
    unpack = unpack_batch(found.target)  # `batch` is the batch here, whatever the loop's index
    carried = carry(lowering, found, "train", [*unpack, *body])
    moved = [*unpack, *lowering.move(body, local, {**index_alias(found), **carried})]
    docstring = leading_docstring(found.before)
    lowering.plan.add_method(
        Method("training_step", "self, batch, batch_idx", [*docstring, *moved, *tail])
    )
    lowering.note(
        CODE,
        f"training loop can be converted: {lowering.plan.class_name} and a Trainer",
        found.loop,
    )


def _logs_loss(body: list[cst.BaseStatement]) -> bool:
    """Whether a progress-bar postfix already logs ``train_loss`` (on the bar)."""
    for statement in body:
        found = method_call(statement)
        if found is not None and found[:2] == ("self", "log") and found[2].args:
            name = found[2].args[0].value
            if isinstance(name, cst.SimpleString) and name.evaluated_value == "train_loss":
                return True
    return False


def unpack_batch(target: cst.BaseAssignTargetExpression) -> list[cst.BaseStatement]:
    """``for x, y in loader`` → ``x, y = batch``; nothing when the target already is ``batch``."""
    if isinstance(target, cst.Name) and target.value == "batch":
        return []
    if isinstance(target, cst.Tuple):
        target = target.with_changes(lpar=[], rpar=[]) if len(target.elements) > 1 else target
    return [cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(target)], cst.Name("batch"))])]


def index_alias(found) -> dict[str, cst.BaseExpression]:
    """The loop's batch index name → ``batch_idx`` (plus its start), for code moved into a step."""
    if found.index is None or found.index == "batch_idx":
        return {}
    index = cst.Name("batch_idx")
    if found.index_start is not None:
        return {found.index: cst.BinaryOperation(index, cst.Add(), found.index_start)}
    return {found.index: index}


EXAMPLES = [
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.1), nn.Linear(8, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
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
model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.1), nn.Linear(8, 2))
trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1)
trainer.fit(LitModel(model), loader)
""",
        codes=("LFY400",),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in tqdm(loader, desc=f"epoch {epoch}"):
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
trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1)
trainer.fit(LitModel(model), loader)
""",
        codes=("LFY400",),
    ),
]
