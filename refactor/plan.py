"""The plan the rules fill in: the class to write, the Trainer call, and what to remove."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from lightify.diagnostics import Finding

# Attributes a LightningModule already has: a constructor argument never takes these names.
RESERVED = frozenset(
    {
        "automatic_optimization", "current_epoch", "device", "dtype", "example_input_array",
        "fabric", "forward", "global_rank", "global_step", "hparams", "local_rank", "log",
        "logger", "loggers", "on_gpu", "optimizers", "parameters", "precision", "state_dict",
        "train", "trainer", "training", "eval", "lr_schedulers", "modules", "children",
    }
)  # fmt: skip


@dataclass
class Method:
    """A method of the generated class: its signature and body statements."""

    name: str
    params: str
    body: list[cst.BaseStatement]


@dataclass
class Plan:
    """Everything the emitter needs; rules add to it, nothing reads the CST after emit."""

    class_name: str
    modules: list[str] = field(default_factory=list)  # constructor arguments holding nn.Modules
    hparams: dict[str, cst.BaseExpression] = field(default_factory=dict)  # name -> value at call
    unsaved: set[str] = field(default_factory=set)  # hparams not written to checkpoints
    methods: dict[str, Method] = field(default_factory=dict)
    trainer_kwargs: dict[str, cst.BaseExpression] = field(default_factory=dict)
    removed: set[cst.CSTNode] = field(default_factory=set)  # dropped; comments stay in place
    moved: set[cst.CSTNode] = field(default_factory=set)  # now in the class, with their comments
    removable: set[cst.CSTNode] = field(default_factory=set)  # removed when nothing uses them
    replaced: dict[cst.CSTNode, cst.CSTNode] = field(default_factory=dict)
    signatures: dict[cst.FunctionDef, cst.Parameters] = field(default_factory=dict)  # new params
    after_fit: list[cst.BaseStatement] = field(default_factory=list)
    test_loader: str | None = None
    train_loader: str = ""
    val_loader: str | None = None
    notes: list[Finding] = field(default_factory=list)
    manual_optimization: bool = False  # several optimizers: training_step steps them itself
    state: set[str] = field(default_factory=set)  # attributes the hooks set (an RNN's hidden state)

    def hparam(self, name: str, value: cst.BaseExpression, saved: bool = True) -> str:
        """Register a constructor argument; returns the attribute name it is stored under."""
        base = name + "_" if name in RESERVED else name
        candidate = base
        suffix = 2
        while candidate in self.state or (
            candidate in self.hparams and not self.hparams[candidate].deep_equals(value)
        ):
            candidate = f"{base}_{suffix}"
            suffix += 1
        if candidate in self.modules:
            candidate = f"{candidate}_value"
        self.hparams[candidate] = value
        if not saved:
            self.unsaved.add(candidate)
        return candidate

    def module(self, name: str) -> str:
        if name not in self.modules:
            self.modules.append(name)
        return name

    def add_method(self, method: Method) -> None:
        self.methods[method.name] = method

    def add_to_hook(self, name: str, body: list[cst.BaseStatement]) -> None:
        """Append to a hook without arguments that several rules fill (``on_*_epoch_start``)."""
        self.methods.setdefault(name, Method(name, "self", [])).body.extend(body)
