"""``lightify verify`` end to end: real runs in subprocesses, through the command line.

The mutation tests take a correct conversion, change one thing, and require
exit 1 with the right first diverging step and likely cause: the verifier must
not be a rubber stamp. Scripts that need no Lightning run against a copy of
themselves (``--converted``), which keeps them fast.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner, Result

import lightify.verify
from lightify import convert_source
from lightify.cli import main
from lightify.verify import causes
from lightify.verify.causes import likely_cause
from lightify.verify.records import compare
from lightify.verify.session import Progress

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MAIN = FIXTURES / "main_function"
PLATEAU = FIXTURES / "plateau"
CLIP = FIXTURES / "clip_grad_norm"
SCHEMA = json.loads((Path(lightify.verify.__file__).parent / "report.schema.json").read_text())

# A small script lightify converts; its loaders draw their data when they are
# created, so the order of their creation matters. {setup} and {after} are
# indented code placed before and after the training loop.
SCRIPT = """
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


def main():
    torch.manual_seed(0)
    train_loader = DataLoader(TensorDataset(torch.randn(64, 4), torch.randn(64, 2)), batch_size=16)
    val_loader = DataLoader(TensorDataset(torch.randn(32, 4), torch.randn(32, 2)), batch_size=16)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
{setup}
    for epoch in range({epochs}):
        model.train()
        for xb, yb in train_loader:
            optimizer.zero_grad()
            loss = F.mse_loss(model(xb), yb)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for xb, yb in val_loader:
                print(F.mse_loss(model(xb), yb).item())
{after}


if __name__ == "__main__":
    main()
"""

# Not convertible (lightify declines an epoch loop nested in a try), so it runs
# against a copy of itself: the stop must get through its `except Exception`.
CATCHING = """
import torch
from torch.utils.data import DataLoader, TensorDataset

loader = DataLoader(TensorDataset(torch.randn(16, 3)), batch_size=4, shuffle=True)
w = torch.zeros(3, requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)
try:
    for epoch in range(10_000):
        for (x,) in loader:
            optimizer.zero_grad()
            ((x - w) ** 2).sum().backward()
            optimizer.step()
except Exception:
    pass
"""

# Trains in the main process and starts a Python child the harness cannot follow.
WITH_CHILD = """
import subprocess
import sys

import torch

subprocess.run([sys.executable, "-c", "print('a worker')"], check=True)
w = torch.zeros(3, requires_grad=True)
optimizer = torch.optim.SGD([w], lr={lr})
for step in range(4):
    optimizer.zero_grad()
    ((w - 1.0) ** 2).sum().backward()
    optimizer.step()
"""

# Trains only in a child process: nothing the harness measures.
ONLY_CHILD = """
import subprocess
import sys

import torch

