"""Placeholder: the pipeline (parse → analyze → rules → emit) lands here."""

from __future__ import annotations

import libcst as cst

from lightify.api import Conversion
from lightify.diagnostics import ParseFailure


def convert_module(source: str, path: str = "<string>", target: str = "lightning") -> Conversion:
    try:
        cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        raise ParseFailure(f"cannot parse: {error.message}", error.raw_line, error.raw_column + 1) from None
    return Conversion(source, source, ())
