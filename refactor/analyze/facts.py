"""Typed facts about a training script, produced once by the analyzer and read by the rules."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import libcst as cst


class Kind(enum.Enum):
    """What a name in the program's scope holds, judged by what built it."""

    MODULE = "module"  # an nn.Module instance: the model, a criterion
    OPTIMIZER = "optimizer"
    SCHEDULER = "scheduler"
    LOADER = "loader"
    DEVICE = "device"
    CONFIG = "config"  # argparse namespace, SimpleNamespace, dataclass instance: read by attribute
    VALUE = "value"  # anything else


@dataclass(frozen=True)
class Binding:
    """A name assigned in the program's scope (the block that holds the epoch loop)."""

    name: str
    line: cst.SimpleStatementLine | cst.If | cst.FunctionDef  # If: chosen in both branches
    value: cst.BaseExpression
    kind: Kind
    callee: str | None  # qualified name of the call that built it, e.g. torch.optim.SGD


@dataclass(frozen=True)
class Accumulator:
    """A running sum over a batch loop: ``name += update`` with its initialisation."""

    name: str
    update: cst.BaseExpression


@dataclass
class Pass:
    """One batch loop over a DataLoader: a training or an evaluation pass.

    ``body`` is the loop body after the pass's function parameters were replaced
    by what the caller passed, so every name means what it means at the call.
    """

    role: str  # "train" or "eval"
    loop: cst.For
    target: cst.BaseAssignTargetExpression
    index: str | None
    index_start: cst.BaseExpression | None
    loader: str
    body: list[cst.BaseStatement]
    before: list[cst.BaseStatement] = field(default_factory=list)
    after: list[cst.BaseStatement] = field(default_factory=list)
    function: cst.FunctionDef | None = None
    grad_disabled: bool = False
    calls_eval: bool = False  # model.eval() precedes the loop
    result: cst.BaseExpression | None = None  # what the pass's function returns
    result_names: tuple[str, ...] = ()  # what the caller binds the result to
    accumulators: dict[str, Accumulator] = field(default_factory=dict)
    progress_bar: str | None = None  # ``bar`` of ``bar = tqdm(loader)``; ``for ... in bar``
    # statements spliced out of ``with torch.autocast(...):`` blocks → their block
    autocast: dict[cst.BaseStatement, cst.With] = field(default_factory=dict)

    def invoked_by(self, statement: cst.CSTNode) -> bool:
        """Whether a statement of the epoch loop runs this pass (or is part of it, inline)."""
        from lightify.analyze.nodes import dotted_name, statement_call

        if self.function is None:
            return statement is self.loop or statement in self.before or statement in self.after
        call = statement_call(statement)
        return call is not None and dotted_name(call.func) == self.function.name.value


@dataclass
class EpochLoop:
    """The ``for epoch in range(...)`` loop that drives the passes."""

    node: cst.For
    epoch_var: str | None
    max_epochs: cst.BaseExpression
    start: cst.BaseExpression | None
    items: list[cst.BaseStatement]


@dataclass
class Program:
    """Everything known about the one training program in a file."""

    owner: cst.CSTNode  # Module, FunctionDef (main) or If (__main__ guard)
    block: list[cst.BaseStatement]
    bindings: dict[str, Binding]
    epoch: EpochLoop
    train: Pass
    validation: Pass | None
    test: Pass | None
    test_call: cst.BaseStatement | None
    passes_in_loop: list[cst.BaseStatement]
    globals: frozenset[str]  # names the module binds at its top level, and builtins
    eval_guard: cst.If | None = None  # ``if epoch % k == 0:`` around the validation pass
    guarded: tuple[cst.BaseStatement, ...] = ()  # the statements under that guard
    eval_in_batch: bool = False  # the guard is ``if (batch_idx + 1) % n == 0:`` in the batch loop

    def optimizers(self) -> list[Binding]:
        """The optimizers in the order the script creates them."""
        return [b for b in self.bindings.values() if b.kind is Kind.OPTIMIZER]