subprocess.run([sys.executable, "-c", "print('training happens here')"], check=True)
"""


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def _script(
    folder: Path, name: str = "train.py", setup: str = "", after: str = "", epochs: int = 3
) -> Path:
    text = SCRIPT.format(
        setup=textwrap.indent(textwrap.dedent(setup), " " * 4),
        after=textwrap.indent(textwrap.dedent(after), " " * 4),
        epochs=epochs,
    )
    return _write(folder, name, text)


def _mutate(source: Path, folder: Path, old: str, new: str) -> Path:
    """A copy of ``source`` with exactly one change."""
    text = source.read_text()
    assert text.count(old) == 1, old
    return _write(folder, f"mutated_{source.name}", text.replace(old, new))


def verify(*args: Any) -> Result:
    return CliRunner().invoke(main, ["verify", *map(str, args)])


def verify_json(tmp_path: Path, *args: Any) -> tuple[Result, dict[str, Any]]:
    """Runs verify with --json and returns the result and the report, checked against the schema."""
    report = tmp_path / "report.json"
    result = verify(*args, "--json", report)
    data = json.loads(report.read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["exit_code"] == result.exit_code, result.output
    return result, data


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


# -- verdicts -----------------------------------------------------------------------


def test_fixture_verifies_equivalent(tmp_path: Path) -> None:
    plot = tmp_path / "losses.png"
    result, data = verify_json(tmp_path, MAIN / "before.py", "--plot", plot)

    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("verdict: equivalent (exit 0)\n")
    assert "identical over 41 optimizer steps" in result.stdout
    assert re.search(
        r"epoch boundaries\s+2 \(at steps 20, 40\)\s+2 \(at steps 20, 40\)", result.stdout
    )
    assert "lightning_logs/version_0/hparams.yaml" in result.stdout  # files the run created
    assert result.stderr == ""  # progress only on a terminal
    (device,) = data["devices"]
    assert device["first_divergence"] is None and device["counts"]["eval"] == [4, 4]
    assert [run["ended"] for run in (device["original"], device["converted"])] == ["stopped"] * 2
    assert device["converted"]["lightning"] and device["original"]["lightning"] is None
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert not (MAIN / "model.pt").exists() and not (MAIN / "lightning_logs").exists()


MUTATIONS = {
    # name: (fixture, old, new, first diverging step, stream, field, cause)
    "learning rate": (
        MAIN,
        "lr=self.lr, momentum",
        "lr=self.lr * 2, momentum",
        0,
        "steps",
        "lrs",
        causes.OPTIMIZER_ARGUMENTS,
    ),
    "scheduler interval": (
        MAIN,
        '"interval": "epoch"',
        '"interval": "step"',
        1,
        "steps",
        "lrs",
        causes.SCHEDULER_CADENCE,
    ),
    "loss reduction": (
        MAIN,
        "criterion = nn.CrossEntropyLoss()",
        'criterion = nn.CrossEntropyLoss(reduction="sum")',
        0,
        "losses",
        None,
        causes.REDUCTION.format(ratio=25),
    ),
    "validation pass dropped": (
        MAIN,
        ", train_loader, val_loader)",
        ", train_loader)",
        20,
        "eval",
        "count",
        causes.EVALUATION_PASSES,
    ),
    "clip value": (
        CLIP,
        "gradient_clip_val=args.clip,",
        "gradient_clip_val=args.clip * 2,",
        0,
        "steps",
        "param_sum",
        causes.UPDATE,
    ),
    "validation pass added": (
        MAIN,
        "    trainer.fit(LitMLP(",
        "    trainer.validate(LitMLP(model, criterion, lr=args.lr), val_loader)\n"
        "    trainer.fit(LitMLP(",
        0,
        "eval",
        None,
        causes.EVALUATION_VALUES,
    ),
    "monitored value": (
        PLATEAU,
        "scheduler.step(self.val_loss)",
        "scheduler.step(metric)",
        12,
        "monitor",
        None,
        causes.MONITOR,
    ),
}


@pytest.mark.parametrize("name", MUTATIONS)
def test_mutated_conversion_diverges_with_its_cause(name: str, tmp_path: Path) -> None:
    fixture, old, new, step, stream, field, cause = MUTATIONS[name]
    mutated = _mutate(fixture / "after.py", tmp_path / "mutated", old, new)

    result, data = verify_json(tmp_path, fixture / "before.py", "--converted", mutated)

    assert result.exit_code == 1, result.output
    divergence = data["devices"][0]["first_divergence"]
    assert (divergence["steps_done"], divergence["stream"], divergence["field"]) == (
        step,
        stream,
        field,
    )
    assert divergence["cause"] == cause
    assert f"diverged at step {step}" in result.stdout
    assert f"likely cause: {cause}" in result.stdout


def test_loaders_created_in_another_order_diverge_at_the_first_loss(tmp_path: Path) -> None:
    script = _script(tmp_path / "project")
    converted = convert_source(script.read_text(), "train.py").converted
    train_line, val_line = (
        next(line for line in converted.splitlines() if line.lstrip().startswith(name))
        for name in ("train_loader = ", "val_loader = ")
    )
    swapped = converted.replace(train_line, "<train>").replace(val_line, train_line)
    mutated = _write(tmp_path / "mutated", "train.py", swapped.replace("<train>", val_line))

    result, data = verify_json(tmp_path, script, "--converted", mutated)

    assert result.exit_code == 1, result.output
    divergence = data["devices"][0]["first_divergence"]
    assert (divergence["steps_done"], divergence["stream"], divergence["index"]) == (0, "losses", 0)
    assert divergence["cause"] == causes.FIRST_LOSS


def test_crashing_script_exits_3(tmp_path: Path) -> None:
    script = _script(tmp_path / "project", setup="open('missing.csv')\n")

    result, data = verify_json(tmp_path, script)

    assert result.exit_code == 3, result.output
    assert data["verdict"] == "run_failed"
    assert "the original run crashed after 0 optimizer steps" in result.stdout
    assert "FileNotFoundError" in result.stdout  # the error, from the run's stderr
    assert data["devices"][0]["converted"]["ended"] == "crashed"


def test_hanging_script_times_out_with_exit_3(tmp_path: Path) -> None:
    script = _script(tmp_path / "project", setup="import time\n\ntime.sleep(600)\n")

    result, data = verify_json(tmp_path, script, "--timeout", 5)

    assert result.exit_code == 3, result.output
    assert "the original run timed out after 5 s" in result.stdout
    original = data["devices"][0]["original"]
    assert (original["ended"], original["record"], original["steps"]) == ("timed_out", None, 0)


def test_script_without_training_loop_exits_4(tmp_path: Path) -> None:
    script = _write(tmp_path, "plot.py", "import math\n\nprint(math.pi)\n")

    result, data = verify_json(tmp_path, script)

    assert result.exit_code == 4, result.output
    assert "has no training loop" in result.stderr
    assert data["devices"] == []


def test_unconvertible_script_exits_2_with_findings(tmp_path: Path) -> None:
    script = _write(tmp_path, "train.py", CATCHING)

    result = verify(script)

    assert result.exit_code == 2
    assert re.search(r"train\.py:\d+:\d+: LFY401 ", result.stderr)
    assert "lightify could not convert" in result.stderr
    assert result.stdout == ""


def test_stop_gets_through_except_exception(tmp_path: Path) -> None:
    script = _write(tmp_path / "project", "train.py", CATCHING)
    copy = _write(tmp_path / "copy", "train.py", CATCHING)

    result, data = verify_json(tmp_path, script, "--converted", copy, "--device", "all")

    assert result.exit_code == 0, result.output
    if not _cuda_available():
        assert data["notes"] == [
            f"CUDA is not available to {sys.executable} "
            "(torch.cuda.is_available() is False): compared on the CPU only"
        ]
    for run in (data["devices"][0]["original"], data["devices"][0]["converted"]):
        # 4 steps per epoch: stopped at the first step after the second boundary
        assert (run["ended"], run["steps"], run["epoch_boundaries_at"]) == ("stopped", 9, [4, 8])


def test_checkpoint_written_and_reloaded_stays_in_each_run(tmp_path: Path) -> None:
    after = """
    torch.save(model.state_dict(), "ckpt.pt")
    model.load_state_dict(torch.load("ckpt.pt"))
    with torch.no_grad():
        print(model(torch.ones(2, 4)))
    """
    script = _script(tmp_path / "project", after=after, epochs=2)
    users_file = tmp_path / "project" / "ckpt.pt"
    users_file.write_bytes(b"the user's own checkpoint")

    result, data = verify_json(tmp_path, script)

    assert result.exit_code == 0, result.output
    assert users_file.read_bytes() == b"the user's own checkpoint"  # written through no link
    (device,) = data["devices"]
    for run in (device["original"], device["converted"]):
        assert "ckpt.pt" in run["files_created"]
        assert run["ended"] == "finished" and run["epoch_boundaries_at"] == [4]
        assert run["record"]["eval"][-1] == device["original"]["record"]["eval"][-1]
    assert "finished after crossing 1 epoch boundary (verify aims for 2)" in result.stdout


def test_child_processes_are_reported_as_not_measured(tmp_path: Path) -> None:
    script = _write(tmp_path / "project", "train.py", WITH_CHILD.format(lr=0.1))
    copy = _write(tmp_path / "copy", "train.py", WITH_CHILD.format(lr=0.1))

    result, data = verify_json(tmp_path, script, "--converted", copy, "--steps", 100)

    assert result.exit_code == 0, result.output
    assert "identical over 4 optimizer steps in the main process" in result.stdout
    assert "equivalence was NOT measured for them" in result.stdout
    assert "fewer than --steps 100" in result.stdout
    assert data["devices"][0]["original"]["child_processes"][0].startswith("subprocess: ")


def test_training_only_in_children_is_not_measured(tmp_path: Path) -> None:
    """Also checks that the lightify process itself never imports torch."""
    script = _write(tmp_path / "project", "train.py", ONLY_CHILD)
    copy = _write(tmp_path / "copy", "train.py", ONLY_CHILD)
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('torch imported:', 'torch' in sys.modules))\n"
        "from lightify.cli import main\n"
        f"main(['verify', {str(script)!r}, '--converted', {str(copy)!r}])\n"
    )

    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert run.returncode == 4, run.stderr
    assert "training ran in child processes it does not follow" in run.stdout
    assert "verdict: not_measured (exit 4)" in run.stdout
    assert run.stdout.endswith("torch imported: False\n")


# -- usage ---------------------------------------------------------------------------


def test_help_says_verify_runs_your_code() -> None:
    result = verify("--help")

    assert result.exit_code == 0
    assert "THIS RUNS YOUR CODE" in result.stdout


@pytest.mark.skipif(_cuda_available(), reason="CUDA is available here")
def test_cuda_without_cuda_exits_2() -> None:
    result = verify(MAIN / "before.py", "--device", "cuda")

    assert result.exit_code == 2
    assert "--device cuda: CUDA is not available to" in result.stderr


def test_plot_without_matplotlib_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails

    result = verify(MAIN / "before.py", "--plot", "losses.png")

    assert result.exit_code == 2
    assert "--plot needs matplotlib: pip install 'lightify-convert[plot]'" in result.stderr


def test_missing_interpreter_exits_2(tmp_path: Path) -> None:
    result = verify(MAIN / "before.py", "--python", tmp_path / "nowhere" / "python")

    assert result.exit_code == 2
    assert "no such interpreter" in result.stderr


def test_report_into_a_missing_folder_exits_2_before_any_run(tmp_path: Path) -> None:
    result = verify(MAIN / "before.py", "--json", tmp_path / "nowhere" / "report.json")

    assert result.exit_code == 2
    assert "the folder" in result.stderr and "does not exist" in result.stderr


@pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA GPU (torch.cuda.is_available())")
def test_fixture_verifies_on_cuda(tmp_path: Path) -> None:
    result, data = verify_json(tmp_path, MAIN / "before.py", "--device", "cuda")

    assert result.exit_code == 0, result.output
    (device,) = data["devices"]
    assert device["device"] == "cuda" and (device["rtol"], device["atol"]) == (1e-5, 1e-7)
    assert device["original"]["device_used"] == device["converted"]["device_used"] == "cuda"


# -- pieces --------------------------------------------------------------------------


def _record(
    losses: list[float], lrs: list[float], sums: list[float] | None = None
) -> dict[str, Any]:
    sums = sums or [1.0] * len(lrs)
    return {
        "version": 1,
        "losses": losses,
        "losses_at": list(range(len(losses))),
        "steps": [
            {
                "step": i,
                "optimizer": 0,
                "lrs": [lr],
                "param_sum": s,
                "param_abs_sum": 2.0,
                "buffer_sum": 0.0,
            }
            for i, (lr, s) in enumerate(zip(lrs, sums, strict=True))
        ],
        "eval": [],
        "monitor": [],
        "stopped_early": False,
    }


@pytest.mark.parametrize(
    ("original", "converted", "cause"),
    [
        (
            _record([1.0, 0.5], [0.1, 0.1]),
            _record([1.0, 0.5], [0.1, 0.1], [1.0, 1.5]),
            causes.UPDATE,
        ),
        (_record([1.0, 0.5], [0.1, 0.1]), _record([1.0, 0.7], [0.1, 0.1]), causes.LATER_LOSS),
        (_record([1.0, 0.5], [0.1, 0.1]), _record([1.3, 0.5], [0.1, 0.1]), causes.FIRST_LOSS),
        (_record([1.0, 0.5], [0.1, 0.1]), _record([1.0], [0.1]), causes.LENGTH),
        (  # Adam hides a scaled loss: the ratio stays, whatever it is
            _record([1.0, 0.8, 0.6], [0.1] * 3),
            _record([0.37, 0.296, 0.222], [0.1] * 3),
            causes.REDUCTION.format(ratio=0.37),
        ),
    ],
)
def test_likely_cause(original: dict[str, Any], converted: dict[str, Any], cause: str) -> None:
    divergence = compare(original, converted).first_divergence
    assert divergence is not None
    assert likely_cause(divergence, original, converted) == cause


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.written = ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> None:
        self.written += text

    def flush(self) -> None:
        pass


def test_progress_only_on_a_terminal() -> None:
    for tty, expected in ((True, "\r\x1b[Kverify on cpu: original step 3\r\x1b[K"), (False, "")):
        stream = _Stream(tty)
        progress = Progress(stream)  # type: ignore[arg-type]
        progress.show("verify on cpu: original step 3")
        progress.clear()
        assert stream.written == expected


ACCUMULATING = """\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
data = TensorDataset(torch.randn(200, 6), torch.randint(0, 3, (200,)))
loader = DataLoader(data, batch_size=16, shuffle=True)  # 13 batches: not a multiple of 4
model = nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.1), nn.Linear(16, 3))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for i, (x, y) in enumerate(loader):
        loss = F.cross_entropy(model(x), y) / 4
        loss.backward()
        if (i + 1) % 4 == 0 or i + 1 == len(loader):
            optimizer.step()
            optimizer.zero_grad()
