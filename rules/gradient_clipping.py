"""LFY004: gradient clipping becomes Trainer flags, or configure_gradient_clipping."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.nodes import call_of, code, names_in
from lightify.analyze.usage import first_use
from lightify.plan import Method
from lightify.rule import Example
from lightify.rules.optimizer import optimizer_binding

CODE = "LFY004"
SUMMARY = "Gradient clipping becomes Trainer flags or configure_gradient_clipping"
APIS = {
    "torch.nn.utils.clip_grad_norm_": "norm",
    "torch.nn.utils.clip_grad.clip_grad_norm_": "norm",
    "torch.nn.utils.clip_grad_value_": "value",
    "torch.nn.utils.clip_grad.clip_grad_value_": "value",
}
HOOK = "configure_gradient_clipping"
HOOK_PARAMS = "self, optimizer, gradient_clip_val, gradient_clip_algorithm"
DOC = """\
## What it does
`torch.nn.utils.clip_grad_norm_(params, c)` (or `clip_grad_value_`) between
`backward()` and `optimizer.step()`, over exactly the parameters the optimizer
trains, becomes `L.Trainer(gradient_clip_val=c, gradient_clip_algorithm="norm")`
(or `"value"`).

## Why
Lightning clips the optimizer's parameters, in the optimizer's order, with the
same torch function right before the step, so the update is bit-identical.
Any other clipping between `backward()` and `step()` (a subset of the
parameters, another norm type, several calls) moves, as the script wrote it, into
`configure_gradient_clipping`, which Lightning calls at that same moment.
Clipping under a condition, outside that window, or with a value computed in the
loop is declined with this code.

## Example
```python
loss.backward()
torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
optimizer.step()
```

## Use instead
```python
L.Trainer(gradient_clip_val=args.clip, gradient_clip_algorithm="norm")

# or, for clipping the flags cannot express:
def configure_gradient_clipping(self, optimizer, gradient_clip_val, gradient_clip_algorithm):
    torch.nn.utils.clip_grad_norm_(self.encoder.parameters(), self.clip, norm_type=1.0)
```

## Fix safety
Safe: the flags only for the optimizer's own parameters with norm type 2, the
hook (the script's own calls) otherwise.
"""


def _clip_call(statement: cst.CSTNode, lowering) -> tuple[cst.Call, str] | None:
    call = call_of(statement)
    if call is None:
        return None
    algorithm = APIS.get(lowering.index.imports.qualify(call.func) or "")
    return (call, algorithm) if algorithm else None


def check(lowering) -> None:
    """Clipping anywhere but as a statement of the batch loop is not mapped."""
    claimable = sum(_clip_call(s, lowering) is not None for s in lowering.program.train.body)
    uses = _count_uses(lowering)
    if uses > claimable:
        raise Decline(
            CODE,
            "gradient clipping under a condition or outside the batch loop's own statements "
            "is not converted; the loop is left as it is",
            first_use(lowering.index, frozenset(APIS)),
        )


def _count_uses(lowering) -> int:
    """Calls of a clipping function anywhere in the file."""
    index = lowering.index
    return sum(
        isinstance(call := index.parents.get(node), cst.Call) and call.func is node
        for node in index.uses(frozenset(APIS))
    )


def step(statement: cst.BaseStatement, builder) -> bool:
    found = _clip_call(statement, builder.lowering)
    if found is None:
        return False
    call, algorithm = found
    if builder.phase != "backward":
        raise Decline(CODE, "gradients are clipped outside backward() and step()", statement)
    if names_in(statement) & builder.lowering.locals_of(builder.found):
        raise Decline(CODE, "the clipping depends on values computed in the loop", statement)
    value = _trainer_flag_value(call, algorithm, builder)
    if value is None:
        _clip_in_hook(statement, builder)
        return True
    kwargs = builder.lowering.plan.trainer_kwargs
    kwargs["gradient_clip_val"] = value
    kwargs["gradient_clip_algorithm"] = cst.SimpleString(f'"{algorithm}"')
    builder.consume(statement)
    return True


def _trainer_flag_value(call: cst.Call, algorithm: str, builder) -> cst.BaseExpression | None:
    """The clip value when the Trainer flags do exactly this call: the optimizer's own
    parameters, norm type 2, nothing else; None when only the hook can."""
    names = ["parameters", "max_norm" if algorithm == "norm" else "clip_value"]
    order = [*names, "norm_type"]
    if len(call.args) > len(order) or any(arg.star for arg in call.args):
        return None
    given = {
        arg.keyword.value if arg.keyword is not None else order[position]: arg.value
        for position, arg in enumerate(call.args)
    }
    norm_type = given.pop("norm_type", None)
    if norm_type is not None and code(norm_type) not in {"2", "2.0"}:
        return None
    if set(given) != set(names):
        return None
    optimizer = optimizer_binding(builder.lowering.program).value
    trained = (
        optimizer.args[0].value if isinstance(optimizer, cst.Call) and optimizer.args else None
    )
    if trained is None or not given["parameters"].deep_equals(trained):
        return None
    return given[names[1]]


def _clip_in_hook(statement: cst.BaseStatement, builder) -> None:
    """The script's own call in ``configure_gradient_clipping``, which Lightning calls
    at the same moment: after backward() and on_before_optimizer_step, before the step."""
    moved = builder.lowering.move([statement], set())
    plan = builder.lowering.plan
    hook = plan.methods.get(HOOK)
    if hook is None:
        plan.add_method(Method(HOOK, HOOK_PARAMS, moved))
    else:
        hook.body.extend(moved)


EXAMPLES = [
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
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
    gradient_clip_val=1.0,
    gradient_clip_algorithm="norm",
    accelerator="cpu",
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
encoder = nn.Linear(4, 8)
head = nn.Linear(8, 2)
optimizer = torch.optim.SGD(list(encoder.parameters()) + list(head.parameters()), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(head(encoder(x)), y)
        loss.backward()
        nn.utils.clip_grad_value_(head.parameters(), 0.1)
        optimizer.step()
""",
        after="""\
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
        optimizer = torch.optim.SGD(
            list(self.encoder.parameters()) + list(self.head.parameters()),
            lr=0.1,
        )
        return optimizer

    def configure_gradient_clipping(self, optimizer, gradient_clip_val, gradient_clip_algorithm):
        nn.utils.clip_grad_value_(self.head.parameters(), 0.1)


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
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        nn.utils.clip_grad_value_(model.parameters(), clip_value=0.1)
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
    gradient_clip_val=0.1,
    gradient_clip_algorithm="value",
    accelerator="cpu",
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
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), loss.item())
        optimizer.step()
""",
        after=None,
        codes=("LFY004",),
    ),
]
