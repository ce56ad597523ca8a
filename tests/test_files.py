"""Expanding the paths a user gave into the Python files to process."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightify.files import iter_python_files


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n")


def displays(paths: list[str]) -> list[str]:
    return [display for display, _ in iter_python_files(paths)]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    touch(tmp_path / "proj", "b.py", "a.py", "notes.txt", "sub/c.py", "sub/data.json", "z.py")
    return tmp_path / "proj"


def test_folder_yields_sorted_python_files_with_the_users_spelling(project: Path) -> None:
    assert displays(["proj"]) == ["proj/a.py", "proj/b.py", "proj/sub/c.py", "proj/z.py"]
    assert displays(["./proj/"])[0] == "./proj/a.py"
    pairs = list(iter_python_files(["proj"]))
    assert pairs[0] == ("proj/a.py", Path("proj/a.py"))


def test_environments_caches_and_hidden_folders_are_skipped(project: Path) -> None:
    skipped = [
        ".git",
        ".venv",
        "venv",
        "env",
        "__pycache__",
        "build",
        "dist",
        ".tox",
        ".nox",
        "node_modules",
        "lib/site-packages",
        ".hidden",
    ]
    touch(project, *(f"{folder}/skip.py" for folder in skipped))
    assert displays(["proj"]) == ["proj/a.py", "proj/b.py", "proj/sub/c.py", "proj/z.py"]


def test_a_folder_named_explicitly_is_walked_even_if_it_would_be_skipped(project: Path) -> None:
    touch(project, "build/gen.py")
    assert displays(["proj/build"]) == ["proj/build/gen.py"]


def test_a_file_named_explicitly_is_yielded_whatever_its_suffix(project: Path) -> None:
    assert displays(["proj/notes.txt"]) == ["proj/notes.txt"]


def test_each_file_is_yielded_once(project: Path) -> None:
    paths = ["proj/a.py", "./proj/a.py", "proj", "proj/sub/c.py"]
    assert displays(paths) == ["proj/a.py", "proj/b.py", "proj/sub/c.py", "proj/z.py"]


def test_symlink_loops_end_and_linked_folders_are_followed(project: Path, tmp_path: Path) -> None:
    (project / "sub" / "loop").symlink_to(project)
    touch(tmp_path, "elsewhere/d.py")
    (project / "linked").symlink_to(tmp_path / "elsewhere")
    found = displays(["proj"])
    assert found == ["proj/a.py", "proj/b.py", "proj/linked/d.py", "proj/sub/c.py", "proj/z.py"]


def test_missing_paths_are_reported_in_order_and_the_rest_go_on(project: Path) -> None:
    events: list[str] = []
    for display, _ in iter_python_files(["gone.py", "proj/a.py", "gone/"], events.append):
        events.append(f"yield {display}")
    assert events == ["gone.py", "yield proj/a.py", "gone/"]


def test_missing_path_raises_by_default(project: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"gone\.py"):
        list(iter_python_files(["gone.py"]))
