"""LFY002: autocast around the step (and a GradScaler) becomes ``Trainer(precision=...)``."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Binding, Kind, Pass
from lightify.analyze.imports import ImportTable
from lightify.analyze.nodes import call_of, code, dotted_name, method_call, names_in, short
from lightify.analyze.program import AUTOCAST
from lightify.analyze.tree import ModuleIndex
from lightify.rule import Example

CODE = "LFY002"
SUMMARY = "autocast around the step (with its GradScaler) becomes Trainer(precision=...)"
ORDER = 70  # build order: after device_moves (60) has chosen the accelerator
SCALERS = frozenset(
    {
        "torch.amp.GradScaler",
        "torch.amp.grad_scaler.GradScaler",
        "torch.cuda.amp.GradScaler",
        "torch.cuda.amp.grad_scaler.GradScaler",
    }
)
APIS = AUTOCAST | SCALERS
DOC = """\
## What it does
`with torch.autocast(...):` around the forward pass and loss of the training loop
becomes Lightning's precision flag, and the block is removed (its body kept):

- `torch.autocast("cpu", dtype=torch.bfloat16)` (also `torch.cpu.amp.autocast()`)
  on a CPU-only script → `precision="bf16-mixed"`;
- `torch.autocast("cuda", dtype=torch.float16, enabled=use_amp)` with
  `scaler = torch.amp.GradScaler("cuda", enabled=use_amp)`,
  `scaler.scale(loss).backward()`, an optional `scaler.unscale_(optimizer)` before
  clipping, `scaler.step(optimizer)` and `scaler.update()` →
  `precision="16-mixed" if use_amp and torch.cuda.is_available() else "32-true"`
  (bfloat16 on CUDA, without a scaler, → `"bf16-mixed" if ...`).

Evaluation passes must autocast the same way, because the flag also autocasts
`validation_step` and `test_step`.

## Why
Lightning's `MixedPrecision` plugin wraps every `training_step`, `validation_step`
and `test_step` in `torch.autocast(device, dtype, cache_enabled=False)`, runs
backward outside it, and for 16-mixed scales the loss, unscales the gradients
before clipping, then calls `scaler.step` and `scaler.update` with a default
`GradScaler`: the same operations as the script when its block covers exactly
the step. `torch.cuda.is_available()` is part of the condition because a CUDA
autocast and GradScaler switch themselves off without CUDA, while Lightning would
turn 16-mixed into bf16 on the CPU.

Declined (the loop is left as it is) when the block leaves part of the step
outside it (the loss computed after the block, say), an evaluation pass does not
autocast the same way, the GradScaler has settings of its own (`init_scale=`,
`growth_interval=`, ...), gradients are clipped before `scaler.unscale_`, a CPU
autocast runs on a script that may train on CUDA, or a CUDA GradScaler could
scale the loss of a model that stays on the CPU.

## Example
```python
scaler = torch.amp.GradScaler("cuda", enabled=args.amp)
for epoch in range(args.epochs):
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        with torch.autocast("cuda", dtype=torch.float16, enabled=args.amp):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
```

## Use instead
```python
L.Trainer(
    accelerator="cuda" if torch.cuda.is_available() else "cpu",
    devices=1,
    precision="16-mixed" if args.amp and torch.cuda.is_available() else "32-true",
)
```

