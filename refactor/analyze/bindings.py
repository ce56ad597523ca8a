"""Classify what the names of a training program hold: model, optimizer, loader, config."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.facts import Binding, Kind
from lightify.analyze.nodes import assigned_names, only_small
from lightify.analyze.tree import ModuleIndex

LOADER_CLASSES = {"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"}
CONFIG_CALLS = {"types.SimpleNamespace", "argparse.Namespace"}


def strip_device_calls(value: cst.BaseExpression) -> cst.BaseExpression:
    """``Net().to(device)`` → ``Net()``: the call that really builds the object."""
    while (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value in {"to", "cuda", "cpu"}
    ):
        value = value.func.value
    return value


def collect_bindings(index: ModuleIndex, block: list[cst.BaseStatement]) -> dict[str, Binding]:
    """Bindings made by the plain assignments of a block (the last one wins)."""
    module_classes = index.module_classes()
    dataclasses = index.dataclasses()
    bindings: dict[str, Binding] = {}
    for line in block:
        if isinstance(line, cst.If):
            chosen = _chosen_by_if(line)
            if chosen is not None:
                name, value = chosen
                kind, callee = _classify(index, value, module_classes, dataclasses)
                bindings[name] = Binding(name, line, value, kind, callee)
            continue
        small = only_small(line)
        if not isinstance(small, cst.Assign) or len(small.targets) != 1:
            continue
        target = small.targets[0].target
        names = assigned_names(target)
        if isinstance(target, cst.Name):
            values = [small.value]
        elif isinstance(small.value, cst.Tuple) and len(small.value.elements) == len(names):
            values = [e.value for e in small.value.elements]
        else:
            values = [None] * len(names)
        for name, value in zip(names, values, strict=True):
            kind, callee = _classify(index, value, module_classes, dataclasses)
            bindings[name] = Binding(name, line, value or small.value, kind, callee)
    return bindings


def _chosen_by_if(node: cst.If) -> tuple[str, cst.IfExp] | None:
    """``if c: name = a`` / ``else: name = b`` read as ``name = a if c else b``."""
    orelse = node.orelse
    if not isinstance(orelse, cst.Else) or len(node.body.body) != 1 or len(orelse.body.body) != 1:
        return None
    first, second = only_small(node.body.body[0]), only_small(orelse.body.body[0])
    if not (isinstance(first, cst.Assign) and isinstance(second, cst.Assign)):
        return None
    if len(first.targets) != 1 or len(second.targets) != 1:
        return None
    target = first.targets[0].target
    if not (isinstance(target, cst.Name) and target.deep_equals(second.targets[0].target)):
        return None
    return target.value, cst.IfExp(test=node.test, body=first.value, orelse=second.value)


def parameter_bindings(function: cst.FunctionDef) -> dict[str, Binding]:
    """``def main(epochs=2, lr=0.1)``: parameters are values of the program's scope."""
    params = function.params
    return {
        p.name.value: Binding(p.name.value, function, cst.Name(p.name.value), Kind.VALUE, None)
        for p in [*params.posonly_params, *params.params, *params.kwonly_params]
    }


def _classify(
    index: ModuleIndex,
    value: cst.BaseExpression | None,
    module_classes: set[str],
    dataclasses: set[str],
) -> tuple[Kind, str | None]:
    if value is None:
        return Kind.VALUE, None
    if isinstance(value, cst.IfExp):
        # `Net().cuda() if use_cuda else Net()`: both branches build the same kind of thing
        body = _classify(index, value.body, module_classes, dataclasses)
        orelse = _classify(index, value.orelse, module_classes, dataclasses)
        return body if body == orelse else (Kind.VALUE, None)
    if _is_device_expression(index, value):
        return Kind.DEVICE, None
    built = strip_device_calls(value)
    if not isinstance(built, cst.Call):
        return Kind.VALUE, None
    if isinstance(built.func, cst.Attribute) and built.func.attr.value == "parse_args":
        return Kind.CONFIG, "argparse.ArgumentParser.parse_args"
    qual = index.imports.qualify(built.func)
    local = built.func.value if isinstance(built.func, cst.Name) else None
    if local in module_classes:
        return Kind.MODULE, local
    if local in dataclasses or qual in CONFIG_CALLS:
        return Kind.CONFIG, qual or local
    if qual is None:
        return Kind.VALUE, None
    if qual in LOADER_CLASSES:
        return Kind.LOADER, qual
    if qual.startswith("torch.optim.lr_scheduler."):
        return Kind.SCHEDULER, qual
    if qual.startswith("torch.optim.") and qual.count(".") == 2:
        return Kind.OPTIMIZER, qual
    if qual.startswith("torch.nn.") and not qual.startswith("torch.nn.functional"):
        return Kind.MODULE, qual
    return Kind.VALUE, qual


def _is_device_expression(index: ModuleIndex, value: cst.BaseExpression) -> bool:
    """``torch.device(...)``, ``"cuda"``, ``torch.accelerator...`` (IfExp: see _classify)."""
    if isinstance(value, cst.Call):
        qual = index.imports.qualify(value.func) or ""
        return qual in {"torch.device", "torch.accelerator.current_accelerator"}
    return isinstance(value, cst.SimpleString) and str(value.evaluated_value).split(":")[0] in {
        "cuda",
        "cpu",
        "mps",
    }
