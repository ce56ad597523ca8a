"""Does the code lightify writes train as fast as Lightning code written by hand?

    python bench/training_overhead.py [--steps 300] [--repeats 5] [--width 576]

Three scripts train the same model on the same data for the same steps: the
raw PyTorch loop (in the shape of the fixtures), lightify's conversion of it,
and an idiomatic hand-written LightningModule. Each run is a fresh process
whose optimizer steps are timed by a global step hook (so no script is edited
to be measured); runs are interleaved and repeated, and the median time per
step is reported. The goal: the conversion within 3% of the hand-written
version. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import itertools
import json
import runpy
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARMUP_STEPS = 10

ORIGINAL = textwrap.dedent(
    """\
    import argparse

    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset


    class Net(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.layers = nn.Sequential(
                nn.Linear(784, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                nn.Linear(width, 10),
            )

        def forward(self, x):
            return self.layers(x)


    def train(args, model, device, train_loader, optimizer, epoch):
        model.train()
        for batch_idx, (data, target) in enumerate(train_loader):
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            output = model(data)
            loss = F.cross_entropy(output, target)
            loss.backward()
            optimizer.step()
            if batch_idx % args.log_interval == 0:
                print(f"epoch {epoch} batch {batch_idx} loss {loss.item():.4f}")


    def main():
        parser = argparse.ArgumentParser()
        parser.add_argument("--epochs", type=int, default=1)
        parser.add_argument("--steps", type=int, default=300)
        parser.add_argument("--batch-size", type=int, default=64)
        parser.add_argument("--width", type=int, default=1024)
        parser.add_argument("--lr", type=float, default=0.01)
        parser.add_argument("--log-interval", type=int, default=50)
        args = parser.parse_args()
        torch.manual_seed(0)
        device = torch.device("cpu")
        count = args.steps * args.batch_size
        dataset = TensorDataset(torch.randn(count, 784), torch.randint(0, 10, (count,)))
        train_loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True)
        model = Net(args.width).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
        for epoch in range(1, args.epochs + 1):
            train(args, model, device, train_loader, optimizer, epoch)


    if __name__ == "__main__":
        main()
    """
)

HAND_WRITTEN = textwrap.dedent(
    """\
    import argparse

    import lightning as L
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset


    class Net(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.layers = nn.Sequential(
                nn.Linear(784, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                nn.Linear(width, 10),
            )

        def forward(self, x):
            return self.layers(x)


    class LitNet(L.LightningModule):
        def __init__(self, model, lr):
            super().__init__()
            self.save_hyperparameters(ignore=["model"])
            self.model = model

        def training_step(self, batch, batch_idx):
            data, target = batch
            loss = F.cross_entropy(self.model(data), target)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.model.parameters(), lr=self.hparams.lr, momentum=0.9)


    def main():
        parser = argparse.ArgumentParser()
        parser.add_argument("--epochs", type=int, default=1)
        parser.add_argument("--steps", type=int, default=300)
        parser.add_argument("--batch-size", type=int, default=64)
        parser.add_argument("--width", type=int, default=1024)
        parser.add_argument("--lr", type=float, default=0.01)
        parser.add_argument("--log-interval", type=int, default=50)
        args = parser.parse_args()
        torch.manual_seed(0)
        count = args.steps * args.batch_size
        dataset = TensorDataset(torch.randn(count, 784), torch.randint(0, 10, (count,)))
        train_loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True)
        trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1)
        trainer.fit(LitNet(Net(args.width), lr=args.lr), train_loader)


    if __name__ == "__main__":
        main()
    """
)


def main() -> None:
    if sys.argv[1:2] == ["--time-steps"]:
        _time_steps(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:])
        return
    options = _options()
    from lightify import convert_source

    conversion = convert_source(ORIGINAL, "train.py")
    if not conversion.changed:
        sys.exit(f"lightify did not convert the script: {conversion.findings}")
    scripts = {"raw loop": ORIGINAL, "lightify": conversion.converted, "hand-written": HAND_WRITTEN}
    arguments = ["--steps", str(options.steps), "--width", str(options.width)]
    with tempfile.TemporaryDirectory() as temp:
        steps = _interleaved(scripts, Path(temp), arguments, options.repeats)
    _report(scripts, steps)


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each script")
    parser.add_argument("--width", type=int, default=576, help="hidden width (about 10 ms/step)")
    return parser.parse_args()


def _interleaved(
    scripts: dict[str, str], folder: Path, arguments: list[str], repeats: int
) -> dict[str, list[float]]:
    """Run each script ``repeats`` times, rotating the order so drift hits all alike."""
    paths = {}
    for number, (name, text) in enumerate(scripts.items()):
        paths[name] = folder / f"script{number}.py"
        paths[name].write_text(text)
    steps: dict[str, list[float]] = {name: [] for name in scripts}
    names = list(scripts)
    for repeat in range(repeats):
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            out = folder / "steps.json"
            command = [sys.executable, __file__, "--time-steps", str(paths[name]), str(out)]
            subprocess.run(
                [*command, *arguments], cwd=folder, check=True, capture_output=True, text=True
            )
            times = json.loads(out.read_text())
            steps[name] += [b - a for a, b in itertools.pairwise(times)][WARMUP_STEPS:]
    return steps


def _time_steps(script: Path, out: Path, arguments: list[str]) -> None:
    """In the child: stamp the end of every optimizer step, run the script, save the stamps.

    One intra-op thread for every script: the comparison is of the code around
    the step, and a single thread is the least disturbed by the machine's neighbours.
    """
    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook

    torch.set_num_threads(1)
    stamps: list[float] = []
    register_optimizer_step_post_hook(lambda *_: stamps.append(time.perf_counter()))
    sys.argv = [str(script), *arguments]
    runpy.run_path(str(script), run_name="__main__")
    out.write_text(json.dumps(stamps))


def _report(scripts: dict[str, str], steps: dict[str, list[float]]) -> None:
    hand = statistics.median(steps["hand-written"])
    print("| script | median per step | vs hand-written | steps timed | .item() in script |")
    print("|---|---|---|---|---|")
    for name, durations in steps.items():
        median = statistics.median(durations)
        relative = f"{(median / hand - 1) * 100:+.1f}%"
        syncs = scripts[name].count(".item()")
        print(f"| {name} | {median * 1000:.2f} ms | {relative} | {len(durations)} | {syncs} |")
    print("\nlightify logs through self.log:", "self.log(" in scripts["lightify"])


if __name__ == "__main__":
    main()
