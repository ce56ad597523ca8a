"""LFY001: several optimizers (GANs) need manual optimization; left as they are for now."""

from __future__ import annotations

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Kind
from lightify.rule import Example

CODE = "LFY001"
SUMMARY = "Several optimizers: the loop is left as it is"
DOC = """\
## What it does
Reports a training program that creates more than one `torch.optim` optimizer.

## Why
Automatic optimization steps one optimizer per `training_step` in Lightning's
own order; a GAN's discriminator and generator updates need manual optimization
to keep the script's order of backward and step calls exactly.

## Example
```python
opt_g = torch.optim.Adam(gen.parameters())
opt_d = torch.optim.Adam(disc.parameters())
```

## Use instead
A LightningModule with `self.automatic_optimization = False` that calls
`self.manual_backward` and each optimizer's `step()` in the script's order.

## Fix safety
Not fixed: the file is left unchanged.
"""


def check(lowering) -> None:
    optimizers = [b for b in lowering.program.bindings.values() if b.kind is Kind.OPTIMIZER]
    if len(optimizers) > 1:
        raise Decline(
            CODE,
            f"the program creates {len(optimizers)} optimizers "
            f"({', '.join(b.name for b in optimizers)}); lightify converts single-optimizer loops",
            optimizers[1].line,
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
generator = nn.Linear(4, 4)
critic = nn.Linear(4, 1)
opt_g = torch.optim.Adam(generator.parameters())
opt_c = torch.optim.Adam(critic.parameters())
for epoch in range(2):
    for x, _ in loader:
        opt_c.zero_grad()
        critic(generator(x).detach()).mean().backward()
        opt_c.step()
        opt_g.zero_grad()
        (-critic(generator(x)).mean()).backward()
        opt_g.step()
""",
        after=None,
        codes=("LFY001",),
    ),
]
