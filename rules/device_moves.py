"""LFY501: device moves are removed and the device choice becomes the Trainer's accelerator."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Kind
from lightify.analyze.nodes import code, dotted_name, method_call
from lightify.rule import Example

CODE = "LFY501"
SUMMARY = "Device moves go; the script's device choice becomes accelerator=, with devices=1"
ORDER = 60  # build order: see lightify.lower
DOC = """\
## What it does
Removes `x.to(device)`, `.cuda()`, `{k: v.to(device) ...}` and `model.to(device)`
(Lightning moves the module and every batch), and mirrors the script's device
choice in the Trainer: `accelerator="cuda" if torch.cuda.is_available() else "cpu"`,
always with `devices=1` (the default "auto" would start DDP on every GPU).

## Why
Moving a tensor to the device it is already on changes nothing, so the losses
are identical; keeping both would move twice.

## Example
```python
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
x, y = x.to(device), y.to(device)
```

## Use instead
```python
L.Trainer(accelerator="cuda" if torch.cuda.is_available() else "cpu", devices=1)
```

## Fix safety
Safe. `.to(dtype)` and other conversions stay.
"""


def device_names(program) -> set[str]:
    return {b.name for b in program.bindings.values() if b.kind is Kind.DEVICE}


class _StripMoves(cst.CSTTransformer):
    def __init__(self, devices: set[str]) -> None:
        self.devices = devices

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        func = updated_node.func
        if not isinstance(func, cst.Attribute):
            return updated_node
        if func.attr.value == "cuda" and not updated_node.args:
            return func.value
        if func.attr.value == "to" and self._is_device_move(updated_node):
            return func.value
        return updated_node

    def _is_device_move(self, call: cst.Call) -> bool:
        positional = [a for a in call.args if a.keyword is None]
        keywords = {a.keyword.value for a in call.args if a.keyword is not None}
        if not positional or not keywords <= {"non_blocking"} or len(positional) != 1:
            return (
                len(positional) == 0
                and keywords <= {"device", "non_blocking"}
                and "device" in keywords
            )
        target = positional[0].value
        if dotted_name(target) in self.devices:
            return True
        return isinstance(target, cst.SimpleString) and target.evaluated_value in {"cuda", "cpu"}


def transform(statement: cst.BaseStatement, lowering) -> cst.BaseStatement:
    return statement.visit(_StripMoves(device_names(lowering.program)))


def build(lowering) -> None:
    program = lowering.program
    plan = lowering.plan
    devices = device_names(program)
    stripper = _StripMoves(devices)
    for binding in program.bindings.values():
        if binding.kind is Kind.MODULE and binding.line in program.block:
            new = binding.line.visit(stripper)
            if not new.deep_equals(binding.line):
                plan.replaced[binding.line] = new
    for statement in program.block:
        found = method_call(statement)
        if found and found[1] in {"to", "cuda"} and _is_module(program, found[0]):
            if statement.visit(stripper).deep_equals(statement) and found[1] == "to":
                continue
            plan.removed.add(statement)
    plan.trainer_kwargs["accelerator"] = _accelerator(lowering, devices - lowering.rank_devices)
    plan.trainer_kwargs["devices"] = cst.Integer("1")
    for name in devices:
        plan.removable.add(program.bindings[name].line)


def _is_module(program, name: str) -> bool:
    binding = program.bindings.get(name)
    return binding is not None and binding.kind is Kind.MODULE


def _accelerator(lowering, devices: set[str]) -> cst.BaseExpression:
    """The script's own device condition, with "cuda"/"cpu" as Lightning accelerator names."""
    program = lowering.program
    if not devices:
        return cst.SimpleString('"cpu"')
    chosen = {code(_accelerator_of(lowering, program.bindings[name].value)) for name in devices}
    if len(chosen) > 1:
        raise Decline(CODE, "the script chooses its device in several ways", program.epoch.node)
    return cst.parse_expression(chosen.pop())


def _accelerator_of(lowering, value: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(value, cst.Call):
        qual = lowering.index.imports.qualify(value.func) or ""
        if qual == "torch.accelerator.current_accelerator":
            return cst.SimpleString('"auto"')
        if qual == "torch.device" and len(value.args) == 1:
            return _accelerator_of(lowering, value.args[0].value)
    if isinstance(value, cst.IfExp):
        body = _accelerator_of(lowering, value.body)
        orelse = _accelerator_of(lowering, value.orelse)
        if body.deep_equals(orelse):
            return body
        return value.with_changes(body=body, orelse=orelse)
    if isinstance(value, cst.SimpleString):
        kind, _, ordinal = str(value.evaluated_value).partition(":")
        if ordinal in ("", "0") and kind in {"cuda", "cpu", "mps"}:
            return cst.SimpleString(f'"{kind}"')
    raise Decline(
        CODE,
        f"lightify cannot tell which accelerator `{code(value)}` selects",
        value,
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
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
model = nn.Linear(4, 2).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
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

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
trainer = L.Trainer(
    max_epochs=2,
    accelerator="cuda" if torch.cuda.is_available() else "cpu",
    devices=1,
)
trainer.fit(LitModel(model), loader)
""",
        codes=("LFY400",),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
device = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else "cpu"
model = nn.Linear(4, 2)
if torch.cuda.is_available():
    model.cuda()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x.to(device)), y.to(device))
        loss.backward()
        optimizer.step()
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

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
if torch.cuda.is_available():
    model.cuda()
trainer = L.Trainer(
    max_epochs=2,
    accelerator="auto" if torch.accelerator.is_available() else "cpu",
    devices=1,
)
trainer.fit(LitModel(model), loader)
""",
        codes=("LFY400",),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
device = torch.device(f"cuda:{rank}")
model = nn.Linear(4, 2).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x.to(device)), y.to(device))
        loss.backward()
        optimizer.step()
""",
        after=None,
        codes=("LFY501",),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
use_accel = torch.accelerator.is_available()
if use_accel:
    device = torch.accelerator.current_accelerator()
else:
    device = torch.device("cpu")
model = nn.Linear(4, 2).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(1, 3):
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
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

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
use_accel = torch.accelerator.is_available()
model = nn.Linear(4, 2)
trainer = L.Trainer(max_epochs=2, accelerator="auto" if use_accel else "cpu", devices=1)
trainer.fit(LitModel(model), loader)
""",
        codes=("LFY400",),
    ),
]
