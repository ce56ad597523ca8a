"""Fuzzing: the converter never raises and never emits broken code.

Two sources of programs. Mutations of the fixtures drop, duplicate or swap
statements (at any depth) or rename a variable, then convert. hypothesmith
generates arbitrary valid Python, which goes through the whole analysis (the
cheap prefilter is bypassed) both alone and spliced around a training script.
The conversion may decline, but it must not raise, and what it returns must
parse, compile, and convert again to itself. Set LIGHTIFY_FUZZ_EXAMPLES for a
longer run (the budget of each test).
"""

from __future__ import annotations

import os

import hypothesmith
import libcst as cst
import pytest
from fixture_cases import cases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightify import convert_source
from lightify.convert import convert_module
from lightify.diagnostics import ParseFailure

# generated programs like `1()` compile with a warning; they are still valid input
pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")

SOURCES = [case.before.read_text() for case in cases()]
BUDGET = int(os.environ.get("LIGHTIFY_FUZZ_EXAMPLES", "40"))


class _Mutate(cst.CSTTransformer):
    """Apply one mutation to the n-th statement block met."""

    def __init__(self, target: int, action: str, position: int) -> None:
        self.target = target
        self.action = action
        self.position = position
        self.seen = 0

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        self.seen += 1
        if self.seen - 1 != self.target:
            return updated_node
        body = list(updated_node.body)
        i = self.position % len(body)
        if self.action == "drop" and len(body) > 1:
            del body[i]
        elif self.action == "duplicate":
            body.insert(i, body[i])
        elif self.action == "swap" and len(body) > 1:
            j = (i + 1) % len(body)
            body[i], body[j] = body[j], body[i]
        return updated_node.with_changes(body=body)


class _Rename(cst.CSTTransformer):
    def __init__(self, old: str, new: str) -> None:
        self.old = old
        self.new = new

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        return (
            updated_node.with_changes(value=self.new)
            if updated_node.value == self.old
            else updated_node
        )


@st.composite
def mutated_sources(draw) -> str:
    source = draw(st.sampled_from(SOURCES))
    module = cst.parse_module(source)
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            action = draw(st.sampled_from(["drop", "duplicate", "swap"]))
            module = module.visit(
                _Mutate(draw(st.integers(0, 30)), action, draw(st.integers(0, 50)))
            )
        else:
            old = draw(st.sampled_from(["model", "optimizer", "loader", "x", "loss", "epoch", "y"]))
            module = module.visit(_Rename(old, draw(st.sampled_from(["self", "batch", "lr", "m"]))))
    return module.code


@settings(max_examples=BUDGET, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_sources())
def test_mutated_fixtures_never_break_the_converter(source: str) -> None:
    try:
        compile(source, "fuzz.py", "exec")
    except SyntaxError:
        return  # a rename can make invalid Python (`def forward(self, self)`)
    result = convert_source(source, "fuzz.py")
    compile(result.converted, "fuzz.py", "exec")
    assert convert_source(result.converted, "fuzz.py").converted == result.converted


def _compiles(source: str) -> bool:
    try:
        compile(source, "fuzz.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def _assert_converts_safely(source: str) -> None:
    """The whole pipeline, prefilter bypassed: a result that compiles and is a fixed point."""
    try:
        result = convert_module(source, "fuzz.py")
    except ParseFailure:
        return  # valid for CPython, not for libcst's grammar: reported to the user as such
    assert not any(finding.code == "LFY000" for finding in result.findings)
    compile(result.converted, "fuzz.py", "exec", dont_inherit=True)
    assert convert_module(result.converted, "fuzz.py").converted == result.converted


@settings(max_examples=BUDGET, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(hypothesmith.from_grammar(), hypothesmith.from_node()))
def test_arbitrary_python_never_breaks_the_analysis(source: str) -> None:
    _assert_converts_safely(source)


@settings(max_examples=BUDGET, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.sampled_from(SOURCES),
    hypothesmith.from_node(),
    st.sampled_from(["before", "after"]),
)
def test_arbitrary_python_around_a_training_script(script: str, generated: str, where: str) -> None:
    source = generated + "\n" + script if where == "before" else script + "\n" + generated
    if _compiles(source):
        _assert_converts_safely(source)
