"""PyTorch: a small network learns to read handwritten digits.

Data: CSV files in train_data/ (feature columns, the class label last) when the job has a
training data path, otherwise the 8x8 digits bundled with scikit-learn (no download).
Runs on the GPU the job leased, or on the CPU. With several instances it trains with
DistributedDataParallel (nccl on GPUs, gloo on CPUs): the platform sets RANK, WORLD_SIZE,
MASTER_ADDR and MASTER_PORT as torchrun does. Curves go to the job page with bml.report;
the model is saved to output/, which the platform uploads when the job succeeds: model.pt is
TorchScript with the input scaling inside (release it to the warehouse as a PyTorch model
and serve it: an instance is the 64 raw pixel values), model_state.pt the plain weights.
"""

import glob
import json
import os
import sys

import bml
import numpy as np
import torch
import torch.distributed as dist
from torch import nn

EPOCHS, BATCH, LEARNING_RATE = 20, 64, 0.003
rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
if world > 1:
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
if device.type == "cuda":
    name = torch.cuda.get_device_name(0)
else:
    name = f"{torch.get_num_threads()} threads"
print(f"instance {rank} of {world} on {device} ({name})", flush=True)


def load_data():
    files = sorted(glob.glob("train_data/**/*.csv", recursive=True))
    if files:  # this instance's share of the training files
        table = np.concatenate([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
        return table[:, :-1], table[:, -1].astype(int), f"{len(files)} file(s) in train_data/"
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x[rank::world], y[rank::world], "scikit-learn's bundled digits"


x, y, source = load_data()
scale = max(float(x.max()), 1.0)
x = x / scale
rng = np.random.default_rng(0)
order = rng.permutation(len(x))
split = int(len(x) * 0.8)
train, test = order[:split], order[split:]
print(f"{len(train)} training and {len(test)} test samples from {source}", flush=True)
to_tensor = lambda a, t: torch.tensor(a, dtype=t, device=device)  # noqa: E731
x_train, y_train = to_tensor(x[train], torch.float32), to_tensor(y[train], torch.long)
x_test, y_test = to_tensor(x[test], torch.float32), to_tensor(y[test], torch.long)

torch.manual_seed(0)  # the same initial weights on every instance
classes = int(max(y.max() + 1, 10))
model = nn.Sequential(
    nn.Linear(x.shape[1], 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, classes)
).to(device)
if world > 1:
    model = nn.parallel.DistributedDataParallel(model)
# Every instance takes the same number of steps per epoch (DDP needs it), even when their
# shares of the training files differ in size.
steps = torch.tensor([(len(x_train) + BATCH - 1) // BATCH], device=device)
if world > 1:
    dist.all_reduce(steps, op=dist.ReduceOp.MIN)
steps = int(steps.item())
optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
loss_fn = nn.CrossEntropyLoss()

for epoch in range(1, EPOCHS + 1):
    model.train()
    perm = torch.randperm(len(x_train), device=device)
    total = seen = 0
    for step in range(steps):
        batch = perm[step * BATCH : (step + 1) * BATCH]
        optimizer.zero_grad()
        loss = loss_fn(model(x_train[batch]), y_train[batch])
        loss.backward()
        optimizer.step()
        total, seen = total + loss.item() * len(batch), seen + len(batch)
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    bml.report(step=epoch, loss=total / seen, acc=accuracy)
    print(f"epoch {epoch} loss {total / seen:.4f} acc {accuracy:.3f}", flush=True)

if rank == 0:  # one copy of the model, from the first instance
    os.makedirs("output", exist_ok=True)
    weights = model.module if world > 1 else model
    torch.save(weights.state_dict(), "output/model_state.pt")

    class Servable(nn.Module):
        """What a prediction service runs: raw features in (scaled here), class scores out."""

        def __init__(self, net: nn.Module, scale: float):
            super().__init__()
            self.net, self.scale = net, scale

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            return self.net(features / self.scale)

    torch.jit.script(Servable(weights.cpu().eval(), scale)).save("output/model.pt")
    with open("output/metrics.json", "w") as fh:
        json.dump({"accuracy": accuracy, "epochs": EPOCHS, "instances": world}, fh)
    print("saved output/model.pt (TorchScript) and output/model_state.pt", flush=True)
if world > 1:
    dist.barrier()  # leave together: a peer that quits early breaks the others' connections
    # torch 2.14's gloo can abort the interpreter's exit while a peer is still connected
    # ("terminate called without an active exception"): leave without that teardown.
    sys.stdout.flush()
    os._exit(0)
