"""The capture harness, run for real in subprocesses, and the record comparison."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from lightify.verify.records import compare
from lightify.verify.run import RunCrashed, RunTimeout, run_pair, run_script

RAW_SCRIPT = """
import argparse
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default={lr})
args = parser.parse_args()
epochs = int(Path("epochs.txt").read_text())  # an input, linked into the scratch folder
x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
for epoch in range(epochs):
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        print(F.cross_entropy(model(x), y).item())
torch.save(model.state_dict(), "model.pt")
"""

CATCHING_SCRIPT = """
from pathlib import Path

import torch

w = torch.zeros(3, requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)
for epoch in range(1000):
    try:
        for _ in range(4):
            optimizer.zero_grad()
            ((w - 1.0) ** 2).sum().backward()
            optimizer.step()
    except Exception:
        pass
Path("finished").touch()
"""

HANGING_SCRIPT = """
import subprocess
import sys
from pathlib import Path

child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
Path("child.pid").write_text(str(child.pid))
while True:
    pass
"""

LIGHTNING_SCRIPT = """
import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class Lit(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.model = nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.model(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self.model(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.model.parameters(), lr=0.1)


x, y = torch.randn(48, 4), torch.randint(0, 2, (48,))
train = DataLoader(TensorDataset(x[:32], y[:32]), batch_size=8, shuffle=True)
val = DataLoader(TensorDataset(x[32:], y[32:]), batch_size=4)  # 4 validation batches
trainer = L.Trainer(
    max_epochs=2,
    accelerator="cpu",
    devices=1,
    enable_progress_bar=False,
    logger=False,
    enable_checkpointing=False,
)
trainer.fit(Lit(), train, val)
"""


def _write(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's folder: the raw training script and an input file it reads."""
    folder = tmp_path / "project"
    _write(folder, "train.py", RAW_SCRIPT.format(lr=0.1))
    (folder / "epochs.txt").write_text("2")
    return folder


def test_same_script_twice_gives_equal_records(project: Path, tmp_path: Path) -> None:
    script = project / "train.py"
    original, converted = run_pair(script, script, [], tmp_path / "work")

    comparison = compare(original, converted)
    assert comparison.equal, comparison.describe()
    assert comparison.counts == {
        "losses": (8, 8),
        "steps": (8, 8),
        "eval": (2, 2),
        "monitor": (0, 0),
    }
    assert original["device_used"] == "cpu"
    assert original["lightning"] is None
    assert len(set(original["losses"])) > 1  # the runs really trained
    # Outputs stay in each run's scratch folder, never in the user's.
    assert (tmp_path / "work" / "original" / "model.pt").is_file()
    assert (tmp_path / "work" / "converted" / "model.pt").is_file()
    assert not (project / "model.pt").exists()


def test_changed_lr_diverges_at_the_first_step(project: Path, tmp_path: Path) -> None:
    converted_script = _write(tmp_path / "elsewhere", "train_fast.py", RAW_SCRIPT.format(lr=0.2))
    original, converted = run_pair(project / "train.py", converted_script, [], tmp_path / "work")

    comparison = compare(original, converted)
    assert not comparison.equal
    divergence = comparison.first_divergence
    assert divergence is not None
    assert (divergence.stream, divergence.index, divergence.field) == ("steps", 0, "lrs")
    assert (divergence.original, divergence.converted) == ([0.1], [0.2])
    assert original["losses"][0] == converted["losses"][0]  # same start, different update
    assert "steps[0].lrs" in comparison.describe()


BATCH_NORM_SCRIPT = """
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
if "--peek" in sys.argv:  # a forward in training mode: batch-norm statistics move, nothing else
    model(torch.randn(8, 4))
for _ in range(2):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
"""


def test_batch_norm_statistics_are_compared(tmp_path: Path) -> None:
    script = _write(tmp_path, "train.py", BATCH_NORM_SCRIPT)
    plain = run_script(script, [], tmp_path / "plain.json", cwd=tmp_path)
    peeked = run_script(script, ["--peek"], tmp_path / "peeked.json", cwd=tmp_path)

    assert plain["losses"] == peeked["losses"]  # batch statistics: the loss does not see it
    divergence = compare(plain, peeked).first_divergence
    assert divergence is not None
    assert (divergence.stream, divergence.index, divergence.field) == ("steps", 0, "buffer_sum")


def test_max_steps_stops_a_script_that_catches_exception(tmp_path: Path) -> None:
    script = _write(tmp_path, "train.py", CATCHING_SCRIPT)
    record = run_script(script, [], tmp_path / "record.json", cwd=tmp_path, max_steps=5)

    assert [step["step"] for step in record["steps"]] == [0, 1, 2, 3, 4]
    assert len(record["losses"]) == 5
    assert record["stopped_early"] is True
    assert record["exit_code"] == 0
    assert not (tmp_path / "finished").exists()


def test_crashing_script_raises_run_crashed(tmp_path: Path) -> None:
    script = _write(tmp_path, "train.py", "raise ValueError('boom')\n")
    with pytest.raises(RunCrashed) as caught:
        run_script(script, [], tmp_path / "record.json", cwd=tmp_path)

    assert "ValueError: boom" in caught.value.stderr_tail
    assert caught.value.record is not None
    assert "ValueError: boom" in caught.value.record["error"]


def test_hanging_script_times_out_and_leaves_no_process(tmp_path: Path) -> None:
    script = _write(tmp_path, "train.py", HANGING_SCRIPT)
    with pytest.raises(RunTimeout):
        run_script(script, [], tmp_path / "record.json", cwd=tmp_path, timeout=10)

    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_lightning_sanity_check_is_not_recorded(tmp_path: Path) -> None:
    script = _write(tmp_path, "train.py", LIGHTNING_SCRIPT)
    record = run_script(script, [], tmp_path / "record.json", cwd=tmp_path)

    assert record["lightning"] is not None
    assert len(record["steps"]) == len(record["losses"]) == 2 * 4
    assert len(record["eval"]) == 2 * 4  # 2 epochs x 4 batches; the sanity check adds 2 more


def _record(losses: list[float], lrs: list[float], *, stopped: bool = False) -> dict[str, Any]:
    steps = [
        {
            "step": i,
            "optimizer": 0,
            "lrs": [lr],
            "param_sum": 1.0,
            "param_abs_sum": 2.0,
            "buffer_sum": 0.0,
        }
        for i, lr in enumerate(lrs)
    ]
    return {
        "version": 1,
        "losses": losses,
        "losses_at": list(range(len(losses))),
        "steps": steps,
        "eval": [],
        "monitor": [],
        "stopped_early": stopped,
    }


def test_compare_reports_a_missing_step() -> None:
    comparison = compare(_record([1.0, 0.5], [0.1, 0.1]), _record([1.0], [0.1], stopped=True))

    divergence = comparison.first_divergence
    assert divergence is not None
    assert (divergence.stream, divergence.index, divergence.field) == ("losses", 1, "count")
    assert "stopped by --max-steps: converted" in comparison.describe()


def test_compare_tolerance_and_nan() -> None:
    nan = float("nan")
    assert compare(_record([nan], [0.1]), _record([nan], [0.1])).equal
    assert not compare(_record([1.0], [0.1]), _record([1.0 + 1e-12], [0.1])).equal
    assert compare(_record([1.0], [0.1]), _record([1.0 + 1e-12], [0.1]), rtol=1e-9).equal


def _alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
