"""Replace a function's parameters with what its caller passed."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline


def bind_arguments(function: cst.FunctionDef, call: cst.Call) -> dict[str, cst.BaseExpression]:
    """Parameter name → the expression the call passes for it (or the default)."""
    params = [*function.params.posonly_params, *function.params.params]
    bound: dict[str, cst.BaseExpression] = {}
    positional = [a for a in call.args if a.keyword is None and not a.star]
    keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    if any(a.star for a in call.args) or function.params.star_arg not in (
        None,
        cst.MaybeSentinel.DEFAULT,
    ):
        raise Decline(
            "LFY402", "the call passes *args or **kwargs; lightify matches plain arguments", call
        )
    if len(positional) > len(params):
        raise Decline("LFY402", "the call passes more arguments than the function takes", call)
    for param, arg in zip(params, positional, strict=False):
        bound[param.name.value] = arg.value
    for param in [*params, *function.params.kwonly_params]:
        name = param.name.value
        if name in bound:
            continue
        if name in keywords:
            bound[name] = keywords.pop(name)
        elif param.default is not None:
            bound[name] = param.default
        else:
            raise Decline("LFY402", f"parameter `{name}` is not passed by the call", call)
    if keywords:
        raise Decline("LFY402", f"unknown keyword `{next(iter(keywords))}` in the call", call)
    return bound


class Substitute(cst.CSTTransformer):
    """Replace bare names (not attribute names or keywords) by expressions."""

    def __init__(
        self, mapping: dict[str, cst.BaseExpression], origins: dict[cst.CSTNode, cst.CSTNode]
    ) -> None:
        self.mapping = mapping
        self.origins = origins  # new node → the original it replaces, for finding positions

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode):  # type: ignore[override]
        result = super().on_leave(original_node, updated_node)
        if isinstance(result, cst.CSTNode) and result is not original_node:
            self.origins[result] = self.origins.get(original_node, original_node)
        return result

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        replacement = self.mapping.get(original_node.value)
        return replacement if replacement is not None else updated_node

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        return True

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.Attribute:
        # the attribute name itself is never a parameter
        return updated_node.with_changes(attr=original_node.attr)

    def leave_Arg(self, original_node: cst.Arg, updated_node: cst.Arg) -> cst.Arg:
        return updated_node.with_changes(keyword=original_node.keyword)

    def leave_Param(self, original_node: cst.Param, updated_node: cst.Param) -> cst.Param:
        return updated_node.with_changes(name=original_node.name)
