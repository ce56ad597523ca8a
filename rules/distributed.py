"""LFY006: Distributed training code: the loop is left as it is."""

from __future__ import annotations

from lightify.analyze.declines import Decline
from lightify.analyze.usage import first_use
from lightify.rule import Example

CODE = "LFY006"
SUMMARY = "Distributed training code: the loop is left as it is"
APIS = frozenset(
    {
        "torch.distributed.init_process_group",
        "torch.multiprocessing.spawn",
        "torch.nn.parallel.DistributedDataParallel",
        "torch.nn.DataParallel",
        "torch.nn.parallel.DataParallel",
        "torch.utils.data.distributed.DistributedSampler",
        "torch.utils.data.DistributedSampler",
    }
)
DOC = """\
## What it does
Reports a training script that uses DDP, DataParallel, DistributedSampler or
mp.spawn, and leaves its loop unchanged.

## Why
Lightning is the distributed engine: the home-made launcher, wrappers and samplers
must go together, with `strategy="ddp"` and `devices=`.

## Example
```python
model = DistributedDataParallel(model, device_ids=[rank])
```

## Use instead
`L.Trainer(strategy="ddp", devices=N)`.

## Fix safety
Not fixed yet: the file is left unchanged, with this finding on the line.
"""


def check(lowering) -> None:
    node = first_use(lowering.index, APIS)
    if node is not None:
        raise Decline(
            CODE, "distributed training code is not converted yet; the loop is left as it is", node
        )


EXAMPLES = [
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
sampler = DistributedSampler(data, num_replicas=1, rank=0)
loader = DataLoader(data, batch_size=16, sampler=sampler)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    sampler.set_epoch(epoch)
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
""",
        after=None,
        codes=("LFY006",),
    ),
]
