"""How fast ``lightify check`` is, side by side with TorchFix on the same files in the same run.

    python bench/check_speed.py --torchfix /tmp/torchfix-venv/bin/torchfix

TorchFix pins an older libcst, so it lives in its own virtualenv
(``python3 -m venv /tmp/torchfix-venv && /tmp/torchfix-venv/bin/pip install
torchfix``); without it its rows read "not installed". Measures (wall-clock
medians of fresh processes, so imports count):

- one file from a cold start (the pre-commit case; lightify's modules byte-compiled
  first, as an installed package is), with no cache, and again
  with its findings cached (an unchanged file: libcst is not even imported);
- ``torch/nn`` + ``torch/optim`` of the installed torch package (a large real tree);
- the whole installed torch package, lightify on 2 cores (goal: under 15 s);
- a tree where every file is a candidate (the fixtures copied ``--copies`` times):
  lines per second, and the 95th-percentile time per file, measured in-process
  on each distinct fixture (the copies are identical), so the analysis itself is
  measured and not only the prefilter.

Every other lightify row runs with ``--no-cache``, so it measures the analysis.

Not part of the test suite: machines differ, and so do their neighbours.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "mnist_style" / "before.py"
NOT_INSTALLED = "not installed"


@dataclass
class Row:
    measure: str
    files: int
    lines: int
    lightify: float | None
    torchfix: float | str | None
    note: str = ""

    def cells(self) -> list[str]:
        speedup = ""
        if isinstance(self.torchfix, float) and self.lightify:
            speedup = f"{self.torchfix / self.lightify:.1f}x"
        return [
            self.measure,
            f"{self.files:,}",
            f"{self.lines:,}",
            _seconds(self.lightify),
            self.torchfix if isinstance(self.torchfix, str) else _seconds(self.torchfix),
            speedup,
            self.note,
        ]


def main() -> None:
    options = _options()
    _compile_lightify()
    command = [str(Path(sys.executable).parent / "lightify"), "check", "--exit-zero"]
    lightify = [*command, "--no-cache"]
    torchfix = _torchfix(options.torchfix)
    torch_dir = _torch_package()
    rows = [
        _cold_start(lightify, torchfix, options.repeat),
        _cached(command, options.repeat),
        _tree(
            "torch/nn + torch/optim",
            [torch_dir / "nn", torch_dir / "optim"],
            lightify,
            torchfix,
            options.repeat,
        ),
        _whole_torch(torch_dir, lightify, options.repeat),
        _candidates(lightify, torchfix, options, options.repeat),
    ]
    _print_table(rows)


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torchfix", help="the torchfix executable (default: on PATH)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure (median)")
    parser.add_argument("--copies", type=int, default=100, help="fixture copies (candidate tree)")
    parser.add_argument(
        "--torchfix-copies",
        type=int,
        default=10,
        help="the copies TorchFix reads in the candidate tree (it takes about a second a file)",
    )
    return parser.parse_args()


def _compile_lightify() -> None:
    """Byte-compile lightify's modules, as pip does when it installs a wheel (and did for
    TorchFix): an editable checkout run with PYTHONDONTWRITEBYTECODE set would otherwise
    compile every module again in every cold start."""
    import compileall
    import importlib.util

    for package in ("lightify", "lightify.rules"):
        spec = importlib.util.find_spec(package)
        for folder in spec.submodule_search_locations if spec else []:
            compileall.compile_dir(folder, quiet=1)


def _torchfix(given: str | None) -> list[str] | None:
    path = given or shutil.which("torchfix")
    return [path] if path and Path(path).exists() else None


def _torch_package() -> Path:
    """The installed torch's source folder, found without importing torch (a second)."""
    import importlib.util

    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        sys.exit("torch is not installed in this environment")
    return Path(spec.origin).parent


def _cold_start(lightify: list[str], torchfix: list[str] | None, repeat: int) -> Row:
    lines = _count_lines([FIXTURE])
    return Row(
        "one file, cold start",
        1,
        lines,
        _median(lambda: _run([*lightify, str(FIXTURE)]), repeat + 2),
        _median(lambda: _run([*torchfix, str(FIXTURE)]), repeat + 2) if torchfix else NOT_INSTALLED,
        FIXTURE.relative_to(ROOT).as_posix(),
    )


