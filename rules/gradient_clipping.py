"""LFY004: gradient clipping of the optimizer's parameters becomes Trainer flags."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.nodes import call_of, code, names_in
from lightify.analyze.usage import first_use
from lightify.rule import Example
from lightify.rules.optimizer import optimizer_binding

CODE = "LFY004"
SUMMARY = "Clipping all parameters becomes gradient_clip_val / gradient_clip_algorithm"
APIS = {
    "torch.nn.utils.clip_grad_norm_": "norm",
    "torch.nn.utils.clip_grad.clip_grad_norm_": "norm",
    "torch.nn.utils.clip_grad_value_": "value",
    "torch.nn.utils.clip_grad.clip_grad_value_": "value",
}
DOC = """\
## What it does
`torch.nn.utils.clip_grad_norm_(params, c)` (or `clip_grad_value_`) between
`backward()` and `optimizer.step()`, over exactly the parameters the optimizer
trains, becomes `L.Trainer(gradient_clip_val=c, gradient_clip_algorithm="norm")`
(or `"value"`).

## Why
Lightning clips the optimizer's parameters, in the optimizer's order, with the
same torch function right before the step, so the update is bit-identical.
Clipping a subset of the parameters, another norm type, or clipping under a
condition is declined with this code (a `configure_gradient_clipping` override is
future work).

## Example
```python
loss.backward()
torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
optimizer.step()
```

## Use instead
```python
L.Trainer(gradient_clip_val=args.clip, gradient_clip_algorithm="norm")
```

## Fix safety
Safe when the parameters are the optimizer's own and the norm type is 2.
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
    count = 0

    class _Calls(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            nonlocal count
            count += (lowering.index.imports.qualify(node.func) or "") in APIS

    lowering.index.module.visit(_Calls())
    return count


def step(statement: cst.BaseStatement, builder) -> bool:
    found = _clip_call(statement, builder.lowering)
    if found is None:
        return False
    call, algorithm = found
    if builder.phase != "backward":
        raise Decline(CODE, "gradients are clipped outside backward() and step()", statement)
    params, value = _arguments(call, algorithm, statement)
    optimizer = optimizer_binding(builder.lowering.program).value
    trained = (
        optimizer.args[0].value if isinstance(optimizer, cst.Call) and optimizer.args else None
    )
    if trained is None or not params.deep_equals(trained):
        raise Decline(
            CODE,
            f"`{code(params)}` is not the parameter expression the optimizer trains; "
            "clipping a subset is not converted",
            statement,
        )
    if names_in(value) & builder.lowering.locals_of(builder.found):
        raise Decline(CODE, "the clip value changes inside the loop", statement)
    kwargs = builder.lowering.plan.trainer_kwargs
    kwargs["gradient_clip_val"] = value
    kwargs["gradient_clip_algorithm"] = cst.SimpleString(f'"{algorithm}"')
    builder.consume(statement)
    return True


def _arguments(
    call: cst.Call, algorithm: str, statement
) -> tuple[cst.BaseExpression, cst.BaseExpression]:
    names = ["parameters", "max_norm" if algorithm == "norm" else "clip_value"]
    order = [*names, "norm_type"]
    if len([a for a in call.args if a.keyword is None]) > len(order):
        raise Decline(CODE, "this clipping call has arguments lightify does not map", statement)
    given = {
        arg.keyword.value if arg.keyword is not None else order[position]: arg.value
        for position, arg in enumerate(call.args)
    }
    norm_type = given.pop("norm_type", None)
    if norm_type is not None and code(norm_type) not in {"2", "2.0"}:
        raise Decline(
            CODE, f"clipping with norm_type={code(norm_type)} is not converted", statement
        )
    if set(given) != set(names):
        raise Decline(CODE, "this clipping call has arguments lightify does not map", statement)
    return given[names[0]], given[names[1]]


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
        after=None,
        codes=("LFY004",),
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
]