"""
ACCUMULATING_LIGHTNING = """\
import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class Lit(L.LightningModule):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.model(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.model.parameters(), lr=0.1)


torch.manual_seed(0)
data = TensorDataset(torch.randn(200, 6), torch.randint(0, 3, (200,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
model = nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.1), nn.Linear(16, 3))
trainer = L.Trainer(
    max_epochs=2, accumulate_grad_batches=4, accelerator="cpu", devices=1, logger=False
)
trainer.fit(Lit(model), loader)
"""


def test_accumulation_window_is_measured(tmp_path: Path) -> None:
    """A raw loop that divides by N and steps every N batches and at the epoch's end trains
    like accumulate_grad_batches=N (13 batches per epoch, N=4); a window of 3 diverges at
    the first loss, off by the ratio 4/3."""
    raw = _write(tmp_path, "raw.py", ACCUMULATING)
    same = _write(tmp_path, "lit.py", ACCUMULATING_LIGHTNING)
    assert verify(raw, "--converted", same).exit_code == 0
    window = _mutate(
        same, tmp_path / "mutated", "accumulate_grad_batches=4", "accumulate_grad_batches=3"
    )
    result, data = verify_json(tmp_path, raw, "--converted", window)
    assert result.exit_code == 1, result.output
    divergence = data["devices"][0]["first_divergence"]
    assert (divergence["steps_done"], divergence["stream"]) == (0, "losses")
    assert divergence["cause"] == causes.REDUCTION.format(ratio=4 / 3)
