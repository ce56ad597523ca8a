"""LFY408: values a batch loop carries from batch to batch become LightningModule attributes."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Kind, Pass
from lightify.analyze.nodes import code, dotted_name, only_small, walk
from lightify.into_module import bound_names, read_first
from lightify.plan import RESERVED
from lightify.rule import Example

CODE = "LFY408"
SUMMARY = "State carried from batch to batch (an RNN's hidden state) becomes an attribute"
DOC = """\
## What it does
Finds values a batch loop takes from the code before it and carries from one
batch to the next: the hidden state of truncated backpropagation through time
(`hidden = model.init_hidden(bsz)` before the loop, `hidden =
repackage_hidden(hidden)` and `output, hidden = model(x, hidden)` in it), a
counter, a value computed once per pass. The value becomes an attribute of the
LightningModule (`self.hidden`): the statements that set it before the loop
move into `on_train_epoch_start` (`on_validation_epoch_start`,
`on_test_epoch_start` for an evaluation pass, which keeps its own state as the
script does), and the loop's statements read and rebind `self.hidden` in the
step, in their order.

Lightning calls `on_train_epoch_start` before the epoch's first
`training_step` (`FitLoop.on_advance_start`, `loops/fit_loop.py`), and
`on_validation_epoch_start` before the pass's first `validation_step`
(`_EvaluationLoop.on_run_start`, `loops/evaluation_loop.py`), the sanity check
included: the state is set afresh exactly where the script sets it. The first
epoch's `iter(train_loader)` runs before `on_train_epoch_start`
(`FitLoop.setup_data`), and an evaluation's `iter(loader)` before
`on_validation_epoch_start` (`_EvaluationLoop.reset`), so only statements that
draw no random numbers move: `None`, numbers, `torch.zeros`-like constructors,
`weight.new_zeros(...)`, and methods or functions of the script made only of
those (pytorch/examples' `init_hidden`).

Declined, with the reason: state set before the epoch loop and carried from
epoch to epoch (or into another pass), state read after the loop (returned,
printed at the end of the pass, read by the next statement of the epoch), an
initial value that may draw random numbers (`torch.randn`, a function lightify
cannot see), a value set under a condition or in one statement with another
value, a name a LightningModule already uses.

## Why
A local variable of the loop has no home in `training_step`, which Lightning
calls once per batch: the value must survive between calls, and be reset where
the script resets it, or every batch after the first would start from another
state.

## Example
```python
def train(model, loader, optimizer, batch_size):
    hidden = model.init_hidden(batch_size)
    for x, y in loader:
        hidden = repackage_hidden(hidden)
        optimizer.zero_grad()
        output, hidden = model(x, hidden)
        loss = criterion(output.flatten(0, 1), y.flatten())
        loss.backward()
        optimizer.step()
```

## Use instead
```python
def on_train_epoch_start(self):
    self.hidden = self.model.init_hidden(self.batch_size)

def training_step(self, batch, batch_idx):
    x, y = batch
    self.hidden = repackage_hidden(self.hidden)
    output, self.hidden = self.model(x, self.hidden)
    loss = self.criterion(output.flatten(0, 1), y.flatten())
    return loss
```

## Fix safety
Safe for what it converts: the same statements run in the same order on the
same values, and the initial value is set before the same batches.
"""

# Calls that draw no random numbers and fill what they build: what an initial state may
# be built from (not torch.empty: its contents could differ between the two runs; not
# iter: a DataLoader's iterator draws seeds from the global generator).
RANDOM_FREE = frozenset(
    {
        *("torch.zeros", "torch.ones", "torch.full", "torch.tensor"),
        *("torch.zeros_like", "torch.ones_like", "torch.full_like", "torch.as_tensor"),
        *("torch.arange", "torch.eye", "time.time", "time.perf_counter", "math.sqrt"),
        *("next", "tuple", "list", "len", "range", "int", "float", "min", "max"),
        *("isinstance", "zip", "enumerate", "dict", "bool", "abs", "sum"),
    }
)
RANDOM_FREE_METHODS = frozenset(
    {
        *("new_zeros", "new_ones", "new_full", "new_tensor", "parameters"),
        *("size", "dim", "detach", "clone", "to", "cpu", "cuda", "zero_", "fill_", "item"),
        *("view", "reshape", "expand", "contiguous", "type_as", "float", "long"),
    }
)


def carry(
    lowering, found: Pass, stage: str, statements: list[cst.BaseStatement]
) -> dict[str, cst.BaseExpression]:
    """The names the step ``statements`` take from before the batch loop → ``self.<name>``.

    The statements setting them before the loop move into ``on_<stage>_epoch_start``;
    returns the mapping ``Lowering.move`` applies to the step.
    """
    _check_not_across_epochs(lowering, found, statements)
    names = _state_names(found, stage, statements)
    if not names:
        return {}
    inits = [s for s in found.before if bound_names([s], own_scope_only=True) & names]
    for statement in inits:
        _check_init(lowering, statement, names)
    _check_unread_after(lowering, found, names)
    extra = {name: _self(lowering, name, inits[0]) for name in sorted(names)}
    moved = lowering.move(inits, set(), extra)
    first = moved[0]  # the blank line before it in the function has no place in the hook
    moved[0] = first.with_changes(leading_lines=[x for x in first.leading_lines if x.comment])
    hook = f"on_{stage}_epoch_start"
    lowering.plan.add_to_hook(hook, moved)
    shown = ", ".join(f"`{name}`" for name in sorted(names))
    what = "becomes an attribute" if len(names) == 1 else "become attributes"
    lowering.note(CODE, f"{shown} carried from batch to batch {what} set in {hook}", inits[0])
    return extra


def _state_names(found: Pass, stage: str, statements: list[cst.BaseStatement]) -> set[str]:
    """What the step reads from before the loop, and what setting that reads from there too."""
    before = bound_names(found.before, own_scope_only=True)
    if stage != "train":
        before -= set(found.accumulators)  # the evaluation rule keeps its sums itself
    names = read_first(statements) & before
    while True:
        inits = [s for s in found.before if bound_names([s], own_scope_only=True) & names]
        wider = names | (read_first(inits) & before)
        if wider == names:
            return names
        names = wider


def _check_not_across_epochs(lowering, found: Pass, statements: list[cst.BaseStatement]) -> None:
    """State set before the epoch loop would have to live through every epoch and pass."""
    program = lowering.program
    own = bound_names(found.before, own_scope_only=True)
    rebound = bound_names(statements, own_scope_only=True)
    for name in sorted(read_first(statements) & (rebound - own)):
        binding = program.bindings.get(name)
        if binding is not None and binding.kind is Kind.VALUE:
            raise Decline(
                CODE,
                f"`{name}` is set before the epoch loop and rebound in the batch loop, so it "
                "carries from epoch to epoch; lightify converts state set afresh before each "
                f"pass (move `{name} = ...` to just before the batch loop)",
                found.loop,
            )


def _check_init(lowering, statement: cst.BaseStatement, names: set[str]) -> None:
    """One plain assignment of carried names whose value draws no random numbers."""
    small = only_small(statement)
    if not isinstance(small, cst.Assign):
        raise Decline(
            CODE,
            f"`{sorted(bound_names([statement]) & names)[0]}` is carried from batch to batch "
            "but set by a statement lightify cannot move into the epoch-start hook (a "
            "condition, a loop); set it with a plain assignment",
            statement,
        )
    others = bound_names([statement], own_scope_only=True) - names
    if others:
        raise Decline(
            CODE,
            f"this sets `{sorted(others)[0]}` together with carried state; lightify moves "
            "carried state alone into the epoch-start hook (split the assignment)",
            statement,
        )
    call = _random_call(lowering, small.value, frozenset())
    if call is not None:
        raise Decline(
            CODE,
            f"the initial state calls `{code(call.func)}`, which may draw random numbers; "
            "Lightning sets it after the first epoch's iter(loader), so the random draws would "
            "change order (lightify moves None, zeros-like tensors and code made of them)",
            statement,
        )


def _random_call(
    lowering, node: cst.CSTNode, seen: frozenset[str], owner: str | None = None
) -> cst.Call | None:
    """The first call under ``node`` that may draw random numbers, None when none can.

    Functions of the script and methods of its classes are read through (``init_hidden``);
    ``owner`` is the class whose method ``node`` is, for ``self.method()`` calls.
    """
    for found in walk(node):
        if not isinstance(found, cst.Call):
            continue
        called = _script_code(lowering, found.func, owner)
        if called is not None:
            key = f"{called[1]}.{code(found.func)}"
            if key not in seen and _random_call(lowering, called[0], seen | {key}, called[1]):
                return found
            continue
        qualified = lowering.index.imports.qualify(found.func) or dotted_name(found.func)
        method = found.func.attr.value if isinstance(found.func, cst.Attribute) else None
        if qualified not in RANDOM_FREE and method not in RANDOM_FREE_METHODS:
            return found
    return None


def _script_code(
    lowering, func: cst.BaseExpression, owner: str | None
) -> tuple[cst.CSTNode, str | None] | None:
    """The body of a function of the script, or of a method of a class it defines (a
    model's, or ``owner``'s own for ``self.method``), with the class it belongs to."""
    if isinstance(func, cst.Name) and func.value in lowering.index.functions:
        return lowering.index.functions[func.value].body, None
    if not isinstance(func, cst.Attribute):
        return None
    receiver = dotted_name(func.value)
    binding = lowering.program.bindings.get(receiver or "")
    if binding is not None and binding.kind is Kind.MODULE:
        owner = binding.callee
    elif receiver != "self":
        return None
    cls = lowering.index.classes.get(owner or "")
    if cls is None:
        return None
    for statement in cls.body.body:
        if isinstance(statement, cst.FunctionDef) and statement.name.value == func.attr.value:
            return statement.body, owner
    return None


def _check_unread_after(lowering, found: Pass, names: set[str]) -> None:
    """Nothing after the loop reads the state: in the converted script it lives on the module."""
    program = lowering.program
    later = [list(found.after)]
    if found.function is None:  # an inline pass: the rest of the epoch, then after the loop
        loop = program.passes_in_loop
        at = loop.index(found.loop)
        later = [
            [*found.after, *(s for s in loop[at + 1 :] + loop[:at] if not found.invoked_by(s))],
            program.block[program.block.index(program.epoch.node) + 1 :],
        ]
    for statements in later:
        read = sorted(read_first(statements) & names)
        if read:
            raise Decline(
                CODE,
                f"`{read[0]}` is carried from batch to batch and read after the loop; in the "
                "converted script it would live on the LightningModule, so lightify leaves the "
                "loop as it is",
                found.loop,
            )


def _self(lowering, name: str, node: cst.CSTNode) -> cst.BaseExpression:
    """``self.<name>``, once it is sure the LightningModule has no other use for the name.

    Training and evaluation may share one (``hidden``): each sets it before its first
    step, and validation runs between training epochs, except when it runs inside one.
    """
    plan = lowering.plan
    if name in plan.state and lowering.program.eval_in_batch:
        raise Decline(
            CODE,
            f"`{name}` is carried from batch to batch by both the training and the evaluation "
            "loop, and the evaluation runs in the middle of the training epoch; on one "
            "LightningModule both would be the same attribute (rename one of them)",
            node,
        )
    if name in RESERVED or name in plan.modules or name in plan.hparams:
        raise Decline(
            CODE,
            f"`{name}` is carried from batch to batch, but the LightningModule already has "
            f"`self.{name}`; rename the variable, then convert",
            node,
        )
    plan.state.add(name)
    return cst.Attribute(cst.Name("self"), cst.Name(name))


EXAMPLES = [
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 8, batch_first=True)
        self.head = nn.Linear(8, 1)

    def forward(self, x, h):
        out, h = self.rnn(x, h)
        return self.head(out), h


data = TensorDataset(torch.randn(64, 5, 4), torch.randn(64, 5, 1))
loader = DataLoader(data, batch_size=16, drop_last=True)
model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    h = torch.zeros(1, 16, 8)
    for x, y in loader:
        h = h.detach()  # truncated backpropagation through time
        optimizer.zero_grad()
        out, h = model(x, h)
        loss = F.mse_loss(out, y)
        loss.backward()
        optimizer.step()
""",
        after="""\
import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 8, batch_first=True)
        self.head = nn.Linear(8, 1)

    def forward(self, x, h):
        out, h = self.rnn(x, h)
        return self.head(out), h


class LitNet(L.LightningModule):
    def __init__(self, model):
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model

    def on_train_epoch_start(self):
        self.h = torch.zeros(1, 16, 8)

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.h = self.h.detach()  # truncated backpropagation through time
        out, self.h = self.model(x, self.h)
        loss = F.mse_loss(out, y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


data = TensorDataset(torch.randn(64, 5, 4), torch.randn(64, 5, 1))
loader = DataLoader(data, batch_size=16, drop_last=True)
model = Net()
trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1)
trainer.fit(LitNet(model), loader)
""",
        codes=("LFY400", "LFY408"),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 8, batch_first=True)
        self.head = nn.Linear(8, 1)

    def forward(self, x, h):
        out, h = self.rnn(x, h)
        return self.head(out), h


