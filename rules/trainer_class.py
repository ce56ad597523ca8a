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

EXAMPLES: list[Example] = []
