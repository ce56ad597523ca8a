"""LFY006: `mp.spawn` + gloo DDP boilerplate → `Trainer(strategy="ddp", devices=N)`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Kind
from lightify.analyze.nodes import call_of, code, dotted_name, method_call, names_in, only_small
from lightify.analyze.usage import first_use
from lightify.emit import _free_names
from lightify.rule import Example

CODE = "LFY006"
SUMMARY = 'mp.spawn + DDP + DistributedSampler → Trainer(strategy="ddp", devices=N)'
ORDER = 65  # build order: after device_moves (60) chose the accelerator, before precision (70)

SPAWN = frozenset({"torch.multiprocessing.spawn"})
INIT = frozenset({"torch.distributed.init_process_group"})
DESTROY = frozenset({"torch.distributed.destroy_process_group"})
DDP = frozenset(
    {
        "torch.nn.parallel.DistributedDataParallel",
        "torch.nn.parallel.distributed.DistributedDataParallel",
    }
)
DATA_PARALLEL = frozenset({"torch.nn.DataParallel", "torch.nn.parallel.DataParallel"})
SAMPLER = frozenset(
    {"torch.utils.data.distributed.DistributedSampler", "torch.utils.data.DistributedSampler"}
)
APIS = SPAWN | INIT | DESTROY | DDP | DATA_PARALLEL | SAMPLER
LOCALHOST = ('"127.0.0.1"', '"localhost"', "'127.0.0.1'", "'localhost'")

DOC = """\
## What it does
Converts a DDP script launched with `mp.spawn(worker, args=(...), nprocs=N)`
on gloo (CPU processes): the process-group setup and teardown, the
`DistributedDataParallel` wrapper and the `DistributedSampler` go, the worker
loses its `rank` parameter and is called directly, and the Trainer gets
`strategy="ddp", accelerator="cpu", devices=N`. `if rank == 0:` after the loop
becomes `if trainer.is_global_zero:`.

## Why
Lightning is the distributed engine: it starts the N processes (re-running the
script with `LOCAL_RANK` set), creates the process group, wraps the
LightningModule in DDP with the default arguments, gives the training loader a
`DistributedSampler(shuffle=..., seed=0)` and calls its `set_epoch(current_epoch)`
every epoch. With the script's sampler left at its defaults and `set_epoch(epoch)`
over `range(n)`, every process sees the same shards in the same order, and the
gradient all-reduce is the same, so both scripts train the same parameters.

## Example
```python
def main_worker(rank, world_size):
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank)
    loader = DataLoader(dataset, batch_size=16, sampler=sampler)
    ddp_model = DDP(model)
    ...
mp.spawn(main_worker, args=(world_size,), nprocs=world_size)
```

## Use instead
```python
def main_worker(world_size):
    loader = DataLoader(dataset, batch_size=16, shuffle=True)
    trainer = L.Trainer(max_epochs=..., strategy="ddp", accelerator="cpu", devices=world_size)
    ...
main_worker(world_size)
```

