"""LFY410: prints of the training loss and progress-bar postfixes become ``self.log``."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Kind
from lightify.analyze.nodes import code, dotted_name, method_call, names_in, only_small, stmt
from lightify.rule import Example

CODE = "LFY410"
SUMMARY = "print() of a metric or a progress-bar postfix becomes self.log"
DOC = """\
## What it does
A `print` in the batch loop that shows the loss (often under
`if batch_idx % log_interval == 0:`) is replaced by `self.log("train_loss", loss)`,
which the logger and progress bar show. Prints of evaluation metrics are replaced
by the logged metrics. Other prints stay where they are.

A tqdm bar over the loader (`for x, y in tqdm(loader)`, or `bar = tqdm(loader)`
then `for x, y in bar`) gives way to Lightning's own progress bar. What its
`set_postfix(...)`, `set_postfix_str(...)` or `set_description(...)` show
becomes `self.log("train_<key>", value, prog_bar=True)`, the tensor itself
rather than its `.item()` (no host synchronisation per step); a running mean of
the loss shows as the loss. Epoch and batch counters are left to Lightning's bar.
An evaluation loop's postfix gives way to the logged validation metrics.
Declined: a bar showing what training_step cannot compute (a learning rate from
the optimizer), and other bar calls in the loop (`bar.update()`).

## Why
Lightning logs every step to the logger and shows the loss on the progress bar
without a host synchronisation per print.

## Example
```python
pbar = tqdm(loader, desc=f"epoch {epoch}")
for x, y in pbar:
    ...
    pbar.set_postfix(loss=loss.item())
```

## Use instead
```python
self.log("train_loss", loss, prog_bar=True)
```

## Fix safety
Safe: printing and progress bars have no effect on training. The replaced prints
and postfixes are listed.
"""
BAR_DISPLAYS = frozenset(
    {"set_postfix", "set_postfix_str", "set_description", "set_description_str"}
)


def is_print(statement: cst.CSTNode) -> bool:
    small = only_small(statement)
    return (
        isinstance(small, cst.Expr)
        and isinstance(small.value, cst.Call)
        and dotted_name(small.value.func) == "print"
    )


def bar_call(statement: cst.CSTNode, bar: str | None) -> tuple[str, cst.Call] | None:
    """``(method, call)`` of a statement ``bar.method(...)`` on a pass's progress bar."""
    found = method_call(statement)
    if bar is None or found is None or found[0] != bar:
        return None
    return found[1], found[2]


def _is_display(statement: cst.CSTNode, bar: str | None) -> bool:
    found = bar_call(statement, bar)
    return is_print(statement) or (found is not None and found[0] in BAR_DISPLAYS)


def only_prints(
    statement: cst.BaseStatement, sums: frozenset[str] = frozenset(), bar: str | None = None
) -> bool:
    """A print or bar postfix, or an ``if`` holding only those, dry-run breaks and sum resets."""
    from lightify.rules.dry_run import is_flag_break

    if _is_display(statement, bar):
        return True
    if isinstance(statement, cst.If) and statement.orelse is None:
        return all(
            only_prints(s, sums, bar) or is_flag_break(s) or _resets(s, sums)
            for s in statement.body.body
        )
    return False


def display_sums(found) -> frozenset[str]:
    """Running sums (``running_loss += loss.item()``) read only by prints, bars and resets."""
    sums = set(found.accumulators)
    for statement in found.body:
        small = only_small(statement)
        if isinstance(small, cst.AugAssign) and dotted_name(small.target) in sums:
            continue
        if only_prints(statement, frozenset(sums), found.progress_bar):
            continue
        sums -= names_in(statement)
    return frozenset(sums)


def is_bar_statement(statement: cst.CSTNode, found) -> bool:
    """``bar = tqdm(loader)`` or ``bar.close()`` around a pass: Lightning's bar replaces them."""
    bar = found.progress_bar
    small = only_small(statement)
    if isinstance(small, cst.Assign) and bar is not None:
        return [code(t.target) for t in small.targets] == [bar]
    call = bar_call(statement, bar)
    return call is not None and call[0] == "close"


def without_bar_displays(lowering, found) -> list[cst.BaseStatement]:
    """An evaluation loop's body without its bar postfixes: its logged metrics show instead."""
    kept = []
    for statement in found.body:
        if _bar_displays(statement, found.progress_bar) and only_prints(
            statement, bar=found.progress_bar
        ):
            lowering.note(
                CODE, "progress-bar postfix is replaced by the logged evaluation metrics", statement
            )
            continue
        kept.append(statement)
    return kept


