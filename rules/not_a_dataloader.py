"""LFY301: The loop does not iterate a DataLoader: left as it is."""

from __future__ import annotations

from lightify.rule import Example

CODE = "LFY301"
SUMMARY = "The loop does not iterate a DataLoader: left as it is"
DOC = """\
## What it does
Reports a training loop over a generator, a list, or anything that is not a
`torch.utils.data.DataLoader` built in the script.

## Why
Lightning iterates DataLoaders; for other iterables it cannot promise the same
batches in the same order with the same random draws.

## Example
```python
for x, y in batches(data):
```

## Use instead
Wrap the data in a Dataset and a DataLoader, then convert.

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

def batches(n):
    for _ in range(n):
        yield torch.randn(16, 4), torch.randint(0, 2, (16,))


model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in batches(4):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
""",
        after=None,
        codes=("LFY301",),
    ),
]