def _cached(command: list[str], repeat: int) -> Row:
    """The same file again, its findings in a fresh cache filled by a first run."""
    with tempfile.TemporaryDirectory() as folder:
        os.environ["LIGHTIFY_CACHE_DIR"] = folder
        try:
            _run([*command, str(FIXTURE)])
            seconds = _median(lambda: _run([*command, str(FIXTURE)]), repeat + 2)
        finally:
            del os.environ["LIGHTIFY_CACHE_DIR"]
    return Row("one file, findings cached", 1, _count_lines([FIXTURE]), seconds, None, "")


def _tree(
    name: str, folders: list[Path], lightify: list[str], torchfix: list[str] | None, repeat: int
) -> Row:
    files = _python_files(folders)
    paths = [str(folder) for folder in folders]
    return Row(
        name,
        len(files),
        _count_lines(files),
        _median(lambda: _run([*lightify, *paths]), repeat),
        _run([*torchfix, *paths]) if torchfix else NOT_INSTALLED,
        "TorchFix: one run",
    )


def _whole_torch(torch_dir: Path, lightify: list[str], repeat: int) -> Row:
    files = _python_files([torch_dir])
    cores = sorted(os.sched_getaffinity(0))[:2] if hasattr(os, "sched_getaffinity") else []
    command = [*lightify, "--jobs", "2", str(torch_dir)]
    return Row(
        "whole torch package, 2 cores",
        len(files),
        _count_lines(files),
        _median(lambda: _run(command, cpus=cores), repeat),
        "",
        f"goal < 15 s; pinned to CPUs {cores}" if cores else "goal < 15 s",
    )


def _candidates(
    lightify: list[str], torchfix: list[str] | None, options: argparse.Namespace, repeat: int
) -> Row:
    """lines/s over the whole tree for lightify; TorchFix reads the first copies only."""
    fixtures = sorted(ROOT.glob("fixtures/*/before.py"))
    lines = _count_lines(fixtures)
    with tempfile.TemporaryDirectory() as temp:
        folders = []
        for copy in range(options.copies):
            folders.append(Path(temp, f"copy{copy:03d}"))
            folders[-1].mkdir()
            for fixture in fixtures:
                shutil.copyfile(fixture, folders[-1] / f"{fixture.parent.name}.py")
        mine = _run([*lightify, temp])
        subset = [str(folder) for folder in folders[: options.torchfix_copies]]
        theirs = _run([*torchfix, *subset]) if torchfix else None
    p95 = _p95_per_file(fixtures, repeat)
    notes = [f"lightify {lines * options.copies / mine:,.0f} lines/s"]
    if theirs is not None:
        notes.append(
            f"TorchFix {lines * len(subset) / theirs:,.0f} lines/s on {len(subset)} copies"
        )
    notes.append(f"lightify p95 per file {p95 * 1000:.0f} ms")
    return Row(
        f"every file a candidate (fixtures x{options.copies})",
        len(fixtures) * options.copies,
        lines * options.copies,
        mine,
        theirs * options.copies / len(subset) if theirs is not None else NOT_INSTALLED,
        "; ".join(notes) + ("; TorchFix time scaled to the whole tree" if theirs else ""),
    )


def _p95_per_file(fixtures: list[Path], repeat: int) -> float:
    """Per-file analysis time in this process, imports done: what a worker spends on a file."""
    from lightify.checking import check_text
    from lightify.config import Config

    config = Config(root=ROOT)
    check_text("warm.py", FIXTURE.read_text(), config)
    times = []
    for _ in range(repeat):
        for fixture in fixtures:
            text = fixture.read_text()
            start = time.perf_counter()
            check_text(fixture.name, text, config)
            times.append(time.perf_counter() - start)
    return statistics.quantiles(times, n=20)[-1]


def _run(command: list[str], cpus: list[int] | None = None) -> float:
    """Wall-clock seconds of one fresh process, its output discarded."""
    pin: Callable[[], None] | None = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    start = time.perf_counter()
    subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pin, check=False
    )
    return time.perf_counter() - start


def _median(measure: Callable[[], float], repeat: int) -> float:
    return statistics.median(measure() for _ in range(max(1, repeat)))


def _python_files(folders: list[Path]) -> list[Path]:
    return [path for folder in folders for path in folder.rglob("*.py")]


def _count_lines(files: list[Path]) -> int:
    return sum(path.read_bytes().count(b"\n") for path in files)


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f} s"


def _print_table(rows: list[Row]) -> None:
    header = ["measure", "files", "lines", "lightify", "TorchFix", "speed-up", "notes"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row.cells()) + " |")


if __name__ == "__main__":
    main()
