"""The rewrite rules: one module per idiom, each with its code, summary, doc and examples.

A module becomes a rule by being in this package. It declares ``CODE``,
``SUMMARY``, ``DOC`` and ``EXAMPLES`` and implements any of the hooks that
``lightify.lower`` calls: ``check(lowering)`` to decline, ``step(statement,
step)`` to claim a statement of a batch loop, ``build(lowering)`` to add to the
plan.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType


@cache
def registry() -> tuple[ModuleType, ...]:
    """Every rule module, ordered by code (the order hooks run in)."""
    modules = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    ]
    return tuple(sorted(modules, key=lambda module: module.CODE))


def by_code() -> dict[str, ModuleType]:
    return {rule.CODE: rule for rule in registry()}
