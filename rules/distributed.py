"""LFY006: `mp.spawn` + gloo DDP boilerplate → `Trainer(strategy="ddp", devices=N)`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Kind
from lightify.analyze.nodes import (
    call_of,
    code,
    dotted_name,
    method_call,
    names_in,
    only_small,
    result_names,
    short,
    walk,
)
from lightify.analyze.usage import first_use
from lightify.emit import free_names
from lightify.rule import Example

CODE = "LFY006"
SUMMARY = 'mp.spawn or torchrun DDP + DistributedSampler → Trainer(strategy="ddp", devices=…)'
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
GROUP_CALLS = {
    "torch.distributed.get_rank": "rank",
    "torch.distributed.get_world_size": "world_size",
}
ENVIRONMENT = {"RANK": "rank", "LOCAL_RANK": "local_rank", "WORLD_SIZE": "world_size"}
ENVIRONMENT_OF = {kind: key for key, kind in ENVIRONMENT.items()}
SAMPLER_ROLES = {"num_replicas": "world_size", "rank": "rank"}
LOCALHOST = ('"127.0.0.1"', '"localhost"', "'127.0.0.1'", "'localhost'")

DOC = """\
## What it does
Converts a DDP script on CPU processes (gloo) launched with
`mp.spawn(worker, args=(...), nprocs=N)`, or one that torchrun starts
(`python -m torch.distributed.run --nproc_per_node=N train.py`, the env://
rendezvous) on gloo or, one GPU per process, nccl: the process-group setup and
teardown, `torch.cuda.set_device(local_rank)`, the `DistributedDataParallel`
wrapper and the `DistributedSampler` go. A spawned worker loses its `rank`
parameter and is called directly, with `strategy="ddp", accelerator="cpu",
devices=N`. Under torchrun the Trainer gets `strategy="ddp"`, the script's
accelerator ("cpu" for gloo, "cuda" when each process uses
`cuda:{local_rank}`), `devices=int(os.environ.get("LOCAL_WORLD_SIZE", 1))` and
`num_nodes=int(os.environ.get("GROUP_WORLD_SIZE", 1))`, and the script is
launched with the same torchrun command. `if rank == 0:` after the loop
becomes `if trainer.is_global_zero:` (`if local_rank == 0:` becomes
`if trainer.local_rank == 0:`).

## Why
Lightning is the distributed engine: it starts the N processes itself or, under
torchrun, takes the ranks from torchrun's environment (TorchElasticEnvironment,
which requires `devices * num_nodes == WORLD_SIZE`), creates the process group
(gloo for CPU, nccl for CUDA processes), wraps the LightningModule in DDP
(`device_ids=[local_rank]` on a GPU), gives the training loader a
`DistributedSampler(shuffle=..., seed=0)` at the global rank and calls its
`set_epoch(current_epoch)` every epoch. With the script's sampler left at its
defaults and `set_epoch(epoch)` over `range(n)`, every process sees the same
shards in the same order, and the gradient all-reduce is the same, so both
scripts train the same parameters.

## Example
```python
dist.init_process_group(backend="gloo")
rank, world_size = dist.get_rank(), dist.get_world_size()
sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank)
loader = DataLoader(dataset, batch_size=16, sampler=sampler)
ddp_model = DDP(model)
...
```

## Use instead
```python
loader = DataLoader(dataset, batch_size=16, shuffle=True)
trainer = L.Trainer(
    max_epochs=...,
    strategy="ddp",
    accelerator="cpu",
    devices=int(os.environ.get("LOCAL_WORLD_SIZE", 1)),
    num_nodes=int(os.environ.get("GROUP_WORLD_SIZE", 1)),
)
```

