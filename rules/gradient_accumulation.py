"""LFY005: gradient accumulation becomes accumulate_grad_batches when it is exactly that."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Kind
from lightify.analyze.nodes import call_of, code, method_call, names_in, stmt
from lightify.plan import Method
from lightify.rule import Example

CODE = "LFY005"
SUMMARY = "Gradient accumulation becomes accumulate_grad_batches, or the loop is left as it is"
DOC = """\
## What it does
Converts a batch loop that divides its loss by N and steps every N batches and on
the last batch of the epoch:

    loss = criterion(model(x), y) / N
    loss.backward()
    if (i + 1) % N == 0 or (i + 1) == len(loader):
        optimizer.step()
        optimizer.zero_grad()

into `L.Trainer(accumulate_grad_batches=N)` with the undivided loss returned by
`training_step`. Every other conditional step (a step only on full windows, no
division, zero_grad elsewhere too, another condition) becomes manual optimization
(LFY001's machinery): `self.manual_backward(loss)`, then the script's own `if`,
with `i` → `batch_idx`, around `optimizer.step()` and `optimizer.zero_grad()`.
The finding says which form was chosen and why.

## Why
Lightning's `accumulate_grad_batches=N` divides the loss returned by
`training_step` by N, zeroes the gradients at the start of every window and steps
when a window is full *and on the last batch of every epoch*. A raw
`(i + 1) % N == 0` loop does not step on a partial last window: its gradients
carry over into the next epoch, which the flag never does. Under manual
optimization Lightning neither zeroes gradients at an epoch's start nor steps on
its own, so the script's schedule runs as written; lightify overrides
`on_validation_model_zero_grad` (Lightning clears gradients before validation)
so the carried window survives the validation pass, and steps a per-epoch
scheduler in `on_train_epoch_end` (after validation, as in the script), since
Lightning steps no scheduler under manual optimization.

## Example
```python
loss = F.cross_entropy(model(x), y)
loss.backward()
if (i + 1) % 4 == 0:
    optimizer.step()
    optimizer.zero_grad()
```

## Use instead
```python
L.Trainer(accumulate_grad_batches=4)  # only when the script divides and steps on the last batch
```
or, as here, manual optimization that repeats the script's schedule:
```python
def training_step(self, batch, batch_idx):
    optimizer = self.optimizers()
    x, y = batch
    loss = F.cross_entropy(self.model(x), y)
    self.manual_backward(loss)
    if (batch_idx + 1) % 4 == 0:
        optimizer.step()
        optimizer.zero_grad()

def on_validation_model_zero_grad(self):
    pass  # keep the window's gradients: the script does not clear them
```

## Fix safety
Safe: the flag only for the exact schedule above, with the division by the same N
right before backward(); manual optimization keeps every statement in its place.
Left as it is: a loop that never calls zero_grad(), and what LFY001 declines under
manual optimization (backward() under a condition, LBFGS, mixed precision).
"""


def is_window_step(statement: cst.CSTNode, lowering) -> bool:
    """``if <condition>: optimizer.step(); optimizer.zero_grad()``, whatever the condition."""
    if not isinstance(statement, cst.If) or statement.orelse is not None:
        return False
    if not isinstance(statement.body, cst.IndentedBlock):
        return False
    calls = [method_call(line) for line in statement.body.body]
    bindings = lowering.program.bindings
    return (
        len(calls) == 2
        and all(call is not None for call in calls)
        and [call[1] for call in calls] == ["step", "zero_grad"]
        and all(not call[2].args for call in calls)
        and all(
            (binding := bindings.get(call[0])) is not None and binding.kind is Kind.OPTIMIZER
            for call in calls
        )
    )


def guarded(statement: cst.CSTNode) -> list[cst.BaseStatement]:
    """The body of an ``if <condition>:`` without ``else``; nothing for any other statement."""
    if (
        isinstance(statement, cst.If)
        and statement.orelse is None
        and isinstance(statement.body, cst.IndentedBlock)
    ):
        return list(statement.body.body)
    return []


def _calls(statements: list[cst.BaseStatement], lowering, method: str) -> bool:
    """Whether one of the statements is ``optimizer.<method>()`` (or ``model.zero_grad()``)."""
    kinds = (Kind.OPTIMIZER, Kind.MODULE) if method == "zero_grad" else (Kind.OPTIMIZER,)
    bindings = lowering.program.bindings
    return any(
        (found := method_call(line)) is not None
        and found[1] == method
        and (binding := bindings.get(found[0])) is not None
        and binding.kind in kinds
        for line in statements
    )


def manual_window(lowering) -> tuple[cst.If, str] | None:
    """The batch loop's conditional optimizer step and why accumulate_grad_batches cannot
    reproduce it (manual optimization then runs the script's own schedule); None when the
    loop steps unconditionally or the flag is exact."""
    found = lowering.program.train
    windows = [
        s for s in found.body if isinstance(s, cst.If) and _calls(guarded(s), lowering, "step")
    ]
    if not windows:
        return None
    window = windows[0]
    why = _why_not_flag(window, windows, lowering)
    return None if why is None else (window, why)


def _why_not_flag(window: cst.If, windows: list[cst.If], lowering) -> str | None:
    found = lowering.program.train
    if len(windows) > 1:
        return "the loop steps the optimizer under several conditions"
    if not is_window_step(window, lowering):
        return f"`if {code(window.test)}:` holds more than optimizer.step() and zero_grad()"
    shape = _window(window.test, found.index, found.index_start, found.loader)
    if shape is None:
        return f"`{code(window.test)}` is no accumulate_grad_batches window"
    size, on_last_batch = shape
    if not on_last_batch:
        return (
            "the script steps on full windows only, so a partial last window carries its "
            "gradients into the next epoch, while accumulate_grad_batches steps on the last "
            "batch of every epoch"
        )
    if names_in(size) & lowering.locals_of(found):
        return "the window size changes inside the loop"
    if not _divides(found, size):
        return (
            f"the loss is not divided by {code(size)} before backward(), while "
            "accumulate_grad_batches divides it"
        )
    if any(s is not window and _calls([s, *guarded(s)], lowering, "zero_grad") for s in found.body):
        return "zero_grad() also runs outside the window"
    return None


def check(lowering) -> None:
    """Accumulation the flag cannot express is manual optimization (LFY001 switched to it):
    say why, and keep the gradients the window carries over validation."""
    manual = manual_window(lowering)
    if manual is None or not lowering.plan.manual_optimization:
        return
    window, why = manual
    lowering.note(
        CODE,
        f"gradient accumulation under `if {code(window.test)}:` becomes manual optimization "
        f"with the script's own condition, not accumulate_grad_batches: {why}",
        window,
    )
    if lowering.program.validation is not None:
        lowering.plan.add_method(
            Method(
                "on_validation_model_zero_grad",
                "self",
                [stmt("pass  # keep the window's gradients: the script does not clear them")],
            )
        )


def step(statement: cst.BaseStatement, builder) -> bool:
    """Claim the window's step; the loss division becomes Lightning's own."""
    lowering = builder.lowering
    if lowering.plan.manual_optimization or not is_window_step(statement, lowering):
        return False
    if builder.phase != "backward":
        raise Decline(CODE, "optimizer.step() under a condition before backward()", statement)
    found = builder.found
    # the exact accumulate_grad_batches form: manual_window found nothing it cannot express
    size, _ = _window(statement.test, found.index, found.index_start, found.loader)
    _undivide(builder, size, statement)
    builder.phase = "stepped"
    lowering.zero_grad_seen = True
    lowering.plan.trainer_kwargs["accumulate_grad_batches"] = size
    builder.consume(statement)
    lowering.note(
        CODE,
        f"gradient accumulation every {code(size)} batches, stepping on the last batch "
        f"too, becomes accumulate_grad_batches={code(size)} (Lightning divides the loss)",
        statement,
    )
    return True


def _window(
    test: cst.BaseExpression,
    index: str | None,
    start: cst.BaseExpression | None,
    loader: str,
) -> tuple[cst.BaseExpression, bool] | None:
    """``(N, steps on the last batch)`` for ``(i + 1) % N == 0 [or (i + 1) == len(loader)]``,
    ``i`` the enumerate index counting from 0 (Lightning's ``batch_idx``)."""
    if index is None or (start is not None and code(start) != "0"):
        return None
    if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.Or):
        for full, last in ((test.left, test.right), (test.right, test.left)):
            size = _full_window(full, index)
            if size is not None and _is_last_batch(last, index, loader):
                return size, True
        return None
    size = _full_window(test, index)
    return None if size is None else (size, False)


def _full_window(test: cst.BaseExpression, index: str) -> cst.BaseExpression | None:
    """N of ``(i + 1) % N == 0``."""
    sides = _equality(test)
    if sides is None or _bare(sides[1]) != "0":
        return None
    modulo = sides[0]
    if not isinstance(modulo, cst.BinaryOperation) or not isinstance(modulo.operator, cst.Modulo):
        return None
    return modulo.right if _bare(modulo.left) == f"{index} + 1" else None


def _is_last_batch(test: cst.BaseExpression, index: str, loader: str) -> bool:
    sides = _equality(test)
    if sides is None:
        return False
    pair = {_bare(sides[0]), _bare(sides[1])}
    return pair in ({f"{index} + 1", f"len({loader})"}, {index, f"len({loader}) - 1"})


def _equality(test: cst.BaseExpression) -> tuple[cst.BaseExpression, cst.BaseExpression] | None:
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return None
    target = test.comparisons[0]
    return (test.left, target.comparator) if isinstance(target.operator, cst.Equal) else None


def _bare(node: cst.BaseExpression) -> str:
    """The code without outer parentheses or padding, for comparing spellings."""
    return " ".join(code(node.with_changes(lpar=[], rpar=[])).split())


def _undivide(builder, size: cst.BaseExpression, window: cst.If) -> None:
    """Return the loss before the script's ``/ N``: Lightning divides it by N itself.

    Only when nothing else in the loop reads the divided loss, which would change.
    """
    loss = builder.loss
    if _divided_by(loss, size):
        builder.loss = loss.left
        return
    if isinstance(loss, cst.Name):
        for position in range(len(builder.out) - 1, -1, -1):
            assigned = _assignment(builder.out[position], loss.value)
            if assigned is None:
                continue
            if _divided_by(assigned.value, size) and _read_once(builder.found, loss.value):
                line = builder.out[position]
                builder.out[position] = line.with_changes(
                    body=[assigned.with_changes(value=assigned.value.left)]
                )
                return
            break
    raise Decline(
        CODE,
        f"the loss is not divided by {code(size)} right before backward() (or the divided "
        "value is used elsewhere), while accumulate_grad_batches divides it; not converted",
        window,
    )


def _divided_by(node: cst.BaseExpression | None, size: cst.BaseExpression) -> bool:
    return (
        isinstance(node, cst.BinaryOperation)
        and isinstance(node.operator, cst.Divide)
        and node.right.deep_equals(size)
    )


def _assignment(line: cst.BaseStatement, name: str) -> cst.Assign | None:
    if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
        return None
    small = line.body[0]
    if (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
        and small.targets[0].target.value == name
    ):
        return small
    return None


def _read_once(found, name: str) -> bool:
    """The divided loss is read by backward() alone: the assignment is its only writer
    and no other statement of the loop mentions it."""
    mentions = [line for line in found.body if name in names_in(line)]
    return len(mentions) == 2  # the assignment and ``loss.backward()``


def _divides(found, size: cst.BaseExpression) -> bool:
    """Whether backward() gets the loss divided by N, directly or through a name only it reads."""
    for statement in found.body:
        call = call_of(statement)
        if call is None or not isinstance(call.func, cst.Attribute):
            continue
        if call.func.attr.value != "backward":
            continue
        loss = call.func.value.with_changes(lpar=[], rpar=[])
        if isinstance(loss, cst.Name) and _read_once(found, loss.value):
            return any(
                (assigned := _assignment(line, loss.value)) is not None
                and _divided_by(assigned.value, size)
                for line in found.body
            )
        return _divided_by(loss, size)
    return False


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
    for i, (x, y) in enumerate(loader):
        loss = F.cross_entropy(model(x), y) / 4
        loss.backward()
        if (i + 1) % 4 == 0:
            optimizer.step()
            optimizer.zero_grad()
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
        optimizer = self.optimizers()
        x, y = batch
        loss = F.cross_entropy(self.model(x), y) / 4
        self.manual_backward(loss)
        if (batch_idx + 1) % 4 == 0:
            optimizer.step()
            optimizer.zero_grad()
        self.log("loss", loss)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1)
trainer.fit(LitModel(model), loader)
""",
        codes=("LFY005", "LFY400"),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(72, 4), torch.randint(0, 2, (72,)))
loader = DataLoader(data, batch_size=8, shuffle=True)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for i, (x, y) in enumerate(loader):
        loss = F.cross_entropy(model(x), y) / 4
        loss.backward()
        if (i + 1) % 4 == 0 or (i + 1) == len(loader):
            optimizer.step()
            optimizer.zero_grad()
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


data = TensorDataset(torch.randn(72, 4), torch.randint(0, 2, (72,)))
loader = DataLoader(data, batch_size=8, shuffle=True)
model = nn.Linear(4, 2)
trainer = L.Trainer(
    max_epochs=2,
    accumulate_grad_batches=4,
    accelerator="cpu",
    devices=1,
)
trainer.fit(LitModel(model), loader)
""",
        codes=("LFY005", "LFY400"),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(72, 4), torch.randint(0, 2, (72,)))
loader = DataLoader(data, batch_size=8, shuffle=True)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for i, (x, y) in enumerate(loader):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
""",
        after=None,
        codes=("LFY005",),
    ),
]
