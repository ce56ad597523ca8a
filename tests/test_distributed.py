"""Multi-process fixtures train the same after conversion: gloo DDP vs Lightning DDP.

The capture harness does not follow child processes, so each run here gets a
``sitecustomize`` that records, in every Python process the run starts, each
``backward()`` loss under that process's rank in the default process group.
Both runs train 2 CPU processes; every rank's losses and the parameters rank 0
saves must be bit-identical.

A fixture's ``multiprocess.txt`` says how both scripts are started: its line
``launch: ARGS`` gives the interpreter's arguments, with ``{script}``, ``{epochs}``,
``{world_size}`` and ``{port}`` (a free port) filled in: ``{script} --world-size
{world_size} --port {port}`` for a script that calls ``mp.spawn`` itself,
``-m torch.distributed.run --standalone --nproc_per_node={world_size} {script}`` for
one torchrun starts.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fixture_cases import Case, cases

from lightify import convert_source

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

MULTIPROCESS = [case for case in cases() if case.multiprocess]
WORLD_SIZE = 2
EPOCHS = 2

RECORDER = """\
import os

if os.environ.get("LIGHTIFY_LOSSES"):
    import torch

    _backward = torch.Tensor.backward

    def _recording_backward(self, *args, **kwargs):
        dist = torch.distributed
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else "main"
        path = os.path.join(os.environ["LIGHTIFY_LOSSES"], f"losses.{rank}")
        with open(path, "a") as out:
            out.write(repr(self.item()) + "\\n")
        return _backward(self, *args, **kwargs)

    torch.Tensor.backward = _recording_backward
"""


def _gloo() -> bool:
    dist = torch.distributed
    return dist.is_available() and dist.is_gloo_available()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(case: Case, script: Path) -> list[str]:
    """The command that starts ``script`` the way the fixture's ``launch:`` line says."""
    lines = (case.folder / "multiprocess.txt").read_text().splitlines()
    found = [line.split(":", 1)[1] for line in lines if line.startswith("launch:")]
    assert len(found) == 1, f"{case.name}/multiprocess.txt needs one `launch:` line"
    args = found[0].format(script=script, epochs=EPOCHS, world_size=WORLD_SIZE, port=_free_port())
    return [sys.executable, *shlex.split(args)]


def _start(command: list[str], folder: Path, recorder: Path) -> subprocess.Popen[str]:
    """Start a script in its own folder, its losses recorded there."""
    folder.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(recorder), os.environ.get("PYTHONPATH", "")]),
        "LIGHTIFY_LOSSES": str(folder),
        "CUDA_VISIBLE_DEVICES": "",
    }
    return subprocess.Popen(
        command,
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _finish(run: subprocess.Popen[str], folder: Path) -> tuple[dict[str, list[float]], dict]:
    """Every rank's losses and the state_dict rank 0 saved."""
    try:
        _, stderr = run.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)  # the launcher and the processes it started
        run.communicate()
        raise
    assert run.returncode == 0, stderr[-4000:]
    losses = {
        path.name.split(".", 1)[1]: [float(line) for line in path.read_text().split()]
        for path in folder.glob("losses.*")
    }
    return losses, torch.load(folder / "model.pt")


@pytest.mark.skipif(not _gloo(), reason="torch.distributed with the gloo backend is unavailable")
@pytest.mark.parametrize("case", MULTIPROCESS, ids=lambda case: case.name)
def test_ddp_conversion_trains_identically(case: Case, tmp_path: Path) -> None:
    assert convert_source(case.before.read_text(), "before.py").converted == case.after.read_text()
    recorder = tmp_path / "recorder"
    recorder.mkdir()
    (recorder / "sitecustomize.py").write_text(RECORDER)
    # both at once: most of each run is four interpreters importing torch (and lightning)
    runs = {
        name: _start(_launch(case, script), tmp_path / name, recorder)
        for name, script in (("original", case.before), ("converted", case.after))
    }
    try:
        original, original_params = _finish(runs["original"], tmp_path / "original")
        converted, converted_params = _finish(runs["converted"], tmp_path / "converted")
    finally:
        for run in runs.values():
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
                run.communicate()
    # both trained in two processes of a process group, on different shards of the data
    assert set(original) == set(converted) == {str(rank) for rank in range(WORLD_SIZE)}
    assert len(original["0"]) == len(original["1"]) >= 2 * EPOCHS
    assert original["0"] != original["1"]
    assert converted == original  # every rank, every step, bit for bit
    assert list(converted_params) == list(original_params)
    for name, value in original_params.items():
        assert torch.equal(converted_params[name], value), name


def test_every_multiprocess_fixture_converts() -> None:
    assert MULTIPROCESS, "the DDP fixtures are exercised here, not by the capture harness"
    assert all(case.converts for case in MULTIPROCESS)
