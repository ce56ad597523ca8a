"""LFY407: checkpoint saves and early stopping in the epoch loop move into on_train_epoch_end."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Kind
from lightify.analyze.nodes import code, method_call, names_in
from lightify.into_module import bound_names
from lightify.lower import code_order
from lightify.plan import Method
from lightify.rule import Example

CODE = "LFY407"
SUMMARY = "Checkpoint saving and early stopping move into Lightning hooks"
ORDER = 35  # build order: after the scheduler (30) names its metric, before evaluation (40)
HOOK = "on_train_epoch_end"
DOC = """\
## What it does
Moves what the epoch loop does after its training and validation passes to save
weights or stop early into `on_train_epoch_end`, unchanged: periodic saves
(`torch.save(model.state_dict(), f"ckpt_{epoch}.pt")`, also under
`if epoch % k == 0:`), best-metric saves (`if val_loss < best: best = val_loss;
torch.save(...)`) and patience counters (`bad += 1; if bad >= patience: break`).
Values carried from epoch to epoch (`best`, `bad`) become attributes of the
LightningModule, initialised from the script's own values before the loop; the
epoch variable becomes `self.current_epoch` (plus the range's start); `break`
becomes `self.trainer.should_stop = True`; the validation value keeps the
script's exact Python-float accumulation.

Lightning calls `on_train_epoch_end` once per epoch after the epoch's
validation (which runs when the last training batch ends,
`loops/training_epoch_loop.py`, `on_advance_end`) and never during the sanity
check (`loops/fit_loop.py`, `on_advance_end`); `trainer.current_epoch` still
holds the epoch's index there. With `should_stop` set, `FitLoop.done` ends
`fit` before another epoch starts.

Declined, with the reason: a save of anything but modules' `state_dict()` (an
optimizer's or scheduler's state, a whole pickled module: its train/eval mode
differs after Lightning's validation), a save or check before the validation
pass, a comparison with a value other than what the validation pass returns,
a carried value read after the loop or first set inside it, statements after a
`break`.

## Why
`ModelCheckpoint` writes Lightning `.ckpt` files (other names, a dict whose
`state_dict` keys carry the LightningModule's attribute prefix), so
`model.load_state_dict(torch.load("best.pt"))` would break. `ModelCheckpoint`
and `EarlyStopping` also compare Lightning's float32 copy of the logged metric,
and `EarlyStopping` tests `current + min_delta < best` and stops on a non-finite
value (`callbacks/early_stopping.py`, `_evaluate_stopping_criteria`), where the
script tests its float64 `val_loss < best - min_delta`: a different epoch could
count as an improvement. The script's own statements in the hook write the same
files after the same epochs and stop at the same one.

## Example
```python
best = float("inf")
for epoch in range(epochs):
    train(model, train_loader, optimizer)
    val_loss = evaluate(model, val_loader)
    if val_loss < best:
        best = val_loss
        torch.save(model.state_dict(), "best.pt")
```

## Use instead
```python
def on_train_epoch_end(self):
    if self.val_loss < self.best:
        self.best = self.val_loss
        torch.save(self.model.state_dict(), "best.pt")
```

## Fix safety
Safe for what it converts: the same statements run after the same epochs with
the same values.
"""


def build(lowering) -> None:
    program = lowering.program
    statements = [s for s in program.passes_in_loop if _is_checkpointing(s, lowering)]
    if not statements:
        return
    _check_position(program, statements)
    for statement in statements:
        _check_saves(lowering, statement)
    carried = _carried(program, statements)
    extra = {
        name: cst.parse_expression(f"self.{lowering.plan.hparam(name, cst.Name(name), False)}")
        for name in sorted(carried, key=code_order(program))
    }
    metric = _metric(lowering, statements, carried)
    if metric is not None:
        extra[metric] = cst.parse_expression(f"self.{metric}")
    if HOOK in lowering.plan.methods:
        raise Decline(CODE, f"another rule already fills {HOOK}", statements[0])
    moved = lowering.move([_stop_instead_of_break(s) for s in statements], set(), extra)
    if moved:  # the loop's blank line before the first statement has no place in the hook
        first = moved[0]
        moved[0] = first.with_changes(leading_lines=[x for x in first.leading_lines if x.comment])
    lowering.plan.add_method(Method(HOOK, "self", moved))
    lowering.claimed.update(statements)
    lowering.note(CODE, f"checkpoint saving and early stopping move into {HOOK}", statements[0])


def _is_checkpointing(statement: cst.BaseStatement, lowering) -> bool:
    """A save, a ``break``, or a statement updating a value kept from epoch to epoch."""
    program = lowering.program
    if _is_pass(program, statement):
        return False
    found = method_call(statement)
    receiver = program.bindings.get(found[0]) if found is not None else None
    if receiver is not None and receiver.kind is Kind.SCHEDULER:
        return False
    if _saves(statement, lowering) or _breaks(statement):
        return True
    return any(
        _before_loop(program, name) for name in bound_names([statement], own_scope_only=True)
    )


def _is_pass(program, statement: cst.BaseStatement) -> bool:
    validation = program.validation
    if validation is None:
        return program.train.invoked_by(statement)
    generated = not validation.body and bound_names([statement], own_scope_only=True) & set(
        validation.accumulators
    )
    return program.train.invoked_by(statement) or validation.invoked_by(statement) or generated


def _saves(node: cst.CSTNode, lowering) -> list[cst.Call]:
    """The ``torch.save(...)`` calls under a node."""
    qualify = lowering.index.imports.qualify
    found: list[cst.Call] = []

    class _Saves(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            if qualify(call.func) in {"torch.save", "torch.serialization.save"}:
                found.append(call)

    node.visit(_Saves())
    return found


def _breaks(node: cst.CSTNode) -> bool:
    """Whether a statement of the epoch loop breaks out of it (nested loops aside)."""

    class _Break(cst.CSTVisitor):
        found = False

        def visit_For(self, node: cst.For) -> bool:
            return False

        def visit_While(self, node: cst.While) -> bool:
            return False

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return False

        def visit_Break(self, node: cst.Break) -> None:
            _Break.found = True

    node.visit(_Break())
    return _Break.found


def _stop_instead_of_break(statement: cst.BaseStatement) -> cst.BaseStatement:
    """``break`` → ``self.trainer.should_stop = True``: ``fit`` ends after this epoch."""
    stop = cst.parse_statement("self.trainer.should_stop = True").body[0]  # type: ignore[attr-defined]

    class _Stop(cst.CSTTransformer):
        def visit_For(self, node: cst.For) -> bool:
            return False

        def visit_While(self, node: cst.While) -> bool:
            return False

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return False

        def leave_Break(self, original_node: cst.Break, updated_node: cst.Break):
            return stop.with_changes(semicolon=updated_node.semicolon)

    return statement.visit(_Stop())


def _before_loop(program, name: str) -> bool:
    """Whether ``name`` is set in the program's block before the epoch loop (or a parameter)."""
    binding = program.bindings.get(name)
    if binding is None:
        return False
    if binding.line is program.owner:
        return True
    block = program.block
    return binding.line in block and block.index(binding.line) < block.index(program.epoch.node)


def _check_position(program, statements: list[cst.BaseStatement]) -> None:
    """Lightning runs on_train_epoch_end after training and validation: so must the script."""
    loop = program.passes_in_loop
    passes = [i for i, s in enumerate(loop) if _is_pass(program, s)]
    for statement in statements:
        if loop.index(statement) < max(passes):
            raise Decline(
                CODE,
                "this statement runs before the epoch's training or validation pass ends; "
                f"Lightning's {HOOK} runs after both, so lightify converts checkpointing "
                "and early stopping placed after the passes",
                statement,
            )
    stops = [s for s in statements if _breaks(s)]
    if stops and loop.index(stops[-1]) != len(loop) - 1:
        raise Decline(
            CODE,
            "statements follow this `break` in the epoch loop; lightify converts early "
            "stopping as the epoch's last statement (self.trainer.should_stop = True ends "
            "fit after the epoch, it does not skip the rest of it)",
            stops[-1],
        )


def _check_saves(lowering, statement: cst.BaseStatement) -> None:
    """Only modules' ``state_dict()`` is saved: the rest lives elsewhere under Lightning."""
    bindings = lowering.program.bindings
    for call in _saves(statement, lowering):
        saved = call.args[0].value if call.args else call
        allowed = _state_dict_receivers(saved)
        for name in sorted(names_in(saved)):
            binding = bindings.get(name)
            if binding is None or binding.kind is Kind.VALUE or binding.kind is Kind.CONFIG:
                continue
            if binding.kind is Kind.MODULE and name in allowed:
                continue
            raise Decline(
                CODE,
                f"`{code(call)}` saves `{name}` itself or its state; lightify carries saves of "
                "modules' state_dict() only (the optimizer and scheduler live in "
                "configure_optimizers, and a pickled module's train/eval mode differs after "
                "Lightning's validation)",
                statement,
            )


def _state_dict_receivers(node: cst.CSTNode) -> set[str]:
    """Names ``m`` of every ``m.state_dict()`` under a node, and only used that way."""
    receivers: set[str] = set()
    other: set[str] = set()

    class _Uses(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> bool:
            func = call.func
            if (
                isinstance(func, cst.Attribute)
                and func.attr.value == "state_dict"
                and isinstance(func.value, cst.Name)
                and not call.args
            ):
                receivers.add(func.value.value)
                return False
            return True

        def visit_Name(self, name: cst.Name) -> None:
            other.add(name.value)

        def visit_Attribute(self, attribute: cst.Attribute) -> bool:
            attribute.value.visit(self)
            return False

    node.visit(_Uses())
    return receivers - other


def _carried(program, statements: list[cst.BaseStatement]) -> set[str]:
    """Names the statements update from epoch to epoch: set before the loop, unread after it."""
    assigned = bound_names(list(statements), own_scope_only=True)
    after = program.block[program.block.index(program.epoch.node) + 1 :]
    read_after = set().union(*(names_in(s) for s in after)) if after else set()
    for statement in statements:
        for name in sorted(bound_names([statement], own_scope_only=True)):
            if not _before_loop(program, name):
                raise Decline(
                    CODE,
                    f"`{name}` is first set inside the epoch loop; lightify keeps values "
                    "carried from epoch to epoch as attributes initialised from their value "
                    "before the loop",
                    statement,
                )
            if name in read_after:
                raise Decline(
                    CODE,
                    f"`{name}` is read after the epoch loop, but in the converted script it "
                    f"would live on the LightningModule (`lit_module.{name}`) and the script's "
                    "variable would keep its value from before the loop",
                    statement,
                )
    return assigned


def _metric(lowering, statements: list[cst.BaseStatement], carried: set[str]) -> str | None:
    """The one validation value the statements read; it must stay the script's exact float."""
    program = lowering.program
    in_loop = bound_names(program.epoch.items) - carried - {program.epoch.epoch_var}
    read = sorted(set().union(*(names_in(s) for s in statements)) & in_loop)
    if not read:
        return None
    validation = program.validation
    results = set(validation.result_names) if validation is not None else set()
    others = [name for name in read if name not in results]
    if others or len(read) > 1:
        name = others[0] if others else read[1]
        raise Decline(
            CODE,
            f"this reads `{name}`, computed in the epoch loop; lightify carries one value "
            "the validation pass returns into the hook, with its exact Python-float value",
            statements[0],
        )
    if program.eval_guard is not None:
        raise Decline(
            CODE,
            f"validation runs only when `{code(program.eval_guard.test)}` but this reads "
            f"`{read[0]}` every epoch; lightify leaves the loop as it is",
            statements[0],
        )
    if lowering.decision_metric not in (None, read[0]):
        raise Decline(
            CODE,
            f"the scheduler decides on `{lowering.decision_metric}` and this on `{read[0]}`; "
            "lightify keeps one exact validation value",
            statements[0],
        )
    lowering.decision_metric = read[0]
    return read[0]


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
for epoch in range(4):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    if (epoch + 1) % 2 == 0:
        torch.save(model.state_dict(), f"epoch{epoch}.pt")
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

    def on_train_epoch_end(self):
        if (self.current_epoch + 1) % 2 == 0:
            torch.save(self.model.state_dict(), f"epoch{self.current_epoch}.pt")

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
trainer = L.Trainer(max_epochs=4, accelerator="cpu", devices=1)
trainer.fit(LitModel(model), loader)
""",
        codes=("LFY400", "LFY407"),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
val_loader = DataLoader(data, batch_size=32)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
best = float("inf")
bad = 0
for epoch in range(20):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()
    total = 0.0
    with torch.no_grad():
        for x, y in val_loader:
            total += F.cross_entropy(model(x), y, reduction="sum").item()
    val_loss = total / len(val_loader.dataset)
    if val_loss < best:
        best = val_loss
        bad = 0
        torch.save(model.state_dict(), "best.pt")
    else:
        bad += 1
        if bad >= 3:
            break
""",
        after="""\
import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class LitModel(L.LightningModule):
    def __init__(self, model, best, bad):
        super().__init__()
        self.save_hyperparameters(ignore=["model", "bad", "best"])
        self.model = model
        self.best = best
        self.bad = bad

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("train_loss", loss)
        return loss

    def on_validation_epoch_start(self):
        self.total = 0.0

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.total += F.cross_entropy(self.model(x), y, reduction="sum").item()

    def on_validation_epoch_end(self):
        val_loss = self.total / len(self.trainer.val_dataloaders.dataset)
        self.val_loss = val_loss
        self.log("val_loss", self.val_loss, prog_bar=True)

    def on_train_epoch_end(self):
        if self.val_loss < self.best:
            self.best = self.val_loss
            self.bad = 0
            torch.save(self.model.state_dict(), "best.pt")
        else:
            self.bad += 1
            if self.bad >= 3:
                self.trainer.should_stop = True

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
val_loader = DataLoader(data, batch_size=32)
model = nn.Linear(4, 2)
best = float("inf")
bad = 0
trainer = L.Trainer(max_epochs=20, accelerator="cpu", devices=1)
trainer.fit(LitModel(model, best=best, bad=bad), loader, val_loader)
model.eval()
""",
        codes=("LFY400", "LFY407"),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
val_loader = DataLoader(data, batch_size=32)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(4):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, "last.pt")
""",
        after=None,
        codes=("LFY407",),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
val_loader = DataLoader(data, batch_size=32)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
best = float("inf")
for epoch in range(4):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()
    total = 0.0
    with torch.no_grad():
        for x, y in val_loader:
            total += F.cross_entropy(model(x), y, reduction="sum").item()
    val_loss = total / len(val_loader.dataset)
    if val_loss < best:
        best = val_loss
        torch.save(model.state_dict(), "best.pt")
print(f"best validation loss {best:.4f}")
""",
        after=None,
        codes=("LFY407",),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
val_loader = DataLoader(data, batch_size=32)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(4):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    torch.save(model.state_dict(), "last.pt")
    model.eval()
    total = 0.0
    with torch.no_grad():
        for x, y in val_loader:
            total += F.cross_entropy(model(x), y, reduction="sum").item()
    val_loss = total / len(val_loader.dataset)
    print(val_loss)
""",
        after=None,
        codes=("LFY407",),
    ),
]