## Fix safety
Exact for the forms above: the spawn and the torchrun gloo forms are proven by
running both scripts in 2 CPU processes (tests/test_distributed.py); the
torchrun nccl form converts by the same rule but has not been run on GPUs. Left
as it is, with this finding: nn.DataParallel (Lightning 2 has no DP strategy:
with 2+ visible GPUs it splits each batch across replicas, with per-replica
BatchNorm statistics and gradients summed across devices, which neither
single-device training nor DDP reproduces; with one or no GPU it is the
identity, so remove it and convert again), a backend Lightning would not pick
(gloo between GPU processes, one chosen at run time), nccl spawn workers, a
custom rendezvous (`init_method` other than env://, a spawn's remote
`MASTER_ADDR`), DDP arguments (`find_unused_parameters`, `bucket_cap_mb`, …),
sampler arguments Lightning's sampler does not share (`drop_last`, `seed`, a
rank other than the global rank), a shuffled sampler without
`set_epoch(epoch)`, collectives called by hand (`dist.all_reduce`,
`dist.barrier`, …), evaluation passes (Lightning shards the evaluation loader
too), `dist.get_rank()` anywhere but the sampler and `if ... == 0:` after the
loop (torchrun scripts can read `int(os.environ["RANK"])` instead) and any
other use of a spawned worker's rank. The converted torchrun script must be
launched by torchrun (Lightning recognises it by `TORCHELASTIC_RUN_ID`);
another launcher that sets only the env:// variables would give Lightning a
different world.
"""


@dataclass(frozen=True)
class Role:
    """What a name holds: the rank, the local rank or the world size (``kind``); ``strict``
    when the value exists only in the script's processes (the spawn rank, ``dist.get_rank()``),
    so every use must be one Lightning takes over."""

    kind: str
    strict: bool


@dataclass(frozen=True)
class Spawn:
    """An ``mp.spawn(worker, ...)`` launch: the worker loses its rank and is called directly."""

    worker: cst.FunctionDef
    params: cst.Parameters  # the worker's parameters without the rank
    statement: cst.BaseStatement
    call: cst.BaseStatement  # the direct call replacing mp.spawn


@dataclass(frozen=True)
class Setup:
    """The pieces of a DDP program, and what each becomes."""

    spawn: Spawn | None  # None: torchrun started the processes, the ranks are in the environment
    init: cst.BaseStatement  # dist.init_process_group(...)
    trainer: dict[str, cst.BaseExpression]  # strategy, accelerator, devices[, num_nodes]
    rank_devices: frozenset[str]  # ``device = torch.device(f"cuda:{local_rank}")``
    removed: tuple[cst.BaseStatement, ...]
    removable: tuple[cst.BaseStatement, ...]  # environment reads, kept while something uses them
    loader: cst.BaseStatement | None
    new_loader: cst.BaseStatement | None
    set_epoch: cst.BaseStatement | None
    wrapper: str | None  # the DDP-wrapped name, renamed to the bare model in moved code
    wrapped: str | None
    guards: dict[cst.If, str]  # ``if rank == 0:`` after the loop → the Trainer attribute it tests


def _decline(message: str, node: cst.CSTNode) -> Decline:
    return Decline(CODE, message + "; the loop is left as it is", node)


def check(lowering) -> None:
    setup = find_setup(lowering)
    if setup is None:
        return
    lowering.rank_devices |= setup.rank_devices
    if setup.wrapper is None or setup.wrapper == setup.wrapped:
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
    chosen = plan.trainer_kwargs.get("accelerator")
    if chosen is not None and code(chosen) != '"cpu"':
        raise _decline(
            f"the script chooses its device without the rank (`accelerator={code(chosen)}`); "
            'each DDP process needs its own: `torch.device(f"cuda:{local_rank}")` under '
            "torchrun, or CPU processes on gloo",
            lowering.program.epoch.node,
        )
    plan.removed.update(setup.removed)
    plan.removable.update(setup.removable)
    if setup.spawn is not None:
        _call_worker(plan, setup)
    if setup.loader is not None and setup.new_loader is not None:
        plan.replaced[setup.loader] = setup.new_loader
    if setup.set_epoch is not None:
        lowering.claimed.add(setup.set_epoch)
    trainer = free_names(lowering.program, "trainer")["trainer"]
    for guard, test in setup.guards.items():
        plan.replaced[guard] = guard.with_changes(test=cst.parse_expression(f"{trainer}.{test}"))
    kwargs = plan.trainer_kwargs
    kwargs.pop("accelerator", None)
    kwargs.pop("devices", None)
    kwargs.update(setup.trainer)
    if setup.spawn is not None:
        message = "mp.spawn, DDP and DistributedSampler are replaced by "
        lowering.note(CODE, message + 'Trainer(strategy="ddp", devices=…)', setup.spawn.statement)
    else:
        message = (
            "the process group, DDP and DistributedSampler are replaced by "
            'Trainer(strategy="ddp", devices=LOCAL_WORLD_SIZE, num_nodes=GROUP_WORLD_SIZE): '
            "launch it with the same torchrun command"
        )
        lowering.note(CODE, message, setup.init)


def _call_worker(plan, setup: Setup) -> None:
    """``mp.spawn(worker, ...)`` → ``worker(...)``, the worker without its rank parameter."""
    spawn = setup.spawn
    plan.replaced[spawn.statement] = spawn.call
    plan.signatures[spawn.worker] = spawn.params
    body = spawn.worker.body.body
    first = next((s for s in body if s not in setup.removed), None)
    if first is not None and first is not body[0] and first not in plan.replaced:
        # the setup it followed is gone: the body starts here, without a blank line
        lines = [line for line in first.leading_lines if line.comment]
        plan.replaced[first] = first.with_changes(leading_lines=lines)


@lru_cache(maxsize=1)
def find_setup(lowering) -> Setup | None:
    """The DDP program, None for a script without distributed code; or Decline.

    Cached for the one conversion in progress: ``transform`` asks once per moved statement.
    """
    return _find(lowering) if first_use(lowering.index, APIS) is not None else None


def _find(lowering) -> Setup:
    index, program = lowering.index, lowering.program
    _decline_unsupported(index)
    evaluation = program.validation or program.test
    if evaluation is not None:
        raise _decline(
            "the DDP program evaluates: Lightning would give every process a DistributedSampler "
            "share of the evaluation loader, where each process of the script evaluates it all",
            evaluation.loop,
        )
    spawn, roles, devices = _spawn(lowering) if index.uses(SPAWN) else (None, {}, None)
    if spawn is None:
        roles = _environment_roles(lowering)
    rank_devices = _rank_devices(lowering, roles) if spawn is None else frozenset()
    init, removed, set_device = _setup_statements(lowering, roles, rank_devices, spawn)
    removable = []
    for name, role in roles.items():
        if spawn is None:
            (removed if role.strict else removable).append(program.bindings[name].line)
    sampler = _sampler(lowering, roles)
    wrapper = _wrapper(lowering, roles, rank_devices)
    loader = new_loader = set_epoch = None
    if sampler is not None:
        removed.append(sampler[0])
        loader, new_loader, set_epoch = sampler[1:]
    if wrapper is not None:
        removed.append(program.bindings[wrapper[0]].line)
    guards = _rank_guards(lowering, roles)
    consumed = [*removed, *guards, *([loader] if loader is not None else [])]
    _check_role_uses(lowering, roles, consumed, spawn)
    launch = [spawn.statement] if spawn is not None else []
    _check_distributed_uses(index, [*removed, *guards, *launch], torchrun=spawn is None)
    if spawn is not None:
        _spawn_backend(call_of(init), init)
        trainer = {"strategy": _string("ddp"), "accelerator": _string("cpu"), "devices": devices}
    else:
        on_gpu = bool(rank_devices) or set_device or (wrapper is not None and wrapper[2])
        trainer = _torchrun_trainer(lowering, init, roles, on_gpu)
    return Setup(
        spawn=spawn,
        init=init,
        trainer=trainer,
        rank_devices=rank_devices,
        removed=tuple(removed),
        removable=tuple(removable),
        loader=loader,
        new_loader=new_loader,
        set_epoch=set_epoch,
        wrapper=wrapper[0] if wrapper else None,
        wrapped=wrapper[1] if wrapper else None,
        guards=guards,
    )


def _setup_statements(
    lowering, roles: dict[str, Role], devices: frozenset[str], spawn: Spawn | None
) -> tuple[cst.BaseStatement, list[cst.BaseStatement], bool]:
    """``init_process_group``, the statements Lightning's own setup replaces (the group, the
    spawn's MASTER_ADDR/PORT, torchrun's ``set_device(local_rank)``), and whether one of them
    gives the process its GPU."""
    program, qualify = lowering.program, lowering.index.imports.qualify
    init = None
    removed = []
    set_device = False
    for statement in program.block:
        found = call_of(statement)
        qual = qualify(found.func) if found is not None else None
        if qual in INIT:
            init = init or statement
            removed.append(statement)
        elif qual in DESTROY or (spawn is not None and _sets_master(statement)):
            removed.append(statement)
        elif spawn is None and _sets_device(lowering, statement, roles, devices):
            set_device = True
            removed.append(statement)
    if init is None:
        raise _decline(
            "the program does not call `dist.init_process_group(...)` in the function that trains",
            spawn.worker.name if spawn is not None else program.epoch.node,
        )
    return init, removed, set_device


def _spawn(lowering) -> tuple[Spawn, dict[str, Role], cst.BaseExpression]:
    """The mp.spawn launch, the roles of the worker's parameters, and the number of devices."""
    index, program = lowering.index, lowering.program
    spawns = index.uses(SPAWN)
    statement = _statement_of(index, spawns[0])
    call = call_of(statement) if statement is not None else None
    worker = program.owner
    if len(spawns) > 1 or call is None or not isinstance(worker, cst.FunctionDef):
        raise _decline(
            "`mp.spawn` must be one statement `mp.spawn(worker, args=(...), nprocs=N)` whose "
            "worker holds the training loop",
            spawns[0],
        )
    params, direct, devices = _launch(call, worker, statement)
    roles = {worker.params.params[0].name.value: Role("rank", strict=True)}
    if isinstance(devices, cst.Name):
        roles[devices.value] = Role("world_size", strict=False)
    return Spawn(worker, params, statement, direct), roles, devices


