"""LFY302: A DataLoader over an IterableDataset: left as it is."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.rule import Example

ITERABLE = {"torch.utils.data.IterableDataset", "torch.utils.data.dataset.IterableDataset"}

CODE = "LFY302"
SUMMARY = "A DataLoader over an IterableDataset: left as it is"
DOC = """\
## What it does
Reports a training loop whose DataLoader wraps an `IterableDataset` (a loader
without `len()`).

## Why
Lightning prefetches one batch ahead for loaders without `len()`; random data made
in the main process would then be drawn in another order (DESIGN §5.3).

## Example
```python
loader = DataLoader(StreamDataset(), batch_size=32)
```

## Use instead
A map-style Dataset with `__len__`, or keep the raw loop.

## Fix safety
Not fixed: the file is left unchanged, with this finding on the line.
"""

EXAMPLES = [
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset

class Stream(IterableDataset):
    def __iter__(self):
        for _ in range(64):
            yield torch.randn(4), torch.randint(0, 2, ())


loader = DataLoader(Stream(), batch_size=16)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
""",
        after=None,
        codes=("LFY302",),
    ),
]


def check(lowering) -> None:
    program = lowering.program
    passes = [p for p in (program.train, program.validation, program.test) if p is not None]
    for found in passes:
        loader = program.bindings[found.loader]
        if _is_iterable(lowering, _dataset_of(loader.value), program):
            raise Decline(
                CODE,
                f"`{found.loader}` loads an IterableDataset (no len()); Lightning would fetch "
                "batches ahead and change the order of random draws",
                loader.line,
            )


def _dataset_of(value: cst.BaseExpression) -> cst.BaseExpression | None:
    if not isinstance(value, cst.Call):
        return None
    for arg in value.args:
        if arg.keyword is None or arg.keyword.value == "dataset":
            return arg.value
    return None


def _is_iterable(lowering, dataset, program) -> bool:
    if isinstance(dataset, cst.Name) and dataset.value in program.bindings:
        dataset = program.bindings[dataset.value].value
    if not isinstance(dataset, cst.Call) or not isinstance(dataset.func, cst.Name):
        return False
    node = lowering.index.classes.get(dataset.func.value)
    if node is None:
        return False
    return any(lowering.index.imports.qualify(base.value) in ITERABLE for base in node.bases)
