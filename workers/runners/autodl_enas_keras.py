"""Training a child architecture from scratch in Keras 3 (torch backend) for AutoDL ENAS
(workers/runners/autodl_enas.py): the architecture the search found, and the random
architectures of the fairness check, each with the same budget (epochs, data, seed, recipe).
Saving as the spec's Keras HDF5 and proving the file gives the trained model's outputs.
No Django import.

Recipe: Adam with a cosine rate from 2e-3, the search's augmentation (mirror, shifts of up
to 1/8 of the side), cross entropy on the logits; after each epoch the validation photos
are scored and the best epoch's weights are kept.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workers.runners.autodl_enas_space import Architecture, build_keras

LEARNING_RATE = 2e-3


def import_keras():
    # The torch backend is the platform's (the serving side loads the file with it too).
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    return keras


@dataclass
class Trained:
    model: object
    val_acc: float
    val_loss: float
    best_epoch: int
    parameters: int
    seconds: float
    history: list[dict] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)


def augment(photos: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[N, S, S, 3] uint8: half mirrored, each shifted by up to 1/8 of the side (zeros in)."""
    n, side = photos.shape[0], photos.shape[1]
    out = np.where(rng.random(n)[:, None, None, None] < 0.5, photos[:, :, ::-1, :], photos)
    pad = max(1, side // 8)
    padded = np.pad(out, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    shifted = np.empty_like(out)
    offsets = rng.integers(0, 2 * pad + 1, size=(n, 2))
    for i, (dy, dx) in enumerate(offsets):
        shifted[i] = padded[i, dy : dy + side, dx : dx + side]
    return shifted


def scores(model, photos: np.ndarray, batch_size: int) -> np.ndarray:
    return np.asarray(model.predict(photos.astype("float32"), batch_size=batch_size, verbose=0))


def evaluate(logits: np.ndarray, labels: np.ndarray, classes: int):
    """(accuracy, mean cross entropy, confusion matrix rows true x columns predicted)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-log_probs[np.arange(len(labels)), labels].mean())
    predicted = logits.argmax(axis=1)
    confusion = np.zeros((classes, classes), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    return float((predicted == labels).mean()), loss, confusion.tolist()


def train_from_scratch(
    arch: Architecture,
    data,
    *,
    channels: int,
    epochs: int,
    batch_size: int,
    seed: int,
    on_epoch=None,
) -> Trained:
    """`data` has train_x/train_y/val_x/val_y (uint8 photos, int labels) and classes.
    `on_epoch(epoch, loss, acc, val_loss, val_acc)` after each epoch."""
    keras = import_keras()
    keras.utils.set_random_seed(seed)
    started = time.monotonic()
    classes = len(data.classes)
    model = build_keras(arch, classes, data.train_x.shape[1], channels)
    steps = epochs * max(1, -(-len(data.train_x) // batch_size))
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(LEARNING_RATE, steps)
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    rng = np.random.default_rng(seed)
    best = None
    history = []
    for epoch in range(1, epochs + 1):
        photos = augment(data.train_x, rng).astype("float32")
        fit = model.fit(
            photos, data.train_y, batch_size=batch_size, epochs=1, shuffle=True, verbose=0
        )
        val_acc, val_loss, confusion = evaluate(
            scores(model, data.val_x, batch_size), data.val_y, classes
        )
        point = {
            "epoch": epoch,
            "loss": float(fit.history["loss"][-1]),
            "acc": float(fit.history["accuracy"][-1]),
            "val_loss": val_loss,
            "val_acc": val_acc,
        }
        history.append(point)
        if best is None or val_acc > best[0] or (val_acc == best[0] and val_loss < best[1]):
            best = (val_acc, val_loss, epoch, model.get_weights(), confusion)
        if on_epoch:
            on_epoch(point)
    val_acc, val_loss, epoch, weights, confusion = best
    model.set_weights(weights)
    return Trained(
        model,
        val_acc,
        val_loss,
        epoch,
        int(model.count_params()),
        time.monotonic() - started,
        history,
        confusion,
    )


def save_hdf5(model, path: Path, seed: int, batch_size: int) -> float:
    """The spec's Keras HDF5 (structure and weights), reloaded to check it gives the trained
    model's outputs on a seeded batch; the largest difference found. Raises if they differ."""
    keras = import_keras()
    model.save(str(path), include_optimizer=False)
    side = model.inputs[0].shape[1]
    batch = np.random.default_rng(seed).uniform(0, 255, size=(4, side, side, 3)).astype("float32")
    reloaded = keras.models.load_model(str(path), compile=False)
    expected, got = scores(model, batch, batch_size), scores(reloaded, batch, batch_size)
    difference = float(np.abs(expected - got).max())
    if not np.allclose(expected, got, rtol=1e-4, atol=1e-4):
        raise RuntimeError(
            f"{path.name} reloaded gives other outputs than the trained model "
            f"(largest difference {difference:g})"
        )
    return difference
