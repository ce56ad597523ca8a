"""``lightify check --output-format``: the findings as text, JSON, GitHub annotations or SARIF.

Every format holds the findings only; files that could not be processed are
reported on stderr in every format (and make the exit status 2), so stdout is
always one well-formed document. The JSON shape is documented by
``check-output.schema.json`` next to this module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lightify import __version__
from lightify.diagnostics import Finding

FORMATS = ("text", "json", "github", "sarif")
SCHEMA = "check-output.schema.json"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render(output_format: str, findings: Sequence[Finding]) -> str:
    """The whole stdout of ``check`` for ``findings`` (in the order given)."""
    return _RENDERERS[output_format](findings)


def _text(findings: Sequence[Finding]) -> str:
    return "".join(finding.format() + "\n" for finding in findings)


def _json(findings: Sequence[Finding]) -> str:
    return json.dumps([_json_finding(finding) for finding in findings], indent=2) + "\n"


def _json_finding(finding: Finding) -> dict[str, Any]:
    return {
        "path": finding.path,
        "line": finding.line,
        "column": finding.col,
        "code": finding.code,
        "message": finding.message,
        "fixable": finding.fixable,
    }


def _github(findings: Sequence[Finding]) -> str:
    """Workflow commands, which GitHub Actions shows as annotations on the pull request."""
    return "".join(
        f"::warning title={_property(f'lightify ({finding.code})')},"
        f"file={_property(finding.path)},line={finding.line},col={finding.col}"
        f"::{_data(finding.format())}\n"
        for finding in findings
    )


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _sarif(findings: Sequence[Finding]) -> str:
    """SARIF 2.1.0 (GitHub code scanning, IDEs): one run, every rule, one result per finding."""
    from lightify.rules import registry

    rules = registry()
    index = {rule.CODE: position for position, rule in enumerate(rules)}
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "lightify",
                        "version": __version__,
                        "rules": [_sarif_rule(rule) for rule in rules],
                    }
                },
                "results": [_sarif_result(finding, index) for finding in findings],
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def _sarif_rule(rule: Any) -> dict[str, Any]:
    return {
        "id": rule.CODE,
        "shortDescription": {"text": rule.SUMMARY},
        "fullDescription": {"text": rule.DOC},
        "help": {"text": rule.DOC, "markdown": rule.DOC},
    }


def _sarif_result(finding: Finding, index: dict[str, int]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "level": "note" if finding.fixable else "warning",
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": _uri(finding.path)},
                    "region": {"startLine": finding.line, "startColumn": finding.col},
                }
            }
        ],
    }
    if finding.code in index:
        result["ruleIndex"] = index[finding.code]
    return result


def _uri(path: str) -> str:
    """A relative path stays relative (SARIF viewers resolve it against the checkout)."""
    normal = os.path.normpath(path)
    if os.path.isabs(normal):
        return Path(normal).as_uri()
    return quote(normal.replace(os.sep, "/"))


_RENDERERS: dict[str, Callable[[Sequence[Finding]], str]] = {
    "text": _text,
    "json": _json,
    "github": _github,
    "sarif": _sarif,
}