def _bar_displays(statement: cst.CSTNode, bar: str | None) -> list[tuple[str, cst.Call]]:
    lines = statement.body.body if isinstance(statement, cst.If) else [statement]
    calls = [bar_call(line, bar) for line in lines]
    return [c for c in calls if c is not None and c[0] in BAR_DISPLAYS]


def _resets(statement: cst.CSTNode, sums: frozenset[str]) -> bool:
    small = only_small(statement)
    return isinstance(small, cst.Assign) and all(
        dotted_name(t.target) in sums for t in small.targets
    )


def step(statement: cst.BaseStatement, builder) -> bool:
    bar = builder.found.progress_bar
    if "display_sums" not in builder.memo:  # once per pass, not once per statement
        builder.memo["display_sums"] = display_sums(builder.found)
    sums = builder.memo["display_sums"]
    small = only_small(statement)
    if isinstance(small, cst.AugAssign) and dotted_name(small.target) in sums:
        builder.consume(statement)  # a display sum: the logged loss replaces it
        return True
    if not only_prints(statement, sums, bar):
        other = bar_call(statement, bar)
        if other is not None:
            raise Decline(
                CODE,
                f"`{bar}.{other[0]}(...)` has no equivalent in training_step; Lightning's "
                "progress bar advances and closes itself",
                statement,
            )
        return False
    displays = _bar_displays(statement, bar)
    if displays:
        from lightify.rules.dry_run import claim_break

        claim_break(statement, builder)
        builder.consume(statement)
        for line in _bar_logs(displays, builder, sums, statement):
            builder.keep(line)
        builder.lowering.note(
            CODE, "progress-bar postfix is replaced by self.log(..., prog_bar=True)", statement
        )
        return True
    metric_names = {builder.loss.value} if isinstance(builder.loss, cst.Name) else set()
    metric_names |= {"loss"} | sums
    if not names_in(statement) & metric_names:
        return False
    from lightify.rules.dry_run import claim_break

    claim_break(statement, builder)
    builder.lowering.note(CODE, "print of the training loss is replaced by self.log", statement)
    builder.consume(statement)
    return True


def build(lowering) -> None:
    """``bar = tqdm(loader)`` and ``bar.close()`` in the epoch loop go with the loop."""
    program = lowering.program
    passes = [found for found in (program.train, program.validation) if found is not None]
    for statement in program.passes_in_loop:
        if any(is_bar_statement(statement, found) for found in passes):
            lowering.claimed.add(statement)


def _bar_logs(
    displays: list[tuple[str, cst.Call]], builder, sums: frozenset[str], statement
) -> list[cst.BaseStatement]:
    """``self.log(name, value, prog_bar=True)`` for each metric a bar shows, without ``.item()``."""
    logs: dict[str, str] = {}
    for key, value in _shown(displays, statement):
        shown = _unwrapped(value)
        names = names_in(shown)
        if names & sums:
            if not isinstance(builder.loss, cst.Name) or not all(
                code(_unwrapped(builder.found.accumulators[n].update)) == code(builder.loss)
                for n in names & sums
            ):
                raise Decline(
                    CODE,
                    f"the progress bar shows `{code(value)}`, a running value lightify cannot "
                    "log per step; show the loss instead",
                    statement,
                )
            logs.setdefault("train_loss", code(builder.loss))
        elif names & _step_locals(builder.found):
            if key is None or isinstance(shown, cst.BaseString):
                raise Decline(
                    CODE,
                    f"lightify cannot log `{code(value)}`, shown in the progress bar, as a "
                    "named number",
                    statement,
                )
            logs.setdefault(_log_name(key), code(shown))
        elif not _decoration(names, builder.lowering.program, builder.found):
            raise Decline(
                CODE,
                f"the progress bar shows `{code(value)}`, which training_step cannot log "
                "exactly (Lightning shows the epoch; a LearningRateMonitor the learning rate)",
                statement,
            )
    return [stmt(f'self.log("{name}", {value}, prog_bar=True)') for name, value in logs.items()]


