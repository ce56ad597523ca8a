"""Interrupting lightify never leaves a damaged script: real processes, real signals.

A write replaces the file by renaming a complete temporary file over it, so a
reader sees the old script or the new one. SIGINT and SIGTERM are held until a
write in progress is done, then unwind; SIGKILL cannot be caught, so a stray
temporary file may stay next to the script, but the script itself is still whole.
"""

from __future__ import annotations

import os
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


# Trains slowly for a long time, and says which processes run it.
ENDLESS = """
import os
import time

import torch

with open(os.environ["LIGHTIFY_TEST_PIDS"], "a") as pids:
    pids.write(f"{os.getpid()}\\n")
w = torch.zeros(3, requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)
for step in range(100_000):
    optimizer.zero_grad()
    ((w - 1.0) ** 2).sum().backward()
    optimizer.step()
    time.sleep(0.01)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=str)
def test_interrupted_verify_stops_its_runs_and_removes_its_files(
    sig: signal.Signals, tmp_path: Path
) -> None:
    script = tmp_path / "project" / "train.py"
    script.parent.mkdir()
    script.write_text(ENDLESS)
    (tmp_path / "copy.py").write_text(ENDLESS)  # lightify declines ENDLESS: compare to a copy
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    pids = tmp_path / "pids"
    environment = {**os.environ, "TMPDIR": str(scratch), "LIGHTIFY_TEST_PIDS": str(pids)}
    verify = subprocess.Popen(
        [sys.executable, "-m", "lightify", "verify", script, "--converted", tmp_path / "copy.py"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not pids.exists() or not pids.read_text():
        assert verify.poll() is None and time.monotonic() < deadline, "no run started"
        time.sleep(0.1)
    time.sleep(1.0)  # the run is training now
    verify.send_signal(sig)
    _, errors = verify.communicate(timeout=60)
    assert verify.returncode == 130, errors
    assert "interrupted" in errors
    started = [int(line) for line in pids.read_text().split()]
    time.sleep(0.5)
    assert not [pid for pid in started if _alive(pid)], "a training run outlived verify"
    assert list(scratch.iterdir()) == []  # scratch folders and records removed
    assert sorted(path.name for path in script.parent.iterdir()) == ["train.py"]
