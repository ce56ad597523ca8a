"""The conversion API on small scripts: what it removes, keeps, and refuses."""

from __future__ import annotations

import pytest

from lightify import ParseFailure, convert_source

HEAD = """\
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
"""
LOOP = """\
for epoch in range(2):
    for i, (x, y) in enumerate(loader):
        optimizer.zero_grad()  # clear
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if i % 2 == 0:
            print(f"perplexity {math.exp(loss.item()):.2f}")
"""


def test_an_import_only_the_removed_code_used_is_removed() -> None:
    converted = convert_source(HEAD + LOOP).converted
    assert "import math" not in converted
    assert "import lightning as L\nimport torch\n" in converted


def test_an_import_the_script_never_used_stays() -> None:
    converted = convert_source("import os\n" + HEAD + LOOP).converted
    assert converted.startswith("import os\n")


def test_the_comment_of_a_removed_statement_is_kept() -> None:
    converted = convert_source(HEAD + LOOP).converted
    assert "# clear\n" in converted


def test_a_syntax_error_raises_parse_failure_with_its_line() -> None:
    with pytest.raises(ParseFailure) as error:
        convert_source("x = 1\nfor epoch in range(2)\n    loss.backward()\n")  # a candidate
    assert error.value.line == 2
    assert error.value.format("t.py").startswith("t.py:2:")


def test_a_declined_file_is_returned_unchanged_with_one_located_finding() -> None:
    source = HEAD + LOOP.replace("optimizer.step()", "optimizer.step()\n        optimizer.step()")
    result = convert_source(source, "t.py")
    assert result.converted == source
    assert [(f.code, f.line, f.fixable) for f in result.findings] == [("LFY005", 18, False)]


def test_a_value_used_after_the_test_pass_declines() -> None:
    source = (
        HEAD
        + LOOP
        + (
            "\n\n@torch.no_grad()\ndef test(model, loader):\n    model.eval()\n    total = 0.0\n"
            "    for x, y in loader:\n        total += F.cross_entropy(model(x), y).item()\n"
            "    return total / len(loader)\n\n\nscore = test(model, loader)\n"
            "best = {'score': score}\n"
        )
    )
    result = convert_source(source, "t.py")
    assert not result.changed
    assert [f.code for f in result.findings] == ["LFY403"]


def test_invalid_output_becomes_lfy000_and_the_file_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    import libcst as cst

    import lightify.convert as convert

    def broken_emit(*_args: object) -> cst.Module:
        return cst.parse_module("x = 1\nreturn x\n")  # parses, does not compile

    monkeypatch.setattr(convert, "emit", broken_emit)
    result = convert_source(HEAD + LOOP, "train.py")
    assert result.converted == HEAD + LOOP
    assert [(finding.code, finding.fixable) for finding in result.findings] == [("LFY000", False)]
    assert "please report" in result.findings[0].message


def test_a_form_feed_indented_module_still_gets_a_nested_class() -> None:
    # found by fuzzing: libcst takes the first block's "\f " as the module's indentation
    source = "class A:\n\x0c pass\n\n" + HEAD + LOOP
    result = convert_source(source, "train.py")
    assert result.converted.startswith("class A:\n\x0c pass\n")  # the user's block untouched
    assert "    def training_step(self, batch, batch_idx):\n        x, y = batch\n" in (
        result.converted
    )
    compile(result.converted, "train.py", "exec")


def test_a_per_epoch_functions_docstring_documents_its_step() -> None:
    source = (
        HEAD
        + "\n\ndef train_epoch():\n"
        + '    """One pass over the data."""\n'
        + "    for x, y in loader:\n"
        + "        optimizer.zero_grad()\n"
        + "        loss = F.cross_entropy(model(x), y)\n"
        + "        loss.backward()\n"
        + "        optimizer.step()\n"
        + "\n\nfor epoch in range(2):\n"
        + "    train_epoch()\n"
    )
    result = convert_source(source, "train.py")
    assert (
        '    def training_step(self, batch, batch_idx):\n        """One pass over the data."""\n'
        in (result.converted)
    )
