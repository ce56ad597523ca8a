"""LFY001: several optimizers (GANs) → manual optimization in the script's own order."""

from __future__ import annotations

import libcst as cst

from lightify.analyze.declines import Decline
from lightify.analyze.facts import Kind
from lightify.analyze.nodes import call_of, code, dotted_name, method_call, stmt
from lightify.plan import Method
from lightify.rule import Example
from lightify.rules.carried_state import carry
from lightify.rules.gradient_accumulation import guarded, manual_window
from lightify.rules.gradient_clipping import APIS as CLIPPING
from lightify.rules.optimizer import updated_by_hand
from lightify.rules.training_step import index_alias, unpack_batch

CODE = "LFY001"
SUMMARY = "Several optimizers (GANs) become manual optimization in the script's order"
ORDER = 10  # build order: in place of training_step's automatic optimization (lightify.lower)
DOC = """\
## What it does
Converts a training loop that steps several `torch.optim` optimizers (a GAN's
discriminator and generator, two optimizers stepped on one loss) to manual
optimization: `self.automatic_optimization = False`, `training_step` takes the
optimizers from `self.optimizers()` and runs the loop body in the script's own
order, with `loss.backward()` → `self.manual_backward(loss)` and the script's
`zero_grad()`, `step()` and clipping calls where they were.
`configure_optimizers` returns the optimizers in the order the script creates
them; each loss the loop back-propagates is logged with `self.log` under its
own name (the tensor, no `.item()` sync).

## Why
Automatic optimization runs one optimizer per `training_step` in Lightning's
order (zero_grad, backward, step). A GAN's updates depend on their order: the
generator's loss reads the discriminator after its step. Manual optimization
keeps the order of every backward, step and zero_grad, so training is
bit-identical. In Lightning 2.6, `manual_backward` is `loss.backward()` plus the
`on_before_backward`/`on_after_backward` hooks (32-bit precision scales
nothing); `opt.step()` calls the wrapped optimizer's `step` with a closure that
only runs the `on_before_optimizer_step` hooks (clipping flags are ignored
under manual optimization); `opt.zero_grad()` is the optimizer's own.

## Example
```python
optD = torch.optim.Adam(D.parameters())
optG = torch.optim.Adam(G.parameters())
for epoch in range(epochs):
    for (real,) in loader:
        fake = G(torch.randn(real.size(0), z_dim))
        optD.zero_grad()
        lossD = crit(D(real), ones) + crit(D(fake.detach()), zeros)
        lossD.backward()
        optD.step()
        optG.zero_grad()
        lossG = crit(D(fake), ones)
        lossG.backward()
        optG.step()
```

## Use instead
```python
class LitDiscriminator(L.LightningModule):
    def __init__(self, D, G, z_dim):
        super().__init__()
        self.automatic_optimization = False
        ...

    def training_step(self, batch, batch_idx):
        optD, optG = self.optimizers()
        (real,) = batch
        fake = self.G(torch.randn(real.size(0), self.z_dim))
        optD.zero_grad()
        lossD = self.crit(self.D(real), ones) + self.crit(self.D(fake.detach()), zeros)
        self.manual_backward(lossD)
        optD.step()
        optG.zero_grad()
        lossG = self.crit(self.D(fake), ones)
        self.manual_backward(lossG)
        optG.step()
        self.log("lossD", lossD)
        self.log("lossG", lossG)

    def configure_optimizers(self):
        optD = torch.optim.Adam(self.D.parameters())
        optG = torch.optim.Adam(self.G.parameters())
        return optD, optG
```

The same machinery serves one optimizer stepped under a condition that
`accumulate_grad_batches` cannot express (LFY005) and parameters updated by hand
without an optimizer (LFY201). A scheduler stepped per epoch is stepped by
`self.lr_schedulers().step()` in `on_train_epoch_end` (Lightning steps none under
manual optimization; the hook runs after validation, as in the script); one stepped
in the batch loop stays where it is, taken from `self.lr_schedulers()`.

## Fix safety
Safe: applied only when every backward is a statement of the batch loop itself and
every step and zero_grad a statement of it or of an `if` in it. Left as it is, with
the reason: an optimizer created inside the loop, a closure-based optimizer (LBFGS,
`step(closure)`), an optimizer chosen at run time, a scheduler stepped with a
metric (ReduceLROnPlateau), or mixed precision.
"""

STEPPED = frozenset({"backward", "step", "zero_grad"})


