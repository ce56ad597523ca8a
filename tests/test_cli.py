"""The command line against DESIGN.md §1: stdout, stderr and exit status of each mode.

Most tests replace the converter with ``fake_convert`` (lines marked ``# loop``
convert, lines marked ``# human`` are reported) so that the command line's own
behaviour is tested whatever the converter does. The ``test_example_*`` tests
run the real converter on the design's example script.
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import lightify.cli as cli
from lightify.api import Conversion, convert_source
from lightify.cli import main
from lightify.diagnostics import Finding
from lightify.diff import colorize, unified_diff

EXAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "main_function" / "before.py"
LIT_CLASS = "class LitMLP(L.LightningModule):"
CLEAN = "import os\n\nprint(os.getcwd())\n"
LOOP = "for step in range(3):  # loop\n    pass\n"
HUMAN = "for step in range(3):  # human\n    pass\n"
BAD = "def f(:\n    loss.backward()\n"  # a candidate: files without backward are not parsed
CANNOT_PARSE = re.compile(r"^bad\.py:\d+:\d+: error: cannot parse: ", re.MULTILINE)


def fake_convert(source: str, path: str = "<string>", target: str = "lightning") -> Conversion:
    """A converter with a known answer: ``# loop`` lines convert, ``# human`` lines stay."""
    convert_source(source, path, target)  # a syntax error still raises ParseFailure
    findings: list[Finding] = []
    lines: list[str] = []
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        if "# loop" in line:
            line = line.replace("# loop", "# lightning")
            findings.append(Finding(path, number, 1, "LFY400", "loop converted", fixable=True))
        if "# human" in line:
            findings.append(Finding(path, number, 1, "LFY401", "loop kept: needs a human"))
        lines.append(line)
    return Conversion(source, "".join(lines), tuple(findings))


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder, so paths display as the user typed them."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "convert_source", fake_convert)


def run(*args: str, stdin: bytes | str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# lightify PATH... : the diff ----------------------------------------------------------


def test_nothing_to_convert_exits_0_and_prints_nothing(work: Path) -> None:
    write(work, "clean.py", CLEAN)
    result = run("clean.py")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_a_conversion_shows_a_diff_and_exits_1(work: Path, fake: None) -> None:
    write(work, "train.py", LOOP)
    result = run("train.py")
    assert result.exit_code == 1
    assert result.stdout == (
        "--- train.py\n+++ train.py\n@@ -1,2 +1,2 @@\n"
        "-for step in range(3):  # loop\n+for step in range(3):  # lightning\n     pass\n"
    )
    assert result.stderr.splitlines() == [
        "train.py:1:1: LFY400 [*] loop converted",
        "1 file can be converted (1 fixable finding); run lightify --write train.py",
    ]
    assert (work / "train.py").read_text() == LOOP


def test_findings_alone_exit_1(work: Path, fake: None) -> None:
    write(work, "train.py", HUMAN)
    result = run("train.py")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        "train.py:1:1: LFY401 loop kept: needs a human",
        "nothing to convert in 1 file, 1 finding left",
    ]


def test_default_command_is_convert(work: Path, fake: None) -> None:
    write(work, "train.py", LOOP)
    implicit, explicit = run("train.py"), run("convert", "train.py")
    assert (implicit.exit_code, implicit.stdout) == (explicit.exit_code, explicit.stdout)
    assert implicit.stdout.startswith("--- train.py")


def test_a_path_named_like_a_subcommand(work: Path, fake: None) -> None:
    write(work, "convert/train.py", LOOP)
    assert run("convert").exit_code == 2  # the subcommand, missing its PATH
    for args in (["convert", "convert"], ["./convert"]):
        assert "+for step in range(3):  # lightning" in run(*args).stdout


def test_syntax_error_exits_2_and_the_other_files_are_still_processed(
    work: Path, fake: None
) -> None:
    write(work, "bad.py", BAD)
    write(work, "train.py", LOOP)
    result = run("bad.py", "train.py")
    assert result.exit_code == 2
    assert CANNOT_PARSE.search(result.stderr)
    assert result.stdout.startswith("--- train.py")
    assert "Traceback" not in result.output
    assert result.stderr.splitlines()[-1] == (
        "1 file can be converted (1 fixable finding), 1 error; run lightify --write bad.py train.py"
    )