def _environment_roles(lowering) -> dict[str, Role]:
    """Names bound to ``dist.get_rank()``, ``int(os.environ["LOCAL_RANK"])`` and the like."""
    roles = {}
    for binding in lowering.program.bindings.values():
        role = _role_of(lowering, binding.value, {})
        if role is not None and result_names(binding.line) == [binding.name]:
            roles[binding.name] = role
    return roles


def _role_of(lowering, node: cst.CSTNode, roles: dict[str, Role]) -> Role | None:
    """The role of a name, of ``dist.get_rank()``/``dist.get_world_size()`` (only in the
    process group) or of ``int(os.environ["RANK"])`` (set by torchrun before it)."""
    if isinstance(node, cst.Name):
        return roles.get(node.value)
    if isinstance(node, cst.Call) and not node.args:
        kind = GROUP_CALLS.get(lowering.index.imports.qualify(node.func) or "")
        if kind is not None:
            return Role(kind, strict=True)
    kind = ENVIRONMENT.get(_environment_key(lowering, node) or "")
    return Role(kind, strict=False) if kind is not None else None


def _environment_key(lowering, node: cst.CSTNode) -> str | None:
    """``K`` of ``int(os.environ["K"])``, ``int(os.environ.get("K", d))`` or
    ``int(os.getenv("K"))``: what torchrun sets."""
    if not (isinstance(node, cst.Call) and dotted_name(node.func) == "int" and len(node.args) == 1):
        return None
    inner = node.args[0].value
    qualify = lowering.index.imports.qualify
    key = None
    if isinstance(inner, cst.Subscript) and qualify(inner.value) == "os.environ":
        index = inner.slice[0].slice if len(inner.slice) == 1 else None
        key = index.value if isinstance(index, cst.Index) else None
    elif isinstance(inner, cst.Call) and qualify(inner.func) in {"os.environ.get", "os.getenv"}:
        key = inner.args[0].value if inner.args else None
    return str(key.evaluated_value) if isinstance(key, cst.SimpleString) else None