def check(lowering) -> None:
    """Switch to manual optimization for several optimizers, or for a conditional step that
    accumulate_grad_batches cannot express (LFY005); decline what it cannot reproduce exactly."""
    program = lowering.program
    _created_in_loop(lowering)
    found = program.optimizers()
    names = ", ".join(f"`{b.name}`" for b in found)
    if len(found) > 1:
        what = f"several optimizers ({names})"
    elif manual_window(lowering) is not None:
        what = f"a conditional step of {names}"
    elif not found and updated_by_hand(lowering) is not None:
        what = "parameter updates written by hand"
    else:
        return
    for binding in found:
        if binding.callee == "torch.optim.LBFGS":
            raise Decline(
                CODE,
                f"`{binding.name}` is LBFGS, whose step(closure) re-evaluates the loss; "
                f"lightify converts {what} only without closures",
                binding.line,
            )
    for binding in program.bindings.values():
        if binding.callee is not None and binding.callee.endswith("GradScaler"):
            raise Decline(
                CODE,
                f"mixed precision (`{binding.name}`) with {what} is not converted; the loop "
                "is left as it is",
                binding.line,
            )
    if program.train.autocast:
        raise Decline(
            CODE,
            f"autocast with {what} is not converted; the loop is left as it is",
            next(iter(program.train.autocast.values())),
        )
    for statement in program.train.body:
        _check_calls(statement, lowering, what)
    lowering.plan.manual_optimization = True


