"""LFY007: Training that Lightning cannot express exactly: the loop is left as it is."""

from __future__ import annotations

from lightify.rule import Example

CODE = "LFY007"
SUMMARY = "Training that Lightning cannot express exactly: the loop is left as it is"
DOC = """\
## What it does
Reports a loop that calls backward() and steps an optimizer but does not fit a
model on batches, and says which of four kinds it is:

- reinforcement learning: the data comes from an environment (a `step()` whose
  result the loop unpacks into state, reward, done, ...), or the loss is built
  from values an inner rollout `while` loop collected;
- input optimization (adversarial examples, style transfer, deep dream): the
  optimizer updates a tensor that is fed to a model, `Adam([x])`, instead of a
  model's `parameters()`;
- a local learning rule (greedy layer-wise training, forward-forward): in every
  batch each layer has its own loss, backward() and optimizer, and its loss
  reaches no other layer (the next layer learns from a `.detach()`ed output);
- Hogwild workers: `model.share_memory()`, or `torch.multiprocessing.Process` /
  `mp.spawn` whose function runs the training loop (scripts that also set up
  DDP are LFY006's).

The finding points at the training loop and names what was recognised. It is
reported before the generic reasons (not a DataLoader, several optimizers, no
epoch loop) that such a loop would otherwise get.

## Why
A LightningModule's `training_step` takes one batch from a DataLoader and
returns one loss for the module's own parameters; the Trainer owns the process
and its loop. An environment rollout, a tensor that is not a module's
parameter, one backward and step per layer inside a batch, or processes that
update shared parameters without locks have no exact equivalent, and an
approximate one would not train the same numbers.

## Example
```python
for episode in range(500):
    state = env.reset()
    log_probs, rewards, done = [], [], False
    while not done:
        dist = torch.distributions.Categorical(policy(state))
        action = dist.sample()
        log_probs.append(dist.log_prob(action))
        state, reward, done = env.step(action.item())
        rewards.append(reward)
    loss = -(torch.stack(log_probs) * discounted(rewards)).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
```

## Use instead
Keep the loop as it is, or restructure by hand: reinforcement learning with a
dataset of rollouts and manual optimization, input optimization as a plain
loop (or Fabric), a local learning rule with manual optimization and one
optimizer per layer, Hogwild as `strategy="ddp"` data parallelism (different
numbers: synchronous averaged gradients instead of lock-free updates).

## Fix safety
Not fixed: the file is left unchanged, with this finding on the training loop.
Raised by the analysis in `lightify.analyze.not_convertible`.
"""

EXAMPLES = [
    Example(  # reinforcement learning: env.step returns a tuple the loop unpacks
        before="""\
import torch
import torch.nn as nn


class Bandit:
    def reset(self):
        return torch.zeros(2)

    def step(self, action):
        return torch.zeros(2), float(action == 1), True


env = Bandit()
policy = nn.Sequential(nn.Linear(2, 2), nn.Softmax(dim=-1))
optimizer = torch.optim.Adam(policy.parameters(), lr=0.01)
for episode in range(20):
    state = env.reset()
    dist = torch.distributions.Categorical(policy(state))
    action = dist.sample()
    state, reward, done = env.step(action.item())
    loss = -dist.log_prob(action) * reward
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
""",
        after=None,
        codes=("LFY007",),
    ),
    Example(  # reinforcement learning: the loss comes from an inner rollout loop
        before="""\
import torch
import torch.nn as nn


class Walk:
    def __init__(self):
        self.position = 0

    def act(self, action):
        self.position += 1 if action == 1 else -1
        return float(self.position)


policy = nn.Sequential(nn.Linear(1, 2), nn.Softmax(dim=-1))
optimizer = torch.optim.SGD(policy.parameters(), lr=0.01)
for episode in range(10):
    env = Walk()
    log_probs, rewards = [], []
    while len(rewards) < 5:
        dist = torch.distributions.Categorical(policy(torch.tensor([float(env.position)])))
        action = dist.sample()
        log_probs.append(dist.log_prob(action))
        rewards.append(env.act(action.item()))
    loss = -(torch.stack(log_probs) * torch.tensor(rewards)).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
""",
        after=None,
        codes=("LFY007",),
    ),
    Example(  # input optimization: the optimizer updates an input of the model
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F

model = nn.Linear(4, 3)
x = torch.randn(1, 4, requires_grad=True)
optimizer = torch.optim.Adam([x], lr=0.1)
for epoch in range(2):
    for step in range(10):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), torch.tensor([2]))
        loss.backward()
        optimizer.step()
""",
        after=None,
        codes=("LFY007",),
    ),
    Example(  # local learning rule: a loss, backward() and optimizer per layer in each batch
        before="""\
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
loader = DataLoader(data, batch_size=16, shuffle=True)
layer1, head1 = nn.Linear(4, 8), nn.Linear(8, 2)
layer2, head2 = nn.Linear(8, 8), nn.Linear(8, 2)
opt1 = torch.optim.SGD([*layer1.parameters(), *head1.parameters()], lr=0.1)
opt2 = torch.optim.SGD([*layer2.parameters(), *head2.parameters()], lr=0.1)
for epoch in range(2):
    for x, y in loader:
        h1 = torch.relu(layer1(x))
        loss1 = F.cross_entropy(head1(h1), y)
        opt1.zero_grad()
        loss1.backward()
        opt1.step()
        h2 = torch.relu(layer2(h1.detach()))
        loss2 = F.cross_entropy(head2(h2), y)
        opt2.zero_grad()
        loss2.backward()
        opt2.step()
""",
        after=None,
        codes=("LFY007",),
    ),
    Example(  # Hogwild: workers update one model in shared memory
        before="""\
import torch
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


def train(rank, model):
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    loader = DataLoader(data, batch_size=16, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(2):
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()


if __name__ == "__main__":
    model = nn.Linear(4, 2)
    model.share_memory()
    mp.spawn(train, args=(model,), nprocs=2)
""",
        after=None,
        codes=("LFY007",),
    ),
]
