"""LFY401: the epoch loop becomes ``L.Trainer(max_epochs=...)`` and ``trainer.fit(...)``."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.nodes import (
    is_docstring,
    method_call,
    mode_call,
    names_in,
    only_small,
    operand,
    result_names,
)
from lightify.rule import Example
from lightify.rules.print_logging import is_bar_statement, is_print

CODE = "LFY401"
SUMMARY = "The epoch loop becomes a Trainer with max_epochs, devices=1, and fit()"
ORDER = 50  # build order: see lightify.lower
DOC = """\
## What it does
Replaces `for epoch in range(n): train(...); evaluate(...)` with
`trainer = L.Trainer(max_epochs=n, accelerator=..., devices=1)` and
`trainer.fit(LitNet(model, ...), train_loader, val_loader)`. `max_epochs` is
always set (Lightning's default is 1000). After `fit`, modules are put back in
the mode the script left them in.

Reported (and left unchanged) when the loop is not an epoch loop over
`range(...)`, is nested inside other code, or is not called from one.

## Why
Lightning runs the same passes in the same order: the training epoch, then
validation, then the epoch's scheduler step.

## Example
```python
for epoch in range(1, args.epochs + 1):
    train(args, model, device, train_loader, optimizer, epoch)
    test(model, device, test_loader)
    scheduler.step()
```

## Use instead
```python
trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1)
trainer.fit(LitNet(model), train_loader, test_loader)
```

## Fix safety
Safe. Statements in the epoch loop that have no Lightning equivalent decline the
conversion (LFY403).
"""


def build(lowering) -> None:
    program = lowering.program
    plan = lowering.plan
    plan.trainer_kwargs = {"max_epochs": program.epoch.max_epochs, **plan.trainer_kwargs}
    plan.train_loader = program.train.loader
    plan.val_loader = program.validation.loader if program.validation else None
    results = set(program.validation.result_names) if program.validation else set()
    train_results: set[str] = set()
    for statement in program.passes_in_loop:
        if mode_call(statement) is not None:
            lowering.claimed.add(statement)
        elif program.train.invoked_by(statement):
            lowering.claimed.add(statement)
            train_results = set(result_names(statement))
        elif is_print(statement) and names_in(statement) & (results | train_results):
            lowering.note("LFY410", "print of metrics is replaced by self.log", statement)
            lowering.claimed.add(statement)
    _check_train_function(lowering)
    if program.validation is not None:
        plan.after_fit.extend(_final_mode(program, plan))


def _check_train_function(lowering) -> None:
    """Around the training loop only mode calls, display sums, prints, returns and the
    function's docstring may stand."""
    train = lowering.program.train
    for statement in [*train.before, *train.after]:
        small = only_small(statement)
        if (
            is_print(statement)
            or isinstance(small, cst.Return)
            or is_bar_statement(statement, train)
            or is_docstring(statement)  # becomes training_step's docstring
        ):
            continue
        found = method_call(statement)
        if found is not None and found[1] in {"train", "eval"}:
            continue
        if isinstance(small, cst.Assign | cst.AugAssign):
            continue
        raise Decline(
            "LFY403",
            "this statement around the training loop has no place in a LightningModule",
            statement,
        )


def _final_mode(program, plan) -> list[cst.BaseStatement]:
    """``model.eval()`` after fit where the script's last epoch leaves its modules in eval mode.

    With ``check_val_every_n_epoch=k`` the last epoch validates when ``max_epochs % k == 0``.
    """
    every = plan.trainer_kwargs.get("check_val_every_n_epoch")
    guarded = frozenset(program.guarded) if every is not None else frozenset()
    validated = _ends_in_eval_mode(program, frozenset())
    skipped = _ends_in_eval_mode(program, guarded)
    if validated == skipped:
        return _eval_calls(program) if validated else []
    epochs = program.epoch.max_epochs
    if isinstance(epochs, cst.Integer) and isinstance(every, cst.Integer):
        last = int(epochs.value, 0) % int(every.value, 0) == 0
        return _eval_calls(program) if (validated if last else skipped) else []
    operator = "==" if validated else "!="
    test = f"{operand(epochs)} % {operand(every)} {operator} 0"
    branch = cst.parse_statement(f"if {test}:  # as the script's last epoch left it\n    pass\n")
    assert isinstance(branch, cst.If)
    return [branch.with_changes(body=branch.body.with_changes(body=_eval_calls(program)))]


def _ends_in_eval_mode(program, skipped: frozenset) -> bool:
    """Whether the script's epoch ends with its modules in eval mode (Lightning's end in train)."""
    validation = program.validation
    mode = "train"
    for statement in program.passes_in_loop:
        if statement in skipped:
            continue
        switched = mode_call(statement)
        if switched is not None:
            mode = switched
        elif program.train.invoked_by(statement):
            mode = "train"
        elif validation.invoked_by(statement):
            mode = "eval" if validation.calls_eval else mode
    return mode == "eval"


def _eval_calls(program) -> list[cst.BaseStatement]:
    """``model.eval()`` for each module the validation pass switched to eval mode."""
    found = program.validation
    calls = []
    for statement in found.before:
        method = method_call(statement)
        if method is not None and method[1] == "eval":
            calls.append(cst.parse_statement(f"{method[0]}.eval()"))
    return calls


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
epoch = 0
while epoch < 2:
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    epoch += 1
""",
        after=None,
        codes=("LFY401",),
    ),
]
