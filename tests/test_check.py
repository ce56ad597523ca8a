"""``lightify check``, ``rules``, ``explain``: formats, exit codes, filters, suppressions, walking.

Most tests replace the converter with ``fake_convert`` (a line marked ``# loop``
gives a fixable LFY400, ``# human`` an LFY401 that needs a human), so they test
the command whatever the converter does; the ``real`` tests run the converter
on a fixture.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner, Result

import lightify.checking as checking
import lightify.progress as progress
from lightify.api import Conversion, convert_source
from lightify.cli import main
from lightify.diagnostics import Finding
from lightify.files import iter_python_files
from lightify.gitignore import ignored, parse_gitignore
from lightify.prefilter import calls_backward_in_a_loop, mentions_backward
from lightify.rules import by_code, registry

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "refactor" / "check-output.schema.json").read_text())
FIXTURE = ROOT / "fixtures" / "mnist_style" / "before.py"
LOOP = "for batch in loader:\n    loss.backward()  # loop\n"
HUMAN = "for batch in loader:\n    loss.backward()  # human\n"
CLEAN = "import os\n"
BAD = "for x in y:\n    loss.backward(\n"


def fake_convert(source: str, path: str = "<string>", target: str = "lightning") -> Conversion:
    convert_source(source, path, target)  # a syntax error still raises ParseFailure
    findings = []
    for number, line in enumerate(source.splitlines(), start=1):
        if "# loop" in line:
            findings.append(Finding(path, number, 5, "LFY400", "loop converted", fixable=True))
        if "# human" in line:
            findings.append(Finding(path, number, 5, "LFY401", "loop kept: needs a human"))
    return Conversion(source, source + "# converted\n" if findings else source, tuple(findings))


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()  # the top of a repository: no configuration from above
    return tmp_path


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checking, "convert_source", fake_convert)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["check", *args])


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# text, exit status, summary ---------------------------------------------------------


def test_findings_on_stdout_summary_last_on_stderr_exit_1(work: Path, fake: None) -> None:
    write(work, "a.py", LOOP)
    write(work, "b.py", HUMAN)
    result = run("a.py", "b.py")
    assert result.exit_code == 1
    assert result.stdout == (
        "a.py:2:5: LFY400 [*] loop converted\nb.py:2:5: LFY401 loop kept: needs a human\n"
    )
    assert result.stderr.splitlines()[-1] == (
        "1 training loop can be converted (1 file), 1 finding needs a human; "
        "run lightify --write a.py"
    )


def test_a_clean_run_prints_nothing_and_exits_0(work: Path, fake: None) -> None:
    write(work, "clean.py", CLEAN)
    result = run("clean.py")
    assert (result.exit_code, result.output) == (0, "")


def test_exit_zero_for_warn_only_hooks(work: Path, fake: None) -> None:
    write(work, "a.py", LOOP)
    result = run("--exit-zero", "a.py")
    assert result.exit_code == 0
    assert "LFY400" in result.stdout


def test_a_file_that_cannot_be_processed_exits_2_and_the_rest_are_checked(
    work: Path, fake: None
) -> None:
    write(work, "bad.py", BAD)
    write(work, "a.py", LOOP)
    result = run("--exit-zero", "bad.py", "a.py", "gone.py")
    assert result.exit_code == 2
    assert result.stdout == "a.py:2:5: LFY400 [*] loop converted\n"
    assert result.stderr.splitlines()[0] == "gone.py: error: no such file or directory"
    assert re.search(r"^bad\.py:\d+:\d+: error: cannot parse: ", result.stderr, re.MULTILINE)
    assert result.stderr.splitlines()[-1].startswith(
        "1 training loop can be converted (1 file), 2 errors"
    )


def test_check_never_writes(work: Path) -> None:
    path = Path(shutil.copy(FIXTURE, work / "train.py"))
    before = path.stat().st_mtime_ns, path.read_bytes()
    assert run("train.py").exit_code == 1
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before


def test_real_converter_marks_what_write_converts(work: Path) -> None:
    shutil.copy(FIXTURE, work / "train.py")
    result = run("train.py")
    expected = [
        finding.format() for finding in convert_source(FIXTURE.read_text(), "train.py").findings
    ]
    assert result.stdout.splitlines() == sorted(expected)
    assert any(" LFY400 [*] " in line for line in expected)


# output formats ---------------------------------------------------------------------


def test_json_matches_the_documented_schema(work: Path, fake: None) -> None:
    write(work, "a.py", LOOP + HUMAN)
    result = run("--output-format", "json", "a.py")
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert [(item["line"], item["code"], item["fixable"]) for item in document] == [
        (2, "LFY400", True),
        (4, "LFY401", False),
    ]
    assert result.exit_code == 1


def test_json_of_a_clean_run_is_an_empty_list(work: Path, fake: None) -> None:
    write(work, "clean.py", CLEAN)
    assert json.loads(run("--output-format", "json", "clean.py").stdout) == []


def test_real_converter_json_matches_the_schema(work: Path) -> None:
    shutil.copy(FIXTURE, work / "train.py")
    jsonschema.validate(json.loads(run("--output-format", "json", "train.py").stdout), SCHEMA)


def test_github_annotations_escape_their_properties(work: Path, fake: None) -> None:
    write(work, "we,ird:name.py", HUMAN)
    result = run("--output-format", "github", "we,ird:name.py")
    assert result.stdout == (
        "::warning title=lightify (LFY401),file=we%2Cird%3Aname.py,line=2,col=5"
        "::we,ird:name.py:2:5: LFY401 loop kept: needs a human\n"
    )


def test_sarif_has_the_required_fields(work: Path) -> None:
    shutil.copy(FIXTURE, work / "train.py")
    write(work, "sub/other.py", CLEAN)
    log = json.loads(run("--output-format", "sarif", ".").stdout)
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (sarif_run,) = log["runs"]
    driver = sarif_run["tool"]["driver"]
    assert driver["name"] == "lightify"
    assert [rule["id"] for rule in driver["rules"]] == [rule.CODE for rule in registry()]
    assert all(rule["shortDescription"]["text"] for rule in driver["rules"])
    assert sarif_run["results"]
    for result in sarif_run["results"]:
        assert result["message"]["text"]
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("note", "warning")
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == "train.py"
        assert location["region"]["startLine"] >= 1
        assert location["region"]["startColumn"] >= 1


# --select, --ignore, suppression comments --------------------------------------------


@pytest.mark.parametrize(
    ("options", "codes"),
    [
        ([], ["LFY400", "LFY401"]),
        (["--select", "LFY4"], ["LFY400", "LFY401"]),
        (["--select", "LFY401"], ["LFY401"]),
        (["--select", "lfy400,LFY401"], ["LFY400", "LFY401"]),
        (["--select", "LFY4", "--ignore", "LFY401"], ["LFY400"]),
        (["--ignore", "LFY4"], []),
        (["--select", "LFY2"], []),
    ],
)
def test_select_and_ignore_by_code_prefix(
    work: Path, fake: None, options: list[str], codes: list[str]
) -> None:
    write(work, "a.py", LOOP + HUMAN)
    result = run(*options, "--output-format", "json", "a.py")
    assert [item["code"] for item in json.loads(result.stdout)] == codes
    assert result.exit_code == (1 if codes else 0)


def test_a_bad_code_is_a_usage_error(work: Path, fake: None) -> None:
    write(work, "a.py", LOOP)
    result = run("--select", "E501", "a.py")
    assert result.exit_code == 2
    assert "--select: 'E501' is not a code" in result.stderr


@pytest.mark.parametrize(
    ("comment", "shown"),
    [
        ("# lightify: ignore[LFY400]", []),
        ("# lightify: ignore", []),
        ("# lightify: ignore[LFY4]", []),
        ("# noqa: E501  # lightify: ignore[LFY201, LFY400]", []),
        ("# lightify: ignore[LFY401]", ["LFY400"]),
        ("# lightify: ignored", ["LFY400"]),
    ],
)
def test_suppression_comments_on_the_findings_line(
    work: Path, fake: None, comment: str, shown: list[str]
) -> None:
    write(work, "a.py", f"for batch in loader:\n    loss.backward()  # loop {comment}\n")
    result = run("--output-format", "json", "a.py")
    assert [item["code"] for item in json.loads(result.stdout)] == shown


def test_a_suppression_on_another_line_or_inside_a_string_does_not_count(
    work: Path, fake: None
) -> None:
    text = 'note = "# lightify: ignore"  # loop\n# lightify: ignore\n' + LOOP
    write(work, "a.py", text)
    assert run("a.py").stdout.splitlines()[0] == "a.py:1:5: LFY400 [*] loop converted"


# the prefilter ----------------------------------------------------------------------


def test_text_without_backward_is_not_analyzed(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(checking, "convert_source", lambda text, **_: seen.append(text))
    write(work, "clean.py", "def f(:\n")  # not even valid Python
    assert run("clean.py").exit_code == 0
    assert seen == []


@pytest.mark.parametrize(
    ("text", "candidate"),
    [
        ("for b in d:\n    loss.backward()\n", True),
        ("while True:\n    loss . backward ()\n", True),
        ("async def f():\n    async for b in d:\n        loss.backward()\n", True),
        ('"""Call loss.backward() in your loop."""\n', False),
        ("# for b in d: loss.backward()\n", False),
        ("loss.backward()\n", False),
        ("for b in d:\n    def step():\n        loss.backward()\n", False),
        ("def step():\n    loss.backward()\nfor b in d:\n    step()\n", False),
        ("for b in d:\n    loss.backward(\n", True),  # libcst reports the syntax error
        (
            "x = "
            + " + ".join(["1"] * 2000)
            + "  # deeper than the recursion limit\nl.backward()\n",
            False,
        ),
    ],
)
def test_prefilter_stages(text: str, candidate: bool) -> None:
    assert (mentions_backward(text) and calls_backward_in_a_loop(text)) is candidate


def _cases() -> list[tuple[str, str]]:
    cases = [
        (path.parent.name, path.read_text()) for path in sorted(ROOT.glob("fixtures/*/before.py"))
    ]
    for rule in registry():
        cases += [(f"{rule.CODE}[{n}]", example.before) for n, example in enumerate(rule.EXAMPLES)]
    return cases


@pytest.mark.parametrize(("name", "text"), _cases(), ids=[name for name, _ in _cases()])
def test_prefilter_never_skips_what_the_converter_would_report(name: str, text: str) -> None:
    """The prefilter is only sound while every conversion and finding needs a backward loop."""
    from lightify.convert import convert_module

    result = convert_module(text, "x.py")
    if result.changed or result.findings:
        assert mentions_backward(text) and calls_backward_in_a_loop(text), name


# folder walking, parallel runs, progress ---------------------------------------------


def test_gitignored_files_and_folders_are_skipped(work: Path) -> None:
    write(work, ".gitignore", "/generated/\n*_pb2.py\nlogs\n!keep_pb2.py\n# comment\n")
    write(work, "src/.gitignore", "local_*.py\n")
    names = [
        "a.py",
        "generated/x.py",
        "src/generated/kept.py",
        "src/api_pb2.py",
        "keep_pb2.py",
        "src/logs/x.py",
        "src/local_run.py",
        "local_top.py",
    ]
    for name in names:
        write(work, name, CLEAN)
    found = [display for display, _ in iter_python_files(["."])]
    assert found == ["./a.py", "./keep_pb2.py", "./local_top.py", "./src/generated/kept.py"]
    found_below = [display for display, _ in iter_python_files(["src"])]
    assert found_below == ["src/generated/kept.py"]  # the top .gitignore applies below it


def test_a_file_named_explicitly_is_checked_even_if_gitignored(work: Path) -> None:
    write(work, ".gitignore", "*.py\n")
    write(work, "a.py", CLEAN)
    assert [display for display, _ in iter_python_files(["a.py"])] == ["a.py"]
    assert list(iter_python_files(["."])) == []


def test_any_virtualenv_is_skipped_whatever_its_name(work: Path) -> None:
    write(work, "myenv/pyvenv.cfg", "home = /usr\n")
    write(work, "myenv/lib/x.py", CLEAN)
    write(work, "pkg.egg-info/x.py", CLEAN)
    write(work, "a.py", CLEAN)
    assert [display for display, _ in iter_python_files(["."])] == ["./a.py"]


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "expected"),
    [
        ("*.py", "a/b.py", False, True),
        ("/b.py", "a/b.py", False, False),
        ("a/*.py", "a/b.py", False, True),
        ("a/*.py", "a/c/b.py", False, False),
        ("a/**/b.py", "a/c/d/b.py", False, True),
        ("**/b.py", "b.py", False, True),
        ("a/**", "a/x/y.py", False, True),
        ("build/", "build", False, False),
        ("build/", "build", True, True),
        ("b?.py", "b1.py", False, True),
        ("[!x]y.py", "zy.py", False, True),
        ("[!x]y.py", "xy.py", False, False),
        ("\\#x.py", "#x.py", False, True),
    ],
)
def test_gitignore_patterns(pattern: str, path: str, is_dir: bool, expected: bool) -> None:
    assert ignored(parse_gitignore(pattern), path, is_dir) is expected


def test_parallel_runs_print_in_a_stable_order(
    work: Path, fake: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(12):
        write(work, f"pkg/m{number:02d}.py", (LOOP if number % 2 else HUMAN) + "x = 1\n" * number)
    serial = run("--jobs", "1", "pkg")
    monkeypatch.setattr(checking, "PARALLEL_MIN_CHARS", 0)
    parallel = run("--jobs", "3", "pkg")
    assert parallel.stdout == serial.stdout
    assert parallel.stdout.splitlines()[0].startswith("pkg/m00.py:")
    assert (parallel.exit_code, parallel.stderr) == (serial.exit_code, serial.stderr)


def test_progress_is_drawn_on_a_terminal_only_once_the_run_is_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Terminal:
        def __init__(self, tty: bool) -> None:
            self.tty, self.written = tty, ""

        def isatty(self) -> bool:
            return self.tty

        def write(self, text: str) -> None:
            self.written += text

        def flush(self) -> None:
            pass

    short = Terminal(tty=True)
    bar = progress.Progress(2, short)
    bar.advance()
    bar.close()
    assert short.written == ""  # faster than DELAY
    monkeypatch.setattr(progress, "DELAY", 0.0)
    for tty, drawn in ((True, True), (False, False)):
        stream = Terminal(tty)
        bar = progress.Progress(2, stream)
        bar.advance()
        bar.advance()
        bar.close()
        assert ("2/2 files" in stream.written) is drawn
        assert stream.written.endswith("\r\x1b[K") is drawn


# rules, explain ---------------------------------------------------------------------


def test_rules_lists_every_code_with_its_summary() -> None:
    result = CliRunner().invoke(main, ["rules"])
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [f"{rule.CODE}  {rule.SUMMARY}" for rule in registry()]


def test_explain_prints_the_rules_doc() -> None:
    result = CliRunner().invoke(main, ["explain", "lfy201"])
    assert result.exit_code == 0
    rule = by_code()["LFY201"]
    assert result.stdout.startswith(f"# LFY201: {rule.SUMMARY}\n\n## What it does\n")
    for section in ("## Why", "## Example", "## Use instead", "## Fix safety"):
        assert section in result.stdout


def test_explain_an_unknown_code_exits_2() -> None:
    result = CliRunner().invoke(main, ["explain", "LFY999"])
    assert result.exit_code == 2
    assert "unknown code 'LFY999'" in result.stderr


def test_one_file_check_imports_neither_torch_nor_lightning(work: Path) -> None:
    shutil.copy(FIXTURE, work / "train.py")
    probe = (
        "import sys\nfrom lightify.cli import main\n"
        "try:\n    main(['check', 'train.py', '--output-format', 'sarif'])\n"
        "except SystemExit:\n    pass\n"
        "heavy = ('torch', 'lightning', 'pytorch_lightning', 'rich', 'jsonschema')\n"
        "print(sorted(name for name in heavy if name in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=work, capture_output=True, text=True, check=False
    )
    assert result.stderr.endswith("[]\n"), result.stderr


# the findings cache ------------------------------------------------------------------


def _refuse_to_analyze(*_args: object, **_kwargs: object) -> Conversion:
    raise AssertionError("a cached text was analyzed again")


def test_an_unchanged_text_is_not_analyzed_again(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(FIXTURE, work / "train.py")
    first = run("train.py")
    assert "LFY400" in first.stdout
    monkeypatch.setattr(checking, "convert_source", _refuse_to_analyze)
    shutil.copy(FIXTURE, work / "moved.py")  # the key is the text, not the path
    again = run("moved.py")
    assert (again.exit_code, again.stdout) == (1, first.stdout.replace("train.py", "moved.py"))


def test_selection_and_suppression_apply_to_cached_findings(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(FIXTURE, work / "train.py")
    everything = run("train.py").stdout
    monkeypatch.setattr(checking, "convert_source", _refuse_to_analyze)
    selected = run("train.py", "--select", "LFY410").stdout
    assert selected and set(selected.splitlines()) < set(everything.splitlines())
    assert "LFY400" not in selected


def test_a_changed_text_or_target_is_analyzed_again(work: Path, fake: None) -> None:
    write(work, "train.py", LOOP)
    assert "LFY400" in run("train.py").stdout
    write(work, "train.py", HUMAN)
    assert "LFY401" in run("train.py").stdout
    cache = checking.FindingsCache(Path("unused"))
    assert cache.key(LOOP, "lightning") != cache.key(LOOP, "pytorch_lightning")


def test_no_cache_analyzes_again(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(FIXTURE, work / "train.py")
    run("train.py")
    monkeypatch.setattr(checking, "convert_source", _refuse_to_analyze)
    assert "a cached text was analyzed again" in run("--no-cache", "train.py").stderr


def test_a_broken_or_unwritable_cache_is_ignored(
    work: Path, fake: None, own_findings_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(work, "train.py", LOOP)
    expected = run("train.py").stdout
    for entry in own_findings_cache.rglob("*.json"):
        entry.write_text("{not json")
    assert run("train.py").stdout == expected
    blocked = write(work, "blocked", "a file where the cache folder should be")
    monkeypatch.setenv("LIGHTIFY_CACHE_DIR", str(blocked))
    assert run("train.py").stdout == expected


def test_an_edited_lightify_module_changes_the_fingerprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lightify.cache as cache

    rule = write(tmp_path, "rules/some_rule.py", "CODE = 'LFY999'\n")
    monkeypatch.setattr(cache, "_analysis_folders", lambda: [str(tmp_path)])
    cache.code_fingerprint.cache_clear()
    before = cache.code_fingerprint()
    rule.write_text("CODE = 'LFY998'\n")  # another size
    cache.code_fingerprint.cache_clear()
    assert cache.code_fingerprint() != before
    cache.code_fingerprint.cache_clear()


def test_a_cached_check_never_imports_libcst(work: Path) -> None:
    shutil.copy(FIXTURE, work / "train.py")
    probe = (
        "import sys\n"
        "from lightify.cli import main\n"
        "main(['check', 'train.py'], standalone_mode=False)\n"
        "print('libcst' in sys.modules)\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", probe], cwd=work, capture_output=True, text=True)
        for _ in range(2)
    ]
    assert [result.stdout.splitlines()[-1] for result in runs] == ["True", "False"]