def _shown(
    displays: list[tuple[str, cst.Call]], statement
) -> list[tuple[str | None, cst.BaseExpression]]:
    """(key, value) pairs a bar call displays: postfix keywords and dict items, f-string parts."""
    shown: list[tuple[str | None, cst.BaseExpression]] = []
    for method, call in displays:
        for arg in call.args:
            keyword = arg.keyword.value if arg.keyword is not None else None
            if keyword == "refresh":
                continue
            if method == "set_postfix" and keyword not in (None, "ordered_dict"):
                shown.append((keyword, arg.value))
            elif method == "set_postfix" and isinstance(arg.value, cst.Dict):
                for element in arg.value.elements:
                    key = getattr(element, "key", None)
                    if not isinstance(key, cst.SimpleString):
                        raise Decline(
                            CODE, "lightify cannot read this progress-bar postfix", statement
                        )
                    shown.append((key.evaluated_value, element.value))
            elif isinstance(arg.value, cst.FormattedString):
                shown.extend(_formatted(arg.value))
            elif not isinstance(arg.value, cst.SimpleString):
                raise Decline(
                    CODE,
                    f"lightify cannot read `{code(arg.value)}` shown in the progress bar; "
                    "show values with set_postfix(name=value) or an f-string",
                    statement,
                )
    return shown


def _formatted(text: cst.FormattedString) -> list[tuple[str | None, cst.BaseExpression]]:
    """``f"loss {loss.item():.4f}"`` → ("loss", loss.item()): named by its variable or label."""
    out = []
    label = ""
    for part in text.parts:
        if isinstance(part, cst.FormattedStringText):
            label = part.value
            continue
        words = "".join(c if c.isalnum() or c == "_" else " " for c in label).split()
        out.append((_name_of(part.expression) or (words[-1] if words else None), part.expression))
        label = ""
    return out


def _name_of(value: cst.BaseExpression) -> str | None:
    shown = _unwrapped(value)
    return shown.value if isinstance(shown, cst.Name) else None


def _unwrapped(value: cst.BaseExpression) -> cst.BaseExpression:
    """The tensor behind ``x.item()``, ``float(x)``, ``f"{x:.4f}"``, ``"%.4f" % x`` and the like."""
    if isinstance(value, cst.FormattedString):
        parts = [p for p in value.parts if isinstance(p, cst.FormattedStringExpression)]
        if len(parts) == 1 and len(value.parts) == 1:
            return _unwrapped(parts[0].expression)
    if isinstance(value, cst.Call) and len(value.args) in (1, 2):
        func = value.func
        formats = isinstance(func, cst.Attribute) and isinstance(func.value, cst.SimpleString)
        if dotted_name(func) in {"float", "round", "str"} or (
            formats and func.attr.value == "format" and len(value.args) == 1
        ):
            return _unwrapped(value.args[0].value)
    if (
        isinstance(value, cst.BinaryOperation)
        and isinstance(value.operator, cst.Modulo)
        and isinstance(value.left, cst.SimpleString)
    ):
        return _unwrapped(value.right)
    if (
        isinstance(value, cst.Call)
        and not value.args
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value == "item"
    ):
        return value.func.value
    return value


def _step_locals(found) -> set[str]:
    """What the batch loop computes itself: the batch and the names its body binds."""
    from lightify.into_module import bound_names

    return bound_names([found.loop]) - {found.index}


def _decoration(names: set[str], program, found) -> bool:
    """Epoch and batch counters, settings and loaders: what Lightning's own bar shows."""
    for name in names - {program.epoch.epoch_var, found.index}:
        binding = program.bindings.get(name)
        if binding is not None and binding.kind not in (Kind.CONFIG, Kind.VALUE, Kind.LOADER):
            return False
        if binding is None and name not in program.globals:
            return False
    return True


def _log_name(key: str) -> str:
    from lightify.rules.evaluation import metric_name

    return key if key.startswith("train") else metric_name(key, "train")


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
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if i % 2 == 0:
            print(f"epoch {epoch} batch {i} loss {loss.item():.4f}")
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
trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1)
trainer.fit(LitModel(model), loader)
""",
        codes=("LFY400", "LFY410"),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    pbar = tqdm(loader, desc=f"epoch {epoch}")
    for x, y in pbar:
        optimizer.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        acc = (logits.argmax(1) == y).float().mean()
        pbar.set_postfix(loss=f"{loss.item():.4f}", acc=acc.item())
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
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(1) == y).float().mean()
        self.log("train_loss", loss, prog_bar=True)
        self.log("train_acc", acc, prog_bar=True)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1)
trainer.fit(LitModel(model), loader)
""",
        codes=("LFY400", "LFY410"),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    pbar = tqdm(loader, desc=f"epoch {epoch}")
    for x, y in pbar:
        optimizer.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        pbar.set_postfix(loss=loss.item(), lr=optimizer.param_groups[0]["lr"])
""",
        after=None,
        codes=("LFY410",),
    ),
]