def test_folder_with_mixed_files(work: Path, fake: None) -> None:
    write(work, "proj/train.py", LOOP)
    write(work, "proj/README.md", "# loop\n")
    write(work, "proj/sub/clean.py", CLEAN)
    write(work, "proj/sub/bad.py", BAD)
    write(work, "proj/.venv/lib.py", LOOP)
    result = run("proj")
    assert result.exit_code == 2
    assert re.findall(r"^--- (.*)$", result.stdout, re.MULTILINE) == ["proj/train.py"]
    assert re.search(r"^proj/sub/bad\.py:\d+:\d+: error: cannot parse: ", result.stderr, re.M)
    assert "README" not in result.output
    assert result.stderr.splitlines()[-1] == (
        "1 file can be converted (1 fixable finding), 1 error; run lightify --write proj"
    )


def test_missing_path_is_reported_and_the_rest_go_on(work: Path, fake: None) -> None:
    write(work, "train.py", LOOP)
    result = run("missing.py", "train.py")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "missing.py: error: no such file or directory"
    assert result.stdout.startswith("--- train.py")


def test_non_utf8_file(work: Path) -> None:
    (work / "latin.py").write_bytes(b"name = '\xe9'\n")
    write(work, "clean.py", CLEAN)
    result = run("latin.py", "clean.py")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "latin.py:1:9: error: cannot read: byte 0xe9 is not valid UTF-8"
    )
    assert result.stderr.endswith("nothing to convert in 1 file, 1 error\n")


def test_binary_file(work: Path) -> None:
    (work / "blob.py").write_bytes(b"\0\1\2")
    result = run("blob.py")
    assert result.exit_code == 2
    assert "blob.py: error: cannot read: binary file (contains NUL bytes)" in result.stderr


@pytest.mark.parametrize(
    "args",
    [[], ["convert"], ["--bogus", "x.py"], ["x.py", "--target", "keras"]],
)
def test_usage_errors_exit_2(work: Path, args: list[str]) -> None:
    write(work, "x.py", CLEAN)
    assert run(*args).exit_code == 2


