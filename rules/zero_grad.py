"""LFY406: the script's zero_grad call; a variant Lightning does not make is reproduced exactly."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Kind
from lightify.analyze.nodes import code, method_call
from lightify.plan import Method
from lightify.rule import Example
from lightify.rules.gradient_accumulation import is_window_step

CODE = "LFY406"
SUMMARY = "zero_grad variants are reproduced with optimizer_zero_grad"
DOC = """\
## What it does
Removes `optimizer.zero_grad()` from the loop body (Lightning calls it before each
backward). When the script calls something else — `model.zero_grad()`,
`optimizer.zero_grad(set_to_none=False)` — it overrides `optimizer_zero_grad`
with the script's own call.

## Why
`set_to_none=False` leaves zero tensors instead of `None`, which changes what
optimizers with weight decay or momentum do to parameters without gradients.

## Example
```python
optimizer.zero_grad(set_to_none=False)
```

## Use instead
```python
def optimizer_zero_grad(self, epoch, batch_idx, optimizer):
    optimizer.zero_grad(set_to_none=False)
```

## Fix safety
Safe. Declined when zero_grad is called between backward() and step(), which
Lightning cannot reproduce.
"""


def step(statement: cst.BaseStatement, builder) -> bool:
    found = method_call(statement)
    if found is None or found[1] != "zero_grad":
        return False
    receiver, _, call = found
    binding = builder.lowering.program.bindings.get(receiver)
    if binding is None or binding.kind not in (Kind.OPTIMIZER, Kind.MODULE):
        return False
    if builder.phase == "backward":
        raise Decline(
            CODE, "zero_grad() between backward() and step() discards gradients", statement
        )
    if builder.lowering.zero_grad_seen:
        raise Decline(CODE, "zero_grad() is called twice per batch", statement)
    builder.lowering.zero_grad_seen = True
    builder.consume(statement)
    if binding.kind is Kind.OPTIMIZER and not call.args:
        return True
    if binding.kind is Kind.OPTIMIZER:
        replacement = cst.parse_statement(f"optimizer.{code(call.func.attr)}({_args(call)})")
    else:
        replacement = builder.lowering.move([statement], set())[0]
    builder.lowering.plan.add_method(
        Method("optimizer_zero_grad", "self, epoch, batch_idx, optimizer", [replacement])
    )
    return True


def check(lowering) -> None:
    """A loop without zero_grad accumulates gradients across batches (LFY005 decides
    whether it does so in windows Lightning can reproduce); under manual optimization the
    script's own zero_grad calls run where they are."""
    if lowering.plan.manual_optimization:
        return
    body = lowering.program.train.body
    if not any(
        ((m := method_call(s)) is not None and m[1] == "zero_grad") or is_window_step(s, lowering)
        for s in body
    ):
        raise Decline(
            "LFY005",
            "the batch loop does not call zero_grad() on every batch (gradient "
            "accumulation); lightify leaves it as it is",
            lowering.program.train.loop,
        )


def _args(call: cst.Call) -> str:
    return ", ".join(code(a).rstrip(", ") for a in call.args)


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
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1e-4)
for epoch in range(2):
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)
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
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1, weight_decay=1e-4)
        return optimizer

    def optimizer_zero_grad(self, epoch, batch_idx, optimizer):
        optimizer.zero_grad(set_to_none=False)


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1)
trainer.fit(LitModel(model), loader)
""",
        codes=("LFY400",),
    ),
]
