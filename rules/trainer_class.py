"""LFY404: A hand-written trainer class: left as it is."""

from __future__ import annotations

from lightify.rule import Example

CODE = "LFY404"
SUMMARY = "A hand-written trainer class: left as it is"
DOC = """\
## What it does
Reports a training loop written as a method of a class (`class Trainer: def
train_epoch(self): ...`).

## Why
The state lives on the class's attributes; carrying it into a LightningModule needs
the trainer-class conversion, which is not implemented yet.

## Example
```python
class Trainer:
    def train_epoch(self):
        for x, y in self.loader: ...
```

## Use instead
A LightningModule by hand, or wait for the trainer-class rule.

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
class Trainer:
    def __init__(self, model, loader):
        self.model = model
        self.loader = loader
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def train_epoch(self):
        for x, y in self.loader:
            self.optimizer.zero_grad()
            loss = F.cross_entropy(self.model(x), y)
            loss.backward()
            self.optimizer.step()


trainer = Trainer(nn.Linear(4, 2), loader)
for epoch in range(2):
    trainer.train_epoch()
""",
        after=None,
        codes=("LFY404",),
    ),
]
