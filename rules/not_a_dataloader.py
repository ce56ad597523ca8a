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

EXAMPLES: list[Example] = []