## Fix safety
Safe when the block covers the whole step. One difference is out of sight:
Lightning's autocast does not cache the low-precision copy of a weight
(`cache_enabled=False`), the script's does, so a weight used twice inside one
block gets a gradient that differs in the last bits. lightify declines when it
sees that (a trained module called twice in the block, a submodule called twice
or in a loop in a `forward` of this file) unless the script passes
`cache_enabled=False`; a model from another file that reuses a weight is not seen.
"""

# Positional parameters of each autocast spelling, and the device the spelling implies.
SIGNATURES = {
    "torch.cuda.amp.autocast": ("enabled", "dtype", "cache_enabled"),
    "torch.cpu.amp.autocast": ("enabled", "dtype", "cache_enabled"),
}
AUTOCAST_PARAMS = ("device_type", "dtype", "enabled", "cache_enabled")
IMPLIED_DEVICE = {"torch.cuda.amp.autocast": "cuda", "torch.cpu.amp.autocast": "cpu"}
DTYPES = {"torch.float16": "float16", "torch.half": "float16", "torch.bfloat16": "bfloat16"}
DEFAULT_DTYPE = {"cuda": "float16", "cpu": "bfloat16"}
FLAGS = {"float16": "16-mixed", "bfloat16": "bf16-mixed"}
SCALER_PARAMS = ("init_scale", "growth_factor", "backoff_factor", "growth_interval", "enabled")

# Calls whose result autocast never changes: moving a statement made of these into
# Lightning's autocast region leaves its numbers as they were.
SAFE_METHODS = frozenset(
    {
        "to", "cuda", "cpu", "float", "double", "long", "int", "bool", "view", "view_as",
        "reshape", "flatten", "squeeze", "unsqueeze", "permute", "transpose", "contiguous",
        "detach", "item", "tolist", "size", "numel", "dim", "argmax", "argmin", "eq", "ne",
        "zero_grad", "backward", "step", "update", "unscale_", "scale", "train", "eval",
        "parameters", "format", "set_postfix", "set_description",
    }
)  # fmt: skip
SAFE_FUNCTIONS = frozenset({"print", "len", "float", "int", "str", "round", "isinstance"})
CLIPPING = frozenset(
    {
        "torch.nn.utils.clip_grad_norm_",
        "torch.nn.utils.clip_grad.clip_grad_norm_",
        "torch.nn.utils.clip_grad_value_",
        "torch.nn.utils.clip_grad.clip_grad_value_",
    }
)
# torch.nn modules without weights: calling one twice under autocast shares no cast copy.
WEIGHTLESS = frozenset(
    {
        "ReLU", "ReLU6", "GELU", "SiLU", "Mish", "Tanh", "Sigmoid", "LeakyReLU", "ELU", "SELU",
        "Softplus", "Softmax", "LogSoftmax", "Hardtanh", "Hardswish", "Hardsigmoid", "Dropout",
        "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "MaxPool1d", "MaxPool2d",
        "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool1d",
        "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
        "Flatten", "Unflatten", "Identity", "Upsample",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Autocast:
    """What one ``with torch.autocast(...):`` block does."""

    device: str  # "cuda" or "cpu"
    dtype: str  # "float16" or "bfloat16"
    enabled: cst.BaseExpression | None  # None: always on
    cached: bool  # autocast's weight-cast cache; Lightning's own autocast has it off
    block: cst.With

    def same_as(self, other: Autocast) -> bool:
        return (self.device, self.dtype, _text(self.enabled)) == (
            other.device,
            other.dtype,
            _text(other.enabled),
        )


def _switch(given: dict[str, cst.BaseExpression]) -> cst.BaseExpression | None:
    """The ``enabled=`` expression; None when it is absent or ``True``."""
    enabled = given.get("enabled")
    return None if _text(enabled) == "True" else enabled


def check(lowering) -> None:
    """Decline every mixed-precision use that the precision flag cannot reproduce exactly."""
    uses = _uses(lowering)
    if not uses:
        return
    program = lowering.program
    scaler = _scaler(lowering)
    _check_other_uses(lowering, uses, scaler)
    train = program.train
    evaluations = [found for found in (program.validation, program.test) if found is not None]
    if not train.autocast:
        for found in evaluations:
            if found.autocast:
                raise Decline(
                    CODE,
                    "evaluation autocasts but the training step does not; Lightning's precision "
                    "flag autocasts both or neither",
                    next(iter(found.autocast.values())),
                )
        if scaler is not None:
            raise Decline(
                CODE,
                "a GradScaler without autocast around the training step; Lightning's 16-mixed "
                "would also autocast it",
                scaler.line,
            )
        return
    cast = _autocast_of(lowering, train)
    _check_scaler(lowering, cast, scaler)
    _check_covered(lowering, train, cast, scaler)
    for found in evaluations:
        if not found.autocast:
            raise Decline(
                CODE,
                "this evaluation runs without autocast, but Lightning's precision flag "
                "autocasts validation_step and test_step like training_step",
                found.loop,
            )
        other = _autocast_of(lowering, found)
        if not other.same_as(cast):
            raise Decline(
                CODE,
                "this autocast differs from the training step's; Lightning's precision flag "
                "autocasts every step the same way",
                other.block,
            )
        _check_covered(lowering, found, other, scaler)
    if cast.cached:
        _check_no_shared_weights(lowering, train)


def _autocast_of(lowering, found: Pass) -> Autocast:
    """The one autocast block of a pass, read from its arguments."""
    blocks = list(dict.fromkeys(found.autocast.values()))
    if len(blocks) > 1:
        raise Decline(
            CODE,
            "the step has several autocast blocks; lightify maps one block around the whole step",
            blocks[1],
        )
    block = blocks[0]
    call = _autocast_call(block)
    qual = lowering.index.imports.qualify(call.func) or ""
    given = _arguments(call, SIGNATURES.get(qual, AUTOCAST_PARAMS), block)
    device = IMPLIED_DEVICE.get(qual) or _literal(given.get("device_type"))
    if device not in DEFAULT_DTYPE:
        raise Decline(
            CODE,
            'lightify needs the autocast\'s device_type as a literal "cuda" or "cpu"',
            block,
        )
    dtype = DEFAULT_DTYPE[device]
    if "dtype" in given:
        dtype = DTYPES.get(lowering.index.imports.qualify(given["dtype"]) or "", "")
    if not dtype:
        raise Decline(CODE, "autocast to a dtype other than torch.float16 or torch.bfloat16", block)
    if device == "cpu" and dtype == "float16":
        raise Decline(
            CODE,
            "float16 autocast on the CPU: Lightning turns 16-mixed into bf16-mixed there",
            block,
        )
    cache = _text(given.get("cache_enabled"))
    if cache not in (None, "False"):
        raise Decline(CODE, "lightify maps cache_enabled=False or its default only", block)
    return Autocast(device, dtype, _switch(given), not cache, block)


def _autocast_call(block: cst.With) -> cst.Call:
    call = block.items[0].item
    assert isinstance(call, cst.Call)  # the analyzer splices only such blocks
    return call


def _arguments(
    call: cst.Call, params: tuple[str, ...], node: cst.CSTNode
) -> dict[str, cst.BaseExpression]:
    given: dict[str, cst.BaseExpression] = {}
    for position, arg in enumerate(call.args):
        key = arg.keyword.value if arg.keyword is not None else None
        if key is None and not arg.star and position < len(params):
            key = params[position]
        if key not in params:
            raise Decline(CODE, f"`{code(call)}` has an argument lightify does not map", node)
        given[key] = arg.value
    return given


def _literal(node: cst.BaseExpression | None) -> str | None:
    if isinstance(node, cst.SimpleString):
        return str(node.evaluated_value)
    return None


def _text(node: cst.BaseExpression | None) -> str | None:
    return None if node is None else code(node)


def _scaler(lowering) -> Binding | None:
    found = [b for b in lowering.program.bindings.values() if b.callee in SCALERS]
    if len(found) > 1:
        raise Decline(CODE, "several GradScalers; Lightning's 16-mixed has one", found[1].line)
    if found and not isinstance(found[0].value, cst.Call):
        raise Decline(CODE, "lightify maps a GradScaler built by a plain call", found[0].line)
    return found[0] if found else None


def _check_other_uses(lowering, uses: list[cst.CSTNode], scaler: Binding | None) -> None:
    """autocast or GradScaler in code that moves, other than the blocks and the scaler."""
    index = lowering.index
    program = lowering.program
    passes = [p for p in (program.train, program.validation, program.test) if p is not None]
    known = {
        index.position(_autocast_call(block).func) for p in passes for block in p.autocast.values()
    }
    if scaler is not None:
        assert isinstance(scaler.value, cst.Call)
        known.add(index.position(scaler.value.func))
    block = program.block
    moving = {program.epoch.node, *(p.function for p in passes if p.function is not None)}
    moving |= {
        s
        for s in block[: block.index(program.epoch.node)]
        if not isinstance(s, cst.ClassDef | cst.FunctionDef)
    }
    for node in uses:
        if index.position(node) in known:
            continue
        if any(parent in moving for parent in index.ancestors(node)):
            raise Decline(
                CODE,
                f"`{code(node)}` is used here in a way lightify does not map to Lightning's "
                "precision flag (it maps `with torch.autocast(...):` around a batch loop's "
                "step and a GradScaler built before the epoch loop)",
                node,
            )


def _uses(lowering) -> list[cst.CSTNode]:
    """Every Name/Attribute of the file that resolves to autocast or GradScaler."""
    return list(lowering.index.uses(APIS))


def _check_covered(lowering, found: Pass, cast: Autocast, scaler: Binding | None) -> None:
    """The block must hold every statement of the step whose numbers autocast changes."""
    stage = "training_step" if found.role == "train" else "the evaluation step"
    for statement in found.body:
        if statement in found.autocast:
            if found.role == "train" and _updates(lowering, statement, scaler):
                raise Decline(
                    CODE,
                    "backward() or the optimizer step runs inside the autocast block; Lightning "
                    "runs them outside it",
                    statement,
                )
            continue
        changed = _changed_by_autocast(lowering, statement)
        if changed is not None:
            raise Decline(
                CODE,
                f"`{short(changed)}` runs outside the autocast block, but Lightning's precision "
                f"flag autocasts all of {stage}; lightify converts a block that covers the step",
                changed,
            )


def _updates(lowering, statement: cst.BaseStatement, scaler: Binding | None) -> bool:
    """Whether a statement runs backward(), steps, clips or touches the scaler."""
    bindings = lowering.program.bindings
    names = names_in(statement)
    if scaler is not None and scaler.name in names:
        return True
    if any(n in bindings and bindings[n].kind in (Kind.OPTIMIZER, Kind.SCHEDULER) for n in names):
        return True
    calls = _calls(statement)
    return any(
        (isinstance(c.func, cst.Attribute) and c.func.attr.value == "backward")
        or lowering.index.imports.qualify(c.func) in CLIPPING
        for c in calls
    )


def _changed_by_autocast(lowering, statement: cst.BaseStatement) -> cst.CSTNode | None:
    """The first call or operator in a statement whose result autocast may change."""
    imports = lowering.index.imports
    found: list[cst.CSTNode] = []

    class _Unsafe(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            if not found and not _safe_call(node, imports):
                found.append(node)

        def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
            risky = isinstance(node.operator, cst.MatrixMultiply | cst.Power) or (
                isinstance(node.operator, cst.Divide)
                and isinstance(node.left, cst.Integer | cst.Float)
            )
            if not found and risky:
                found.append(node)

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            if not found and isinstance(node.operator, cst.MatrixMultiplyAssign | cst.PowerAssign):
                found.append(node)

    statement.visit(_Unsafe())
    return found[0] if found else None


def _safe_call(call: cst.Call, imports: ImportTable) -> bool:
    func = call.func
    if isinstance(func, cst.Name):
        return func.value in SAFE_FUNCTIONS
    if imports.qualify(func) in CLIPPING:
        return True
    if not isinstance(func, cst.Attribute):
        return False
    method = func.attr.value
    if method in SAFE_METHODS:
        return True
    # `(pred == y).sum()`, `x.float().mean()`: reductions of exact (bool or float32) values
    receiver = func.value
    exact = isinstance(receiver, cst.Comparison) or (
        isinstance(receiver, cst.Call)
        and isinstance(receiver.func, cst.Attribute)
        and receiver.func.attr.value in {"float", "double", "long", "int", "bool"}
    )
    return method in {"sum", "mean"} and exact


def _calls(node: cst.CSTNode) -> list[cst.Call]:
    found: list[cst.Call] = []

    class _Calls(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            found.append(call)

    node.visit(_Calls())
    return found


def _check_scaler(lowering, cast: Autocast, scaler: Binding | None) -> None:
    """float16 needs the script's scaler to be Lightning's: default settings, same switch."""
    if cast.dtype == "bfloat16":
        if scaler is not None:
            raise Decline(
                CODE,
                "a GradScaler with bfloat16 autocast; Lightning's bf16-mixed does not scale",
                scaler.line,
            )
        return
    if scaler is None:
        raise Decline(
            CODE,
            "float16 autocast without a GradScaler; Lightning's 16-mixed always scales the loss",
            cast.block,
        )
    call = scaler.value
    assert isinstance(call, cst.Call)
    qual = lowering.index.imports.qualify(call.func) or ""
    params = SCALER_PARAMS if qual.startswith("torch.cuda.") else ("device", *SCALER_PARAMS)
    given = _arguments(call, params, scaler.line)
    if _literal(given.pop("device", cst.SimpleString('"cuda"'))) != "cuda":
        raise Decline(CODE, "lightify maps a CUDA GradScaler only", scaler.line)
    enabled = _switch(given)
    given.pop("enabled", None)
    if given:
        raise Decline(
            CODE,
            f"the GradScaler sets `{next(iter(given))}`; Lightning's 16-mixed builds a default "
            'GradScaler (a custom one needs plugins=[MixedPrecision("16-mixed", "cuda", '
            "scaler=...)], which lightify does not write)",
            scaler.line,
        )
    if _text(enabled) != _text(cast.enabled):
        raise Decline(
            CODE,
            "the GradScaler is switched on by another condition than autocast; Lightning's "
            "16-mixed switches both together",
            scaler.line,
        )
    _check_scaler_calls(lowering, scaler)
    program = lowering.program
    for statement in program.block:
        if statement not in (scaler.line, program.epoch.node) and scaler.name in names_in(
            statement
        ):
            raise Decline(
                CODE,
                f"`{scaler.name}` is used outside the training loop; Lightning's 16-mixed keeps "
                "a GradScaler of its own",
                statement,
            )


def _check_scaler_calls(lowering, scaler: Binding) -> None:
    """scale(loss).backward(), [unscale_(optimizer), clip], step(optimizer), update(), once each."""
    program = lowering.program
    train = program.train
    optimizers = {b.name for b in program.optimizers()}
    seen: dict[str, int] = {}
    clips: list[int] = []
    for position, statement in enumerate(train.body):
        kind = _scaler_statement(statement, scaler.name, optimizers)
        if kind is not None:
            if kind in seen:
                raise Decline(CODE, f"scaler.{kind} is called twice per batch", statement)
            seen[kind] = position
            continue
        found = method_call(statement)
        if found is not None and found[0] in optimizers and found[1] == "step":
            raise Decline(
                CODE,
                "optimizer.step() is called directly although the loss is scaled; Lightning "
                "steps through the scaler",
                statement,
            )
        call = call_of(statement)
        if call is not None and lowering.index.imports.qualify(call.func) in CLIPPING:
            clips.append(position)
        elif isinstance(statement, cst.If) and scaler.name in names_in(statement):
            raise Decline(
                CODE,
                f"`{scaler.name}` is used under a condition (gradient accumulation?); lightify "
                "maps mixed precision that steps through the scaler on every batch",
                statement,
            )
        elif scaler.name in names_in(statement):
            raise Decline(
                CODE,
                f"this use of `{scaler.name}` has no equivalent in Lightning's 16-mixed",
                statement,
            )
    order = ["backward", "unscale_", "step", "update"]
    missing = [kind for kind in order if kind not in seen and kind != "unscale_"]
    if missing:
        raise Decline(
            CODE, f"the loop does not call scaler.{missing[0]} on every batch", train.loop
        )
    positions = [seen[kind] for kind in order if kind in seen]
    if positions != sorted(positions):
        raise Decline(
            CODE,
            "the scaler calls are not in the order scale().backward(), unscale_, step, update",
            train.loop,
        )
    unscaled = seen.get("unscale_")
    if clips and (unscaled is None or min(clips) < unscaled or max(clips) > seen["step"]):
        raise Decline(
            CODE,
            "gradients are clipped while still scaled (not between scaler.unscale_(optimizer) "
            "and scaler.step); Lightning unscales before it clips",
            train.body[clips[0]],
        )
    optimizer = next(b for b in program.bindings.values() if b.kind is Kind.OPTIMIZER).value
    fused = isinstance(optimizer, cst.Call) and any(
        a.keyword is not None and a.keyword.value == "fused" and code(a.value) != "False"
        for a in optimizer.args
    )
    if fused and clips:
        raise Decline(
            CODE,
            "a fused optimizer unscales inside its step; Lightning refuses to clip its gradients",
            optimizer,
        )


def _scaler_statement(
    statement: cst.BaseStatement, scaler: str, optimizers: set[str]
) -> str | None:
    """Which scaler call a statement is: backward, unscale_, step or update."""
    call = call_of(statement)
    if call is None or not isinstance(call.func, cst.Attribute):
        return None
    inner = call.func.value
    if (
        call.func.attr.value == "backward"
        and not call.args
        and isinstance(inner, cst.Call)
        and dotted_name(inner.func) == f"{scaler}.scale"
        and len(inner.args) == 1
        and inner.args[0].keyword is None
    ):
        return "backward"
    method = call.func.attr.value
    if dotted_name(inner) != scaler:
        return None
    arguments = [dotted_name(a.value) for a in call.args if a.keyword is None]
    if method in {"unscale_", "step"} and len(arguments) == len(call.args) == 1:
        return method if arguments[0] in optimizers else None
    if method == "update" and not call.args:
        return method
    return None


def _check_no_shared_weights(lowering, train: Pass) -> None:
    """A weight used twice under autocast's cast cache gets other gradient bits than without."""
    from lightify.lower import trained_modules

    reason = (
        "the script's autocast caches the low-precision copy of its weights, Lightning's does "
        "not (cache_enabled=False), so their gradients differ in the last bits; pass "
        "cache_enabled=False to the script's autocast to convert it"
    )
    modules = set(trained_modules(lowering.program))
    seen: set[str] = set()
    for statement in train.body:
        if statement not in train.autocast:
            continue
        for call in _calls(statement):
            name = dotted_name(call.func)
            if name is None or name.split(".")[0] not in modules:
                continue
            if name in seen:
                raise Decline(CODE, f"`{name}` is called twice inside autocast: {reason}", call)
            seen.add(name)
    index = lowering.index
    for class_name in sorted(index.module_classes()):
        reused = _reused_submodules(index, index.classes[class_name])
        if reused:
            raise Decline(
                CODE,
                f"`{code(reused[0].func)}` runs more than once in `{class_name}.forward`: {reason}",
                reused[0],
            )


