"""ENAS's search (Pham et al. 2018) in PyTorch for AutoDL ENAS (workers/runners/autodl_enas.py):
one network holding the weights of every operation of every layer, shared by all the child
architectures (`SharedNetwork`), and an LSTM controller that samples architectures and
learns by REINFORCE to sample ones that score well on held-out photos (`Controller`).
No Django import.

A round (`search_round`), as in the paper:
    1. the shared weights train for one pass over the search-training photos, each batch
       through a child freshly sampled from the controller (SGD with Nesterov momentum,
       a cosine rate, gradient clipping at 5);
    2. the controller trains for `controller_steps` steps: each samples a child, scores its
       accuracy on a batch of the reward photos with the shared weights (the reward), and
       takes a policy-gradient step on (reward - moving-average baseline) times the child's
       log-probability, with an entropy bonus and ENAS's skip penalty (a KL term pulling the
       skip probability towards 0.4, so children do not collapse into all-skip).
`derive` samples children and keeps the one the shared weights score best on all the reward
photos: the architecture that is then trained from scratch.

Photos arrive as uint8 tensors [N, S, S, 3] (RGB, channels last, as Keras takes them);
`to_input` makes them the network's [-1, 1] NCHW floats, the same scaling as the Keras model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from workers.runners.autodl_enas_space import (
    KERNEL,
    OPS,
    Architecture,
    downsampling,
    reductions,
)

# Cosine, from the first to the last step. Each operation's weights train only when a child
# uses them (a sixth of the steps): 0.1 learned the most in a few hundred steps of 0.02-0.1.
SHARED_LEARNING_RATE = (0.1, 0.001)
SHARED_WEIGHT_DECAY = 1e-4
GRAD_CLIP = 5.0
# The paper's controller takes 1e-3 over tens of thousands of steps; a search on one
# machine's CPU has hundreds, so a larger rate (tests/workers/test_autodl_enas.py checks
# that a rewarded choice wins within 150 steps).
CONTROLLER_LEARNING_RATE = 5e-3
CONTROLLER_HIDDEN = 64
# Sampling logits are tanh_constant * tanh(logits / temperature), as the paper's macro
# search: no operation is drawn with more than about 80 % probability, so it keeps exploring.
TEMPERATURE = 1.0
TANH_CONSTANT = 1.5
ENTROPY_WEIGHT = 1e-4
SKIP_TARGET, SKIP_WEIGHT = 0.4, 0.8
BASELINE_DECAY = 0.95


def to_input(photos: torch.Tensor) -> torch.Tensor:
    return photos.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def augment(photos: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Training batches: a mirror image for half, and a random shift of up to 1/8 of the side
    (zero padding, as the paper's CIFAR crops). [N, S, S, 3] uint8 in and out."""
    n, side = photos.shape[0], photos.shape[1]
    flip = torch.rand(n, generator=generator) < 0.5
    photos = torch.where(flip[:, None, None, None], photos.flip(2), photos)
    pad = max(1, side // 8)
    padded = F.pad(photos.permute(0, 3, 1, 2), (pad, pad, pad, pad)).permute(0, 2, 3, 1)
    dx, dy = torch.randint(0, 2 * pad + 1, (2,), generator=generator).tolist()
    return padded[:, dy : dy + side, dx : dx + side, :].contiguous()


# ---- the shared network ------------------------------------------------------------------------


class _Op(nn.Module):
    def __init__(self, op: str, channels: int):
        super().__init__()
        kernel, pad = KERNEL[op], KERNEL[op] // 2
        if op.startswith("max"):
            self.body = nn.MaxPool2d(3, 1, 1)
        elif op.startswith("avg"):
            self.body = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        elif op.startswith("sep"):
            self.body = nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(channels, channels, kernel, padding=pad, groups=channels, bias=False),
                nn.Conv2d(channels, channels, 1, bias=False),
                nn.BatchNorm2d(channels),
            )
        else:
            self.body = nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(channels, channels, kernel, padding=pad, bias=False),
                nn.BatchNorm2d(channels),
            )

    def forward(self, x):
        return self.body(x)


