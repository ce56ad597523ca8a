"""The pipeline: parse once, analyze into facts, run the rules into a plan, emit once, re-parse."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.program import find_program
from lightify.analyze.specialize import check_copies_removed, specialize, with_original_names
from lightify.analyze.trainer_class import unclass
from lightify.analyze.tree import ModuleIndex, index_module
from lightify.api import Conversion
from lightify.diagnostics import Finding, ParseFailure
from lightify.emit import emit
from lightify.lower import Lowering

LIGHTNING_PACKAGES = ("lightning", "pytorch_lightning", "lightning_fabric")


def parse(source: str) -> cst.Module:
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        failure = ParseFailure(
            f"cannot parse: {error.message}", error.raw_line, error.raw_column + 1
        )
    try:  # Python's own message and position are the ones users know
        compile(source, "<input>", "exec", dont_inherit=True)
    except SyntaxError as error:
        failure = ParseFailure(f"cannot parse: {error.msg}", error.lineno or 1, error.offset or 1)
    except ValueError:  # null bytes: keep libcst's answer
        pass
    raise failure


def convert_module(source: str, path: str = "<string>", target: str = "lightning") -> Conversion:
    """Convert the training program of one file, or leave the file exactly as it is."""
    module = parse(source)
    index = index_module(module)
    if any(index.imports.imports_module(package) for package in LIGHTNING_PACKAGES):
        return Conversion(source, source, ())
    copies: dict[str, cst.FunctionDef] = {}
    methods: dict[str, str] = {}
    try:
        index, methods = unclass(index)  # class Trainer: its methods as functions
        index, copies = specialize(index)  # run_epoch(..., optimizer=None): one copy per role
        program = find_program(index)
        if program is None:
            return Conversion(source, source, ())
        plan = Lowering(index, program, path).run()
        new_module = emit(index, program, plan, target)
        check_copies_removed(new_module, copies)
    except Decline as decline:
        decline = with_original_names(decline, {n: f.name.value for n, f in copies.items()})
        decline = with_original_names(decline, methods)
        return Conversion(source, source, (_finding(index, path, decline),))
    converted = new_module.code
    try:
        _check_output(converted)
    except ParseFailure as failure:
        return Conversion(source, source, (_internal_error(path, failure),))
    notes = {(note.line, note.code): note for note in reversed(plan.notes)}  # one per line
    return Conversion(source, converted, tuple(sorted(notes.values())))


def _finding(index: ModuleIndex, path: str, decline: Decline) -> Finding:
    try:
        line, col = index.position(decline.node)
    except KeyError:
        line, col = 1, 1
    return Finding(path, line, col, decline.code, decline.message)


def _check_output(converted: str) -> None:
    """Never hand back code that does not parse or compile."""
    parse(converted)
    try:
        compile(converted, "<lightify output>", "exec", dont_inherit=True)
    except SyntaxError as error:
        raise ParseFailure(error.msg, error.lineno or 1, error.offset or 1) from None


def _internal_error(path: str, failure: ParseFailure) -> Finding:
    return Finding(
        path,
        1,
        1,
        "LFY000",
        f"internal error: the conversion produced invalid code ({failure.message}); the file "
        "is left as it is (please report this)",
    )
