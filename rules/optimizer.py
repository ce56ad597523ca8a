"""LFY201: the optimizer moves into ``configure_optimizers`` with the script's own arguments."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Binding, Kind
from lightify.analyze.nodes import call_of, names_in, only_small, stmt
from lightify.into_module import bound_names
from lightify.plan import Method
from lightify.rule import Example

CODE = "LFY201"
SUMMARY = "The optimizer moves into configure_optimizers, with the script's parameter expression"
ORDER = 20  # build order: see lightify.lower
DOC = """\
## What it does
Moves `optimizer = torch.optim.X(params, ...)` (and the statements that build
its parameter groups) into `configure_optimizers`, keeping the parameter
expression exactly: `self.model.parameters()`, `itertools.chain(...)`, groups.
Values the arguments read (`args.lr`, `cfg.weight_decay`) become constructor
arguments of the LightningModule, saved as hyperparameters.

## Why
`self.parameters()` would add the parameters of every other module the
LightningModule holds (a criterion with weights) and change their order, and so
the optimizer state; the script's own expression trains the same parameters.

## Example
```python
optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
```

## Use instead
```python
def configure_optimizers(self):
    optimizer = torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=0.9)
    return optimizer
```

A loop without any optimizer that updates the parameters itself after backward()
(`with torch.no_grad(): for p in model.parameters(): p -= lr * p.grad`, then
`model.zero_grad()`) becomes manual optimization that keeps those statements
(`model` → `self.model`), and `configure_optimizers` returns None, which Lightning
accepts with a warning ("this fit will run with no optimizer").

## Fix safety
Safe. Declined (LFY201) when the optimizer is used outside the training loop,
for example saved with `optimizer.state_dict()`, or when the loop has neither an
optimizer nor updates of its own.
"""


def optimizer_binding(program) -> Binding:
    found = [b for b in program.bindings.values() if b.kind is Kind.OPTIMIZER]
    return found[0]


def updated_by_hand(lowering) -> cst.BaseStatement | None:
    """The first statement after backward() that reads gradients (``p -= lr * p.grad``): a
    loop without an optimizer that updates its parameters itself."""
    backward = False
    for statement in lowering.program.train.body:
        call = call_of(statement)
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute):
            backward |= call.func.attr.value == "backward"
        if backward and _reads_grad(statement):
            return statement
    return None


def _reads_grad(node: cst.CSTNode) -> bool:
    class _Grad(cst.CSTVisitor):
        hit = False

        def visit_Attribute(self, node: cst.Attribute) -> None:
            _Grad.hit |= node.attr.value == "grad"

    node.visit(_Grad())
    return _Grad.hit


def build(lowering) -> None:
    """Several optimizers (manual optimization) are returned in the order the script made them;
    none (updates written by hand) is ``return None``, which Lightning accepts with a warning."""
    program = lowering.program
    optimizers = [b for b in program.bindings.values() if b.kind is Kind.OPTIMIZER]
    if not optimizers:
        lowering.plan.add_method(
            Method("configure_optimizers", "self", [stmt("return None  # updated by hand")])
        )
        lowering.note(
            CODE,
            "no torch.optim optimizer: the loop's own parameter updates stay in training_step "
            "under manual optimization and configure_optimizers returns None",
            updated_by_hand(lowering),
        )
        return
    lines: list[cst.SimpleStatementLine] = []
    for optimizer in optimizers:
        for line in [*_parameter_statements(program, optimizer), optimizer.line]:
            if line not in lines:
                lines.append(line)
    hoisted = [hoist_arguments(line, lowering, program) for line in lines]
    moved = lowering.move(hoisted, bound_names(lines))
    lowering.plan.moved.update(lines)
    names = [cst.Element(cst.Name(optimizer.name)) for optimizer in optimizers]
    returned = names[0].value if len(names) == 1 else cst.Tuple(names, lpar=[], rpar=[])
    ret = cst.SimpleStatementLine([cst.Return(returned)])
    lowering.plan.add_method(Method("configure_optimizers", "self", [*moved, ret]))


def _parameter_statements(program, optimizer: Binding) -> list[cst.SimpleStatementLine]:
    """Statements before the optimizer that only build its parameter lists."""
    needed = names_in(optimizer.value)
    found: list[cst.SimpleStatementLine] = []
    for line in reversed(
        program.block[: program.block.index(optimizer.line)]
        if optimizer.line in program.block
        else []
    ):
        small = only_small(line)
        if not isinstance(small, cst.Assign) or len(small.targets) != 1:
            continue
        target = small.targets[0].target
        if (
            isinstance(target, cst.Name)
            and target.value in needed
            and _reads_parameters(small.value)
        ):
            found.insert(0, line)
            needed |= names_in(small.value)
    return found


def _reads_parameters(value: cst.BaseExpression) -> bool:
    class _Params(cst.CSTVisitor):
        hit = False

        def visit_Attribute(self, node: cst.Attribute) -> None:
            if node.attr.value in {"parameters", "named_parameters"}:
                _Params.hit = True

    value.visit(_Params())
    return _Params.hit


def hoist_arguments(line: cst.SimpleStatementLine, lowering, program) -> cst.SimpleStatementLine:
    """Keyword values computed from the program's names become constructor arguments."""

    class _Hoist(cst.CSTTransformer):
        def leave_Arg(self, original_node: cst.Arg, updated_node: cst.Arg) -> cst.Arg:
            if original_node.keyword is None or not _computed(original_node.value, program):
                return updated_node
            name = lowering.plan.hparam(original_node.keyword.value, original_node.value)
            return updated_node.with_changes(value=cst.Attribute(cst.Name("self"), cst.Name(name)))

    return line.visit(_Hoist())


