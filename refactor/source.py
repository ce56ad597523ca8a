"""Reading and writing scripts byte-for-byte faithfully.

A conversion must not touch what it does not convert: the encoding (a PEP 263
cookie, a UTF-8 BOM) and the line endings (CRLF) survive a read-convert-write
round trip, and a write never leaves a half-written script behind.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import signal
import stat
import tempfile
import threading
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lightify.diagnostics import ParseFailure


class ChangedOnDisk(Exception):
    """The file no longer holds what was read: it was edited while lightify worked on it."""


class ReadFailure(ParseFailure):
    """A file that cannot be read as text at all; there is no position to report."""

    def format(self, path: str) -> str:
        return f"{path}: error: {self.message}"


@dataclass(frozen=True)
class SourceFile:
    """A script's text and how it was stored, so it can be written back the same way."""

    path: Path
    text: str
    encoding: str
    bom: bool
    data: bytes  # as read, to tell whether the file changed before it is overwritten


def read_source(path: Path) -> str:
    """Return a script's text, decoded as Python itself would decode it."""
    return read_source_file(path).text


def read_source_file(path: Path) -> SourceFile:
    """Read a script; raises ReadFailure/ParseFailure with a reason when it is not text."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ReadFailure(f"cannot read: {describe_os_error(error)}") from None
    return decode_source(data, path)


def decode_source(data: bytes, path: Path) -> SourceFile:
    """Decode bytes read from a file or stdin, honouring a BOM and a coding cookie."""
    if b"\0" in data:
        raise ReadFailure("cannot read: binary file (contains NUL bytes)")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as error:
        # Either undecodable bytes in the first two lines (report where) or a bad cookie.
        _decode(data, "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8")
        raise ReadFailure(f"cannot read: {error.msg} (check the coding declaration)") from None
    text = _decode(data, encoding)
    return SourceFile(path, text, encoding, bom=encoding == "utf-8-sig", data=data)


def _decode(data: bytes, encoding: str) -> str:
    """Decode without translating newlines (CRLF stays CRLF); locate any bad byte."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise _decode_failure(encoding, error) from None


def _decode_failure(encoding: str, error: UnicodeDecodeError) -> ParseFailure:
    """Point at the first undecodable byte and say how to fix the file."""
    data = error.object  # after any BOM, which is invisible in an editor anyway
    before = data[: error.start]
    line = before.count(b"\n") + 1
    col = error.start - (before.rfind(b"\n") + 1) + 1
    name = "UTF-8" if encoding.startswith("utf-8") else encoding
    return ParseFailure(
        f"cannot read: byte 0x{data[error.start]:02x} is not valid {name}; "
        "save the file as UTF-8 or declare its encoding with a '# -*- coding: ... -*-' line",
        line,
        col,
    )


def write_atomic(path: Path, text: str, encoding: str, expected: bytes | None = None) -> None:
    """Replace ``path`` with ``text`` so that readers see the old file or the new, never a mix.

    The text goes to a temporary file next to the target (same file system, so
    the final rename is atomic), keeps the target's permission bits, and
    replaces the file a symlink points at rather than the link itself. With
    ``expected`` (the bytes that were read), a file edited meanwhile is left
    alone and ChangedOnDisk is raised: the user's newer edit wins.
    """
    target = Path(os.path.realpath(path))
    data = text.encode(encoding)
    mode = _mode_for(target)
    with _interrupts_deferred():
        _replace(target, data, mode, expected, path)


def _replace(target: Path, data: bytes, mode: int, expected: bytes | None, path: Path) -> None:
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, mode)
        if expected is not None and _current_bytes(target) != expected:
            raise ChangedOnDisk(f"{path} changed on disk since it was read")
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the file is replaced (or the temporary removed):
    Python raises KeyboardInterrupt between any two bytecodes, including between
    creating the temporary file and the ``try`` that would remove it."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not (
        threading.main_thread()
    ):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _current_bytes(target: Path) -> bytes | None:
    try:
        return target.read_bytes()
    except FileNotFoundError:
        return None


def _mode_for(target: Path) -> int:
    """The existing file's permission bits, or what a plain ``open(..., "w")`` would give."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def describe_os_error(error: OSError) -> str:
    """``[Errno 13] Permission denied: 'x'`` -> ``permission denied``."""
    reason = error.strerror or str(error)
    return reason[:1].lower() + reason[1:]
