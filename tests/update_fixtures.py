"""Rewrite every fixture's after.py and findings.txt from the current converter.

Run it after a deliberate change to the output, then read the diff
(`git diff fixtures/`) before committing: the expected outputs are reviewed,
not generated blindly. Name fixtures on the command line to rewrite only those.
"""

from __future__ import annotations

import sys

from fixture_cases import cases

from lightify import convert_source


def main(names: list[str]) -> None:
    """Rewrite the named fixtures (all of them when none is named)."""
    for case in cases():
        if names and case.name not in names:
            continue
        result = convert_source(case.before.read_text(), "before.py")
        case.after.write_text(result.converted)
        (case.folder / "findings.txt").write_text(
            "".join(finding.format() + "\n" for finding in result.findings)
        )


if __name__ == "__main__":
    main(sys.argv[1:])
