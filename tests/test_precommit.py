"""The pre-commit hooks, driven by the real ``pre-commit`` program, and ``init-pre-commit``.

``pre-commit try-repo`` installs a hook repository at a commit. Run on this
checkout directly it would only see committed files plus tracked changes (its
temporary commit uses ``git add -u``): a new, untracked hook module would be
silently missing. So the tests snapshot the working tree as ``git`` would
commit it (tracked and untracked files, minus ignored ones) into a temporary
repository and try that. pre-commit then builds lightify with pip (the package
index must be reachable) once per run: about 15 seconds each.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lightify import convert_source
from lightify.cli import main
from lightify.precommit import HOOK, entry

ROOT = Path(__file__).resolve().parent.parent
PRE_COMMIT = str(Path(sys.executable).parent / "pre-commit")  # the test extra installs it
FIXTURE = ROOT / "fixtures" / "mnist_style" / "before.py"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def manifest() -> list[dict]:
    return yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())


def test_the_manifest_declares_both_hooks_like_ruff_and_black() -> None:
    hooks = {hook["id"]: hook for hook in manifest()}
    assert list(hooks) == ["lightify-check", "lightify"]
    assert hooks["lightify-check"]["entry"] == "lightify check"
    assert hooks["lightify"]["entry"] == "lightify convert --write"
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert hook["types_or"] == ["python"]
        assert hook["require_serial"] is True  # lightify parallelises itself
        assert hook["minimum_pre_commit_version"] == "2.9.2"  # types_or


def test_init_pre_commit_describes_the_manifests_recommended_hook() -> None:
    recommended = manifest()[0]
    assert {key: recommended[key] for key in HOOK} == HOOK
    local = yaml.safe_load("repos:\n" + entry(None, "v0"))["repos"][0]
    hook = local["hooks"][0]
    assert local["repo"] == "local"
    assert {key: hook[key] for key in HOOK} == HOOK
    assert hook["additional_dependencies"][0].startswith("lightify-convert==")
    remote = yaml.safe_load("repos:\n" + entry("https://example.invalid/lightify", "v9"))
    assert remote["repos"][0] == {
        "repo": "https://example.invalid/lightify",
        "rev": "v9",
        "hooks": [{"id": "lightify-check"}],
    }


def test_init_pre_commit_prints_or_appends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    printed = CliRunner().invoke(main, ["init-pre-commit"])
    assert printed.exit_code == 0
    assert not (tmp_path / ".pre-commit-config.yaml").exists()
    assert yaml.safe_load(printed.stdout)["repos"][0]["hooks"][0]["id"] == "lightify-check"

    config = tmp_path / ".pre-commit-config.yaml"
    config.write_text(
        "repos:\n- repo: https://example.invalid/black\n  rev: 1\n  hooks:\n  - id: black\n"
        "\n# the CI service\nci:\n  autofix: false"
    )
    assert CliRunner().invoke(main, ["init-pre-commit", "--write"]).exit_code == 0
    written = yaml.safe_load(config.read_text())
    assert [repo["repo"] for repo in written["repos"]] == ["https://example.invalid/black", "local"]
    assert written["ci"] == {"autofix": False}
    again = CliRunner().invoke(main, ["init-pre-commit", "--write"])
    assert "already has the lightify-check hook" in again.stderr
    assert yaml.safe_load(config.read_text()) == written

    config.unlink()
    CliRunner().invoke(main, ["init-pre-commit", "--write"])
    assert yaml.safe_load(config.read_text())["repos"][0]["repo"] == "local"


def test_init_pre_commit_refuses_a_config_it_cannot_extend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".pre-commit-config.yaml").write_text("repos: []\n")
    result = CliRunner().invoke(main, ["init-pre-commit", "--write"])
    assert result.exit_code == 1
    assert "add this under repos:" in result.stderr
    assert (tmp_path / ".pre-commit-config.yaml").read_text() == "repos: []\n"


# the real hooks ---------------------------------------------------------------------


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This working tree as it would be committed, as a repository of its own."""
    if shutil.which("git") is None or not Path(PRE_COMMIT).exists():
        pytest.skip("needs git and pre-commit")
    snapshot = tmp_path_factory.mktemp("hook") / "lightify"
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # not a tracked file deleted in the working tree
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, snapshot / name)
    git("init", "-q", cwd=snapshot)
    git("add", "-A", cwd=snapshot)
    git("commit", "-q", "-m", "snapshot", cwd=snapshot)
    return snapshot, git("rev-parse", "HEAD", cwd=snapshot).strip()


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    """A project with a training script and a file with nothing to convert."""
    repo = tmp_path / "project"
    repo.mkdir()
    shutil.copy(FIXTURE, repo / "train.py")
    (repo / "util.py").write_text("def helper():\n    return 1\n")
    git("init", "-q", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "init", cwd=repo)
    return repo


def try_repo(hook_repo: tuple[Path, str], hook: str, cwd: Path) -> subprocess.CompletedProcess:
    path, ref = hook_repo
    env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(cwd.parent / "pre-commit-home")}
    env.pop("PRE_COMMIT_COLOR", None)
    return subprocess.run(
        [PRE_COMMIT, "try-repo", str(path), hook, "--ref", ref, "--all-files", "--color", "never"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_check_hook_reports_and_never_modifies(
    hook_repo: tuple[Path, str], user_repo: Path
) -> None:
    before = {path.name: path.read_bytes() for path in user_repo.glob("*.py")}
    done = try_repo(hook_repo, "lightify-check", user_repo)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "lightify check" in done.stdout and "Failed" in done.stdout
    assert "train.py:38:5: LFY400 [*] training loop can be converted" in done.stdout
    assert "util.py" not in done.stdout
    assert "files were modified" not in done.stdout
    assert {path.name: path.read_bytes() for path in user_repo.glob("*.py")} == before


def test_the_convert_hook_converts_in_place(hook_repo: tuple[Path, str], user_repo: Path) -> None:
    original = FIXTURE.read_text()
    done = try_repo(hook_repo, "lightify", user_repo)
    assert done.returncode == 1, done.stdout + done.stderr  # modified files fail the commit
    assert "files were modified by this hook" in done.stdout
    assert (user_repo / "train.py").read_text() == convert_source(original, "train.py").converted
    assert (user_repo / "util.py").read_text() == "def helper():\n    return 1\n"
    assert "converted train.py" in done.stdout
