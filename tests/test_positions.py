"""Finding positions come from lightify's own light codegen pass: they must be exactly
libcst's PositionProvider starts, for every node of every fixture and of arbitrary code."""

from __future__ import annotations

from pathlib import Path

import hypothesmith
import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from libcst.metadata import PositionProvider

from lightify.analyze.positions import start_positions

SCRIPTS = sorted(Path(__file__).resolve().parent.parent.glob("fixtures/*/*.py"))


def _libcst_starts(module: cst.Module) -> dict[cst.CSTNode, tuple[int, int]]:
    resolved = cst.MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    return {node: (where.start.line, where.start.column) for node, where in resolved.items()}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_positions_match_libcst(script: Path) -> None:
    module = cst.parse_module(script.read_text())
    assert start_positions(module) == _libcst_starts(module)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(source=hypothesmith.from_node())
def test_arbitrary_code_positions_match_libcst(source: str) -> None:
    module = cst.parse_module(source)  # from_node renders libcst nodes: it parses
    assert start_positions(module) == _libcst_starts(module)