def _computed(value: cst.BaseExpression, program) -> bool:
    """An expression over program values (not a literal, not a bare name or config field)."""
    if isinstance(value, cst.Name | cst.Attribute | cst.Integer | cst.Float | cst.SimpleString):
        return False
    names = names_in(value)
    kinds = {program.bindings[n].kind for n in names if n in program.bindings}
    return bool(kinds) and not kinds & {Kind.MODULE, Kind.OPTIMIZER, Kind.SCHEDULER, Kind.DEVICE}


def check(lowering) -> None:
    optimizers = [b for b in lowering.program.bindings.values() if b.kind is Kind.OPTIMIZER]
    if not optimizers and not lowering.plan.manual_optimization:
        raise Decline(
            "LFY201",
            "no `torch.optim` optimizer is created in the program's scope; lightify needs "
            "one to write configure_optimizers",
            lowering.program.train.loop,
        )


EXAMPLES = [
    Example(
        before="""\
import itertools

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
encoder = nn.Linear(4, 8)
head = nn.Linear(8, 2)
optimizer = torch.optim.Adam(itertools.chain(encoder.parameters(), head.parameters()), lr=1e-3)
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(head(encoder(x)), y)
        loss.backward()
        optimizer.step()
""",
        after="""\
import itertools

import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class LitModel(L.LightningModule):
    def __init__(self, encoder, head):
        super().__init__()
        self.save_hyperparameters(ignore=["encoder", "head"])
        self.encoder = encoder
        self.head = head

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.head(self.encoder(x)), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(
            itertools.chain(self.encoder.parameters(), self.head.parameters()),
            lr=1e-3,
        )
        return optimizer


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
encoder = nn.Linear(4, 8)
head = nn.Linear(8, 2)
trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1)
trainer.fit(LitModel(encoder, head), loader)
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
model = nn.Linear(4, 2)
for epoch in range(2):
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-0.1)
        model.zero_grad()
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
        self.automatic_optimization = False
        self.save_hyperparameters(ignore=["model"])
        self.model = model

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.manual_backward(loss)
        with torch.no_grad():
            for p in self.model.parameters():
                p.add_(p.grad, alpha=-0.1)
        self.model.zero_grad()
        self.log("loss", loss)

    def configure_optimizers(self):
        return None  # updated by hand


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1)
trainer.fit(LitModel(model), loader)
""",
        codes=("LFY201", "LFY400"),
    ),
]
