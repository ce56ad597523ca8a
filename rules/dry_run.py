"""LFY405: ``if args.dry_run: break`` after the first batch becomes ``limit_train_batches``."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.nodes import code, names_in, only_small
from lightify.rule import Example

CODE = "LFY405"
SUMMARY = "A break after the first batch under a flag becomes limit_train_batches"
DOC = """\
## What it does
`if args.dry_run: break` in the batch loop, reached on the first batch, becomes
`Trainer(limit_train_batches=1 if args.dry_run else 1.0)`.

## Why
The raw loop trains one batch and leaves without fetching another;
`limit_train_batches=1` does the same, so the random state stays in step.
A break after another batch index would fetch one batch more than Lightning
(DESIGN §5.3) and is declined.

## Example
```python
if batch_idx % args.log_interval == 0:
    print(loss.item())
    if args.dry_run:
        break
```

## Use instead
```python
L.Trainer(..., limit_train_batches=1 if args.dry_run else 1.0)
```

## Fix safety
Safe when the break is reached on batch 0 and its condition does not change
during training.
"""


def is_flag_break(statement: cst.CSTNode) -> bool:
    return (
        isinstance(statement, cst.If)
        and statement.orelse is None
        and len(statement.body.body) == 1
        and isinstance(only_small(statement.body.body[0]), cst.Break)
    )


def claim_break(statement: cst.BaseStatement, builder) -> None:
    """Record a flag break inside ``statement`` (itself or nested in a logging ``if``)."""
    if is_flag_break(statement):
        _record(statement, builder, outer=None)
    elif isinstance(statement, cst.If):
        for inner in statement.body.body:
            if is_flag_break(inner):
                _record(inner, builder, outer=statement.test)


def _record(statement: cst.If, builder, outer: cst.BaseExpression | None) -> None:
    loop_names = builder.lowering.locals_of(builder.found)
    if names_in(statement.test) & loop_names or (
        outer is not None and not _true_at_zero(outer, builder)
    ):
        raise Decline(
            CODE, "the loop breaks on a condition lightify cannot map to a Trainer flag", statement
        )
    if builder.phase != "stepped":
        raise Decline(CODE, "the loop breaks before the optimizer step", statement)
    builder.lowering.plan.trainer_kwargs["limit_train_batches"] = cst.parse_expression(
        f"1 if {code(statement.test)} else 1.0"
    )


def _true_at_zero(test: cst.BaseExpression, builder) -> bool:
    """``batch_idx % k == 0`` holds on the first batch."""
    index = builder.found.index
    text = code(test).replace(" ", "")
    return (
        index is not None
        and builder.found.index_start is None
        and text.startswith(f"{index}%")
        and text.endswith("==0")
    )


def step(statement: cst.BaseStatement, builder) -> bool:
    if not is_flag_break(statement):
        return False
    claim_break(statement, builder)
    builder.consume(statement)
    return True


EXAMPLES = [
    Example(
        before="""\
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
parser = argparse.ArgumentParser()
parser.add_argument("--dry-run", action="store_true")
args = parser.parse_args()
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if args.dry_run:
            break
""",
        after="""\
import argparse

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
parser = argparse.ArgumentParser()
parser.add_argument("--dry-run", action="store_true")
args = parser.parse_args()
model = nn.Linear(4, 2)
trainer = L.Trainer(
    max_epochs=2,
    limit_train_batches=1 if args.dry_run else 1.0,
    accelerator="cpu",
    devices=1,
)
trainer.fit(LitModel(model), loader)
""",
        codes=("LFY400",),
    ),
]