## Fix safety
Exact for the form above. Left as it is, with this finding: nn.DataParallel
(Lightning 2 has no DP strategy), torchrun or cluster launchers (no `mp.spawn`),
nccl/CUDA workers, multi-node or custom rendezvous (`init_method`, a remote
`MASTER_ADDR`), DDP arguments (`find_unused_parameters`, `bucket_cap_mb`, …),
sampler arguments Lightning's sampler does not share (`drop_last`, `seed`),
a shuffled sampler without `set_epoch(epoch)`, collectives called by hand
(`dist.all_reduce`, `dist.barrier`, …), evaluation passes (Lightning shards the
evaluation loader too) and any other use of the rank.
"""


@dataclass(frozen=True)
class Setup:
    """The pieces of a spawn-launched DDP worker, and what each becomes."""

    worker: cst.FunctionDef
    params: cst.Parameters  # the worker's parameters without the rank
    launch: cst.BaseStatement
    call: cst.BaseStatement  # the direct call replacing mp.spawn
    devices: cst.BaseExpression
    removed: tuple[cst.BaseStatement, ...]
    loader: cst.BaseStatement | None
    new_loader: cst.BaseStatement | None
    set_epoch: cst.BaseStatement | None
    wrapper: str | None  # the DDP-wrapped name, renamed to the bare model in moved code
    wrapped: str | None
    guards: tuple[cst.If, ...]  # ``if rank == 0:`` after the loop


def _decline(message: str, node: cst.CSTNode) -> Decline:
    return Decline(CODE, message + "; the loop is left as it is", node)


def check(lowering) -> None:
    setup = find_setup(lowering)
    if setup is None or setup.wrapper is None or setup.wrapper == setup.wrapped:
        return
    plan = lowering.plan
    plan.modules[:] = [setup.wrapped if m == setup.wrapper else m for m in plan.modules]
    callee = lowering.program.bindings[setup.wrapped].callee
    if callee and "." not in callee:
        plan.class_name = f"Lit{callee}"


def transform(statement: cst.BaseStatement, lowering) -> cst.BaseStatement:
    """Moved code calls the bare model: Lightning wraps the LightningModule in DDP itself."""
    setup = find_setup(lowering)
    if setup is None or setup.wrapper is None or setup.wrapper == setup.wrapped:
        return statement
    return statement.visit(_Rename(setup.wrapper, setup.wrapped))


def build(lowering) -> None:
    setup = find_setup(lowering)
    if setup is None:
        return
    plan = lowering.plan
    plan.removed.update(setup.removed)
    plan.replaced[setup.launch] = setup.call
    plan.signatures[setup.worker] = setup.params
    body = setup.worker.body.body
    first = next((s for s in body if s not in setup.removed), None)
    if first is not None and first is not body[0] and first not in plan.replaced:
        # the setup it followed is gone: the body starts here, without a blank line
        lines = [line for line in first.leading_lines if line.comment]
        plan.replaced[first] = first.with_changes(leading_lines=lines)
    if setup.loader is not None and setup.new_loader is not None:
        plan.replaced[setup.loader] = setup.new_loader
    if setup.set_epoch is not None:
        lowering.claimed.add(setup.set_epoch)
    trainer = _free_names(lowering.program, "trainer")["trainer"]
    for guard in setup.guards:
        plan.replaced[guard] = guard.with_changes(
            test=cst.parse_expression(f"{trainer}.is_global_zero")
        )
    kwargs = plan.trainer_kwargs
    kwargs.pop("accelerator", None)
    kwargs.pop("devices", None)
    kwargs["strategy"] = cst.SimpleString('"ddp"')
    kwargs["accelerator"] = cst.SimpleString('"cpu"')
    kwargs["devices"] = setup.devices
    lowering.note(
        CODE,
        'mp.spawn, DDP and DistributedSampler are replaced by Trainer(strategy="ddp", devices=…)',
        setup.launch,
    )


@lru_cache(maxsize=1)
def find_setup(lowering) -> Setup | None:
    """The spawn-launched DDP worker, None for a script without distributed code; or Decline.

    Cached for the one conversion in progress: ``transform`` asks once per moved statement.
    """
    return _find(lowering) if first_use(lowering.index, APIS) is not None else None


def _find(lowering) -> Setup:
    index, program = lowering.index, lowering.program
    qualify = index.imports.qualify
    _decline_unsupported(index)
    spawns = index.uses(SPAWN)
    if not spawns:
        raise _decline(
            "distributed training without `mp.spawn` (torchrun or a cluster launcher starts the "
            "processes, the rank comes from the environment): lightify converts the "
            "`mp.spawn(worker, nprocs=N)` form only",
            first_use(index, APIS),
        )
    launch = _statement_of(index, spawns[0])
    spawn = call_of(launch) if launch is not None else None
    worker = program.owner
    if len(spawns) > 1 or spawn is None or not isinstance(worker, cst.FunctionDef):
        raise _decline(
            "`mp.spawn` must be one statement `mp.spawn(worker, args=(...), nprocs=N)` whose "
            "worker holds the training loop",
            spawns[0],
        )
    evaluation = program.validation or program.test
    if evaluation is not None:
        raise _decline(
            "the DDP worker evaluates: Lightning would give every process a DistributedSampler "
            "share of the evaluation loader, where each process of the script evaluates it all",
            evaluation.loop,
        )
    params, call, devices = _launch(spawn, worker, launch)
    rank = worker.params.params[0].name.value
    backend = None
    removed: list[cst.BaseStatement] = []
    for statement in program.block:
        found = call_of(statement)
        qual = qualify(found.func) if found is not None else None
        if qual in INIT:
            backend = _backend(found, statement)
            removed.append(statement)
        elif qual in DESTROY or _sets_master(statement):
            removed.append(statement)
    if backend is None:
        raise _decline(
            "the worker does not call `dist.init_process_group(...)` itself", worker.name
        )
    sampler = _sampler(lowering, rank)
    wrapper = _wrapper(lowering)
    loader = new_loader = set_epoch = None
    if sampler is not None:
        removed.append(sampler[0])
        loader, new_loader, set_epoch = sampler[1:]
    if wrapper is not None:
        removed.append(program.bindings[wrapper[0]].line)
    guards = _rank_guards(lowering, rank)
    consumed = [*removed, *guards, *([loader] if loader is not None else [])]
    _check_rank_uses(worker, rank, consumed)
    _check_distributed_uses(index, [*removed, launch])
    return Setup(
        worker=worker,
        params=params,
        launch=launch,
        call=call,
        devices=devices,
        removed=tuple(removed),
        loader=loader,
        new_loader=new_loader,
        set_epoch=set_epoch,
        wrapper=wrapper[0] if wrapper else None,
        wrapped=wrapper[1] if wrapper else None,
        guards=tuple(guards),
    )


def _decline_unsupported(index) -> None:
    found = first_use(index, DATA_PARALLEL)
    if found is not None:
        raise _decline(
            "nn.DataParallel splits every batch across the GPUs of one process; Lightning 2 has "
            "no DataParallel strategy and DDP's per-process batches train differently",
            found,
        )
    for node in index.references:
        qual = index.imports.qualify(node) or ""
        if qual.startswith("torch.distributed.") and qual.rsplit(".", 1)[1] in _COLLECTIVES:
            raise _decline(
                f"`{code(node)}` is a collective called by hand: it needs the script's process "
                "group in the loop, and `self.log(..., sync_dist=True)` averages where it sums",
                node,
            )


_COLLECTIVES = frozenset(
    {
        "all_reduce", "all_gather", "all_gather_object", "all_to_all", "barrier", "broadcast",
        "broadcast_object_list", "gather", "gather_object", "reduce", "reduce_scatter", "scatter",
        "monitored_barrier", "send", "recv", "isend", "irecv",
    }
)  # fmt: skip


def _statement_of(index, node: cst.CSTNode) -> cst.BaseStatement | None:
    for parent in index.ancestors(node):
        if isinstance(parent, cst.SimpleStatementLine):
            return parent
    return None


def _launch(
    spawn: cst.Call, worker: cst.FunctionDef, launch: cst.BaseStatement
) -> tuple[cst.Parameters, cst.BaseStatement, cst.BaseExpression]:
    """The worker's parameters without the rank, the direct call, and the number of devices."""
    if not spawn.args or dotted_name(spawn.args[0].value) != worker.name.value:
        raise _decline("`mp.spawn` does not start the function that trains", spawn)
    kwargs = {arg.keyword.value: arg.value for arg in spawn.args[1:] if arg.keyword}
    positional = [arg for arg in spawn.args[1:] if arg.keyword is None]
    join = kwargs.pop("join", cst.Name("True"))
    kwargs.pop("start_method", None)
    kwargs.pop("daemon", None)
    passed = kwargs.pop("args", cst.Tuple([]))
    nprocs = kwargs.pop("nprocs", None)
    if positional or kwargs or nprocs is None or code(join) != "True":
        raise _decline(
            "lightify converts `mp.spawn(worker, args=(...), nprocs=N)` with keywords "
            "(join=True); this call passes other arguments",
            spawn,
        )
    if not isinstance(passed, cst.Tuple) or any(
        isinstance(e, cst.StarredElement) for e in passed.elements
    ):
        raise _decline("`mp.spawn(args=...)` must be a tuple written out", passed)
    values = [e.value for e in passed.elements]
    p = worker.params
    if p.posonly_params or p.kwonly_params or p.star_kwarg or isinstance(p.star_arg, cst.Param):
        raise _decline("the worker's parameters must be plain positional ones", worker.name)
    if len(p.params) != len(values) + 1 or any(x.default for x in p.params):
        raise _decline(
            "`mp.spawn` passes the rank and `args` to the worker; its parameters do not match",
            worker.name,
        )
    devices: cst.BaseExpression | None = None
    for param, value in zip(p.params[1:], values, strict=True):
        if value.deep_equals(nprocs):
            devices = cst.Name(param.name.value)
    if devices is None and isinstance(nprocs, cst.Integer):
        devices = nprocs
    if devices is None:
        raise _decline(
            f"`nprocs={code(nprocs)}` is not one of the worker's arguments, so the Trainer built "
            "inside the worker cannot name its number of devices",
            spawn,
        )
    rest = list(p.params[1:])
    if rest:
        rest[-1] = rest[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    direct = cst.Call(spawn.args[0].value, [cst.Arg(v) for v in values])
    small = only_small(launch)
    call = launch.with_changes(body=[small.with_changes(value=direct)])
    return p.with_changes(params=rest), call, devices


def _backend(call: cst.Call, statement: cst.BaseStatement) -> str:
    backend = None
    for i, arg in enumerate(call.args):
        name = arg.keyword.value if arg.keyword else ("backend" if i == 0 else None)
        if name == "backend":
            backend = arg.value
        elif name == "init_method" and not _local_init(arg.value):
            raise _decline(
                f"`init_method={code(arg.value)}` is a custom rendezvous; Lightning runs its own "
                "on this machine",
                arg,
            )
        elif name not in {"rank", "world_size", "init_method"}:
            raise _decline(
                "`init_process_group` takes arguments Lightning's process group would not have",
                arg,
            )
    if not isinstance(backend, cst.SimpleString) or backend.evaluated_value != "gloo":
        raise _decline(
            "only the gloo backend (CPU processes) is converted; nccl workers choose a GPU by "
            "rank, which lightify does not map to Lightning's devices yet",
            statement,
        )
    return "gloo"


def _local_init(value: cst.BaseExpression) -> bool:
    if not isinstance(value, cst.SimpleString):
        return False
    text = str(value.evaluated_value)
    return text == "env://" or text.startswith(("tcp://127.0.0.1:", "tcp://localhost:"))


def _sets_master(statement: cst.BaseStatement) -> bool:
    """``os.environ["MASTER_ADDR"/"MASTER_PORT"] = ...`` (on this machine): Lightning sets both."""
    small = only_small(statement)
    if not isinstance(small, cst.Assign) or len(small.targets) != 1:
        return False
    target = small.targets[0].target
    if not (isinstance(target, cst.Subscript) and dotted_name(target.value) == "os.environ"):
        return False
    key = code(target.slice[0].slice) if len(target.slice) == 1 else ""
    if key.strip("'\"") == "MASTER_ADDR" and code(small.value) not in LOCALHOST:
        raise _decline(
            f"MASTER_ADDR={code(small.value)} is another machine (multi-node); lightify converts "
            "single-node scripts",
            statement,
        )
    return key.strip("'\"") in {"MASTER_ADDR", "MASTER_PORT"}


def _sampler(lowering, rank: str):
    """(sampler line, loader line, new loader line, set_epoch statement) or None."""
    program = lowering.program
    found = [b for b in program.bindings.values() if b.callee in SAMPLER]
    if not found:
        return None
    sampler = found[0]
    value = sampler.value
    shuffle = True
    for arg in value.args[1:] if isinstance(value, cst.Call) else ():
        key = arg.keyword.value if arg.keyword else None
        literal = code(arg.value)
        if key in {"num_replicas", "rank"}:
            continue
        if key == "shuffle" and literal in {"True", "False"}:
            shuffle = literal == "True"
        elif not (
            (key == "seed" and literal == "0") or (key == "drop_last" and literal == "False")
        ):
            raise _decline(
                f"`DistributedSampler(..., {code(arg).rstrip(', ')})`: Lightning's own sampler "
                "takes only shuffle (seed 0, no drop_last), and keeping this one needs the rank "
                "before the Trainer exists",
                arg,
            )
    loaders = [
        b
        for b in program.bindings.values()
        if b.kind is Kind.LOADER and sampler.name in names_in(b.value)
    ]
    if len(loaders) != 1 or program.train.loader != loaders[0].name:
        raise _decline(
            "the DistributedSampler must feed the training DataLoader only", sampler.line
        )
    loader = loaders[0]
    call = loader.value
    args = list(call.args)
    at = [i for i, a in enumerate(args) if a.keyword and a.keyword.value == "sampler"]
    dataset = args[0].value if args and args[0].keyword is None else None
    if not at or dotted_name(args[at[0]].value) != sampler.name or dataset is None:
        raise _decline("the DataLoader must take `sampler=<the DistributedSampler>`", loader.line)
    if not dataset.deep_equals(value.args[0].value):
        raise _decline("the sampler and its DataLoader read different datasets", sampler.line)
    if shuffle:
        args[at[0]] = args[at[0]].with_changes(keyword=cst.Name("shuffle"), value=cst.Name("True"))
    else:
        del args[at[0]]
        if at[0] == len(args):  # it was the last argument: no comma left dangling
            args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    new_loader = loader.line.visit(_ReplaceNode(call, call.with_changes(args=args)))
    set_epoch = _set_epoch(lowering, sampler.name, shuffle)
    return sampler.line, loader.line, new_loader, set_epoch


def _set_epoch(lowering, sampler: str, shuffle: bool) -> cst.BaseStatement | None:
    program = lowering.program
    found = None
    for statement in program.passes_in_loop:
        if sampler not in names_in(statement):
            continue
        call = method_call(statement)
        epoch = program.epoch
        if (
            call is None
            or call[:2] != (sampler, "set_epoch")
            or len(call[2].args) != 1
            or code(call[2].args[0].value) != epoch.epoch_var
            or (epoch.start is not None and code(epoch.start) != "0")
        ):
            raise _decline(
                "Lightning calls `set_epoch(current_epoch)` counting from 0 at the start of each "
                "epoch; this use of the sampler is not that call",
                statement,
            )
        found = statement
    if found is None and shuffle:
        raise _decline(
            "the shuffled DistributedSampler never gets `set_epoch(epoch)`, so the script "
            "repeats one order every epoch; Lightning calls set_epoch and would reshuffle",
            program.epoch.node,
        )
    return found


def _wrapper(lowering) -> tuple[str, str] | None:
    """(wrapper name, wrapped model name) of ``ddp_model = DDP(model)``."""
    program = lowering.program
    found = [b for b in program.bindings.values() if b.callee in DDP]
    if not found:
        return None
    binding = found[0]
    value = binding.value
    inner = value.args[0].value if isinstance(value, cst.Call) and value.args else None
    wrapped = program.bindings.get(dotted_name(inner) or "")
    if wrapped is None or wrapped.kind is not Kind.MODULE or binding.name == wrapped.name:
        raise _decline(
            "the DDP wrapper must be a new name for a model built in the worker "
            "(`ddp_model = DDP(model)`)",
            binding.line,
        )
    for arg in value.args[1:]:
        raise _decline(
            f"`DDP(..., {code(arg).rstrip(', ')})`: lightify does not carry DDP arguments into "
            "Lightning's DDPStrategy yet",
            arg,
        )
    return binding.name, wrapped.name


def _rank_guards(lowering, rank: str) -> list[cst.If]:
    """``if rank == 0:`` statements after the epoch loop."""
    program = lowering.program
    after = program.block[program.block.index(program.epoch.node) + 1 :]
    guards = []
    for statement in after:
        if (
            isinstance(statement, cst.If)
            and statement.orelse is None
            and code(statement.test) in {f"{rank} == 0", f"0 == {rank}"}
            and rank not in names_in(statement.body)
        ):
            guards.append(statement)
    return guards


def _check_rank_uses(worker: cst.FunctionDef, rank: str, consumed: list) -> None:
    """The rank exists only in processes the script started; other uses have no equivalent."""
    for statement in worker.body.body:
        if statement in consumed or rank not in names_in(statement):
            continue
        raise _decline(
            f"the worker reads its rank `{rank}` here; lightify converts `if {rank} == 0:` after "
            "the loop (→ trainer.is_global_zero) and the DistributedSampler/DDP arguments only",
            statement,
        )


def _check_distributed_uses(index, consumed: list[cst.BaseStatement]) -> None:
    for node in index.references:
        qual = index.imports.qualify(node) or ""
        if not qual.startswith("torch.distributed.") or qual in INIT | DESTROY:
            continue
        if not any(_inside(index, node, statement) for statement in consumed):
            raise _decline(
                f"`{code(node)}` needs the script's own process group, which Lightning creates "
                "inside fit",
                node,
            )


def _inside(index, node: cst.CSTNode, statement: cst.CSTNode) -> bool:
    return node is statement or any(parent is statement for parent in index.ancestors(node))


class _Rename(cst.CSTTransformer):
    def __init__(self, old: str, new: str) -> None:
        self.old = old
        self.new = new

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        return (
            updated_node.with_changes(value=self.new)
            if updated_node.value == self.old
            else updated_node
        )

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute):
        return updated_node.with_changes(attr=original_node.attr)  # only names, never attributes


