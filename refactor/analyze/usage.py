"""Where a file uses an API, by qualified name: what blocker rules look for."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.tree import ModuleIndex


def first_use(index: ModuleIndex, qualified: frozenset[str]) -> cst.CSTNode | None:
    """The first Name/Attribute in the file that resolves to one of ``qualified``."""
    found = index.uses(qualified)
    return found[0] if found else None
