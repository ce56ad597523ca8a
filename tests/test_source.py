"""Reading and writing scripts: encodings, BOM, CRLF, refusing binary, atomic writes."""

from __future__ import annotations

import codecs
import os
import stat
from pathlib import Path

import pytest

from lightify.diagnostics import ParseFailure
from lightify.source import ReadFailure, read_source, read_source_file, write_atomic


def make(tmp_path: Path, data: bytes, name: str = "script.py") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_plain_utf8(tmp_path: Path) -> None:
    path = make(tmp_path, "name = 'café'\n".encode())
    source = read_source_file(path)
    assert (source.text, source.encoding, source.bom) == ("name = 'café'\n", "utf-8", False)
    assert source.path == path
    assert read_source(path) == source.text


def test_bom_is_detected_and_written_back(tmp_path: Path) -> None:
    data = codecs.BOM_UTF8 + b"x = 1\n"
    path = make(tmp_path, data)
    source = read_source_file(path)
    assert (source.text, source.bom) == ("x = 1\n", True)
    write_atomic(path, source.text + "y = 2\n", source.encoding)
    assert path.read_bytes() == data + b"y = 2\n"


def test_crlf_survives_a_round_trip(tmp_path: Path) -> None:
    data = b"import os\r\n\r\nprint(os.sep)\r\n"
    path = make(tmp_path, data)
    source = read_source_file(path)
    assert source.text == "import os\r\n\r\nprint(os.sep)\r\n"
    write_atomic(path, source.text, source.encoding)
    assert path.read_bytes() == data


def test_coding_cookie_is_honoured_both_ways(tmp_path: Path) -> None:
    data = b"# -*- coding: latin-1 -*-\nname = '\xe9t\xe9'\n"
    path = make(tmp_path, data)
    source = read_source_file(path)
    assert source.encoding == "iso-8859-1"
    assert "name = 'été'" in source.text
    write_atomic(path, source.text, source.encoding)
    assert path.read_bytes() == data


def test_non_utf8_without_cookie_points_at_the_byte(tmp_path: Path) -> None:
    path = make(tmp_path, b"x = 1\ny = '\xe9'\n")
    with pytest.raises(ParseFailure) as caught:
        read_source_file(path)
    assert caught.value.format("s.py").startswith(
        "s.py:2:6: error: cannot read: byte 0xe9 is not valid UTF-8"
    )
    assert "coding" in caught.value.message


def test_non_utf8_on_the_first_line_still_points_at_the_byte(tmp_path: Path) -> None:
    # tokenize.detect_encoding itself fails here; the reason must still be the byte.
    path = make(tmp_path, codecs.BOM_UTF8 + b"x = '\xe9'\n")
    with pytest.raises(ParseFailure) as caught:
        read_source_file(path)
    assert caught.value.format("s.py").startswith("s.py:1:6: error: cannot read: byte 0xe9")


def test_unknown_cookie(tmp_path: Path) -> None:
    path = make(tmp_path, b"# -*- coding: klingon -*-\nx = 1\n")
    with pytest.raises(ReadFailure, match="cannot read: unknown encoding: klingon"):
        read_source_file(path)


def test_binary_file(tmp_path: Path) -> None:
    path = make(tmp_path, b"\x89PNG\r\n\x1a\n\0\0\0")
    with pytest.raises(ReadFailure) as caught:
        read_source_file(path)
    assert (
        caught.value.format("img.py")
        == "img.py: error: cannot read: binary file (contains NUL bytes)"
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [("missing.py", "no such file or directory"), ("folder", "is a directory")],
)
def test_unreadable_paths(tmp_path: Path, name: str, reason: str) -> None:
    (tmp_path / "folder").mkdir()
    with pytest.raises(ReadFailure) as caught:
        read_source_file(tmp_path / name)
    assert isinstance(caught.value, ParseFailure)  # callers catching ParseFailure see it too
    assert caught.value.format(name) == f"{name}: error: cannot read: {reason}"


def test_write_keeps_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = make(tmp_path, b"x = 1\n")
    path.chmod(0o751)
    write_atomic(path, "x = 2\n", "utf-8")
    assert path.read_text() == "x = 2\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o751
    assert [p.name for p in tmp_path.iterdir()] == ["script.py"]


def test_write_creates_a_new_file_with_the_usual_mode(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "new.py", "x = 1\n", "utf-8")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.py").stat().st_mode) == 0o644


def test_write_failure_keeps_the_original_and_removes_the_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make(tmp_path, b"x = 1\n")

    def fail(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, "x = 2\n", "utf-8")
    assert path.read_bytes() == b"x = 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["script.py"]


def test_unencodable_text_is_refused_before_touching_anything(tmp_path: Path) -> None:
    path = make(tmp_path, b"# coding: latin-1\nx = 1\n")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(path, "# coding: latin-1\nx = '→'\n", "iso-8859-1")
    assert path.read_bytes() == b"# coding: latin-1\nx = 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["script.py"]


def test_write_through_a_symlink_updates_its_target(tmp_path: Path) -> None:
    target = make(tmp_path, b"x = 1\n", "real.py")
    link = tmp_path / "link.py"
    link.symlink_to(target)
    write_atomic(link, "x = 2\n", "utf-8")
    assert link.is_symlink()
    assert target.read_text() == "x = 2\n"
