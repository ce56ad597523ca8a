"""LFY410: prints of the training loss become ``self.log("train_loss", loss)``."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.nodes import dotted_name, names_in, only_small
from lightify.rule import Example

CODE = "LFY410"
SUMMARY = "print() of a metric becomes self.log"
DOC = """\
## What it does
A `print` in the batch loop that shows the loss (often under
`if batch_idx % log_interval == 0:`) is replaced by `self.log("train_loss", loss)`,
which the logger and progress bar show. Prints of evaluation metrics are replaced
by the logged metrics. Other prints stay where they are.

## Why
Lightning logs every step to the logger and shows the loss on the progress bar
without a host synchronisation per print.

## Example
```python
if batch_idx % args.log_interval == 0:
    print(f"epoch {epoch} loss {loss.item():.4f}")
```

## Use instead
```python
self.log("train_loss", loss)
```

## Fix safety
Safe: printing has no effect on training. The replaced prints are listed.
"""


def is_print(statement: cst.CSTNode) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    return (
        isinstance(small, cst.Expr)
        and isinstance(small.value, cst.Call)
        and dotted_name(small.value.func) == "print"
    )


def only_prints(statement: cst.BaseStatement, sums: frozenset[str] = frozenset()) -> bool:
    """A print, or an ``if`` holding only prints, dry-run breaks and resets of display sums."""
    from lightify.rules.dry_run import is_flag_break

    if is_print(statement):
        return True
    if isinstance(statement, cst.If) and statement.orelse is None:
        return all(
            only_prints(s, sums) or is_flag_break(s) or _resets(s, sums)
            for s in statement.body.body
        )
    return False


def display_sums(found) -> frozenset[str]:
    """Running sums (``running_loss += loss.item()``) read only by prints and resets."""
    sums = set(found.accumulators)
    for statement in found.body:
        small = only_small(statement)
        if isinstance(small, cst.AugAssign) and dotted_name(small.target) in sums:
            continue
        if only_prints(statement, frozenset(sums)):
            continue
        sums -= names_in(statement)
    return frozenset(sums)


def _resets(statement: cst.CSTNode, sums: frozenset[str]) -> bool:
    small = only_small(statement)
    return isinstance(small, cst.Assign) and all(
        dotted_name(t.target) in sums for t in small.targets
    )


def step(statement: cst.BaseStatement, builder) -> bool:
    sums = display_sums(builder.found)
    small = only_small(statement)
    if isinstance(small, cst.AugAssign) and dotted_name(small.target) in sums:
        builder.consume(statement)  # a display sum: the logged loss replaces it
        return True
    if not only_prints(statement, sums):
        return False
    metric_names = {builder.loss.value} if isinstance(builder.loss, cst.Name) else set()
    metric_names |= {"loss"} | sums
    if not names_in(statement) & metric_names:
        return False
    from lightify.rules.dry_run import claim_break

    claim_break(statement, builder)
    builder.lowering.note(CODE, "print of the training loss is replaced by self.log", statement)
    builder.consume(statement)
    return True


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
for epoch in range(2):
    for i, (x, y) in enumerate(loader):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if i % 2 == 0:
            print(f"epoch {epoch} batch {i} loss {loss.item():.4f}")
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
        codes=("LFY400", "LFY410"),
    ),
]
