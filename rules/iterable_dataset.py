"""LFY302: A DataLoader over an IterableDataset: left as it is."""

from __future__ import annotations

from lightify.rule import Example

CODE = "LFY302"
SUMMARY = "A DataLoader over an IterableDataset: left as it is"
DOC = """\
## What it does
Reports a training loop whose DataLoader wraps an `IterableDataset` (a loader without `len()`).

## Why
Lightning prefetches one batch ahead for loaders without `len()`; random data made in the main process would then be drawn in another order (DESIGN §5.3).

## Example
```python
loader = DataLoader(StreamDataset(), batch_size=32)
```

## Use instead
A map-style Dataset with `__len__`, or keep the raw loop.

## Fix safety
Not fixed: the file is left unchanged, with this finding on the line. Raised by
the analysis in `lightify.analyze.program`.
"""

EXAMPLES: list[Example] = []
