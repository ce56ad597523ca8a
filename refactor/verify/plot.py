"""``--plot``: both loss curves per device, the first divergence marked.

matplotlib is an optional extra (``pip install 'lightify-convert[plot]'``); it is
imported only here, and the command checks for it before any run starts.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from lightify.verify.outcome import Verification

INSTALL_HINT = "--plot needs matplotlib: pip install 'lightify-convert[plot]' (or matplotlib)"


def available() -> bool:
    """Whether matplotlib can be imported, without importing it."""
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):  # a None entry in sys.modules, a broken parent
        return False


def write_plot(verification: Verification, path: Path) -> None:
    """One panel per device: loss by loss index for both runs, a line at the divergence."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, none opened
    import matplotlib.pyplot as plt

    devices = [d for d in verification.devices if d.original.record and d.converted.record]
    figure, axes = plt.subplots(
        max(1, len(devices)), 1, figsize=(8, 3.5 * max(1, len(devices))), squeeze=False
    )
    for axis, device in zip(axes[:, 0], devices, strict=False):
        for run, style in ((device.original, "-"), (device.converted, "--")):
            assert run.record is not None
            axis.plot(run.record["losses"], style, label=f"{run.role} ({run.script})")
        divergence = device.comparison.first_divergence if device.comparison else None
        if divergence is not None:
            at = _loss_index(device.original.record["losses_at"], divergence.steps_done)
            axis.axvline(
                at,
                color="red",
                linewidth=1,
                label=f"first divergence (step {divergence.steps_done})",
            )
        axis.set_title(f"{verification.script} on {device.device}: {device.verdict}")
        axis.set_xlabel("backward() call")
        axis.set_ylabel("loss")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _loss_index(losses_at: list[int], steps_done: int) -> int:
    """The first loss recorded once ``steps_done`` optimizer steps were made."""
    return next((i for i, at in enumerate(losses_at) if at >= steps_done), len(losses_at))
