"""LFY404: hand-written trainers: one run_epoch for both passes converts; trainer classes stay."""

from __future__ import annotations

from lightify.rule import Example

CODE = "LFY404"
SUMMARY = "A hand-written trainer: run_epoch(..., optimizer=None) converts; a trainer class stays"
DOC = """\
## What it does
A function that trains when it is given an optimizer and evaluates when it is not
(`def run_epoch(model, loader, optimizer=None)`, choosing with `if optimizer is not
None:`, `train = optimizer is not None`, `model.train(train)`,
`torch.set_grad_enabled(train)`) is split per call: the call that passes the
optimizer becomes `training_step`, the calls that pass `None` (or leave it out)
become `validation_step` or `test_step`, exactly as two separate functions would.
Each call gets a copy of the function with what it passes folded into those
conditions (`model.train(False)` → `model.eval()`, `set_grad_enabled(False)` →
evaluation without gradients); the function is removed once no call needs it.

Declined, with the call or use it concerns: a call that passes something else for
the tested parameter (`optimizer if epoch else None`), a use other than a call
statement (`print(run_epoch(...))`, `return run_epoch(...)`), or a call that stays
after the conversion (not a training, validation or test pass).

A training loop in a method of a class (`class Trainer: def train_epoch(self):
...`, a `fit(self, epochs)` holding the epoch loop) is left as it is: its state
lives on `self`, and which attributes the script reads afterwards
(`trainer.history`) decides what a conversion must keep.

## Why
Lightning calls `training_step` and `validation_step` separately; one function
with a run-time branch has to become two, and each must run exactly the statements
its call ran. Folding only conditions the call decides (None, or a name bound to a
built optimizer, model or DataLoader) keeps that exact.

## Example
```python
def run_epoch(model, loader, optimizer=None):
    train = optimizer is not None
    model.train(train)
    with torch.set_grad_enabled(train):
        for x, y in loader: ...

for epoch in range(2):
    run_epoch(model, train_loader, optimizer)
    val_loss = run_epoch(model, val_loader)
```

## Use instead
The LightningModule and Trainer the conversion writes. For a trainer class: move
the loop into functions (`train_one_epoch(model, loader, optimizer)`), or write the
LightningModule by hand.

## Fix safety
Safe: the specialised passes run the statements the script ran, in its order
(`fixtures/run_epoch_unified` trains bit-identically). Declined cases and trainer
classes leave the file unchanged, with this finding. Raised by the analysis in
`lightify.analyze.specialize` and `lightify.analyze.program`.
"""

EXAMPLES = [
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

train_loader = DataLoader(TensorDataset(torch.randn(64, 4), torch.randint(2, (64,))), batch_size=16)
val_loader = DataLoader(TensorDataset(torch.randn(32, 4), torch.randint(2, (32,))), batch_size=16)


def run_epoch(model, loader, optimizer=None):
    train = optimizer is not None
    model.train(train)
    total = 0.0
    with torch.set_grad_enabled(train):
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            if train:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            total += loss.item() * len(y)
    return total / len(loader.dataset)


model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    run_epoch(model, train_loader, optimizer)
    val_loss = run_epoch(model, val_loader)
""",
        after="""\
import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class LitModel(L.LightningModule):
    def __init__(self, model):
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("val_loss", loss, batch_size=len(y), prog_bar=True)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


train_loader = DataLoader(TensorDataset(torch.randn(64, 4), torch.randint(2, (64,))), batch_size=16)
val_loader = DataLoader(TensorDataset(torch.randn(32, 4), torch.randint(2, (32,))), batch_size=16)


model = nn.Linear(4, 2)
trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1)
trainer.fit(LitModel(model), train_loader, val_loader)
model.eval()
""",
        codes=("LFY400",),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

train_loader = DataLoader(TensorDataset(torch.randn(64, 4), torch.randint(2, (64,))), batch_size=16)
val_loader = DataLoader(TensorDataset(torch.randn(32, 4), torch.randint(2, (32,))), batch_size=16)


def run_epoch(model, loader, optimizer=None):
    train = optimizer is not None
    model.train(train)
    total = 0.0
    with torch.set_grad_enabled(train):
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            if train:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            total += loss.item() * len(y)
    return total / len(loader.dataset)


model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    run_epoch(model, train_loader, optimizer)
    val_loss = run_epoch(model, val_loader, optimizer if epoch else None)
""",
        after=None,
        codes=("LFY404",),
    ),
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