def _is_local(lowering, node: cst.CSTNode, roles: dict[str, Role], devices: set[str]) -> bool:
    """The local rank, or a device bound to ``cuda:<local rank>``."""
    role = _role_of(lowering, node, roles)
    return (role is not None and role.kind == "local_rank") or dotted_name(node) in devices


def _rank_devices(lowering, roles: dict[str, Role]) -> frozenset[str]:
    """Names bound to ``torch.device(f"cuda:{local_rank}")`` or
    ``torch.device("cuda", local_rank)``: each process's own GPU."""
    found = set()
    for binding in lowering.program.bindings.values():
        value = binding.value
        if binding.kind is not Kind.DEVICE or not isinstance(value, cst.Call):
            continue
        if lowering.index.imports.qualify(value.func) != "torch.device":
            continue
        args = [arg.value for arg in value.args]
        if len(args) == 2 and code(args[0]) in {'"cuda"', "'cuda'"}:
            local = args[1]
        elif len(args) == 1 and isinstance(args[0], cst.FormattedString):
            parts = args[0].parts
            text = parts[0] if len(parts) == 2 else None
            if not (isinstance(text, cst.FormattedStringText) and text.value == "cuda:"):
                continue
            if parts[1].conversion or parts[1].format_spec:
                continue
            local = parts[1].expression
        else:
            continue
        if _is_local(lowering, local, roles, set()):
            found.add(binding.name)
    return frozenset(found)


