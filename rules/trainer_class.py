"""LFY404: hand-written trainers: one run_epoch for both passes, trainer classes."""

from __future__ import annotations

from lightify.rule import Example

CODE = "LFY404"
SUMMARY = "A hand-written trainer (run_epoch(..., optimizer=None), a Trainer class) is unpacked"
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

A hand-written trainer class (`class Trainer:` with `__init__` storing the model,
optimizer and loaders on `self`, `train_epoch`/`validate` methods holding the batch
loops, and either a `fit(self, epochs)` method holding the epoch loop or the
script's own epoch loop calling `trainer.train_epoch()`) is unpacked first: every
`self.<attr>` stands for what the instantiation passed (`self.model` → `model`) or
for an object `__init__` builds, which is built where the script created the
trainer (`criterion = nn.CrossEntropyLoss()`, `history = []`, in `__init__`'s
order); the methods become functions taking the attributes they read, the method
holding the epoch loop is inlined where the script called it, and
`trainer.history` after `fit` reads the script's `history`, the very list the
LightningModule appends to. The class docstring goes before the LightningModule,
`fit`'s before the Trainer call.

Declined, naming what blocks it: a base class, a decorator, a class attribute, a
property or another dunder method; a subclass; a second instance or another use of
the class; the instance passed to a function, stored, assigned to or used outside
the scope that created it; an `__init__` that does more than store values once each;
a method other than the epoch loop's that sets an attribute; the epoch loop's
method reassigning an attribute that stands for something the script passed, or
returning, or called twice or from another method; a name passed to the trainer
rebound after it was created; a local of the inlined method that the script
already uses; a default computed where the class is defined.

## Why
Lightning calls `training_step` and `validation_step` separately; one function
with a run-time branch has to become two, and each must run exactly the statements
its call ran. Folding only conditions the call decides (None, or a name bound to a
built optimizer, model or DataLoader) keeps that exact. A trainer class keeps the
loop's state on `self`, where Lightning splits it between the LightningModule and
the Trainer; reading each attribute as the one value of the script it stands for
keeps every statement working on the same objects, in the same order.

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

```python
class Trainer:
    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer
        self.history = []

    def train_epoch(self): ...     # the batch loop
    def validate(self): ...        # returns the validation loss

    def fit(self, epochs):
        for epoch in range(epochs):
            self.train_epoch()
            val_loss = self.validate()
            self.history.append(val_loss)

trainer = Trainer(model, optimizer)
trainer.fit(2)
print(trainer.history)
```

## Use instead
The LightningModule and Trainer the conversion writes. For a declined trainer
class: keep one instance used through its methods, set attributes in `__init__`
(or in the method holding the epoch loop), or move the loops into functions
(`train_one_epoch(model, loader, optimizer)`).

## Fix safety
Safe: the specialised passes run the statements the script ran, in its order
(`fixtures/run_epoch_unified` trains bit-identically), and an unpacked trainer
class runs its statements with the same objects at the same points
(`fixtures/trainer_class`, `fixtures/trainer_class_scheduler`). Declined cases
leave the file unchanged, with this finding. Raised by the analysis in
`lightify.analyze.specialize` and `lightify.analyze.trainer_class`.
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

train_loader = DataLoader(TensorDataset(torch.randn(64, 4), torch.randint(2, (64,))), batch_size=16)
val_loader = DataLoader(TensorDataset(torch.randn(32, 4), torch.randint(2, (32,))), batch_size=16)


class Trainer:
    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer
        self.history = []

    def train_epoch(self):
        self.model.train()
        for x, y in train_loader:
            self.optimizer.zero_grad()
            loss = F.cross_entropy(self.model(x), y)
            loss.backward()
            self.optimizer.step()

    @torch.no_grad()
    def validate(self):
        self.model.eval()
        total = 0.0
        for x, y in val_loader:
            total += F.cross_entropy(self.model(x), y).item() * len(y)
        return total / len(val_loader.dataset)

    def fit(self, epochs):
        for epoch in range(epochs):
            self.train_epoch()
            val_loss = self.validate()
            self.history.append(val_loss)


model = nn.Linear(4, 2)
trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1))
trainer.fit(2)
print(trainer.history)
""",
        after="""\
import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class LitModel(L.LightningModule):
    def __init__(self, model, history):
        super().__init__()
        self.save_hyperparameters(ignore=["model", "history"])
        self.model = model
        self.history = history

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("train_loss", loss)
        return loss

    def on_validation_epoch_start(self):
        self.total = 0.0

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.total += F.cross_entropy(self.model(x), y).item() * len(y)

    def on_validation_epoch_end(self):
        self.val_loss = self.total / len(self.trainer.val_dataloaders.dataset)
        self.log("val_loss", self.val_loss, prog_bar=True)

    def on_train_epoch_end(self):
        self.history.append(self.val_loss)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


train_loader = DataLoader(TensorDataset(torch.randn(64, 4), torch.randint(2, (64,))), batch_size=16)
val_loader = DataLoader(TensorDataset(torch.randn(32, 4), torch.randint(2, (32,))), batch_size=16)


model = nn.Linear(4, 2)
history = []
trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1)
trainer.fit(LitModel(model, history=history), train_loader, val_loader)
model.eval()
print(history)
""",
        codes=("LFY400", "LFY407"),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

loader = DataLoader(TensorDataset(torch.randn(64, 4), torch.randint(2, (64,))), batch_size=16)


class Trainer:
    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer

    def train_epoch(self):
        for x, y in loader:
            self.optimizer.zero_grad()
            loss = F.cross_entropy(self.model(x), y)
            loss.backward()
            self.optimizer.step()


def run(trainer, epochs):
    for epoch in range(epochs):
        trainer.train_epoch()


model = nn.Linear(4, 2)
run(Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1)), 2)
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

loader = DataLoader(TensorDataset(torch.randn(64, 4), torch.randint(2, (64,))), batch_size=16)


class Trainer:
    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer
        self.steps = 0

    def train_epoch(self):
        for x, y in loader:
            self.optimizer.zero_grad()
            loss = F.cross_entropy(self.model(x), y)
            loss.backward()
            self.optimizer.step()
            self.steps += 1


model = nn.Linear(4, 2)
trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1))
for epoch in range(2):
    trainer.train_epoch()
print(trainer.steps)
""",
        after=None,
        codes=("LFY404",),
    ),
    Example(
        before="""\
import argparse

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class Trainer:
    def __init__(self, model, optimizer, train_loader, weight):
        self.model = model
        self.optimizer = optimizer
        self.train_loader = train_loader
        self.weight = weight
        self.criterion = nn.CrossEntropyLoss()

    def train_epoch(self):
        self.model.train()
        for x, y in self.train_loader:
            self.optimizer.zero_grad()
            loss = self.criterion(self.model(x), y) * self.weight
            loss.backward()
            self.optimizer.step()

    def fit(self, epochs):
        for epoch in range(epochs):
            self.train_epoch()


parser = argparse.ArgumentParser()
parser.add_argument("--weight", type=float, default=1.0)
args = parser.parse_args()
torch.manual_seed(0)
x = torch.randn(64, 10)
y = (x[:, :3] * 2).argmax(dim=1)
train_loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
model = nn.Linear(10, 3)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
trainer = Trainer(model, optimizer, train_loader, args.weight)
args.weight = 3.0  # the trainer keeps 1.0; a conversion would read 3.0
trainer.fit(2)
""",
        after=None,
        codes=("LFY404",),
    ),
]