class SharedNetwork(nn.Module):
    """Every operation of every layer; a forward pass runs the child `arch` names."""

    def __init__(self, layers: int, channels: int, classes: int):
        super().__init__()
        self.layers = layers
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        self.ops = nn.ModuleList(
            nn.ModuleList(_Op(op, channels) for op in OPS) for _ in range(layers)
        )
        # The normalisation after a layer's skip sum, shared by every subset of skips.
        self.skip_norms = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(layers))
        self.head = nn.Linear(channels, classes)
        self.reduce_after = set(reductions(layers))

    def forward(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        x = self.stem(x)
        outputs = []
        for i, (op, skip) in enumerate(zip(arch.ops, arch.skips, strict=True)):
            y = self.ops[i][op](x)
            if skip:
                for j in skip:
                    factor = downsampling(self.layers, j, i)
                    source = outputs[j]
                    y = y + (F.avg_pool2d(source, factor) if factor > 1 else source)
                y = self.skip_norms[i](y)
            outputs.append(y)
            x = F.max_pool2d(y, 2) if i in self.reduce_after else y
        return self.head(F.adaptive_avg_pool2d(F.relu(x), 1).flatten(1))


# ---- the controller ------------------------------------------------------------------------------


@dataclass
class Sample:
    arch: Architecture
    log_prob: torch.Tensor
    entropy: torch.Tensor
    skip_penalty: torch.Tensor
    skip_share: float


class Controller(nn.Module):
    """ENAS's macro controller: an LSTM that, layer by layer, picks an operation (softmax)
    and then each skip (a sigmoid over an attention between this layer's state and each
    earlier layer's "anchor"), feeding its choices back as the next input."""

    def __init__(self, layers: int, hidden: int = CONTROLLER_HIDDEN):
        super().__init__()
        self.layers = layers
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.op_embedding = nn.Embedding(len(OPS), hidden)
        self.op_logits = nn.Linear(hidden, len(OPS))
        self.attend_anchor = nn.Linear(hidden, hidden, bias=False)
        self.attend_query = nn.Linear(hidden, hidden, bias=False)
        self.attend_out = nn.Linear(hidden, 1, bias=False)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -0.1, 0.1)

    def sample(self, generator: torch.Generator | None = None) -> Sample:
        hidden = CONTROLLER_HIDDEN
        h = c = torch.zeros(1, hidden)
        inputs = self.start
        log_probs, entropies, penalties = [], [], []
        anchors, anchor_keys = [], []
        ops, skips, skips_taken, skips_offered = [], [], 0, 0
        target = torch.tensor([SKIP_TARGET, 1 - SKIP_TARGET])
        for i in range(self.layers):
            h, c = self.lstm(inputs, (h, c))
            logits = TANH_CONSTANT * torch.tanh(self.op_logits(h) / TEMPERATURE)
            distribution = torch.distributions.Categorical(logits=logits)
            op = torch.multinomial(distribution.probs, 1, generator=generator).view(1)
            log_probs.append(distribution.log_prob(op).sum())
            entropies.append(distribution.entropy().sum())
            ops.append(int(op))
            inputs = self.op_embedding(op)

            h, c = self.lstm(inputs, (h, c))
            chosen = []
            if i >= 2:  # layers 0..i-2 can be added to layer i
                keys = torch.cat(anchor_keys[: i - 1], dim=0)
                scores = self.attend_out(torch.tanh(keys + self.attend_query(h))).view(-1)
                scores = TANH_CONSTANT * torch.tanh(scores / TEMPERATURE)
                p_skip = torch.sigmoid(scores)
                taken = torch.bernoulli(p_skip.detach(), generator=generator)
                bernoulli = torch.distributions.Bernoulli(probs=p_skip)
                log_probs.append(bernoulli.log_prob(taken).sum())
                entropies.append(bernoulli.entropy().sum())
                both = torch.stack([p_skip, 1 - p_skip], dim=1).clamp_min(1e-6)
                penalties.append((both * (both / target).log()).sum())
                chosen = [j for j in range(i - 1) if taken[j] > 0]
                skips_taken += len(chosen)
                skips_offered += i - 1
                if chosen:
                    picked = torch.cat([anchors[j] for j in chosen], dim=0)
                    inputs = picked.sum(0, keepdim=True) / (1 + len(chosen))
                else:
                    inputs = self.start
            else:
                inputs = self.start
            skips.append(tuple(chosen))
            anchors.append(h)
            anchor_keys.append(self.attend_anchor(h))
        zero = torch.zeros(())
        return Sample(
            Architecture(tuple(ops), tuple(skips)),
            torch.stack(log_probs).sum(),
            torch.stack(entropies).sum(),
            torch.stack(penalties).sum() if penalties else zero,
            skips_taken / skips_offered if skips_offered else 0.0,
        )


def cosine(progress: float, high: float, low: float) -> float:
    return low + (high - low) * 0.5 * (1 + math.cos(math.pi * progress))