def _reused_submodules(index: ModuleIndex, cls: cst.ClassDef) -> list[cst.Call]:
    """``self.x(...)`` calls in ``forward`` made twice or in a loop, x not weightless."""
    weightless: set[str] = set()
    methods = {s.name.value: s for s in cls.body.body if isinstance(s, cst.FunctionDef)}
    if "__init__" in methods:
        for target, value in _assignments(methods["__init__"]):
            qual = index.imports.qualify(value.func) or ""
            if qual.startswith("torch.nn.") and qual.rsplit(".", 1)[-1] in WEIGHTLESS:
                weightless.add(target)
    forward = methods.get("forward")
    if forward is None:
        return []
    counts: dict[str, int] = {}
    reused: list[cst.Call] = []

    loops = cst.For | cst.While | cst.ListComp | cst.SetComp | cst.DictComp | cst.GeneratorExp

    class _SelfCalls(cst.CSTVisitor):
        def __init__(self) -> None:
            super().__init__()
            self.depth = 0  # loops and comprehensions around the current node

        def on_visit(self, node: cst.CSTNode) -> bool:
            self.depth += isinstance(node, loops)
            if isinstance(node, cst.Call):
                name = dotted_name(node.func) or ""
                if name.startswith("self.") and name not in weightless:
                    counts[name] = counts.get(name, 0) + 1
                    if counts[name] > 1 or self.depth:
                        reused.append(node)
            return True

        def on_leave(self, original_node: cst.CSTNode) -> None:
            self.depth -= isinstance(original_node, loops)

    forward.visit(_SelfCalls())
    return reused


