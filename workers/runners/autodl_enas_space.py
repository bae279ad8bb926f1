"""The search space of AutoDL ENAS (workers/runners/autodl_enas.py): ENAS's macro space
(Pham et al. 2018, section 2.3) sized for one machine. No Django import, no torch or Keras
import at module level.

A network is a stem (3x3 convolution to `channels`), `layers` searched layers and a head
(ReLU, global average pooling, a dense layer of class scores). Each searched layer i takes
the previous layer's output and
    - applies one operation: 3x3 or 5x5 convolution, 3x3 or 5x5 depthwise-separable
      convolution (each ReLU, convolution, batch normalisation), 3x3 max or average pooling;
    - adds the outputs of any earlier layers it chooses (skip connections; a layer already
      takes its predecessor, so the choice is among layers 0..i-2), then normalises.
Two fixed 2x2 max-poolings halve the feature map (after the layers in `reductions`); a skip
from before a reduction is average-pooled to the size it joins. So an image side divisible
by 4 keeps every sum well-shaped.

An `Architecture` is the controller's decisions: one operation index per layer, and per
layer the sorted list of earlier layers it adds. It is stored as JSON
({"ops": [...], "skips": [[...], ...]}) and drawn on the job page (`graph`).

`build_keras` makes the from-scratch model in Keras 3 out of built-in layers only, so the
HDF5 file it saves loads with `keras.models.load_model` and nothing of ours. Its input is
RGB pixels 0-255, channels last, as the serving side decodes a photo; it rescales inside.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

OPS = ("conv3x3", "conv5x5", "sep3x3", "sep5x5", "max3x3", "avg3x3")
OP_TITLES = {
    "conv3x3": "3x3 conv",
    "conv5x5": "5x5 conv",
    "sep3x3": "3x3 sep conv",
    "sep5x5": "5x5 sep conv",
    "max3x3": "3x3 max pool",
    "avg3x3": "3x3 avg pool",
}
KERNEL = {"conv3x3": 3, "conv5x5": 5, "sep3x3": 3, "sep5x5": 5, "max3x3": 3, "avg3x3": 3}
BN_MOMENTUM = 0.9  # Keras's 0.99 leaves the running statistics at their start on small sets


@dataclass(frozen=True)
class Architecture:
    ops: tuple[int, ...]
    skips: tuple[tuple[int, ...], ...]

    def __post_init__(self):
        if len(self.ops) != len(self.skips):
            raise ValueError("an architecture has one skip list per layer")
        for i, (op, skip) in enumerate(zip(self.ops, self.skips, strict=True)):
            if not 0 <= op < len(OPS):
                raise ValueError(f"layer {i}: operation {op} is not in 0..{len(OPS) - 1}")
            if any(not 0 <= j <= i - 2 for j in skip) or list(skip) != sorted(set(skip)):
                raise ValueError(f"layer {i}: skips {list(skip)} must be distinct layers < {i - 1}")

    @property
    def layers(self) -> int:
        return len(self.ops)

    def to_json(self) -> dict:
        return {"ops": list(self.ops), "skips": [list(s) for s in self.skips]}

    @classmethod
    def from_json(cls, value: dict) -> Architecture:
        return cls(tuple(value["ops"]), tuple(tuple(s) for s in value["skips"]))

    def describe(self) -> str:
        """One line: "sep3x3 | conv5x5 | max3x3 <- 0 | ..." (a layer's added skips after <-)."""
        parts = []
        for op, skip in zip(self.ops, self.skips, strict=True):
            parts.append(OPS[op] + (" <- " + ",".join(map(str, skip)) if skip else ""))
        return " | ".join(parts)


def reductions(layers: int) -> tuple[int, ...]:
    """The layers after which the feature map is halved: about a third and two thirds in,
    never after the last (its output goes straight to the head)."""
    after = {max(0, layers * k // 3 - 1) for k in (1, 2)}
    return tuple(sorted(i for i in after if i < layers - 1))


def downsampling(layers: int, source: int, target: int) -> int:
    """How much smaller layer `target`'s input is than layer `source`'s output (1, 2 or 4)."""
    return 2 ** sum(1 for r in reductions(layers) if source <= r < target)


def random_architecture(rng: random.Random, layers: int) -> Architecture:
    """Uniform over the space: each operation equally likely, each skip taken with 1/2."""
    ops = tuple(rng.randrange(len(OPS)) for _ in range(layers))
    skips = tuple(tuple(j for j in range(i - 1) if rng.random() < 0.5) for i in range(layers))
    return Architecture(ops, skips)


def graph(arch: Architecture) -> dict:
    """Nodes and edges for the job page's drawing: input, stem, the layers (with their
    operation), the reductions and the head; "kind" tells a skip from the main path."""
    nodes = [{"id": "input", "label": "image"}, {"id": "stem", "label": "3x3 conv (stem)"}]
    edges = [{"from": "input", "to": "stem", "kind": "main"}]
    previous, reduce_after = "stem", set(reductions(arch.layers))
    for i, (op, skip) in enumerate(zip(arch.ops, arch.skips, strict=True)):
        node = f"layer{i}"
        nodes.append({"id": node, "label": f"{i}: {OP_TITLES[OPS[op]]}", "op": OPS[op]})
        edges.append({"from": previous, "to": node, "kind": "main"})
        edges += [{"from": f"layer{j}", "to": node, "kind": "skip"} for j in skip]
        previous = node
        if i in reduce_after:
            nodes.append({"id": f"pool{i}", "label": "2x2 max pool (reduce)"})
            edges.append({"from": node, "to": f"pool{i}", "kind": "main"})
            previous = f"pool{i}"
    nodes.append({"id": "head", "label": "global avg pool + dense"})
    edges.append({"from": previous, "to": "head", "kind": "main"})
    return {"nodes": nodes, "edges": edges}


# ---- the from-scratch model in Keras -----------------------------------------------------------


def build_keras(arch: Architecture, classes: int, image_size: int, channels: int):
    """A functional Keras model: float32 RGB pixels [N, S, S, 3] in (0-255), class scores
    [N, classes] out (logits: the spec's answer for image sorting)."""
    import keras
    from keras import layers as kl

    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = kl.Rescaling(1 / 127.5, offset=-1.0, name="scale")(inputs)
    x = kl.Conv2D(channels, 3, padding="same", use_bias=False, name="stem_conv")(x)
    x = kl.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
    outputs, reduce_after = [], set(reductions(arch.layers))
    for i, (op_index, skip) in enumerate(zip(arch.ops, arch.skips, strict=True)):
        y = _keras_op(kl, OPS[op_index], channels, f"layer{i}")(x)
        if skip:
            joined = [y]
            for j in skip:
                factor = downsampling(arch.layers, j, i)
                source = outputs[j]
                if factor > 1:
                    source = kl.AveragePooling2D(factor, name=f"layer{i}_skip{j}_pool")(source)
                joined.append(source)
            y = kl.Add(name=f"layer{i}_add")(joined)
            y = kl.BatchNormalization(momentum=BN_MOMENTUM, name=f"layer{i}_add_bn")(y)
        outputs.append(y)
        x = kl.MaxPooling2D(2, name=f"reduce{i}")(y) if i in reduce_after else y
    x = kl.Activation("relu", name="head_relu")(x)
    x = kl.GlobalAveragePooling2D(name="head_pool")(x)
    x = kl.Dropout(0.1, name="head_dropout")(x)
    logits = kl.Dense(classes, name="logits")(x)
    return keras.Model(inputs, logits, name="enas_child")


def _keras_op(kl, op: str, channels: int, name: str):
    """One operation as a callable on a tensor, its layers named after the layer."""
    if op.startswith("max"):
        return kl.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_{op}")
    if op.startswith("avg"):
        return kl.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_{op}")
    kernel = KERNEL[op]
    conv = (
        kl.SeparableConv2D(channels, kernel, padding="same", use_bias=False, name=f"{name}_{op}")
        if op.startswith("sep")
        else kl.Conv2D(channels, kernel, padding="same", use_bias=False, name=f"{name}_{op}")
    )
    relu = kl.Activation("relu", name=f"{name}_relu")
    norm = kl.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")
    return lambda tensor: norm(conv(relu(tensor)))