def test_target_is_passed_to_the_converter(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def record(source: str, path: str = "<string>", target: str = "lightning") -> Conversion:
        seen.append(target)
        return Conversion(source, source, ())

    monkeypatch.setattr(cli, "convert_source", record)
    write(work, "x.py", CLEAN)
    run("x.py")
    run("--target", "pytorch_lightning", "x.py")
    assert seen == ["lightning", "pytorch_lightning"]


def test_diff_is_colored_only_on_a_terminal(
    work: Path, fake: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(work, "train.py", LOOP)
    assert "\x1b[" not in run("train.py").stdout
    monkeypatch.setattr(cli, "_stdout_is_terminal", lambda: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert "\x1b[32m+for step in range(3):  # lightning\x1b[0m" in run("train.py").stdout
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in run("train.py").stdout


def test_a_bug_is_one_line_without_debug_and_a_traceback_with_it(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(source: str, path: str = "<string>", target: str = "lightning") -> Conversion:
        if "boom" in source:
            raise KeyError("boom")
        return Conversion(source, source, ())

    monkeypatch.setattr(cli, "convert_source", crash)
    write(work, "a.py", "boom = 1\n")
    write(work, "b.py", CLEAN)
    result = run("a.py", "b.py")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "a.py: error: internal error: KeyError: 'boom' (please report this)",
        "nothing to convert in 1 file, 1 error",
    ]
    debug = run("--debug", "a.py", "b.py")
    assert isinstance(debug.exception, KeyError)


# lightify --write -------------------------------------------------------------------


def test_write_converts_and_exits_0(work: Path, fake: None) -> None:
    write(work, "train.py", LOOP)
    result = run("--write", "train.py")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr.splitlines() == ["converted train.py", "1 file converted"]
    assert (work / "train.py").read_text() == fake_convert(LOOP).converted


def test_write_exits_1_when_findings_remain(work: Path, fake: None) -> None:
    write(work, "train.py", LOOP + HUMAN)
    result = run("train.py", "--write")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "converted train.py",
        "train.py:3:1: LFY401 loop kept: needs a human",
        "1 file converted, 1 finding left",
    ]


def test_write_leaves_unchanged_files_untouched(work: Path, fake: None) -> None:
    clean = write(work, "clean.py", CLEAN)
    os.utime(clean, ns=(1_000_000_000, 1_000_000_000))
    before = clean.stat()
    write(work, "train.py", LOOP)
    assert run("--write", ".").exit_code == 0
    after = clean.stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)
    assert "lightning" in (work / "train.py").read_text()


def test_write_keeps_crlf_and_bom(work: Path, fake: None) -> None:
    data = codecs.BOM_UTF8 + LOOP.replace("\n", "\r\n").encode()
    (work / "train.py").write_bytes(data)
    assert run("--write", "train.py").exit_code == 0
    assert (work / "train.py").read_bytes() == data.replace(b"# loop", b"# lightning")


def test_write_keeps_a_declared_encoding(work: Path, fake: None) -> None:
    data = "# -*- coding: latin-1 -*-\nname = 'é'  # loop\n".encode("latin-1")
    (work / "train.py").write_bytes(data)
    assert run("--write", "train.py").exit_code == 0
    assert (work / "train.py").read_bytes() == data.replace(b"# loop", b"# lightning")


def test_write_with_an_unprocessable_file_exits_2(work: Path, fake: None) -> None:
    write(work, "bad.py", BAD)
    write(work, "train.py", LOOP)
    result = run("--write", "bad.py", "train.py")
    assert result.exit_code == 2
    assert CANNOT_PARSE.search(result.stderr)
    assert (work / "bad.py").read_text() == BAD
    assert "lightning" in (work / "train.py").read_text()


def test_a_file_edited_during_the_conversion_is_not_overwritten(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def edit_meanwhile(source: str, path: str, target: str = "lightning") -> Conversion:
        if path == "edited.py":
            (work / path).write_text(source + "# the user's newer edit\n")
        return fake_convert(source, path, target)

    monkeypatch.setattr(cli, "convert_source", edit_meanwhile)
    write(work, "edited.py", LOOP)
    write(work, "train.py", LOOP)
    result = run("--write", "edited.py", "train.py")
    assert result.exit_code == 2
    assert "edited.py: error: changed on disk while converting; not overwritten" in result.stderr
    assert (work / "edited.py").read_text() == LOOP + "# the user's newer edit\n"
    assert "# lightning" in (work / "train.py").read_text()  # the other file goes on
    assert sorted(p.name for p in work.iterdir()) == ["edited.py", "train.py"]  # no temporary


def test_write_failure_exits_2_and_says_why(
    work: Path, fake: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(cli, "write_atomic", read_only)
    write(work, "train.py", LOOP)
    result = run("--write", "train.py")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "train.py: error: cannot write: read-only file system",
        "1 error",
    ]


# lightify FILE -o OUT -----------------------------------------------------------------


def test_output_is_written_even_when_nothing_converts(work: Path) -> None:
    data = CLEAN.replace("\n", "\r\n").encode()
    (work / "clean.py").write_bytes(data)
    result = run("clean.py", "-o", "out.py")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == "wrote out.py (unchanged: nothing to convert)\n"
    assert (work / "out.py").read_bytes() == data


def test_output_converted(work: Path, fake: None) -> None:
    write(work, "train.py", LOOP)
    result = run("train.py", "-o", "out.py")
    assert result.exit_code == 0
    assert result.stderr == "wrote out.py (converted)\n"
    assert (work / "out.py").read_text() == fake_convert(LOOP).converted
    assert (work / "train.py").read_text() == LOOP


def test_output_exits_1_when_findings_remain(work: Path, fake: None) -> None:
    write(work, "train.py", HUMAN)
    result = run("train.py", "-o", "out.py")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "train.py:1:1: LFY401 loop kept: needs a human",
        "wrote out.py (unchanged: nothing to convert), 1 finding left",
    ]


def test_output_keeps_the_bom(work: Path) -> None:
    data = codecs.BOM_UTF8 + CLEAN.encode()
    (work / "bom.py").write_bytes(data)
    assert run("bom.py", "-o", "out.py").exit_code == 0
    assert (work / "out.py").read_bytes() == data


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a.py", "b.py", "-o", "out.py"], "-o takes exactly one input, got 2"),
        (["a.py", "-o", "./a.py"], "is the input itself"),
        (["a.py", "-o", "link.py"], "is the input itself"),
        (["folder", "-o", "out.py"], "folder is a folder"),
        (["a.py", "-o", "out.py", "--write"], "cannot go with -o"),
    ],
)
def test_output_refusals_exit_2(work: Path, args: list[str], message: str) -> None:
    write(work, "a.py", CLEAN)
    write(work, "b.py", CLEAN)
    (work / "folder").mkdir()
    (work / "link.py").symlink_to(work / "a.py")
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (work / "out.py").exists()
    assert (work / "a.py").read_text() == CLEAN


