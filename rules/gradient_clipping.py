"""LFY004: Gradient clipping: the loop is left as it is."""

from __future__ import annotations

from lightify.analyze.declines import Decline
from lightify.analyze.usage import first_use
from lightify.rule import Example

CODE = "LFY004"
SUMMARY = "Gradient clipping: the loop is left as it is"
APIS = frozenset(
    {
        "torch.nn.utils.clip_grad_norm_",
        "torch.nn.utils.clip_grad_value_",
        "torch.nn.utils.clip_grad.clip_grad_norm_",
    }
)
DOC = """\
## What it does
Reports a training script that uses clip_grad_norm_ or clip_grad_value_, and leaves
its loop unchanged.

## Why
Clipping all parameters with norm 2 maps to `gradient_clip_val`, but a subset of
parameters or another norm type needs `configure_gradient_clipping`; the conversion
must tell them apart.

## Example
```python
torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
```

## Use instead
`L.Trainer(gradient_clip_val=1.0)`.

## Fix safety
Not fixed yet: the file is left unchanged, with this finding on the line.
"""


def check(lowering) -> None:
    node = first_use(lowering.index, APIS)
    if node is not None:
        raise Decline(
            CODE, "gradient clipping is not converted yet; the loop is left as it is", node
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
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
""",
        after=None,
        codes=("LFY004",),
    ),
]
