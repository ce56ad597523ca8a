"""``lightify verify``: run a script and its conversion, and prove they train the same.

Imported only when the subcommand is asked for (see ``LAZY_COMMANDS`` in
cli.py); the verification modules are imported inside the command, and torch
never is: the scripts, and the CUDA check, run in subprocesses.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lightify.cli import main

DEVICES = ("cpu", "cuda", "all")


@main.command(short_help="Run a script and its conversion; check they train the same.")
@click.argument("script", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- ARGS...]")
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    metavar="N",
    help="Stop each run after N optimizer steps.  [default: at the first step after "
    "the second epoch boundary; see below]",
)
@click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="cpu",
    show_default=True,
    help="Where both runs train: the CPU (CUDA hidden), the GPU, or all: the CPU and, "
    "where CUDA is available, the GPU.",
)
@click.option(
    "--converted",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Compare against FILE (a hand-edited or older conversion) instead of "
    "converting SCRIPT in memory.",
)
@click.option(
    "--rtol",
    type=click.FloatRange(min=0),
    metavar="TOL",
    help="Relative tolerance.  [default: 0 on cpu, 1e-5 on cuda]",
)
@click.option(
    "--atol",
    type=click.FloatRange(min=0),
    metavar="TOL",
    help="Absolute tolerance.  [default: 0 on cpu, 1e-7 on cuda]",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=900,
    show_default=True,
    metavar="SECONDS",
    help="Kill a run (and every process it started) after this long.",
)
@click.option(
    "--python",
    "python",
    default=sys.executable,
    metavar="PATH",
    help="The interpreter that runs the scripts (your training environment, with torch "
    "and Lightning).  [default: the one running lightify]",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for both runs.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also write the whole report, both runs' records included, as JSON "
    "(schema: lightify/verify/report.schema.json).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Draw both loss curves, the first divergence marked (needs matplotlib: the plot extra).",
)
@click.option(
    "--keep",
    is_flag=True,
    help="Keep the runs' scratch folders (their outputs, Lightning's logs) and say where.",
)
@click.pass_context
def verify(
    ctx: click.Context,
    script: Path,
    script_args: tuple[str, ...],
    steps: int | None,
    device: str,
    converted: Path | None,
    rtol: float | None,
    atol: float | None,
    timeout: float,
    python: str,
    seed: int,
    json_path: Path | None,
    plot_path: Path | None,
    keep: bool,
) -> None:
    """Run SCRIPT and its Lightning conversion and check that they train the same.

    THIS RUNS YOUR CODE: SCRIPT and its conversion are executed, with your
    permissions, once each per device (convert and check never run anything).
    Each run is a fresh Python process in its own scratch copy of SCRIPT's
    folder: inputs are linked, so relative data paths work; outputs stay in the
    scratch folder (removed afterwards unless --keep), so neither run touches
    your files or reads the other's checkpoints.

    Both runs get the same seed (Python, NumPy, torch), deterministic
    algorithms, half the cores each (unless OMP_NUM_THREADS is set) and the
    same ARGS. lightify records every backward() loss, the learning rates and
    parameter and buffer checksums after every optimizer step, what
    evaluation computes and the values schedulers decide on, then prints a
    table of both runs, the first step where they diverge and its likely
    cause.

    Without --steps each run stops at its first optimizer step after its
    second epoch boundary (a new pass over its training DataLoader), so two
    end-of-epoch validations and scheduler steps are compared without running
    the whole training; a script that never restarts a DataLoader runs to its
    end. Runs that end earlier are compared over the steps they made.

    Tolerances: exact on the CPU; on CUDA rtol=1e-5, atol=1e-7, because a few
    kernels stay nondeterministic. Python processes the script starts (DDP
    launchers) are not followed: the report says so and claims nothing for
    them.

    \b
    Exit status:
      0  equivalent
      1  diverged
      2  usage error, lightify could not convert SCRIPT (the findings say
         why), --device cuda without CUDA, or the runs used different devices
      3  a run crashed or timed out
      4  no training loop to verify
      130  interrupted (Ctrl-C); both runs are stopped

    \b
    Examples:
      lightify verify train.py
      lightify verify train.py --steps 50 -- --epochs 2 --batch-size 16
      lightify verify train.py --converted train_pl.py
      lightify verify train.py --device all --json report.json --plot losses.png
    """
    from lightify.verify.pipeline import Request, run_verify

    request = Request(
        script=script,
        script_args=script_args,
        steps=steps,
        device=device,
        converted=converted,
        tolerance=(rtol, atol),
        timeout=timeout,
        python=python,
        seed=seed,
        json_path=json_path,
        plot_path=plot_path,
        keep=keep,
    )
    ctx.exit(run_verify(request))
