"""Every rule module declares its code and documentation, and its examples hold.

The examples are collected from the rules themselves: adding a rule with
examples adds its tests.
"""

from __future__ import annotations

import re

import libcst as cst
import pytest

from lightify import convert_source
from lightify.rules import registry

RULES = registry()
EXAMPLES = [
    pytest.param(rule, example, id=f"{rule.CODE}-{index}")
    for rule in RULES
    for index, example in enumerate(rule.EXAMPLES)
]
SECTIONS = ("## What it does", "## Why", "## Example", "## Use instead", "## Fix safety")


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.CODE)
def test_rule_declares_code_summary_doc_and_examples(rule) -> None:
    assert re.fullmatch(r"LFY\d{3}", rule.CODE)
    assert rule.SUMMARY and "\n" not in rule.SUMMARY
    positions = [rule.DOC.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    assert rule.EXAMPLES or getattr(rule, "SAFETY_NET", False), f"{rule.__name__}: no examples"


def test_codes_are_unique() -> None:
    codes = [rule.CODE for rule in RULES]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize(("rule", "example"), EXAMPLES)
def test_example_converts_exactly(rule, example) -> None:
    result = convert_source(example.before, "example.py")
    expected = example.before if example.after is None else example.after
    assert result.converted == expected
    assert tuple(sorted({finding.code for finding in result.findings})) == example.codes
    cst.parse_module(result.converted)
    compile(result.converted, "example.py", "exec")


@pytest.mark.parametrize(("rule", "example"), EXAMPLES)
def test_example_second_run_changes_nothing(rule, example) -> None:
    first = convert_source(example.before, "example.py").converted
    assert convert_source(first, "example.py").converted == first


@pytest.mark.parametrize(("rule", "example"), EXAMPLES)
def test_declined_example_is_reported_by_its_rule(rule, example) -> None:
    result = convert_source(example.before, "example.py")
    if example.after is None:
        declined = [finding for finding in result.findings if not finding.fixable]
        assert [finding.code for finding in declined] == [rule.CODE]
    else:
        assert all(finding.fixable for finding in result.findings)
