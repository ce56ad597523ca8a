"""Interrupting lightify never leaves a damaged script: real processes, real signals.

A write replaces the file by renaming a complete temporary file over it, so a
reader sees the old script or the new one. SIGINT and SIGTERM unwind (the
temporary file is removed); SIGKILL cannot be caught, so a stray temporary file
may stay next to the script, but the script itself is still whole.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lightify import convert_source

EXAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "main_function" / "before.py"
SIZE = 8_000_000  # large enough that most of the writer's time is spent writing

WRITER = textwrap.dedent(
    f"""
    import signal
    import sys
    from pathlib import Path

    from lightify.cli import _interrupt
    from lightify.source import write_atomic

    signal.signal(signal.SIGTERM, _interrupt)  # what the command line installs
    target = Path(sys.argv[1])
    versions = ["a" * {SIZE} + "\\n", "b" * {SIZE} + "\\n"]
    print("ready", flush=True)
    turn = 0
    while True:
        write_atomic(target, versions[turn % 2], "utf-8")
        turn += 1
    """
)


def _interrupt_writer(folder: Path, sig: signal.Signals, delay: float) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder / "train.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
    time.sleep(delay)
    writer.send_signal(sig)
    writer.wait(timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=str)
def test_a_write_interrupted_at_random_moments_leaves_a_whole_file(
    sig: signal.Signals, tmp_path: Path
) -> None:
    original = b"print('original')\n"
    whole = {original, b"a" * SIZE + b"\n", b"b" * SIZE + b"\n"}
    script = tmp_path / "train.py"
    script.write_bytes(original)
    rng = random.Random(sig)
    stray = 0
    for _ in range(8):
        _interrupt_writer(tmp_path, sig, rng.uniform(0.05, 0.4))
        assert script.read_bytes() in whole
        leftovers = [path for path in tmp_path.iterdir() if path != script]
        if sig == signal.SIGKILL:
            stray += len(leftovers)  # caught mid-write: the temporary file could not be removed
            for path in leftovers:
                path.unlink()
        else:
            assert leftovers == []
    if sig == signal.SIGKILL:
        assert stray, "no kill landed during a write; the test proved nothing"


def test_sigterm_during_convert_write_leaves_every_script_old_or_new(tmp_path: Path) -> None:
    original = EXAMPLE.read_text()
    converted = convert_source(original, "train.py").converted
    assert converted != original
    names = [f"train_{number:02}.py" for number in range(40)]
    for name in names:
        shutil.copy(EXAMPLE, tmp_path / name)
    run = subprocess.Popen(
        [sys.executable, "-m", "lightify", "--write", *names],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert run.stderr is not None
    while run.stderr.readline() != "converted train_03.py\n":
        assert run.poll() is None, "lightify ended before it could be interrupted"
    run.send_signal(signal.SIGTERM)
    rest = run.stderr.read()
    assert run.wait(timeout=60) == 130
    assert "lightify: interrupted" in rest
    texts = [(tmp_path / name).read_text() for name in names]
    assert set(texts) == {original, converted}  # some done, some not, none damaged
    assert sorted(path.name for path in tmp_path.iterdir()) == names  # no temporary files
