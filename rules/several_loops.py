"""LFY003: Several training loops in one file: the file is left as it is."""

from __future__ import annotations

from lightify.rule import Example

CODE = "LFY003"
SUMMARY = "Several training loops in one file: the file is left as it is"
DOC = """\
## What it does
Reports a file with more than one loop that calls backward() (pre-training then
fine-tuning, or two models).

## Why
A LightningModule and a Trainer describe one training program; choosing which loop
to convert is a human's call.

## Example
```python
for x, y in pretrain_loader: ...
for x, y in finetune_loader: ...
```

## Use instead
Split the script, one training program per file, then convert each.

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
for epoch in range(1):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
""",
        after=None,
        codes=("LFY003",),
    ),
]