def test_output_from_stdin(work: Path, fake: None) -> None:
    result = run("-", "-o", "out.py", stdin=LOOP)
    assert (result.exit_code, result.stdout) == (0, "")
    assert (work / "out.py").read_text() == fake_convert(LOOP).converted


def test_output_from_an_unprocessable_file_is_not_written(work: Path) -> None:
    write(work, "bad.py", BAD)
    result = run("bad.py", "-o", "out.py")
    assert result.exit_code == 2
    assert CANNOT_PARSE.search(result.stderr)
    assert not (work / "out.py").exists()
    assert run("gone.py", "-o", "out.py").stderr == "gone.py: error: no such file or directory\n"


# lightify - ---------------------------------------------------------------------------


def test_stdin_unchanged_is_echoed_byte_for_byte(work: Path) -> None:
    data = codecs.BOM_UTF8 + CLEAN.replace("\n", "\r\n").encode()
    result = run("-", stdin=data)
    assert (result.exit_code, result.stdout_bytes, result.stderr) == (0, data, "")


def test_stdin_converted(work: Path, fake: None) -> None:
    result = run("-", stdin=LOOP)
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        fake_convert(LOOP).converted,
        "",
    )


def test_stdin_findings_remaining_exit_1(work: Path, fake: None) -> None:
    result = run("-", stdin=HUMAN)
    assert (result.exit_code, result.stdout) == (1, HUMAN)
    assert result.stderr == "-:1:1: LFY401 loop kept: needs a human\n"


def test_stdin_syntax_error_exits_2_and_passes_the_input_through(work: Path) -> None:
    result = run("-", stdin=BAD)
    assert (result.exit_code, result.stdout) == (2, BAD)
    assert re.match(r"-:\d+:\d+: error: cannot parse: ", result.stderr)


@pytest.mark.parametrize("args", [["-", "a.py"], ["--write", "-"]])
def test_stdin_usage_errors(work: Path, args: list[str]) -> None:
    write(work, "a.py", CLEAN)
    assert run(*args, stdin=CLEAN).exit_code == 2


# the group -----------------------------------------------------------------------------


def test_help_explains_every_option_with_examples() -> None:
    top = run("--help")
    assert top.exit_code == 0
    assert "Examples:" in top.stdout
    assert "convert" in top.stdout
    help_text = run("convert", "--help").stdout
    for option in ("--write", "-o, --output OUT", "--target", "--debug", "Examples:"):
        assert option in help_text
    for example in ("lightify --write", "-o train_lit.py", "lightify - <", "--target", "--debug"):
        assert example in help_text


