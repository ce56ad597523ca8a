"""Resolve names to qualified names through the module's imports, never by spelling.

``import torch.nn as nn`` makes ``nn.Linear`` mean ``torch.nn.Linear``;
``from torch.optim import SGD as S`` makes ``S`` mean ``torch.optim.SGD``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from lightify.analyze.nodes import dotted_name


@dataclass(frozen=True)
class ImportTable:
    """Local alias → qualified name, for imports at any level of the module."""

    aliases: dict[str, str] = field(default_factory=dict)

    def qualify(self, node: cst.BaseExpression) -> str | None:
        """The qualified dotted name of a Name/Attribute chain, or None."""
        dotted = dotted_name(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        base = self.aliases.get(head)
        if base is None:
            return None
        return f"{base}.{rest}" if rest else base

    def imports_module(self, prefix: str) -> bool:
        """Whether anything from ``prefix`` (e.g. ``lightning``) is imported."""
        return any(q == prefix or q.startswith(prefix + ".") for q in self.aliases.values())

    def record(self, node: cst.Import | cst.ImportFrom) -> None:
        """Add the aliases an import statement binds (the module index calls this for
        every import it meets, at any level, in source order)."""
        if isinstance(node, cst.Import):
            for alias in node.names:
                dotted = dotted_name(alias.name)
                if dotted is None:
                    continue
                if alias.asname is not None:
                    self.aliases[alias.asname.name.value] = dotted
                else:
                    head = dotted.split(".")[0]
                    self.aliases.setdefault(head, head)
            return
        if node.relative or node.module is None or isinstance(node.names, cst.ImportStar):
            return
        base = dotted_name(node.module)
        if base is None:
            return
        for alias in node.names:
            name = dotted_name(alias.name)
            if name is None:
                continue
            local = alias.asname.name.value if alias.asname is not None else name
            self.aliases[local] = f"{base}.{name}"

    def local_name(self, qualified: str) -> str | None:
        """A local alias that refers exactly to ``qualified``, if one exists."""
        for alias, target in self.aliases.items():
            if target == qualified:
                return alias
        return None
