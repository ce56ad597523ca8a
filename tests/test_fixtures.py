"""Every fixture converts to exactly its after.py, and the converted script trains the same.

The training comparison runs the original and the converted script in fresh
subprocesses under the capture harness (seeded, deterministic) and asserts
identical losses, learning rates, parameter checksums and evaluation outputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fixture_cases import Case, cases

from lightify import convert_source
from lightify.verify.records import compare
from lightify.verify.run import run_pair, run_script

CASES = cases()
CONVERTED = [case for case in CASES if case.converts]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_converts_to_expected_output(case: Case) -> None:
    result = convert_source(case.before.read_text(), "before.py")
    assert result.converted == case.after.read_text()
    assert [finding.format() for finding in result.findings] == case.findings


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_second_run_changes_nothing(case: Case) -> None:
    result = convert_source(case.after.read_text(), "after.py")
    assert result.converted == case.after.read_text()
    assert not result.changed


def test_enough_fixtures_convert() -> None:
    assert len(CONVERTED) >= 15


# multi-process fixtures train in children the harness does not follow: test_distributed.py
RUNS = [(case, chain) for case in CONVERTED if not case.multiprocess for chain in case.runs]


@pytest.mark.parametrize(
    ("case", "chain"),
    RUNS,
    ids=[" ".join([case.name, " && ".join(map(" ".join, chain))]).rstrip() for case, chain in RUNS],
)
def test_converted_script_trains_identically(
    case: Case, chain: list[list[str]], tmp_path: Path
) -> None:
    for args, (original, converted) in zip(chain, _run_chain(case, chain, tmp_path), strict=True):
        _check_identical(case, args, original, converted)


def _run_chain(case: Case, chain: list[list[str]], workdir: Path) -> Iterator[tuple[dict, dict]]:
    """Each run's pair of records: the first in fresh scratch folders, the next ones in the
    same folders, so that a resume reads the checkpoint the run before it wrote."""
    yield run_pair(case.before, case.after, chain[0], workdir, timeout=300)
    for args in chain[1:]:
        yield tuple(
            run_script(
                workdir / role / script.name,
                args,
                workdir / f"{role}.record.json",
                cwd=workdir / role,
                timeout=300,
            )
            for role, script in (("original", case.before), ("converted", case.after))
        )


def _check_identical(case: Case, args: list[str], original: dict, converted: dict) -> None:
    comparison = compare(original, converted)
    assert comparison.equal, comparison.describe()
    # not a trivial equality: both runs trained, stepped (without a torch.optim optimizer:
    # back-propagated, the updates being written by hand) and evaluated
    by_hand = "torch.optim" not in case.before.read_text()
    assert len(original["losses" if by_hand else "steps"]) >= (2 if args else 10)
    assert len(original["losses"]) >= len(original["steps"])  # several with accumulation
    assert original["eval"], "every fixture evaluates"
    assert not original["stopped_early"] and original["exit_code"] == 0
    assert converted["exit_code"] == 0