def _created_in_loop(lowering) -> None:
    """An optimizer built in the loop restarts its state: no configure_optimizers equivalent."""
    program = lowering.program
    qualify = lowering.index.imports.qualify

    class _Optimizers(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            qual = qualify(node.func) or ""
            if qual.startswith("torch.optim.") and qual.count(".") == 2:
                raise Decline(
                    CODE,
                    f"`{code(node.func)}(...)` creates an optimizer inside the training "
                    "loop (its state restarts each time); lightify converts optimizers "
                    "created once, before the loop",
                    node,
                )

    program.epoch.node.visit(_Optimizers())
    for statement in program.train.body:
        statement.visit(_Optimizers())


def _check_calls(statement: cst.BaseStatement, lowering, what: str) -> None:
    """backward/step/zero_grad: statements of the batch loop itself, on known optimizers;
    step and zero_grad may also be statements of an ``if`` of the batch loop (the script's
    condition is kept; manual_backward replaces only backward() calls of the loop itself)."""
    bindings = lowering.program.bindings
    tops = {call_of(statement)} | {
        call
        for line in guarded(statement)
        if (call := call_of(line)) is not None
        and not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "backward")
    }

    class _Calls(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            if not isinstance(node.func, cst.Attribute) or node.func.attr.value not in STEPPED:
                return
            method = node.func.attr.value
            receiver = dotted_name(node.func.value) or ""
            binding = bindings.get(receiver.split(".")[0])
            kind = binding.kind if binding is not None else None
            known = method == "backward" or kind is Kind.OPTIMIZER
            known |= method == "zero_grad" and kind is Kind.MODULE
            known |= method == "step" and kind is Kind.SCHEDULER
            if not known:
                raise Decline(
                    CODE,
                    f"`{code(node)}`: `{code(node.func.value)}` is none of the optimizers "
                    f"the script creates but one chosen at run time; lightify converts "
                    f"{what} called on the optimizers by name",
                    node,
                )
            if node not in tops:
                raise Decline(
                    CODE,
                    f"`{code(node)}` runs inside another statement; with {what} lightify "
                    "converts backward() calls that are statements of the batch loop, and "
                    "step and zero_grad calls that are statements of it or of an `if` in it",
                    node,
                )
            if method == "step" and node.args:
                raise Decline(
                    CODE,
                    f"`{code(node)}` passes a closure or arguments to step(); lightify "
                    f"converts {what} stepped without arguments",
                    node,
                )

    statement.visit(_Calls())


def step(statement: cst.BaseStatement, builder) -> bool:
    """Under manual optimization: backward → manual_backward; the script's own zero_grad,
    step and clipping calls stay where they are."""
    if not builder.lowering.plan.manual_optimization:
        return False
    call = call_of(statement)
    if call is None:
        return False
    qualify = builder.lowering.index.imports.qualify
    if qualify(call.func) in CLIPPING:
        builder.emit(statement)
        return True
    if not isinstance(call.func, cst.Attribute) or call.func.attr.value not in STEPPED:
        return False
    method = call.func.attr.value
    if method == "backward":
        builder.loss = call.func.value.with_changes(lpar=[], rpar=[])  # `(-x).backward()`
        builder.phase = "backward"
        manual = call.with_changes(
            func=cst.Attribute(cst.Name("self"), cst.Name("manual_backward")),
            args=[cst.Arg(builder.loss), *call.args],
        )
        statement = statement.with_changes(body=[cst.Expr(manual)])
    elif method == "step":
        builder.phase = "stepped"
    builder.emit(statement)
    return True


def build(lowering) -> None:
    """training_step under manual optimization: the optimizers, the body in order, losses logged."""
    from lightify.lower import StepBuilder

    if not lowering.plan.manual_optimization:
        return
    found = lowering.program.train
    names = [binding.name for binding in lowering.program.optimizers()]
    body = StepBuilder(lowering, found).run()
    losses = [
        call.func.value.value
        for statement in found.body
        if (call := call_of(statement)) is not None
        and isinstance(call.func, cst.Attribute)
        and call.func.attr.value == "backward"
        and isinstance(call.func.value, cst.Name)
    ]
    schedulers = stepped_schedulers(lowering)
    taken = [
        stmt(f"{', '.join(bound)} = self.{method}()")
        for bound, method in ((names, "optimizers"), (schedulers, "lr_schedulers"))
        if bound
    ]
    unpack = unpack_batch(found.target)  # `batch` is the batch here, whatever the loop's index
    carried = carry(lowering, found, "train", [*unpack, *body])
    local = lowering.locals_of(found) | set(names) | set(schedulers)
    moved = [*taken, *unpack, *lowering.move(body, local, {**index_alias(found), **carried})]
    logged = [stmt(f'self.log("{loss}", {loss})') for loss in dict.fromkeys(losses)]
    lowering.plan.add_method(Method("training_step", "self, batch, batch_idx", [*moved, *logged]))
    lowering.note(
        "LFY400",
        f"training loop can be converted: {lowering.plan.class_name} and a Trainer",
        found.loop,
    )
    if len(names) > 1:
        lowering.note(
            CODE,
            f"several optimizers ({', '.join(names)}) become manual optimization in the "
            "script's order of backward, step and zero_grad",
            found.loop,
        )


def stepped_schedulers(lowering) -> list[str]:
    """Schedulers the batch loop steps itself (training_step steps them under manual
    optimization, where Lightning steps none)."""
    steps = [
        found[0]
        for statement in lowering.program.train.body
        for line in [statement, *guarded(statement)]
        if (found := method_call(line)) is not None and found[1] == "step"
    ]
    return [
        b.name
        for b in lowering.program.bindings.values()
        if b.kind is Kind.SCHEDULER and b.name in steps
    ]


EXAMPLES = [
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
encoder = nn.Linear(4, 8)
head = nn.Linear(8, 2)
opt_encoder = torch.optim.SGD(encoder.parameters(), lr=0.01)
opt_head = torch.optim.Adam(head.parameters(), lr=1e-3)
for epoch in range(2):
    for x, y in loader:
        opt_encoder.zero_grad()
        opt_head.zero_grad()
        loss = F.cross_entropy(head(encoder(x)), y)
        loss.backward()
        opt_encoder.step()
        opt_head.step()
""",
        after="""\
import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class LitModel(L.LightningModule):
    def __init__(self, encoder, head):
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters(ignore=["encoder", "head"])
        self.encoder = encoder
        self.head = head

    def training_step(self, batch, batch_idx):
        opt_encoder, opt_head = self.optimizers()
        x, y = batch
        opt_encoder.zero_grad()
        opt_head.zero_grad()
        loss = F.cross_entropy(self.head(self.encoder(x)), y)
        self.manual_backward(loss)
        opt_encoder.step()
        opt_head.step()
        self.log("loss", loss)

    def configure_optimizers(self):
        opt_encoder = torch.optim.SGD(self.encoder.parameters(), lr=0.01)
        opt_head = torch.optim.Adam(self.head.parameters(), lr=1e-3)
        return opt_encoder, opt_head


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
encoder = nn.Linear(4, 8)
head = nn.Linear(8, 2)
trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1)
trainer.fit(LitModel(encoder, head), loader)
""",
        codes=("LFY001", "LFY400"),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
generator = nn.Linear(4, 4)
critic = nn.Linear(4, 1)
opt_g = torch.optim.Adam(generator.parameters())
opt_c = torch.optim.Adam(critic.parameters())
for epoch in range(2):
    for x, _ in loader:
        opt_c.zero_grad()
        critic(generator(x).detach()).mean().backward()
        opt_c.step()
        opt_g.zero_grad()
        (-critic(generator(x)).mean()).backward()
        opt_g.step()
""",
        after="""\
import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class LitModel(L.LightningModule):
    def __init__(self, generator, critic):
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters(ignore=["generator", "critic"])
        self.generator = generator
        self.critic = critic

    def training_step(self, batch, batch_idx):
        opt_g, opt_c = self.optimizers()
        x, _ = batch
        opt_c.zero_grad()
        self.manual_backward(self.critic(self.generator(x).detach()).mean())
        opt_c.step()
        opt_g.zero_grad()
        self.manual_backward(-self.critic(self.generator(x)).mean())
        opt_g.step()

    def configure_optimizers(self):
        opt_g = torch.optim.Adam(self.generator.parameters())
        opt_c = torch.optim.Adam(self.critic.parameters())
        return opt_g, opt_c


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
generator = nn.Linear(4, 4)
critic = nn.Linear(4, 1)
trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1)
trainer.fit(LitModel(generator, critic), loader)
""",
        codes=("LFY001", "LFY400"),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
generator = nn.Linear(4, 4)
critic = nn.Linear(4, 1)
opt_g = torch.optim.Adam(generator.parameters())
opt_c = torch.optim.Adam(critic.parameters())
for epoch in range(2):
    for i, (x, _) in enumerate(loader):
        opt = opt_c if i % 2 == 0 else opt_g
        opt.zero_grad()
        loss = critic(generator(x)).mean()
        loss.backward()
        opt.step()
""",
        after=None,
        codes=("LFY001",),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
generator = nn.Linear(4, 4)
critic = nn.Linear(4, 1)
opt_g = torch.optim.Adam(generator.parameters())
for epoch in range(2):
    opt_c = torch.optim.Adam(critic.parameters())
    for x, _ in loader:
        opt_c.zero_grad()
        critic(generator(x).detach()).mean().backward()
        opt_c.step()
        opt_g.zero_grad()
        (-critic(generator(x)).mean()).backward()
        opt_g.step()
""",
        after=None,
        codes=("LFY001",),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
generator = nn.Linear(4, 4)
critic = nn.Linear(4, 1)
opt_g = torch.optim.LBFGS(generator.parameters())
opt_c = torch.optim.Adam(critic.parameters())
for epoch in range(2):
    for x, _ in loader:
        opt_c.zero_grad()
        critic(generator(x).detach()).mean().backward()
        opt_c.step()

        def closure():
            opt_g.zero_grad()
            loss = -critic(generator(x)).mean()
            loss.backward()
            return loss

        opt_g.step(closure)
""",
        after=None,
        codes=("LFY001",),
    ),
    Example(
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
generator = nn.Linear(4, 4)
critic = nn.Linear(4, 1)
opt_g = torch.optim.Adam(generator.parameters())
opt_c = torch.optim.Adam(critic.parameters())
sched_g = torch.optim.lr_scheduler.StepLR(opt_g, step_size=1)
for epoch in range(2):
    for x, _ in loader:
        opt_c.zero_grad()
        critic(generator(x).detach()).mean().backward()
        opt_c.step()
        opt_g.zero_grad()
        (-critic(generator(x)).mean()).backward()
        opt_g.step()
    sched_g.step()
""",
        after="""\
import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class LitModel(L.LightningModule):
    def __init__(self, generator, critic):
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters(ignore=["generator", "critic"])
        self.generator = generator
        self.critic = critic

    def training_step(self, batch, batch_idx):
        opt_g, opt_c = self.optimizers()
        x, _ = batch
        opt_c.zero_grad()
        self.manual_backward(self.critic(self.generator(x).detach()).mean())
        opt_c.step()
        opt_g.zero_grad()
        self.manual_backward(-self.critic(self.generator(x)).mean())
        opt_g.step()

    def on_train_epoch_end(self):
        self.lr_schedulers().step()

    def configure_optimizers(self):
        opt_g = torch.optim.Adam(self.generator.parameters())
        opt_c = torch.optim.Adam(self.critic.parameters())
        sched_g = torch.optim.lr_scheduler.StepLR(opt_g, step_size=1)
        return [opt_g, opt_c], [sched_g]


data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
generator = nn.Linear(4, 4)
critic = nn.Linear(4, 1)
trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1)
trainer.fit(LitModel(generator, critic), loader)
""",
        codes=("LFY001", "LFY400"),
    ),
]
