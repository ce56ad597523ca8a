"""LFY403: A statement in or around the loop has no Lightning equivalent: left as it is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightify.analyze.declines import Decline
from lightify.rule import Example

if TYPE_CHECKING:
    from lightify.lower import Lowering

CODE = "LFY403"
SUMMARY = "A statement in or around the loop has no Lightning equivalent: left as it is"
DOC = """\
## What it does
Reports a statement that lightify would have to drop or move to a place where it
runs at another time: code after backward() that reads the model, a statement in the
epoch loop it does not know, the optimizer used after training, a variable named
`self` (the LightningModule's own name).

## Why
Lightning decides when code runs (a step, an epoch's end, a hook); a statement with
no known place would have to be dropped or run at another moment, and the
converted script would train or save differently.

## Example
```python
for epoch in range(10):
    train(...)
    history.append(model.fc.weight.norm().item())
```

## Use instead
Move the statement into a Lightning hook or callback by hand (here: `on_train_epoch_end`).

## Fix safety
Not fixed: the file is left unchanged, with this finding on the line. Raised by
the analysis in `lightify.analyze.program`.
"""

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
history = []
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    history.append(model.weight.norm().item())
""",
        after=None,
        codes=("LFY403",),
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
for self in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        print(self, loss.item())
""",
        after=None,
        codes=("LFY403",),
    ),
]


def check(lowering: Lowering) -> None:
    """A script variable named ``self`` would be confused with the LightningModule itself."""
    program = lowering.program
    binding = program.bindings.get("self")
    if program.epoch.epoch_var == "self" or binding is not None:
        node = binding.line if binding is not None else program.epoch.node
        raise Decline(
            CODE,
            "the script has a variable named `self`, which would clash with the "
            "LightningModule's own `self`; rename it, then convert",
            node,
        )
