"""``[tool.lightify]``: where it is found, what it may hold, how options override it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import lightify.checking as checking
import lightify.cli as cli
from lightify.api import Conversion
from lightify.cli import main
from lightify.config import Config, ConfigError, load_config
from lightify.diagnostics import Finding

LOOP = "for batch in loader:\n    loss.backward()\n"


def fake_convert(source: str, path: str = "<string>", target: str = "lightning") -> Conversion:
    """One fixable LFY400 and one LFY401 per file; the target shows in the message."""
    findings = (
        Finding(path, 1, 1, "LFY400", f"converts to {target}", fixable=True),
        Finding(path, 2, 5, "LFY401", "needs a human"),
    )
    return Conversion(source, source, findings)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with a script in src/; tests add a pyproject.toml."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(LOOP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(checking, "convert_source", fake_convert)
    return tmp_path


def pyproject(folder: Path, body: str) -> Path:
    path = folder / "pyproject.toml"
    path.write_text(body)
    return path


def check(*args: str) -> Result:
    return CliRunner().invoke(main, ["check", "--output-format", "json", *args])


def codes(result: Result) -> list[str]:
    return [item["code"] for item in json.loads(result.stdout)]


def test_defaults_without_a_pyproject(project: Path) -> None:
    config = load_config(["src"])
    assert config == Config(root=project / "src")
    assert codes(check("src")) == ["LFY400", "LFY401"]


def test_the_nearest_pyproject_with_a_lightify_table_applies(project: Path) -> None:
    pyproject(project, '[tool.lightify]\nselect = ["LFY401"]\ntarget = "pytorch_lightning"\n')
    pyproject(project / "src", '[project]\nname = "inner"\n')  # no table: looked past
    config = load_config(["src/train.py"])
    assert (config.source, config.select, config.target) == (
        project / "pyproject.toml",
        ("LFY401",),
        "pytorch_lightning",
    )
    assert codes(check("src")) == ["LFY401"]


def test_the_search_stops_at_the_top_of_the_repository(project: Path) -> None:
    pyproject(project.parent, '[tool.lightify]\nselect = ["LFY401"]\n')
    try:
        assert load_config(["src"]).source is None
    finally:
        (project.parent / "pyproject.toml").unlink()


def test_command_line_options_override_the_file(project: Path) -> None:
    pyproject(project, '[tool.lightify]\nselect = ["LFY401"]\nignore = ["LFY4"]\njobs = 3\n')
    assert codes(check("src")) == []
    assert codes(check("--ignore", "LFY9", "src")) == ["LFY401"]
    assert codes(check("--select", "LFY4", "--ignore", "LFY401", "src")) == ["LFY400"]
    assert load_config(["src"]).merged(jobs=1, select=None).jobs == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[tool.lightify]\nselekt = ["LFY4"]\n', "unknown key 'selekt' in [tool.lightify]"),
        ('[tool.lightify]\nselect = "LFY4"\n', "[tool.lightify] select: must be a list of strings"),
        ('[tool.lightify]\nignore = ["E501"]\n', "'E501' is not a code or a prefix"),
        ('[tool.lightify]\ntarget = "keras"\n', "target: must be one of lightning"),
        ("[tool.lightify]\njobs = 0\n", "jobs: must be a whole number of at least 1"),
        ("[tool.lightify]\njobs = true\n", "jobs: must be a whole number"),
        ('[tool.lightify]\nexclude = ["a", 1]\n', "exclude: must be a list of strings"),
        ("[tool.lightify]\nselect = [\n", "cannot read"),
        ("[tool]\nlightify = 3\n", "[tool.lightify] must be a table"),
    ],
)
def test_configuration_errors_name_the_file_and_the_key(
    project: Path, body: str, message: str
) -> None:
    path = pyproject(project, body)
    with pytest.raises(ConfigError) as caught:
        load_config(["src"])
    assert str(path) in caught.value.message
    assert message in caught.value.message
    for command in (["check"], ["convert"]):
        result = CliRunner().invoke(main, [*command, "src"])
        assert result.exit_code == 2
        assert message in result.stderr
        assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("globs", "found"),
    [
        ([], ["gen/a.py", "legacy/old.py", "src/train.py", "src/x_pb2.py"]),
        (["*_pb2.py"], ["gen/a.py", "legacy/old.py", "src/train.py"]),
        (["legacy"], ["gen/a.py", "src/train.py", "src/x_pb2.py"]),
        (["/gen/"], ["legacy/old.py", "src/train.py", "src/x_pb2.py"]),
        (["src/*"], ["gen/a.py", "legacy/old.py"]),
    ],
)
def test_exclude_globs(project: Path, globs: list[str], found: list[str]) -> None:
    for name in ("gen/a.py", "legacy/old.py", "src/x_pb2.py"):
        (project / name).parent.mkdir(exist_ok=True)
        (project / name).write_text(LOOP)
    pyproject(project, f"[tool.lightify]\nexclude = {json.dumps(globs)}\n")
    paths = sorted({item["path"] for item in json.loads(check(".").stdout)})
    assert paths == [f"./{name}" for name in found]
    every = ["gen/a.py", "legacy/old.py", "src/train.py", "src/x_pb2.py"]
    named = sorted({item["path"] for item in json.loads(check(*every).stdout)})
    assert named == found  # named files are excluded too, as pre-commit names every file


def test_convert_honours_exclude_and_target(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str]] = []

    def record(source: str, path: str = "<string>", target: str = "lightning") -> Conversion:
        seen.append((path, target))
        return Conversion(source, source, ())

    monkeypatch.setattr(cli, "convert_source", record)
    (project / "legacy").mkdir()
    (project / "legacy" / "old.py").write_text(LOOP)
    pyproject(project, '[tool.lightify]\nexclude = ["legacy"]\ntarget = "pytorch_lightning"\n')
    assert CliRunner().invoke(main, ["."]).exit_code == 0
    assert seen == [("./src/train.py", "pytorch_lightning")]
    CliRunner().invoke(main, ["--target", "lightning", "src/train.py"])
    assert seen[-1] == ("src/train.py", "lightning")