# ---- a round of the search -----------------------------------------------------------------------


@dataclass
class RoundResult:
    shared_loss: float
    shared_acc: float
    reward: float
    baseline: float
    entropy: float
    skip_share: float
    seconds: float = 0.0


class Search:
    """The shared network, the controller, their optimisers and the reward baseline."""

    def __init__(self, *, layers, channels, classes, rounds, steps_per_round, seed, device):
        self.device = device
        torch.manual_seed(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.shared = SharedNetwork(layers, channels, classes).to(device)
        self.controller = Controller(layers)
        self.shared_optimizer = torch.optim.SGD(
            self.shared.parameters(),
            lr=SHARED_LEARNING_RATE[0],
            momentum=0.9,
            nesterov=True,
            weight_decay=SHARED_WEIGHT_DECAY,
        )
        total, (high, low) = max(1, rounds * steps_per_round), SHARED_LEARNING_RATE
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.shared_optimizer,
            lambda step: (
                (low + (high - low) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total)))
                / high
            ),
        )
        self.controller_optimizer = torch.optim.Adam(
            self.controller.parameters(), lr=CONTROLLER_LEARNING_RATE, betas=(0.0, 0.999)
        )
        self.baseline: float | None = None

    def train_shared(self, batches) -> tuple[float, float]:
        """One pass; (mean loss, accuracy) of the sampled children on the training batches."""
        self.shared.train()
        loss_sum = correct = seen = 0
        for photos, labels in batches:
            with torch.no_grad():
                arch = self.controller.sample(self.generator).arch
            photos = augment(photos, self.generator)
            x, y = to_input(photos).to(self.device), labels.to(self.device)
            logits = self.shared(x, arch)
            loss = F.cross_entropy(logits, y)
            self.shared_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.shared.parameters(), GRAD_CLIP)
            self.shared_optimizer.step()
            self.schedule.step()
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        return loss_sum / max(seen, 1), correct / max(seen, 1)

    @torch.no_grad()
    def accuracy(self, arch: Architecture, batches) -> float:
        """The child's accuracy with the shared weights. Batch statistics are used (train
        mode, as the paper): running statistics mix every child's and fit none."""
        self.shared.train()
        correct = seen = 0
        for photos, labels in batches:
            logits = self.shared(to_input(photos).to(self.device), arch)
            correct += int((logits.argmax(1) == labels.to(self.device)).sum())
            seen += len(labels)
        # BatchNorm's running statistics moved in train mode: harmless, they are never used.
        return correct / max(seen, 1)

    def train_controller(self, steps: int, reward_batches) -> tuple[float, float, float]:
        """`steps` policy-gradient steps; (mean reward, mean entropy, mean skip share)."""
        self.controller.train()
        rewards, entropies, shares = [], [], []
        batches = iter(())
        for _ in range(steps):
            try:
                batch = next(batches)
            except StopIteration:
                batches = iter(reward_batches)
                batch = next(batches)
            sample = self.controller.sample(self.generator)
            reward = self.accuracy(sample.arch, [batch])
            self.reinforce(sample, reward)
            rewards.append(reward)
            entropies.append(float(sample.entropy))
            shares.append(sample.skip_share)
        n = max(len(rewards), 1)
        return sum(rewards) / n, sum(entropies) / n, sum(shares) / n

    def reinforce(self, sample: Sample, reward: float) -> None:
        """One policy-gradient step: the sample's log-probability pushed up by how much its
        reward beats the moving-average baseline (down when it falls short)."""
        if self.baseline is None:
            self.baseline = reward
        self.baseline = BASELINE_DECAY * self.baseline + (1 - BASELINE_DECAY) * reward
        loss = (
            -sample.log_prob * (reward - self.baseline)
            - ENTROPY_WEIGHT * sample.entropy
            + SKIP_WEIGHT * sample.skip_penalty
        )
        self.controller_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.controller_optimizer.step()

    @torch.no_grad()
    def derive(self, samples: int, reward_batches) -> list[tuple[Architecture, float]]:
        """`samples` distinct children from the controller with their shared-weight accuracy
        on all the reward photos, best first."""
        self.controller.eval()
        seen: dict[Architecture, float] = {}
        for _ in range(samples * 3):  # the controller repeats itself once it has learned
            arch = self.controller.sample(self.generator).arch
            if arch not in seen:
                seen[arch] = self.accuracy(arch, reward_batches)
            if len(seen) >= samples:
                break
        return sorted(seen.items(), key=lambda item: -item[1])
