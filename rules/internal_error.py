"""LFY000: the conversion produced invalid code; the file is left as it was."""

from __future__ import annotations

from lightify.rule import Example

CODE = "LFY000"
SUMMARY = "Internal error: the conversion produced invalid code, so the file is left as it is"
DOC = """\
## What it does
Reports a file whose conversion did not parse or compile. lightify checks every
output before it shows or writes it; when a rule got something wrong, the file
stays exactly as it was and this finding says so.

## Why
lightify never writes a file that does not parse.

## Example
Any script, when a rule has a bug that makes invalid code (a `return` outside a
function, an expression that does not parse).

## Use instead
Nothing to change in your script; please report the file so the rule can be fixed.

## Fix safety
Not fixed: the file is left unchanged.
"""

#: No script provokes it on purpose once the bug behind it is fixed, so it has no
#: examples; tests/test_convert.py breaks the emitter to show it working.
SAFETY_NET = True
EXAMPLES: list[Example] = []
