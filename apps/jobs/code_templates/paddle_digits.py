"""PaddlePaddle: a small network learns to read handwritten digits.

Data: CSV files in train_data/ (feature columns, the class label last) when the job has a
training data path, otherwise the 8x8 digits bundled with scikit-learn (no download).
Runs on the Kunlun XPU or GPU the job leased, or on the CPU. Curves go to the job page with
bml.report; the model is saved to output/, which the platform uploads on success:
output/inference/ is a Paddle inference model with the input scaling inside (release that
folder to the warehouse as a Paddle model and serve it: an instance is the 64 raw pixel
values), model.pdparams the plain weights.
"""

import glob
import json
import os

import bml
import numpy as np
import paddle
from paddle import nn

EPOCHS, BATCH, LEARNING_RATE = 20, 64, 0.003
if paddle.is_compiled_with_xpu() and paddle.device.xpu.device_count():
    paddle.set_device("xpu:0")  # the job sees only its own XPUs (XPU_VISIBLE_DEVICES)
elif paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count():
    paddle.set_device("gpu:0")
else:
    paddle.set_device("cpu")
print(f"paddle {paddle.__version__} on {paddle.get_device()}", flush=True)


def load_data():
    files = sorted(glob.glob("train_data/**/*.csv", recursive=True))
    if files:
        table = np.concatenate([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
        return table[:, :-1], table[:, -1].astype(int), f"{len(files)} file(s) in train_data/"
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x, y, "scikit-learn's bundled digits"


x, y, source = load_data()
scale = max(float(x.max()), 1.0)
x = (x / scale).astype("float32")
order = np.random.default_rng(0).permutation(len(x))
split = int(len(x) * 0.8)
train, test = order[:split], order[split:]
print(f"{len(train)} training and {len(test)} test samples from {source}", flush=True)
x_train, y_train = paddle.to_tensor(x[train]), paddle.to_tensor(y[train].astype("int64"))
x_test, y_test = paddle.to_tensor(x[test]), paddle.to_tensor(y[test].astype("int64"))

paddle.seed(0)
classes = int(max(y.max() + 1, 10))
model = nn.Sequential(
    nn.Linear(x.shape[1], 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, classes)
)
optimizer = paddle.optimizer.Adam(learning_rate=LEARNING_RATE, parameters=model.parameters())
loss_fn = nn.CrossEntropyLoss()

for epoch in range(1, EPOCHS + 1):
    model.train()
    perm = paddle.randperm(len(train))
    total = 0.0
    for start in range(0, len(train), BATCH):
        batch = perm[start : start + BATCH]
        loss = loss_fn(model(x_train[batch]), y_train[batch])
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        total += float(loss) * len(batch)
    model.eval()
    with paddle.no_grad():
        accuracy = float((model(x_test).argmax(1) == y_test).astype("float32").mean())
    bml.report(step=epoch, loss=total / len(train), acc=accuracy)
    print(f"epoch {epoch} loss {total / len(train):.4f} acc {accuracy:.3f}", flush=True)

os.makedirs("output", exist_ok=True)
paddle.save(model.state_dict(), "output/model.pdparams")


class Servable(nn.Layer):
    """What a prediction service runs: raw features in (scaled here), class scores out."""

    def __init__(self, net: nn.Layer, scale: float):
        super().__init__()
        self.net, self.scale = net, scale

    def forward(self, features):
        return self.net(features / self.scale)


servable = Servable(model, scale)
servable.eval()
spec = [paddle.static.InputSpec([None, x.shape[1]], "float32", "features")]
paddle.jit.save(servable, "output/inference/model", input_spec=spec)
with open("output/metrics.json", "w") as fh:
    json.dump({"accuracy": accuracy, "epochs": EPOCHS}, fh)
print("saved output/model.pdparams and output/inference/ (Paddle inference model)", flush=True)