def _assignments(function: cst.FunctionDef) -> list[tuple[str, cst.Call]]:
    """``self.x = Call(...)`` statements of a method: ("self.x", the call)."""
    found: list[tuple[str, cst.Call]] = []

    class _Assigns(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            if len(node.targets) == 1 and isinstance(node.value, cst.Call):
                target = dotted_name(node.targets[0].target)
                if target is not None:
                    found.append((target, node.value))

    function.visit(_Assigns())
    return found


def step(statement: cst.BaseStatement, builder) -> bool:
    """Claim the scaler's calls: Lightning's 16-mixed makes each of them (``check`` vetted them)."""
    program = builder.lowering.program
    scaler = _scaler(builder.lowering)
    if scaler is None:
        return False
    optimizers = {b.name for b in program.optimizers()}
    kind = _scaler_statement(statement, scaler.name, optimizers)
    if kind is None:
        return False
    if kind == "backward":
        if builder.phase != "forward":
            raise Decline("LFY005", "backward() is called twice per batch", statement)
        call = call_of(statement)
        assert call is not None and isinstance(call.func, cst.Attribute)
        scaled = call.func.value
        assert isinstance(scaled, cst.Call)
        builder.loss = scaled.args[0].value
        builder.phase = "backward"
    elif kind == "step":
        builder.phase = "stepped"
    builder.consume(statement)
    return True


def build(lowering) -> None:
    program = lowering.program
    if not program.train.autocast:
        return
    cast = _autocast_of(lowering, program.train)
    precision = _precision(lowering, cast)
    if precision is not None:
        lowering.plan.trainer_kwargs["precision"] = precision
    scaler = _scaler(lowering)
    if scaler is not None:
        lowering.plan.removed.add(scaler.line)


def _precision(lowering, cast: Autocast) -> cst.BaseExpression | None:
    """The flag, under the script's own condition and where the script really trains."""
    if _text(cast.enabled) == "False":
        return None
    local = lowering.locals_of(lowering.program.train)
    if cast.enabled is not None and names_in(cast.enabled) & local:
        raise Decline(CODE, "autocast is switched on by a value of the loop", cast.block)
    accelerator = lowering.plan.trainer_kwargs["accelerator"]
    conditions = _conjuncts(cast.enabled)
    if cast.device == "cpu":
        if _literal(accelerator) != "cpu":
            raise Decline(
                CODE,
                f"the script autocasts on the CPU but trains on `{code(accelerator)}`; "
                "Lightning would autocast on that device",
                cast.block,
            )
    else:
        conditions += [
            c for c in _cuda_condition(lowering, accelerator, cast) if c not in conditions
        ]
    flag = f'"{FLAGS[cast.dtype]}"'
    if not conditions:
        return cst.SimpleString(flag)
    return cst.parse_expression(f'{flag} if {" and ".join(conditions)} else "32-true"')


def _conjuncts(expression: cst.BaseExpression | None) -> list[str]:
    """``a and b`` → ["a", "b"], each parenthesised where ``and`` would bind it otherwise."""
    if expression is None:
        return []
    if (
        isinstance(expression, cst.BooleanOperation)
        and isinstance(expression.operator, cst.And)
        and not expression.lpar
    ):
        return [*_conjuncts(expression.left), *_conjuncts(expression.right)]
    text = code(expression)
    loose = cst.BooleanOperation | cst.IfExp | cst.Lambda | cst.NamedExpr
    return [f"({text})" if isinstance(expression, loose) and not expression.lpar else text]


def _cuda_condition(lowering, accelerator: cst.BaseExpression, cast: Autocast) -> list[str]:
    """When the script trains on CUDA, as conditions joined by ``and`` (none: always).

    A CUDA autocast or GradScaler switches itself off without CUDA, so the flag's
    condition is "CUDA is available"; that equals "the script trains on CUDA" only
    for the accelerator choices below. A bfloat16 block (no scaler) only needs the
    script's own device condition.
    """
    if _literal(accelerator) == "cuda":
        return []
    torch = lowering.index.imports.local_name("torch")
    if isinstance(accelerator, cst.IfExp) and _literal(accelerator.orelse) == "cpu":
        chosen = _literal(accelerator.body)
        test = accelerator.test
        if chosen == "auto" and _is_call_of(lowering, test, "torch.accelerator.is_available"):
            if torch is not None:
                return [f"{torch}.cuda.is_available()"]
        elif chosen == "cuda" and (
            cast.dtype == "bfloat16" or _is_call_of(lowering, test, "torch.cuda.is_available")
        ):
            return _conjuncts(test)
    if _literal(accelerator) == "cpu":
        raise Decline(
            CODE,
            "the script autocasts on CUDA but its model stays on the CPU; Lightning's precision "
            "flag would autocast on the Trainer's device instead",
            cast.block,
        )
    raise Decline(
        CODE,
        f"lightify cannot tell that `{code(accelerator)}` trains on CUDA whenever CUDA is "
        "available; the script's CUDA GradScaler scales the loss wherever CUDA is available, "
        "Lightning's 16-mixed only when the Trainer's accelerator is CUDA",
        cast.block,
    )


def _is_call_of(lowering, node: cst.BaseExpression, qualified: str) -> bool:
    """``torch.cuda.is_available()``, or a name bound to exactly that."""
    if isinstance(node, cst.Name):
        binding = lowering.program.bindings.get(node.value)
        node = binding.value if binding is not None else node
    return (
        isinstance(node, cst.Call)
        and not node.args
        and lowering.index.imports.qualify(node.func) == qualified
    )


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
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
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
trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1, precision="bf16-mixed")
trainer.fit(LitModel(model), loader)
""",
        codes=("LFY400",),
    ),
    Example(
        before="""\
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

