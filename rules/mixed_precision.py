"""LFY002: Mixed precision: the loop is left as it is."""

from __future__ import annotations

from lightify.analyze.declines import Decline
from lightify.analyze.usage import first_use
from lightify.rule import Example

CODE = "LFY002"
SUMMARY = "Mixed precision: the loop is left as it is"
APIS = frozenset(
    {
        "torch.cuda.amp.GradScaler",
        "torch.amp.GradScaler",
        "torch.autocast",
        "torch.cuda.amp.autocast",
        "torch.amp.autocast",
        "torch.cpu.amp.autocast",
    }
)
DOC = """\
## What it does
Reports a training script that uses autocast or a GradScaler, and leaves its loop
unchanged.

## Why
Lightning's precision flag replaces both, but on CPU `16-mixed` silently becomes
bf16, which a CUDA-only script never ran; the mapping needs the script's condition.

## Example
```python
scaler.scale(loss).backward()
```

## Use instead
`L.Trainer(precision="16-mixed" if use_amp and torch.cuda.is_available() else
"32-true")`.

## Fix safety
Not fixed yet: the file is left unchanged, with this finding on the line.
"""


def check(lowering) -> None:
    node = first_use(lowering.index, APIS)
    if node is not None:
        raise Decline(
            CODE,
            "mixed precision (autocast, GradScaler) is not converted yet; the loop stays as it is",
            node,
        )


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
scaler = torch.amp.GradScaler("cuda", enabled=torch.cuda.is_available())
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        with torch.autocast("cuda", enabled=torch.cuda.is_available()):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
""",
        after=None,
        codes=("LFY002",),
    ),
]
