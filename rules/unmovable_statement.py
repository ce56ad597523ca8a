"""LFY403: A statement in or around the loop has no Lightning equivalent: left as it is."""

from __future__ import annotations

from lightify.rule import Example

CODE = "LFY403"
SUMMARY = "A statement in or around the loop has no Lightning equivalent: left as it is"
DOC = """\
## What it does
Reports a statement that lightify would have to drop or move to a place where it
runs at another time: code after backward() that reads the model, a statement in the
epoch loop it does not know, the optimizer used after training.

## Why
for epoch in range(10):
    train(...)
    torch.save(model.state_dict(), f"epoch{epoch}.pt")

## Example
```python
Move the statement into a Lightning hook or callback by hand (here: `ModelCheckpoint`).
```

## Use instead


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
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    torch.save(model.state_dict(), f"epoch{epoch}.pt")
""",
        after=None,
        codes=("LFY403",),
    ),
]