def _sets_device(lowering, statement: cst.BaseStatement, roles, devices: frozenset[str]) -> bool:
    """``torch.cuda.set_device(local_rank)``: Lightning selects each process's GPU itself."""
    call = call_of(statement)
    return (
        call is not None
        and lowering.index.imports.qualify(call.func) == "torch.cuda.set_device"
        and len(call.args) == 1
        and _is_local(lowering, call.args[0].value, roles, devices)
    )


def _decline_unsupported(index) -> None:
    found = first_use(index, DATA_PARALLEL)
    if found is not None:
        raise _decline(
            "nn.DataParallel splits every batch across the visible GPUs (per-replica BatchNorm "
            "statistics, gradients summed across devices); Lightning 2 has no DataParallel "
            "strategy and DDP's per-process batches train differently. On one device or none it "
            "is the identity: remove it and convert again; for several GPUs move to DDP (torchrun "
            "or mp.spawn with a DistributedSampler), which lightify converts",
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


def _init_args(call: cst.Call) -> dict[str, cst.Arg]:
    """``init_process_group``'s arguments by parameter name (backend, init_method positional)."""
    found = {}
    for i, arg in enumerate(call.args):
        positional = ("backend", "init_method")[i] if i < 2 else f"#{i}"
        found[arg.keyword.value if arg.keyword else positional] = arg
    return found


def _spawn_backend(call: cst.Call, statement: cst.BaseStatement) -> None:
    """A spawned worker's process group: gloo, on this machine."""
    args = _init_args(call)
    for name, arg in args.items():
        if name == "init_method" and not _local_init(arg.value):
            raise _decline(
                f"`init_method={code(arg.value)}` is a custom rendezvous; Lightning runs its own "
                "on this machine",
                arg,
            )
        if name not in {"backend", "rank", "world_size", "init_method"}:
            raise _decline(
                "`init_process_group` takes arguments Lightning's process group would not have",
                arg,
            )
    backend = args["backend"].value if "backend" in args else None
    if not isinstance(backend, cst.SimpleString) or backend.evaluated_value != "gloo":
        raise _decline(
            "only the gloo backend (CPU processes) is converted; nccl workers choose a GPU by "
            "rank, which lightify does not map to Lightning's devices yet",
            statement,
        )


def _torchrun_trainer(
    lowering, init: cst.BaseStatement, roles: dict[str, Role], cuda: bool
) -> dict[str, cst.BaseExpression]:
    """Trainer arguments for processes torchrun started: its world, the script's backend."""
    expected = {"backend": None, "init_method": None, "rank": "rank", "world_size": "world_size"}
    backend = None
    for name, arg in _init_args(call_of(init)).items():
        value = arg.value
        if name not in expected:
            raise _decline(
                f"`init_process_group(..., {short(arg).rstrip(', ')})`: Lightning's process "
                "group would not have this argument",
                arg,
            )
        if name == "backend":
            backend = value.evaluated_value if isinstance(value, cst.SimpleString) else value
        elif name == "init_method" and code(value) not in {'"env://"', "'env://'"}:
            raise _decline(
                f"`init_method={short(value)}` is a custom rendezvous; Lightning reads torchrun's "
                "env:// variables",
                arg,
            )
        elif expected[name] is not None:
            role = _role_of(lowering, value, roles)
            if role is None or role.kind != expected[name]:
                raise _decline(f"`{name}={short(value)}` is not torchrun's {name}", arg)
    _check_backend(backend, cuda, init)
    os_module = lowering.index.imports.local_name("os")
    if os_module is None:
        raise _decline(
            "the converted Trainer reads torchrun's LOCAL_WORLD_SIZE and GROUP_WORLD_SIZE from "
            "`os.environ`: add `import os`",
            init,
        )
    return {
        "strategy": _string("ddp"),
        "accelerator": _string("cuda" if cuda else "cpu"),
        "devices": cst.parse_expression(f'int({os_module}.environ.get("LOCAL_WORLD_SIZE", 1))'),
        "num_nodes": cst.parse_expression(f'int({os_module}.environ.get("GROUP_WORLD_SIZE", 1))'),
    }


def _check_backend(backend, cuda: bool, init: cst.BaseStatement) -> None:
    """The backend Lightning's DDP picks by itself: gloo for CPU, nccl for CUDA processes."""
    if backend is None or backend == ("nccl" if cuda else "gloo"):
        return
    if not isinstance(backend, str):
        raise _decline(
            f"the backend is chosen at run time (`{short(backend)}`); Lightning's DDP uses gloo "
            "for CPU and nccl for CUDA processes: write the one the script trains with",
            init,
        )
    if cuda:
        raise _decline(
            f'the "{backend}" backend between GPU processes: Lightning\'s DDP would use nccl; '
            f'pass `strategy=DDPStrategy(process_group_backend="{backend}")` by hand',
            init,
        )
    raise _decline(
        f'the "{backend}" backend needs a GPU per process, and the script never gives the '
        "model one (`torch.cuda.set_device(local_rank)`, `DDP(model, device_ids=[local_rank])`)",
        init,
    )


def _string(value: str) -> cst.SimpleString:
    return cst.SimpleString(f'"{value}"')


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


def _sampler(lowering, roles: dict[str, Role]):
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
        if key in SAMPLER_ROLES:
            role = _role_of(lowering, arg.value, roles)
            if role is None or role.kind != SAMPLER_ROLES[key]:
                raise _decline(
                    f"`DistributedSampler(..., {short(arg).rstrip(', ')})` is not the process "
                    f"group's {SAMPLER_ROLES[key].replace('_', ' ')}: Lightning's sampler shards "
                    "by the global rank over the world size",
                    arg,
                )
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


def _wrapper(lowering, roles: dict[str, Role], devices: frozenset[str]):
    """(wrapper name, wrapped model name, whether it names the process's GPU) of
    ``ddp_model = DDP(model)`` or ``DDP(model, device_ids=[local_rank])``."""
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
    on_gpu = False
    for arg in value.args[1:]:
        key = arg.keyword.value if arg.keyword else None
        local = arg.value
        if key == "device_ids" and isinstance(local, cst.List) and len(local.elements) == 1:
            local = local.elements[0].value
        if key in {"device_ids", "output_device"} and _is_local(lowering, local, roles, devices):
            on_gpu = True  # Lightning passes [local_rank] for the process's own GPU
            continue
        raise _decline(
            f"`DDP(..., {code(arg).rstrip(', ')})`: lightify does not carry DDP arguments into "
            "Lightning's DDPStrategy yet",
            arg,
        )
    _check_forward_through(program.train.body, binding.name, wrapped.name)
    return binding.name, wrapped.name, on_gpu


def _check_forward_through(body: list[cst.BaseStatement], wrapper: str, wrapped: str) -> None:
    """The training forward must go through the wrapper: calling the bare model (or the
    wrapper's ``.module``) skips DDP's gradient averaging, which Lightning's own DDP
    wrapper would then add."""
    bypasses = {wrapped, f"{wrapped}.forward", f"{wrapper}.module", f"{wrapper}.module.forward"}
    for statement in body:
        for node in walk(statement):
            if type(node) is cst.Call and dotted_name(node.func) in bypasses:
                raise _decline(
                    f"the training loop calls `{code(node.func)}`, not the DDP wrapper "
                    f"`{wrapper}`: its gradients are not averaged across processes, where "
                    "Lightning's DDP would average them",
                    node,
                )


def _rank_guards(lowering, roles: dict[str, Role]) -> dict[cst.If, str]:
    """``if rank == 0:`` after the epoch loop → ``is_global_zero`` (``local_rank == 0`` for
    the local rank): the Trainer's view of the same processes."""
    program = lowering.program
    after = program.block[program.block.index(program.epoch.node) + 1 :]
    guards = {}
    for statement in after:
        if not isinstance(statement, cst.If) or statement.orelse is not None:
            continue
        test = statement.test
        if not (
            isinstance(test, cst.Comparison)
            and len(test.comparisons) == 1
            and isinstance(test.comparisons[0].operator, cst.Equal)
        ):
            continue
        left, right = test.left, test.comparisons[0].comparator
        tested = left if code(right) == "0" else right if code(left) == "0" else None
        role = _role_of(lowering, tested, roles) if tested is not None else None
        body = statement.body
        if (
            role is None
            or role.kind == "world_size"
            or any(roles[name].strict for name in names_in(body) & set(roles))
            or any(_inside(lowering.index, node, body) for node in _group_uses(lowering.index))
        ):
            continue
        guards[statement] = "is_global_zero" if role.kind == "rank" else "local_rank == 0"
    return guards


def _check_role_uses(lowering, roles: dict[str, Role], consumed: list, spawn: Spawn | None) -> None:
    """A rank that exists only in the script's processes: other uses have no equivalent."""
    strict = {name for name, role in roles.items() if role.strict}
    for statement in lowering.program.block:
        used = names_in(statement) & strict
        if statement in consumed or not used:
            continue
        name = sorted(used)[0]
        if spawn is not None:
            raise _decline(
                f"the worker reads its rank `{name}` here; lightify converts `if {name} == 0:` "
                "after the loop (→ trainer.is_global_zero) and the DistributedSampler/DDP "
                "arguments only",
                statement,
            )
        raise _decline(
            f"`{name}` reads the script's process group, which Lightning creates inside fit; "
            f'read `int(os.environ["{ENVIRONMENT_OF[roles[name].kind]}"])` instead (torchrun '
            "sets it before the process group exists)",
            statement,
        )


def _group_uses(index) -> list[cst.CSTNode]:
    """References to torch.distributed other than creating and destroying the group."""
    found = []
    for node in index.references:
        qual = index.imports.qualify(node) or ""
        if qual.startswith("torch.distributed.") and qual not in INIT | DESTROY:
            found.append(node)
    return found


def _check_distributed_uses(index, consumed: list[cst.BaseStatement], torchrun: bool) -> None:
    for node in _group_uses(index):
        if any(_inside(index, node, statement) for statement in consumed):
            continue
        kind = GROUP_CALLS.get(index.imports.qualify(node) or "")
        hint = (
            f'; read `int(os.environ["{ENVIRONMENT_OF[kind]}"])` instead, which torchrun sets '
            "before the process group exists"
            if torchrun and kind is not None
            else ""
        )
        raise _decline(
            f"`{code(node)}` needs the script's own process group, which Lightning creates "
            "inside fit" + hint,
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
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

dist.init_process_group(backend="gloo")
torch.manual_seed(0)
data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
sampler = DistributedSampler(data)
loader = DataLoader(data, batch_size=16, sampler=sampler)
model = nn.Linear(4, 2)
ddp_model = DDP(model)
optimizer = torch.optim.SGD(ddp_model.parameters(), lr=0.1)
for epoch in range(2):
    sampler.set_epoch(epoch)
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)  # the bare model: no gradient averaging
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


def main():
    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl")
    device = torch.device(f"cuda:{local_rank}")
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    sampler = DistributedSampler(data)
    loader = DataLoader(data, batch_size=16, sampler=sampler)
    model = nn.Linear(4, 2).to(device)
    ddp_model = DDP(model, device_ids=[local_rank])
    optimizer = torch.optim.SGD(ddp_model.parameters(), lr=0.1)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(ddp_model(x), y)
            loss.backward()
            optimizer.step()
    if dist.get_rank() == 0:
        torch.save(model.state_dict(), "linear.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
""",
        after="""\
import os

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


def main():
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    loader = DataLoader(data, batch_size=16, shuffle=True)
    model = nn.Linear(4, 2)
    trainer = L.Trainer(
        max_epochs=2,
        strategy="ddp",
        accelerator="cuda",
        devices=int(os.environ.get("LOCAL_WORLD_SIZE", 1)),
        num_nodes=int(os.environ.get("GROUP_WORLD_SIZE", 1)),
    )
    trainer.fit(LitModel(model), loader)
    if trainer.is_global_zero:
        torch.save(model.state_dict(), "linear.pt")


if __name__ == "__main__":
    main()
""",
        codes=("LFY006", "LFY400"),
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


def main(backend="nccl"):
    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    dist.init_process_group(backend)
    device = torch.device(f"cuda:{local_rank}")
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    sampler = DistributedSampler(data)
    loader = DataLoader(data, batch_size=16, sampler=sampler)
    model = nn.Linear(4, 2).to(device)
    ddp_model = DDP(model, device_ids=[local_rank])
    optimizer = torch.optim.SGD(ddp_model.parameters(), lr=0.1)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(ddp_model(x), y)
            loss.backward()
            optimizer.step()
    if dist.get_rank() == 0:
        torch.save(model.state_dict(), "linear.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
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


def main():
    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl")
    device = torch.device(f"cuda:{local_rank}")
    torch.manual_seed(dist.get_rank())
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    sampler = DistributedSampler(data)
    loader = DataLoader(data, batch_size=16, sampler=sampler)
    model = nn.Linear(4, 2).to(device)
    ddp_model = DDP(model, device_ids=[local_rank])
    optimizer = torch.optim.SGD(ddp_model.parameters(), lr=0.1)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(ddp_model(x), y)
            loss.backward()
            optimizer.step()
    if dist.get_rank() == 0:
        torch.save(model.state_dict(), "linear.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
""",
        after=None,
        codes=("LFY006",),
    ),
]