parser = argparse.ArgumentParser()
parser.add_argument("--amp", action="store_true")
args = parser.parse_args()
data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
model = nn.Linear(4, 2).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scaler = torch.cuda.amp.GradScaler(enabled=args.amp)
for epoch in range(2):
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        with torch.cuda.amp.autocast(enabled=args.amp):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
""",
        after="""\
import argparse

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


parser = argparse.ArgumentParser()
parser.add_argument("--amp", action="store_true")
args = parser.parse_args()
data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
trainer = L.Trainer(
    max_epochs=2,
    gradient_clip_val=1.0,
    gradient_clip_algorithm="norm",
    accelerator="cuda" if torch.cuda.is_available() else "cpu",
    devices=1,
    precision="16-mixed" if args.amp and torch.cuda.is_available() else "32-true",
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
scaler = torch.amp.GradScaler("cuda", enabled=torch.cuda.is_available())
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        with torch.autocast("cuda", enabled=torch.cuda.is_available()):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
""",
        after=None,
        codes=("LFY002",),
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
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
""",
        after=None,
        codes=("LFY002",),
    ),
    Example(
        before="""\
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

parser = argparse.ArgumentParser()
parser.add_argument("--amp", action="store_true")
args = parser.parse_args()
data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
model = nn.Linear(4, 2).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scaler = torch.cuda.amp.GradScaler(init_scale=1024.0, enabled=args.amp)
for epoch in range(2):
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        with torch.cuda.amp.autocast(enabled=args.amp):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
""",
        after=None,
        codes=("LFY002",),
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
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x) + model(-x), y)
        loss.backward()
        optimizer.step()
""",
        after=None,
        codes=("LFY002",),
    ),
]
