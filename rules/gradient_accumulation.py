"""LFY005: Gradient accumulation or an unusual update: the loop is left as it is."""

from __future__ import annotations

from lightify.rule import Example

CODE = "LFY005"
SUMMARY = "Gradient accumulation or an unusual update: the loop is left as it is"
DOC = """\
## What it does
Reports a batch loop that does not call zero_grad(), backward() and step() exactly
once per batch in that order: gradient accumulation, several backward calls, a
conditional step.

## Why
Lightning's `accumulate_grad_batches` divides the loss and also steps on the last
batch of every epoch; a raw `(i + 1) % N == 0` loop does neither, so mapping it
blindly changes every update.

## Example
```python
loss.backward()
if (i + 1) % 4 == 0:
    optimizer.step()
    optimizer.zero_grad()
```

## Use instead
Manual optimization that repeats the script's schedule, or `accumulate_grad_batches`
when the script divides the loss and steps at the end of every epoch.

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
    for i, (x, y) in enumerate(loader):
        loss = F.cross_entropy(model(x), y) / 4
        loss.backward()
        if (i + 1) % 4 == 0:
            optimizer.step()
            optimizer.zero_grad()
""",
        after=None,
        codes=("LFY005",),
    ),
]