def test_another_module_adds_a_subcommand_with_one_decorator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lightify_hello_cmd.py").write_text(
        textwrap.dedent(
            """
            import click
            from lightify.cli import main

            @main.command()
            def hello():
                '''Say hello.'''
                click.echo("hello")
                raise RuntimeError("bug")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(main, "commands", dict(main.commands))
    monkeypatch.setitem(cli.LAZY_COMMANDS, "hello", "lightify_hello_cmd")
    monkeypatch.delitem(sys.modules, "lightify_hello_cmd", raising=False)
    assert "hello" in run("--help").stdout
    result = run("hello")
    assert result.stdout == "hello\n"
    assert result.exit_code == 2
    assert (
        result.stderr == "lightify: error: internal error: RuntimeError: bug (please report this)\n"
    )
    assert isinstance(run("hello", "--debug").exception, RuntimeError)


def test_python_dash_m_lightify_in_a_subprocess(tmp_path: Path) -> None:
    write(tmp_path, "bad.py", BAD)
    write(tmp_path, "clean.py", CLEAN)
    result = subprocess.run(
        [sys.executable, "-m", "lightify", "bad.py", "clean.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert CANNOT_PARSE.search(result.stderr)
    assert result.stderr.endswith("nothing to convert in 1 file, 1 error\n")
    assert "Traceback" not in result.stderr


def test_convert_imports_neither_torch_nor_lightning(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "train.py")
    probe = (
        "import sys\nfrom lightify.cli import main\n"
        "try:\n    main(['train.py'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('torch', 'lightning', 'pytorch_lightning', 'rich')\n"
        "print(sorted(name for name in heavy if name in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.stderr.endswith("[]\n"), result.stderr


# the real converter on the design's example (these wait for refactor/convert.py) -------


@pytest.fixture
def example(work: Path) -> Path:
    return Path(shutil.copy(EXAMPLE, work / "train.py"))


def expected_write_status(source: str) -> int:
    findings = convert_source(source, "train.py").findings
    return 1 if any(not finding.fixable for finding in findings) else 0


def test_example_diff(example: Path) -> None:
    result = run("train.py")
    assert result.exit_code == 1
    assert result.stdout.startswith("--- train.py\n+++ train.py\n@@ ")
    assert f"\n+{LIT_CLASS}\n" in result.stdout
    assert result.stderr.endswith("; run lightify --write train.py\n")
    assert example.read_text() == EXAMPLE.read_text()


def test_example_write(example: Path) -> None:
    original = example.read_text()
    result = run("--write", "train.py")
    assert result.exit_code == expected_write_status(original)
    assert result.stdout == ""
    assert result.stderr.startswith("converted train.py\n")
    assert example.read_text() == convert_source(original, "train.py").converted
    assert LIT_CLASS in example.read_text()


def test_example_output(example: Path, work: Path) -> None:
    result = run("train.py", "-o", "train_lit.py")
    assert result.exit_code == expected_write_status(example.read_text())
    assert LIT_CLASS in (work / "train_lit.py").read_text()
    assert example.read_text() == EXAMPLE.read_text()


def test_example_stdin(example: Path) -> None:
    result = run("-", stdin=example.read_bytes())
    assert result.exit_code == expected_write_status(example.read_text())
    assert LIT_CLASS in result.stdout


def test_example_in_a_subprocess(example: Path, work: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lightify", "train.py"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout.startswith("--- train.py\n+++ train.py\n")
    assert f"+{LIT_CLASS}" in result.stdout


# diff.py ------------------------------------------------------------------------------


def test_unified_diff_of_equal_texts_is_empty() -> None:
    assert unified_diff(CLEAN, CLEAN, "x.py") == ""


def test_unified_diff_keeps_line_endings_and_marks_a_missing_final_newline() -> None:
    diff = unified_diff("a\r\nb", "a\r\nc", "x.py")
    assert diff == (
        "--- x.py\n+++ x.py\n@@ -1,2 +1,2 @@\n a\r\n-b\n\\ No newline at end of file\n"
        "+c\n\\ No newline at end of file\n"
    )


def test_unified_diff_does_not_split_on_form_feeds() -> None:
    assert unified_diff("a\x0cb\n", "a\x0cc\n", "x.py").endswith("-a\x0cb\n+a\x0cc\n")


def test_colorize_tells_headers_from_removed_lines() -> None:
    diff = unified_diff("-- x\nkeep\n", "keep\n", "x.py")
    assert colorize(diff).splitlines() == [
        "\x1b[1m--- x.py\x1b[0m",
        "\x1b[1m+++ x.py\x1b[0m",
        "\x1b[36m@@ -1,2 +1 @@\x1b[0m",
        "\x1b[31m--- x\x1b[0m",
        " keep",
    ]
