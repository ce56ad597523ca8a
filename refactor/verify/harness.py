"""Capture harness: run one training script and record what its training computes.

Run as ``python harness.py --out RECORD.json [--seed 0] [--max-steps N]
[--stop-after-boundaries K] [--progress FILE] [--device cpu|cuda] SCRIPT [ARGS...]``
in a fresh interpreter. It is executed by file path, so it imports nothing from
lightify and only the standard library at module level: torch must not be
imported before the environment (CUDA visibility, cuBLAS workspace) is set.

The record holds, in call order: the value of every scalar ``backward()``, the
learning rates and a parameter checksum after every optimizer step (and one of the
buffers, such as batch-norm statistics, of the modules it calls), a checksum
of every outermost module call made without grad (evaluation), and every
ReduceLROnPlateau metric. Each entry of ``losses``/``eval``/``monitor`` has a
twin in ``losses_at``/``eval_at``/``monitor_at``: the number of optimizer steps
done when it was recorded, so a comparison can tell which stream diverged first.

``epoch_boundaries_at`` lists, in order, the optimizer step counts at which a
training DataLoader (one whose batches fed an optimizer step) began a new pass:
the epoch boundaries the run crossed. ``children`` describes the Python
processes the script started that the harness did not follow (DataLoader
workers excepted): their training, if any, is not in the record.

Writes into the scratch folder are kept there: before a file is opened for
writing, a link on its path that leads into the user's folder is replaced by a
real file (or folder), so a script that overwrites ``model.pt`` overwrites its
own copy, never the user's.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import functools
import io
import itertools
import json
import math
import os
import platform
import random
import runpy
import shutil
import sys
import time
import traceback
import warnings
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

EXIT_SCRIPT_FAILED = 3
"""Exit code when the script raised or exited with a non-zero status."""

_TRAINER_MODULES = frozenset(
    {"lightning.pytorch.trainer.trainer", "pytorch_lightning.trainer.trainer"}
)


class StopRun(BaseException):
    """Ends the run after --max-steps optimizer steps.

    A BaseException, so that a script's ``except Exception`` cannot swallow it.
    """


class _SmallIds:
    """Small ids by first-seen order, for objects that come and go (optimizers, loaders).

    Weak, so that a script making a new optimizer every epoch does not keep the old
    ones alive; an ``id()`` reused by a new object gets a new small id.
    """

    def __init__(self) -> None:
        self._known: dict[int, tuple[weakref.ref[Any], int]] = {}
        self._count = 0

    def __call__(self, obj: Any) -> int:
        known = self._known.get(id(obj))
        if known is None or known[0]() is not obj:
            known = (weakref.ref(obj), self._count)
            self._known[id(obj)] = known
            self._count += 1
        return known[1]


class Recorder:
    """Collects the record in memory; hooks only append, the file is written once."""

    def __init__(
        self,
        seed: int,
        device: str,
        max_steps: int | None,
        stop_after_boundaries: int | None = None,
        progress: Path | None = None,
    ) -> None:
        self.seed = seed
        self.device = device
        self.max_steps = max_steps
        self.stop_after_boundaries = stop_after_boundaries
        self.progress = progress
        self.losses: list[float] = []
        self.losses_at: list[int] = []
        self.steps: list[dict[str, Any]] = []
        self.eval: list[float] = []
        self.eval_at: list[int] = []
        self.monitor: list[float] = []
        self.monitor_at: list[int] = []
        self.boundaries_at: list[int] = []
        self.children: list[str] = []
        self.warnings: list[str] = []
        self.used_cuda = False
        self.stopped_early = False
        self.exit_code = 0
        self.error: str | None = None
        self.torch: Any = None
        """The torch module, set once the environment allows importing it."""
        self._optimizer_ids = _SmallIds()
        self._loader_ids = _SmallIds()
        self._train_loaders: set[int] = set()
        self._fetching: int | None = None
        """The loader that gave the latest batch: the one an optimizer step trains on."""
        self._progress_written = 0.0
        self._module_depth = 0
        self._called: dict[int, Any] = {}  # modules called from outside any module, by id
        self._sanity_checks = 0

    # -- training side -------------------------------------------------------

    def on_backward(self, tensor: Any) -> None:
        """Records the loss; every scalar backward is one, in raw and Lightning code alike."""
        if tensor.numel() == 1:
            self.used_cuda = self.used_cuda or tensor.is_cuda
            self.losses.append(float(tensor.detach()))
            self.losses_at.append(len(self.steps))

    def on_optimizer_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        """Records lrs and a parameter checksum, then stops the run at --max-steps."""
        params = [p for group in optimizer.param_groups for p in group["params"]]
        with self.torch.no_grad():
            self.used_cuda = self.used_cuda or any(p.is_cuda for p in params)
            both = _float64_sums(self.torch, itertools.chain(params, (p.abs() for p in params)))
        sums, abs_sums = both[: len(params)], both[len(params) :]
        buffers = {id(b): b for m in self._called.values() for b in m.buffers()}
        with self.torch.no_grad():
            buffer_sums = _float64_sums(self.torch, buffers.values())
        self.steps.append(
            {
                "step": len(self.steps),
                "optimizer": self._optimizer_ids(optimizer),
                "lrs": [float(group["lr"]) for group in optimizer.param_groups],
                "param_sum": math.fsum(sums),
                "param_abs_sum": math.fsum(abs_sums),
                # batch-norm statistics and other buffers of the modules the script calls
                "buffer_sum": math.fsum(buffer_sums),
            }
        )
        if self._fetching is not None:
            self._train_loaders.add(self._fetching)
        self._write_progress()
        if self.max_steps is not None and len(self.steps) >= self.max_steps:
            raise StopRun
        if (
            self.stop_after_boundaries is not None
            and len(self.boundaries_at) >= self.stop_after_boundaries
        ):
            raise StopRun

    def _write_progress(self) -> None:
        """Tells the parent how far the run got, a few times a second at most."""
        now = time.monotonic()
        if self.progress is not None and now - self._progress_written >= 0.2:
            self.progress.write_text(str(len(self.steps)))
            self._progress_written = now

    def on_loader_iter(self, loader: Any, iterator: Any) -> None:
        """A new pass over a DataLoader; over a training loader, that is an epoch boundary."""
        loader_id = self._loader_ids(loader)
        with contextlib.suppress(AttributeError):  # an iterator class with __slots__
            iterator._lightify_loader = loader_id
        steps = len(self.steps)
        if loader_id in self._train_loaders and steps and steps not in self.boundaries_at[-1:]:
            self.boundaries_at.append(steps)

    def on_loader_next(self, iterator: Any) -> None:
        self._fetching = getattr(iterator, "_lightify_loader", None)

    def on_child(self, description: str) -> None:
        """A Python process the harness does not follow: its training goes unrecorded."""
        self.children.append(description)

    def on_plateau_step(self, metrics: Any) -> None:
        """Records the value a ReduceLROnPlateau decision is made on."""
        self.monitor.append(float(metrics))
        self.monitor_at.append(len(self.steps))

    # -- evaluation side -----------------------------------------------------

    def on_module_enter(self, module: Any, args: Any) -> None:
        if not self._module_depth:
            self._called.setdefault(id(module), module)
        self._module_depth += 1

    def on_module_exit(self, module: Any, args: Any, output: Any) -> None:
        """Records a checksum of outermost no-grad module calls: what evaluation computes."""
        self._module_depth -= 1
        if self._module_depth or self._sanity_checks or self.torch.is_grad_enabled():
            return
        tensors = _floating_tensors(self.torch, output)
        if tensors:  # empty too when forward raised (the hook runs with output None)
            self.eval.append(math.fsum(_float64_sums(self.torch, tensors)))
            self.eval_at.append(len(self.steps))

    def patch_trainer(self, module: ModuleType) -> None:
        """Keeps Lightning's sanity-check validation out of the eval records.

        The sanity check runs before training under ``isolate_rng()``; the raw script
        has no counterpart to it, so its forwards must not count.
        """
        trainer = getattr(module, "Trainer", None)
        original = getattr(trainer, "_run_sanity_check", None)
        if original is None:
            self.warnings.append(
                f"lightify harness: {module.__name__}.Trainer._run_sanity_check not found; "
                "sanity-check forwards may appear in the eval records"
            )
            return

        @functools.wraps(original)
        def run_sanity_check(trainer_self: Any, *args: Any, **kwargs: Any) -> Any:
            self._sanity_checks += 1
            try:
                return original(trainer_self, *args, **kwargs)
            finally:
                self._sanity_checks -= 1

        trainer._run_sanity_check = run_sanity_check

    def on_warning(self, message: Any) -> None:
        text = str(message)
        if "determinis" in text.lower() and text not in self.warnings:
            self.warnings.append(text)

    # -- output ----------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "seed": self.seed,
            "device_requested": self.device,
            "device_used": "cuda" if self.used_cuda else "cpu",
            "python": platform.python_version(),
            "torch": None if self.torch is None else str(self.torch.__version__),
            "lightning": _lightning_version(),
            "losses": self.losses,
            "losses_at": self.losses_at,
            "steps": self.steps,
            "eval": self.eval,
            "eval_at": self.eval_at,
            "monitor": self.monitor,
            "monitor_at": self.monitor_at,
            "epoch_boundaries_at": self.boundaries_at,
            "children": self.children,
            "stopped_early": self.stopped_early,
            "exit_code": self.exit_code,
            "error": self.error,
            "warnings": self.warnings,
        }


def _float64_sums(torch: Any, tensors: Iterable[Any]) -> list[float]:
    """Per-tensor float64 sums, fetched with a single device sync.

    ``tensors`` may be a generator, so that temporaries (``p.abs()``) live one at a time.
    """
    sums = [tensor.sum(dtype=torch.float64) for tensor in tensors]
    if not sums:
        return []
    device = sums[0].device
    return torch.stack([value.to(device) for value in sums]).tolist()


def _floating_tensors(torch: Any, value: Any) -> list[Any]:
    """The floating-point tensors in a module output, looking into tuples, lists and dicts."""
    if isinstance(value, torch.Tensor):
        return [value.detach()] if value.is_floating_point() else []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _floating_tensors(torch, item)]
    return []


def _lightning_version() -> str | None:
    """The version of whichever Lightning the script imported; never imports it."""
    for name in ("lightning", "pytorch_lightning"):
        module = sys.modules.get(name)
        if module is not None:
            return str(getattr(module, "__version__", "unknown"))
    return None


class _PatchingLoader:
    """Delegates to the real loader and runs a callback once the module has executed."""

    def __init__(self, loader: Any, callback: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._callback = callback

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        module.__loader__ = self._loader  # hide the wrapper from everything that follows
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._callback(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _TrainerImportHook:
    """A sys.meta_path finder that patches Lightning's Trainer module when the script imports it.

    The harness never imports Lightning itself: that would cost seconds and change
    what the script sees.
    """

    def __init__(self, callback: Callable[[ModuleType], None]) -> None:
        self._callback = callback

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in _TRAINER_MODULES:
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader, self._callback)
                return spec
        return None


def _install(recorder: Recorder, root: Path) -> None:
    """Seeds every RNG, makes torch deterministic and installs the recording hooks."""
    import torch
    from torch.nn.modules.module import (
        register_module_forward_hook,
        register_module_forward_pre_hook,
    )
    from torch.optim.lr_scheduler import ReduceLROnPlateau
    from torch.optim.optimizer import register_optimizer_step_post_hook

    recorder.torch = torch
    random.seed(recorder.seed)
    try:
        import numpy
    except ImportError:
        pass
    else:
        numpy.random.seed(recorder.seed)
    torch.manual_seed(recorder.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    backward = torch.Tensor.backward

    @functools.wraps(backward)
    def recording_backward(self: Any, *args: Any, **kwargs: Any) -> Any:
        recorder.on_backward(self)
        return backward(self, *args, **kwargs)

    torch.Tensor.backward = recording_backward

    plateau_step = ReduceLROnPlateau.step

    @functools.wraps(plateau_step)
    def recording_plateau_step(self: Any, metrics: Any, *args: Any, **kwargs: Any) -> Any:
        recorder.on_plateau_step(metrics)
        return plateau_step(self, metrics, *args, **kwargs)

    ReduceLROnPlateau.step = recording_plateau_step

    register_optimizer_step_post_hook(recorder.on_optimizer_step)
    register_module_forward_pre_hook(recorder.on_module_enter)
    # always_call: a forward that raises must still leave the nesting depth balanced.
    register_module_forward_hook(recorder.on_module_exit, always_call=True)

    for name in _TRAINER_MODULES & sys.modules.keys():
        recorder.patch_trainer(sys.modules[name])
    sys.meta_path.insert(0, _TrainerImportHook(recorder.patch_trainer))
    _watch_loaders(recorder)
    _watch_children(recorder)
    _keep_writes_in(root, torch)


def _watch_loaders(recorder: Recorder) -> None:
    """Tells the recorder when a DataLoader pass starts and which loader gave each batch."""
    from torch.utils.data import DataLoader
    from torch.utils.data.dataloader import _BaseDataLoaderIter

    loader_iter = DataLoader.__iter__

    @functools.wraps(loader_iter)
    def recording_iter(self: Any) -> Any:
        iterator = loader_iter(self)
        recorder.on_loader_iter(self, iterator)
        return iterator

    DataLoader.__iter__ = recording_iter

    loader_next = _BaseDataLoaderIter.__next__

    @functools.wraps(loader_next)
    def recording_next(self: Any) -> Any:
        recorder.on_loader_next(self)
        return loader_next(self)

    _BaseDataLoaderIter.__next__ = recording_next


def _watch_children(recorder: Recorder) -> None:
    """Notes every Python process the script starts, except DataLoader workers.

    The harness does not follow them, so the report must not claim their training
    was compared.
    """
    import multiprocessing.process
    import subprocess

    start = multiprocessing.process.BaseProcess.start

    @functools.wraps(start)
    def noting_start(self: Any) -> None:
        target = getattr(self, "_target", None)
        if not (getattr(target, "__module__", None) or "").startswith("torch.utils.data"):
            recorder.on_child(f"multiprocessing: {getattr(target, '__qualname__', target)!s}")
        start(self)

    multiprocessing.process.BaseProcess.start = noting_start

    popen_init = subprocess.Popen.__init__

    @functools.wraps(popen_init)
    def noting_init(self: Any, args: Any, *rest: Any, **kwargs: Any) -> None:
        command = _command_words(args)
        if command and _is_python(command[0]):
            recorder.on_child(f"subprocess: {' '.join(command)}")
        popen_init(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = noting_init


def _command_words(args: Any) -> list[str]:
    if isinstance(args, (str, bytes, os.PathLike)):
        return os.fsdecode(args).split()
    return [os.fsdecode(arg) if isinstance(arg, (bytes, os.PathLike)) else str(arg) for arg in args]


def _is_python(program: str) -> bool:
    name = os.path.basename(program)
    return name.startswith("python") or name == "torchrun" or program == sys.executable


def _keep_writes_in(root: Path, torch: Any) -> None:
    """Makes writes below ``root`` land in ``root``, never in the user's folder.

    The scratch folder links the user's files; opening such a link for writing
    would overwrite the user's file, so the link is first replaced by a real one.
    That covers writes through ``open`` and ``torch.save`` (which writes a path
    from C++); other native writers are not covered.
    """
    real_open = io.open

    @functools.wraps(real_open)
    def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(c in mode for c in "wax+"):
            _own(root, file, keep="a" in mode or "+" in mode)
        return real_open(file, mode, *args, **kwargs)

    builtins.open = io.open = open_

    save = torch.save

    @functools.wraps(save)
    def save_(obj: Any, f: Any, *args: Any, **kwargs: Any) -> Any:
        _own(root, f, keep=False)
        return save(obj, f, *args, **kwargs)

    torch.save = torch.serialization.save = save_


def _own(root: Path, file: Any, keep: bool) -> None:
    """Replaces the links on the way to ``file`` that lead out of ``root`` by real ones.

    A linked folder becomes a real folder of links to its entries; a linked file is
    removed, or copied when ``keep`` (appending, updating) needs its content.
    ``file`` may also be a file object or descriptor: those are left alone.
    """
    if not isinstance(file, (str, bytes, os.PathLike)):
        return
    path = Path(os.path.abspath(os.fsdecode(file)))
    if not path.is_relative_to(root):
        return
    current = root
    for part in path.relative_to(root).parts[:-1]:
        current /= part
        if _links_out(current, root) and current.is_dir():
            linked = current.resolve()
            current.unlink()
            current.mkdir()
            for entry in linked.iterdir():
                (current / entry.name).symlink_to(entry)
    if _links_out(path, root):
        linked = path.resolve()
        path.unlink()
        if keep and linked.is_file():
            shutil.copy2(linked, path)


def _links_out(path: Path, root: Path) -> bool:
    return path.is_symlink() and not path.resolve().is_relative_to(root)


def _capture_warnings(recorder: Recorder) -> None:
    """Copies determinism warnings into the record and still shows them as usual."""
    show = warnings.showwarning

    @functools.wraps(show)
    def showwarning(message: Any, *args: Any, **kwargs: Any) -> None:
        recorder.on_warning(message)
        show(message, *args, **kwargs)

    warnings.showwarning = showwarning


def _run_script(recorder: Recorder, script: Path, args: list[str]) -> None:
    """Runs the script as __main__, turning every way it can end into the record."""
    sys.argv = [str(script), *args]
    sys.path[0] = str(script.parent)  # as `python script.py` would; also hides this folder
    try:
        _install(recorder, Path.cwd())
        runpy.run_path(str(script), run_name="__main__")
    except StopRun:
        recorder.stopped_early = True
    except SystemExit as exit_:
        if exit_.code is None or exit_.code == 0:
            return
        recorder.exit_code = exit_.code if isinstance(exit_.code, int) else 1
        recorder.error = f"SystemExit: {exit_.code}"
        print(recorder.error, file=sys.stderr)
    except BaseException:
        recorder.exit_code = EXIT_SCRIPT_FAILED
        recorder.error = traceback.format_exc()
        traceback.print_exc()


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the record (JSON)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=None, help="stop after N optimizer steps")
    parser.add_argument(
        "--stop-after-boundaries",
        type=int,
        default=None,
        metavar="K",
        help="stop at the first optimizer step after K epoch boundaries",
    )
    parser.add_argument(
        "--progress", type=Path, default=None, help="keep the step count in this file"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("script", type=Path)
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Runs the script under the recorder; 0 on success, 3 when the script failed."""
    options = _parse_args(sys.argv[1:] if argv is None else argv)
    out = options.out.resolve()  # before the script can chdir
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    if options.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    recorder = Recorder(
        options.seed,
        options.device,
        options.max_steps,
        options.stop_after_boundaries,
        None if options.progress is None else options.progress.resolve(),
    )
    _capture_warnings(recorder)
    try:
        _run_script(recorder, options.script.resolve(), options.args)
    finally:
        partial = out.with_name(out.name + ".partial")
        partial.write_text(json.dumps(recorder.as_dict()))
        partial.replace(out)
    return 0 if recorder.exit_code == 0 else EXIT_SCRIPT_FAILED


if __name__ == "__main__":
    sys.exit(main())