data = TensorDataset(torch.randn(64, 5, 4), torch.randn(64, 5, 1))
loader = DataLoader(data, batch_size=16, drop_last=True)
model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
h = torch.zeros(1, 16, 8)
for epoch in range(2):
    for x, y in loader:
        h = h.detach()  # truncated backpropagation through time
        optimizer.zero_grad()
        out, h = model(x, h)
        loss = F.mse_loss(out, y)
        loss.backward()
        optimizer.step()
""",
        after=None,
        codes=("LFY408",),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 8, batch_first=True)
        self.head = nn.Linear(8, 1)

    def forward(self, x, h):
        out, h = self.rnn(x, h)
        return self.head(out), h


data = TensorDataset(torch.randn(64, 5, 4), torch.randn(64, 5, 1))
loader = DataLoader(data, batch_size=16, drop_last=True)
model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    h = torch.randn(1, 16, 8)
    for x, y in loader:
        h = h.detach()  # truncated backpropagation through time
        optimizer.zero_grad()
        out, h = model(x, h)
        loss = F.mse_loss(out, y)
        loss.backward()
        optimizer.step()
""",
        after=None,
        codes=("LFY408",),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 8, batch_first=True)
        self.head = nn.Linear(8, 1)

    def forward(self, x, h):
        out, h = self.rnn(x, h)
        return self.head(out), h


data = TensorDataset(torch.randn(64, 5, 4), torch.randn(64, 5, 1))
loader = DataLoader(data, batch_size=16, drop_last=True)
model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    h = torch.zeros(1, 16, 8)
    for x, y in loader:
        h = h.detach()  # truncated backpropagation through time
        optimizer.zero_grad()
        out, h = model(x, h)
        loss = F.mse_loss(out, y)
        loss.backward()
        optimizer.step()
    print(f"final state norm {h.norm():.3f}")
""",
        after=None,
        codes=("LFY408",),
    ),
]
