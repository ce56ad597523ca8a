"""LFY000: the conversion produced invalid code; the file is left as it was."""

from __future__ import annotations

from lightify.rule import Example

CODE = "LFY000"
SUMMARY = "Internal error: the conversion produced invalid code, so the file is left as it is"
DOC = """\
## What it does
Reports a file whose conversion did not parse or compile. lightify checks every
output before it shows or writes it; when a rule got something wrong, the file
stays exactly as it was and this finding says so.

## Why
lightify never writes a file that does not parse.

## Example
```python
self = Net()  # a variable named like the method receiver
```

## Use instead
Nothing to change in your script; please report the file so the rule can be fixed.

## Fix safety
Not fixed: the file is left unchanged.
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
self = nn.Linear(4, 2)
optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(self(x), y)
        loss.backward()
        optimizer.step()
""",
        after=None,
        codes=("LFY000",),
    ),
]
