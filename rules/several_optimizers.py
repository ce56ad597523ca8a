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


EXAMPLES: list[Example] = []