class _ReplaceNode(cst.CSTTransformer):
    def __init__(self, old: cst.CSTNode, new: cst.CSTNode) -> None:
        self.old = old
        self.new = new

    def on_leave(self, original_node, updated_node):
        return self.new if original_node is self.old else updated_node


EXAMPLES = [
    Example(
        before="""\
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


def worker(rank, world_size):
    dist.init_process_group(
        "gloo", init_method="tcp://localhost:29500", rank=rank, world_size=world_size
    )
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=False)
    loader = DataLoader(data, batch_size=16, sampler=sampler)
    model = nn.Linear(4, 2)
    ddp_model = DDP(model)
    optimizer = torch.optim.SGD(ddp_model.parameters(), lr=0.1)
    for epoch in range(2):
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(ddp_model(x), y)
            loss.backward()
            optimizer.step()
    if rank == 0:
        torch.save(model.state_dict(), "linear.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    mp.spawn(worker, args=(2,), nprocs=2)
""",
        after="""\
import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class LitModel(L.LightningModule):
    def __init__(self, model):
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return optimizer


def worker(world_size):
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    loader = DataLoader(data, batch_size=16)
    model = nn.Linear(4, 2)
    trainer = L.Trainer(
        max_epochs=2,
        strategy="ddp",
        accelerator="cpu",
        devices=world_size,
    )
    trainer.fit(LitModel(model), loader)
    if trainer.is_global_zero:
        torch.save(model.state_dict(), "linear.pt")


if __name__ == "__main__":
    worker(2)
""",
        codes=("LFY006", "LFY400"),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

loader = DataLoader(TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,))), batch_size=16)
model = nn.DataParallel(nn.Linear(4, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
""",
        after=None,
        codes=("LFY006",),
    ),
    Example(
        before="""\
import os

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

local_rank = int(os.environ["LOCAL_RANK"])
dist.init_process_group("gloo")
data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
sampler = DistributedSampler(data)
loader = DataLoader(data, batch_size=16, sampler=sampler)
model = DDP(nn.Linear(4, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    sampler.set_epoch(epoch)
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
dist.destroy_process_group()
""",
        after=None,
        codes=("LFY006",),
    ),
    Example(
        before="""\
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


def worker(rank, world_size):
    dist.init_process_group(
        "gloo", init_method="tcp://localhost:29500", rank=rank, world_size=world_size
    )
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=False)
    loader = DataLoader(data, batch_size=16, sampler=sampler)
    model = nn.Linear(4, 2)
    ddp_model = DDP(model)
    optimizer = torch.optim.SGD(ddp_model.parameters(), lr=0.1)
    for epoch in range(2):
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(ddp_model(x), y)
            loss.backward()
            optimizer.step()
            dist.all_reduce(loss)
    if rank == 0:
        torch.save(model.state_dict(), "linear.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    mp.spawn(worker, args=(2,), nprocs=2)
""",
        after=None,
        codes=("LFY006",),
    ),
    Example(
        before="""\
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


def worker(rank, world_size):
    dist.init_process_group(
        "gloo", init_method="tcp://localhost:29500", rank=rank, world_size=world_size
    )
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=False)
    loader = DataLoader(data, batch_size=16, sampler=sampler)
    model = nn.Linear(4, 2)
    ddp_model = DDP(model, find_unused_parameters=True)
    optimizer = torch.optim.SGD(ddp_model.parameters(), lr=0.1)
    for epoch in range(2):
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(ddp_model(x), y)
            loss.backward()
            optimizer.step()
    if rank == 0:
        torch.save(model.state_dict(), "linear.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    mp.spawn(worker, args=(2,), nprocs=2)
""",
        after=None,
        codes=("LFY006",),
    ),
    Example(
        before="""\
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


def worker(rank, world_size):
    dist.init_process_group(
        "gloo", init_method="tcp://localhost:29500", rank=rank, world_size=world_size
    )
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, drop_last=True)
    loader = DataLoader(data, batch_size=16, sampler=sampler)
    model = nn.Linear(4, 2)
    ddp_model = DDP(model)
    optimizer = torch.optim.SGD(ddp_model.parameters(), lr=0.1)
    for epoch in range(2):
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(ddp_model(x), y)
            loss.backward()
            optimizer.step()
    if rank == 0:
        torch.save(model.state_dict(), "linear.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    mp.spawn(worker, args=(2,), nprocs=2)
""",
        after=None,
        codes=("LFY006",),
    ),
    Example(
        before="""\
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


def worker(rank, world_size):
    dist.init_process_group(
        "gloo", init_method="tcp://localhost:29500", rank=rank, world_size=world_size
    )
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    sampler = DistributedSampler(data, num_replicas=world_size, rank=rank)
    loader = DataLoader(data, batch_size=16, sampler=sampler)
    model = nn.Linear(4, 2)
    ddp_model = DDP(model)
    optimizer = torch.optim.SGD(ddp_model.parameters(), lr=0.1)
    for epoch in range(2):
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(ddp_model(x), y)
            loss.backward()
            optimizer.step()
    if rank == 0:
        torch.save(model.state_dict(), "linear.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    mp.spawn(worker, args=(2,), nprocs=2)
""",
        after=None,
        codes=("LFY006",),
    ),
    Example(
        before="""\
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


def worker(rank, world_size):
    dist.init_process_group(
        "gloo", init_method="tcp://localhost:29500", rank=rank, world_size=world_size
    )
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=False)
    loader = DataLoader(data, batch_size=16, sampler=sampler)
    model = nn.Linear(4, 2)
    ddp_model = DDP(model)
    optimizer = torch.optim.SGD(ddp_model.parameters(), lr=0.1)
    for epoch in range(2):
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(ddp_model(x), y)
            loss.backward()
            optimizer.step()
            if rank == 0:
                print(loss.item())
    if rank == 0:
        torch.save(model.state_dict(), "linear.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    mp.spawn(worker, args=(2,), nprocs=2)
""",
        after=None,
        codes=("LFY006",),
    ),
]
